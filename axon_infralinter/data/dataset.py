"""Build the data set: corpus files -> scanned, labelled records -> grouped train/val/test jsonl.

Steps of `build_dataset`, each one pass over the files:

1. find the `.tf` files (`corpus.find_terraform_files`); skip, with a one-line reason, files that
   are binary, not UTF-8, empty once comments are removed, not valid HCL, or declare no `resource`
   or `data` block (`_read`);
2. the text the scanners scan and the model sees is the comment-stripped text
   (`terraform.lexer.strip_comments`); exact and whitespace-normalized duplicates of it are dropped;
3. `--limit N` keeps a seeded sample drawn round-robin over repositories
   (`split.stratified_sample`);
4. scan with Checkov and tfsec (`scanner.scan_texts`, cached by text hash);
5. label under a policy (`scanner.apply_policy`); build the prompt and target (`data.prompt`);
6. split 70/15/15 grouped by repository, sizes, label shares and each cloud provider's share of
   files and of INSECURE files as close as the groups allow (`split.split_by_repo`);
7. drop from val/test every file whose 5-token-shingle Jaccard similarity with an earlier split
   (train for val; train and val for test) reaches the near-duplicate threshold
   (`near_dup.near_duplicates`);
8. write `{train,val,test}.jsonl`, `findings.jsonl`, `rule_titles.json` (`data.rule_catalog`) and
   `dataset_card.json` (`card.build_card`).

Everything but the card's `timings` is a function of the corpus, the config and the scanners.

Examples:
    >>> card = build_dataset(DatasetConfig(corpus=Path("data/corpus"), limit=200))  # doctest: +SKIP
    >>> card["splits"]["train"]["count"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from tqdm import tqdm

from axon_infralinter.data import scanner
from axon_infralinter.data.card import build_card
from axon_infralinter.data.corpus import Skipped, TerraformFile, find_terraform_files
from axon_infralinter.data.labelled import CheckedFile, Labelled, provider_of
from axon_infralinter.data.near_dup import near_duplicates
from axon_infralinter.data.prompt import build_prompt, build_target
from axon_infralinter.data.rule_catalog import write_catalog
from axon_infralinter.data.split import SPLITS, Split, split_by_repo, stratified_sample
from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.executor import Executor
from axon_infralinter.files import (
    atomic_write_json,
    sha256_bytes,
    sha256_file,
    sha256_text,
    write_jsonl,
)
from axon_infralinter.schema import Finding, Record, Tool, label_to_int
from axon_infralinter.settings import load_settings
from axon_infralinter.terraform.lexer import normalize_whitespace, strip_comments

__all__ = [
    "DatasetConfig",
    "Skipped",
    "build_dataset",
    "build_prompt",
    "build_target",
]


@dataclass
class DatasetConfig:
    """What `build_dataset` reads, writes and how it labels and splits."""

    corpus: Path
    """Corpus folder (`<owner>__<repo>/...` with an optional MANIFEST.csv)."""
    out: Path = Path("data")
    """Output folder for the split files, findings and the card."""
    workers: int = 2
    """Scanner processes run at once."""
    limit: int | None = None
    """Keep at most this many files (a seeded sample, round-robin over repositories)."""
    seed: int = 0
    """Seed of the sample and of the split's tie-breaks."""
    policy: str = scanner.DEFAULT_POLICY
    """Label policy, a key of `scanner.POLICIES`."""
    near_dup_threshold: float = 0.8
    """Jaccard similarity of 5-token shingle sets at which a val/test file is a near-duplicate."""
    train_fraction: float = 0.70
    """Target share of files in train."""
    val_fraction: float = 0.15
    """Target share of files in val."""
    test_fraction: float = 0.15
    """Target share of files in test."""
    cache_dir: Path = field(default_factory=lambda: load_settings().scan_cache)
    """Scanner result cache (AXON_HOME/scan-cache)."""
    max_bytes: int = 1_000_000
    """Larger `.tf` files are skipped, in bytes."""
    provider_weight: float = 1.0
    """Weight of the split's cloud-provider balance (`split_by_repo`'s `strata_weight`): each
    provider's files and INSECURE files spread over the splits in the target fractions. 0 gives
    the split of data sets built before 2026-11-26 (runs A-E), where train held 181 of the 817
    AWS files and val 379, so 87% of val's finding lines named a rule no training answer named."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.policy not in scanner.POLICIES:
            raise ConfigError(
                f"--policy must be one of {', '.join(scanner.POLICIES)}, got {self.policy!r}"
            )
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise ConfigError(
                f"--near-dup-threshold must be in (0, 1], got {self.near_dup_threshold}"
            )
        fractions = self.fractions
        if any(not 0.0 <= f <= 1.0 for f in fractions) or self.train_fraction == 0.0:
            raise ConfigError(
                f"split fractions must be in [0, 1] with train > 0, got {list(fractions)}"
            )
        if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise ConfigError(
                f"split fractions (train, val, test) must sum to 1, got {sum(fractions):.4f}"
            )
        if self.max_bytes < 1:
            raise ConfigError(f"max_bytes must be >= 1, got {self.max_bytes}")
        if not math.isfinite(self.provider_weight) or self.provider_weight < 0:
            raise ConfigError(f"--provider-weight must be >= 0, got {self.provider_weight}")

    @property
    def fractions(self) -> tuple[float, float, float]:
        """Target shares of train, val, test."""
        return (self.train_fraction, self.val_fraction, self.test_fraction)


@dataclass
class _Stopwatch:
    """Seconds per step of `build_dataset`, for the card's `timings`."""

    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """Record the seconds since the previous lap (or the start) under `name`."""
        now = time.perf_counter()
        self.timings[name] = round(now - self.started, 3)
        self.started = now


def build_dataset(
    config: DatasetConfig,
    progress: bool = True,
    count_tokens: Callable[[str], int] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Build train/val/test jsonl files, findings.jsonl and dataset_card.json from a corpus.

    Args:
        config: Corpus, output folder, policy, split and de-duplication settings.
        progress: Show progress bars on stderr.
        count_tokens: Tokenizer for the card's length percentiles; default `approx_token_count`.
        executor: Where the scanner batches run (`--engine dask`); None: `config.workers`
            threads here. The files written are the same either way (the card's timings aside).

    Returns:
        The data set card (also written to `out/dataset_card.json`); `card["skipped"]` lists
        every file left out as `{path, reason}` with a one-line reason.

    Raises:
        InputError: The corpus is missing, empty, or no file in it can be used.
        ScannerError: Checkov or Trivy is missing or broken.
    """
    watch = _Stopwatch()
    files, corpus_skipped = find_terraform_files(config.corpus, config.max_bytes)
    skipped: list[Skipped] = list(corpus_skipped)
    watch.lap("find")

    readable, unusable = _read_all(files, progress)
    unique, duplicates = _deduplicate(readable)
    skipped += unusable + duplicates
    candidates = _sample(unique, config)
    if not candidates:
        raise InputError(
            f"no usable Terraform file in {config.corpus} ({len(files)} .tf files, all skipped)"
        )
    watch.lap("read_parse_dedup")

    scan_config = scanner.ScanConfig(
        cache_dir=config.cache_dir, workers=config.workers, executor=executor
    )
    results = scanner.scan_texts([(f.display, f.text) for f in candidates], scan_config, progress)
    watch.lap("scan")

    labelled, versions, scan_errors = _label(candidates, results, config.policy)
    skipped += scan_errors
    if not labelled:
        raise InputError(f"no file of {config.corpus} could be scanned ({len(skipped)} skipped)")
    watch.lap("label")

    split_of_repo = _split(labelled, config)
    by_split = _indexes_by_split(labelled, split_of_repo)
    sizes_before_near_dup = {s: len(by_split[s]) for s in SPLITS}
    watch.lap("split")

    by_split, near_dups = _drop_near_duplicates(labelled, by_split, split_of_repo, config, progress)
    skipped += near_dups
    watch.lap("near_dup")

    written = _write_files(config.out, labelled, by_split)
    watch.lap("write")

    card = build_card(
        config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        corpus=config.corpus,
        policy=config.policy,
        fractions=config.fractions,
        labelled=labelled,
        by_split=by_split,
        sizes_before_near_dup=sizes_before_near_dup,
        split_of_repo=split_of_repo,
        files=written,
        counts={
            "tf_files": len(files),
            "readable": len(readable),
            "unique": len(unique),
            "scanned": len(candidates),
        },
        versions=versions,
        skipped=skipped,
        count_tokens=count_tokens,
        timings=watch.timings,
    )
    atomic_write_json(config.out / "dataset_card.json", card)
    return card


# --------------------------------------------------------------------------------------------
# Reading, de-duplication, sampling


def _read_all(
    files: Sequence[TerraformFile], progress: bool
) -> tuple[list[CheckedFile], list[Skipped]]:
    """Read and check every file: the usable ones, and why the others were skipped."""
    readable: list[CheckedFile] = []
    skipped: list[Skipped] = []
    for tf in tqdm(files, desc="read+parse", unit="file", disable=not progress, leave=False):
        read = _read(tf)
        if isinstance(read, Skipped):
            skipped.append(read)
        else:
            readable.append(read)
    return readable, skipped


def _read(tf: TerraformFile) -> CheckedFile | Skipped:
    """Read and check one file: a `CheckedFile`, or why it was skipped."""
    display = f"{tf.repo}/{tf.repo_path}"
    try:
        data = tf.path.read_bytes()
    except OSError as exc:
        return Skipped(display, f"unreadable: {exc.strerror}")
    if b"\x00" in data:
        return Skipped(display, "binary: contains NUL bytes")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Skipped(display, f"not UTF-8: invalid byte at offset {exc.start}")
    text = strip_comments(raw.removeprefix("\ufeff"))
    if not text.strip():
        return Skipped(display, "empty: nothing left once comments are removed")
    try:
        parsed = hcl2.loads(text if text.endswith("\n") else text + "\n")
    except Exception as exc:  # the parser raises many lark and Python error types
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        return Skipped(display, f"invalid HCL: {detail}")
    types = _block_types(parsed)
    if not types:
        return Skipped(display, "no resource: declares no resource or data block")
    return CheckedFile(
        repo=tf.repo,
        path=tf.repo_path,
        sha256=sha256_bytes(data),
        text=text,
        provider=provider_of(types),
    )


def _block_types(parsed: Any) -> list[str]:
    """Types of the `resource` and `data` blocks of an hcl2 parse, in file order."""
    types: list[str] = []
    if not isinstance(parsed, dict):
        return types
    for kind in ("resource", "data"):
        for block in parsed.get(kind) or []:
            if isinstance(block, dict):
                types.extend(str(t) for t in block)
    return types


def _deduplicate(files: list[CheckedFile]) -> tuple[list[CheckedFile], list[Skipped]]:
    """Drop exact and whitespace-normalized duplicates of the stripped text; first one wins."""
    kept: list[CheckedFile] = []
    skipped: list[Skipped] = []
    exact: dict[str, CheckedFile] = {}
    loose: dict[str, CheckedFile] = {}
    for f in files:
        key = hashlib.sha256(f.text.encode("utf-8")).hexdigest()
        loose_key = hashlib.sha256(normalize_whitespace(f.text).encode("utf-8")).hexdigest()
        if key in exact:
            skipped.append(Skipped(f.display, f"duplicate: same text as {exact[key].display}"))
        elif loose_key in loose:
            first = loose[loose_key].display
            skipped.append(Skipped(f.display, f"duplicate: same text up to whitespace as {first}"))
        else:
            exact[key] = loose[loose_key] = f
            kept.append(f)
    return kept, skipped


def _sample(files: list[CheckedFile], config: DatasetConfig) -> list[CheckedFile]:
    """All files, or with `--limit` a seeded sample drawn round-robin over repositories."""
    if config.limit is None:
        return files
    return stratified_sample(files, lambda f: f.repo, config.limit, config.seed)


# --------------------------------------------------------------------------------------------
# Labelling, split, near-duplicates


def _label(
    files: Sequence[CheckedFile], results: Sequence[dict[Tool, scanner.ToolResult]], policy: str
) -> tuple[list[Labelled], dict[str, set[str]], list[Skipped]]:
    """Label each scanned file under `policy`.

    Returns:
        The labelled files; tool -> every version seen (skipped files included); the files
        skipped for a scanner error.
    """
    labelled: list[Labelled] = []
    versions: dict[str, set[str]] = defaultdict(set)
    skipped: list[Skipped] = []
    for f, row in zip(files, results, strict=True):
        errors = [f"{tool}: {r['error']}" for tool, r in row.items() if r["error"]]
        for tool, r in row.items():
            versions[tool].add(r["version"])
        if errors:
            skipped.append(Skipped(f.display, f"scanner error: {'; '.join(errors)}"))
            continue
        label, relevant = scanner.apply_policy(row, policy)
        labelled.append(Labelled(f, row, label, relevant))
    return labelled, versions, skipped


def _split(labelled: Sequence[Labelled], config: DatasetConfig) -> dict[str, Split]:
    """repository -> split, balancing sizes, labels and each cloud provider's files."""
    repo_counts: dict[str, tuple[int, int]] = {}
    provider_counts: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for x in labelled:
        f, insecure = x.file, label_to_int(x.label)
        n, k = repo_counts.get(f.repo, (0, 0))
        repo_counts[f.repo] = (n + 1, k + insecure)
        n, k = provider_counts[f.repo].get(f.provider, (0, 0))
        provider_counts[f.repo][f.provider] = (n + 1, k + insecure)
    return split_by_repo(
        repo_counts,
        config.fractions,
        config.seed,
        strata=provider_counts,
        strata_weight=config.provider_weight,
    )


def _indexes_by_split(
    labelled: Sequence[Labelled], split_of_repo: dict[str, Split]
) -> dict[Split, list[int]]:
    """Indexes into `labelled` of the files of each split, in order."""
    by_split: dict[Split, list[int]] = {s: [] for s in SPLITS}
    for i, x in enumerate(labelled):
        by_split[split_of_repo[x.file.repo]].append(i)
    return by_split


def _drop_near_duplicates(
    labelled: Sequence[Labelled],
    by_split: dict[Split, list[int]],
    split_of_repo: dict[str, Split],
    config: DatasetConfig,
    progress: bool,
) -> tuple[dict[Split, list[int]], list[Skipped]]:
    """Leave out val/test files too similar to a file of an earlier split.

    Returns:
        The indexes of each split that stay, and a skip reason for each file left out.
    """
    texts = [x.file.text for x in labelled]
    dropped = near_duplicates(texts, by_split, config.near_dup_threshold, progress=progress)
    skipped: list[Skipped] = []
    for i, (j, score) in sorted(dropped.items()):
        split = split_of_repo[labelled[i].file.repo]
        other = split_of_repo[labelled[j].file.repo]
        skipped.append(
            Skipped(
                labelled[i].file.display,
                f"near-duplicate: {split} file has Jaccard {score:.2f} with {other} file "
                f"{labelled[j].file.id}",
            )
        )
    kept = {s: [i for i in by_split[s] if i not in dropped] for s in SPLITS}
    return kept, skipped


# --------------------------------------------------------------------------------------------
# Writing


def _write_files(
    out: Path, labelled: Sequence[Labelled], by_split: dict[Split, list[int]]
) -> dict[str, dict[str, Any]]:
    """Write the split files, findings.jsonl and rule_titles.json.

    Returns:
        For the card: split name or `findings` -> {path, sha256[, count]}.
    """
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, Any]] = {}
    findings_rows: list[dict[str, Any]] = []
    for s in SPLITS:
        records = [_record(labelled[i]) for i in by_split[s]]
        findings_rows += [_findings_row(labelled[i], s) for i in by_split[s]]
        path = out / f"{s}.jsonl"
        write_jsonl(path, records)  # type: ignore[arg-type]
        written[s] = {"path": str(path), "sha256": sha256_file(path), "count": len(records)}
    findings_path = out / "findings.jsonl"
    write_jsonl(findings_path, findings_rows)
    write_catalog(out / "rule_titles.json", findings_rows)
    written["findings"] = {"path": str(findings_path), "sha256": sha256_file(findings_path)}
    return written


def _all_findings(x: Labelled) -> list[Finding]:
    """Every finding of every scanner, relevant to the policy or not."""
    return [f for r in x.results.values() for f in r["findings"]]


def _record(x: Labelled) -> Record:
    """The training/evaluation record of a labelled file."""
    return Record(
        id=x.file.id,
        repo=x.file.repo,
        path=x.file.path,
        sha256=x.file.sha256,
        label=x.label,
        input_text=build_prompt(x.file.text),
        target_text=build_target(x.label, x.relevant),
        findings=_all_findings(x),
    )


def _findings_row(x: Labelled, split: Split) -> dict[str, Any]:
    """The findings.jsonl row of a labelled file: its findings and the scanner versions."""
    return {
        "id": x.file.id,
        "split": split,
        "sha256": x.file.sha256,
        "text_sha256": sha256_text(x.file.text),
        "scanners": {tool: r["version"] for tool, r in x.results.items()},
        "findings": _all_findings(x),
    }
