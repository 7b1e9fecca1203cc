"""Build the data set: corpus files -> scanned, labelled records -> grouped train/val/test jsonl.

Steps of `build_dataset`, each one pass over the files:

1. find the `.tf` files (`corpus.find_terraform_files`); skip, with a one-line reason, files that
   are binary, not UTF-8, empty once comments are removed, not valid HCL, or declare no `resource`
   or `data` block;
2. the text the scanners scan and the model sees is the comment-stripped text
   (`hcl.strip_comments`); exact and whitespace-normalized duplicates of it are dropped;
3. `--limit N` keeps a seeded sample drawn round-robin over repositories;
4. scan with Checkov and tfsec (`scanner.scan_texts`, cached by text hash);
5. label under a policy (`scanner.apply_policy`); build the prompt and target (`data.prompt`);
6. split 70/15/15 grouped by repository, sizes, label shares and each cloud provider's share of
   files and of INSECURE files as close as the groups allow;
7. drop from val/test every file whose 5-token-shingle Jaccard similarity with an earlier split
   (train for val; train and val for test) reaches the near-duplicate threshold;
8. write `{train,val,test}.jsonl`, `findings.jsonl`, `rule_titles.json` (`data.rule_catalog`) and
   `dataset_card.json`.

Everything but the card's `timings` is a function of the corpus, the config and the scanners.

Examples:
    >>> card = build_dataset(DatasetConfig(corpus=Path("data/corpus"), limit=200))  # doctest: +SKIP
    >>> card["splits"]["train"]["count"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import hcl2
import numpy as np
from tqdm import tqdm

from axon_infralinter.data import scanner
from axon_infralinter.data.corpus import (
    MANIFEST_NAME,
    Skipped,
    TerraformFile,
    find_terraform_files,
)
from axon_infralinter.data.hcl import normalize_whitespace, strip_comments
from axon_infralinter.data.prompt import build_prompt, build_target
from axon_infralinter.data.rule_catalog import write_catalog
from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.files import (
    atomic_write_json,
    sha256_bytes,
    sha256_file,
    sha256_text,
    write_jsonl,
)
from axon_infralinter.schema import Finding, Label, Record, Tool, label_to_int
from axon_infralinter.settings import load_settings

__all__ = [
    "SPLITS",
    "DatasetConfig",
    "Skipped",
    "approx_token_count",
    "build_dataset",
    "build_prompt",
    "build_target",
    "jaccard",
    "near_duplicates",
    "provider_of",
    "reason_kind",
    "shingles",
    "split_by_repo",
    "stratified_sample",
]

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, Split, Split] = ("train", "val", "test")
#: Block type prefixes -> cloud provider, for the card's per-provider label shares.
PROVIDER_PREFIXES: dict[str, tuple[str, ...]] = {
    "aws": ("aws_",),
    "azure": ("azurerm_", "azuread_", "azapi_"),
    "gcp": ("google_",),
}
#: Tokens per shingle for near-duplicate detection.
SHINGLE_TOKENS = 5
#: MinHash signature length and LSH banding (32 bands x 4 rows): a pair at Jaccard 0.8 becomes a
#: candidate with probability 1 - (1 - 0.8**4)**32 > 0.9999999; candidates are then checked exactly.
MINHASH_PERMUTATIONS = 128
LSH_BANDS = 32
_PRIME32 = 4294967311  # smallest prime above 2**32: (a * h) < 2**64 for 32-bit a and h
_TOKEN = re.compile(r"\w+|[^\w\s]")
_APPROX_TOKEN = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]|\s+")
T = TypeVar("T")


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
        fractions = (self.train_fraction, self.val_fraction, self.test_fraction)
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


@dataclass
class _File:
    """A corpus file that passed the input checks."""

    repo: str
    path: str
    sha256: str
    """SHA-256 of the original bytes."""
    text: str
    """Comment-stripped text: what is scanned and what the model sees."""
    provider: str

    @property
    def id(self) -> str:
        return f"{self.repo}::{self.path}"

    @property
    def display(self) -> str:
        return f"{self.repo}/{self.path}"


def build_dataset(
    config: DatasetConfig,
    progress: bool = True,
    count_tokens: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    """Build train/val/test jsonl files, findings.jsonl and dataset_card.json from a corpus.

    Args:
        config: Corpus, output folder, policy, split and de-duplication settings.
        progress: Show progress bars on stderr.
        count_tokens: Tokenizer for the card's length percentiles; default `approx_token_count`.

    Returns:
        The data set card (also written to `out/dataset_card.json`); `card["skipped"]` lists
        every file left out as `{path, reason}` with a one-line reason.

    Raises:
        InputError: The corpus is missing, empty, or no file in it can be used.
        ScannerError: Checkov or Trivy is missing or broken.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    files, corpus_skipped = find_terraform_files(config.corpus, config.max_bytes)
    skipped: list[Skipped] = list(corpus_skipped)
    lap("find")

    candidates: list[_File] = []
    for tf in tqdm(files, desc="read+parse", unit="file", disable=not progress, leave=False):
        read = _read(tf)
        if isinstance(read, Skipped):
            skipped.append(read)
        else:
            candidates.append(read)
    n_readable = len(candidates)
    candidates, dups = _deduplicate(candidates)
    skipped.extend(dups)
    n_unique = len(candidates)
    if config.limit is not None:
        candidates = stratified_sample(candidates, lambda f: f.repo, config.limit, config.seed)
    if not candidates:
        raise InputError(
            f"no usable Terraform file in {config.corpus} ({len(files)} .tf files, all skipped)"
        )
    lap("read_parse_dedup")

    scan_config = scanner.ScanConfig(cache_dir=config.cache_dir, workers=config.workers)
    results = scanner.scan_texts([(f.display, f.text) for f in candidates], scan_config, progress)
    lap("scan")

    labelled: list[tuple[_File, dict[Tool, scanner.ToolResult], Label, list[Finding]]] = []
    versions: dict[str, set[str]] = defaultdict(set)
    for f, row in zip(candidates, results, strict=True):
        errors = [f"{tool}: {r['error']}" for tool, r in row.items() if r["error"]]
        for tool, r in row.items():
            versions[tool].add(r["version"])
        if errors:
            skipped.append(Skipped(f.display, f"scanner error: {'; '.join(errors)}"))
            continue
        label, relevant = scanner.apply_policy(row, config.policy)
        labelled.append((f, row, label, relevant))
    if not labelled:
        raise InputError(f"no file of {config.corpus} could be scanned ({len(skipped)} skipped)")
    share_all = _insecure_share([label for _, _, label, _ in labelled])
    lap("label")

    repo_counts: dict[str, tuple[int, int]] = {}
    provider_counts: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for f, _, label, _ in labelled:
        n, k = repo_counts.get(f.repo, (0, 0))
        repo_counts[f.repo] = (n + 1, k + label_to_int(label))
        n, k = provider_counts[f.repo].get(f.provider, (0, 0))
        provider_counts[f.repo][f.provider] = (n + 1, k + label_to_int(label))
    split_of_repo = split_by_repo(
        repo_counts,
        _fractions(config),
        config.seed,
        strata=provider_counts,
        strata_weight=config.provider_weight,
    )
    by_split: dict[Split, list[int]] = {s: [] for s in SPLITS}
    for i, (f, _, _, _) in enumerate(labelled):
        by_split[split_of_repo[f.repo]].append(i)
    sizes_before_near_dup = {s: len(by_split[s]) for s in SPLITS}
    lap("split")

    texts = [f.text for f, _, _, _ in labelled]
    ids = [f.id for f, _, _, _ in labelled]
    dropped = near_duplicates(texts, by_split, config.near_dup_threshold, progress=progress)
    for i, (j, score) in sorted(dropped.items()):
        split = split_of_repo[labelled[i][0].repo]
        other = split_of_repo[labelled[j][0].repo]
        skipped.append(
            Skipped(
                labelled[i][0].display,
                f"near-duplicate: {split} file has Jaccard {score:.2f} with {other} file {ids[j]}",
            )
        )
    for s in SPLITS:
        by_split[s] = [i for i in by_split[s] if i not in dropped]
    lap("near_dup")

    config.out.mkdir(parents=True, exist_ok=True)
    split_files: dict[str, dict[str, Any]] = {}
    findings_rows: list[dict[str, Any]] = []
    for s in SPLITS:
        records: list[Record] = []
        for i in by_split[s]:
            f, row, label, relevant = labelled[i]
            findings = [x for r in row.values() for x in r["findings"]]
            records.append(
                Record(
                    id=f.id,
                    repo=f.repo,
                    path=f.path,
                    sha256=f.sha256,
                    label=label,
                    input_text=build_prompt(f.text),
                    target_text=build_target(label, relevant),
                    findings=findings,
                )
            )
            findings_rows.append(
                {
                    "id": f.id,
                    "split": s,
                    "sha256": f.sha256,
                    "text_sha256": sha256_text(f.text),
                    "scanners": {tool: r["version"] for tool, r in row.items()},
                    "findings": findings,
                }
            )
        path = config.out / f"{s}.jsonl"
        write_jsonl(path, records)  # type: ignore[arg-type]
        split_files[s] = {"path": str(path), "sha256": sha256_file(path), "count": len(records)}
    findings_path = config.out / "findings.jsonl"
    write_jsonl(findings_path, findings_rows)
    write_catalog(config.out / "rule_titles.json", findings_rows)
    lap("write")

    card = _card(
        config=config,
        labelled=labelled,
        by_split=by_split,
        sizes_before_near_dup=sizes_before_near_dup,
        split_of_repo=split_of_repo,
        split_files=split_files,
        findings_path=findings_path,
        share_all=share_all,
        counts={
            "tf_files": len(files),
            "readable": n_readable,
            "unique": n_unique,
            "scanned": len(candidates),
        },
        versions=versions,
        skipped=skipped,
        count_tokens=count_tokens,
        timings=timings,
    )
    atomic_write_json(config.out / "dataset_card.json", card)
    return card


# --------------------------------------------------------------------------------------------
# Reading and de-duplication


def _read(tf: TerraformFile) -> _File | Skipped:
    """Read and check one file: a `_File`, or why it was skipped."""
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
    return _File(
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


def provider_of(types: Iterable[str]) -> str:
    """The cloud (`aws`, `azure`, `gcp`) most of `types` belong to; `other` when none does.

    Ties go to the first in `PROVIDER_PREFIXES` order.
    """
    counts = Counter(
        cloud
        for t in types
        for cloud, prefixes in PROVIDER_PREFIXES.items()
        if t.startswith(prefixes)
    )
    if not counts:
        return "other"
    best = max(counts.values())
    return next(c for c in PROVIDER_PREFIXES if counts[c] == best)


def _deduplicate(files: list[_File]) -> tuple[list[_File], list[Skipped]]:
    """Drop exact and whitespace-normalized duplicates of the stripped text; first one wins."""
    kept: list[_File] = []
    skipped: list[Skipped] = []
    exact: dict[str, _File] = {}
    loose: dict[str, _File] = {}
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


def stratified_sample(
    items: Sequence[T], repo_of: Callable[[T], str], n: int, seed: int
) -> list[T]:
    """Pick `n` items round-robin over repositories, in a seeded order; keeps the input order.

    Repositories are visited in a seeded shuffled order, each contributing one item (from its own
    seeded shuffle) per round, so a small `n` still covers up to `n` repositories.
    """
    if n >= len(items):
        return list(items)
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    by_repo: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_repo[repo_of(item)].append(i)
    repos = sorted(by_repo)
    rng.shuffle(repos)
    for repo in repos:
        rng.shuffle(by_repo[repo])
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for repo in repos:
            if depth < len(by_repo[repo]) and len(picked) < n:
                picked.append(by_repo[repo][depth])
        depth += 1
    return [items[i] for i in sorted(picked)]


# --------------------------------------------------------------------------------------------
# Grouped split


def split_by_repo(
    counts: Mapping[str, tuple[int, int]],
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
    seed: int = 0,
    label_weight: float = 0.2,
    strata: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
    strata_weight: float = 0.0,
) -> dict[str, Split]:
    """Assign whole repositories to train/val/test.

    A greedy pass takes repositories largest first (seeded order among equal sizes) and puts each
    into the split furthest below its target size, preferring, among the splits it fits in, the
    one whose INSECURE share it brings closest to the overall share. A local search then moves
    single repositories or swaps pairs while that lowers
    `sum |size - target| / N + label_weight * sum |INSECURE share - overall share|`
    (an empty split with a positive target costs 1 more), plus, with `strata`,
    `strata_weight * sum over strata and splits (|files - fraction * stratum files| / N
    + |INSECURE - fraction * stratum INSECURE| / K)`: each stratum (the cloud provider, in
    `build_dataset`) is then spread over the splits in the target fractions as far as whole
    repositories allow, so that val and test hold the clouds train teaches, and the other way round.

    Args:
        counts: repository -> (files, INSECURE files).
        fractions: Target shares of train, val, test.
        seed: Tie-break seed.
        label_weight: Weight of the label-balance term against the size term.
        strata: repository -> stratum -> (files, INSECURE files); None: no stratum term.
        strata_weight: Weight of the stratum term (0: the split of data sets built before
            2026-11-26, which put nearly every AWS file in val and test).

    Returns:
        repository -> split.
    """
    total = sum(n for n, _ in counts.values())
    if total == 0:
        return {repo: "train" for repo in counts}
    overall = sum(k for _, k in counts.values()) / total
    targets = [f * total for f in fractions]
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    repos = sorted(counts)
    rng.shuffle(repos)
    repos.sort(key=lambda r: -counts[r][0])  # stable: seeded order among equal sizes

    # A repository as a vector: files, INSECURE, then (files, INSECURE) per stratum.
    names = sorted({p for per in (strata or {}).values() for p in per}) if strata_weight else []
    width = 2 + 2 * len(names)

    def vector(repo: str) -> list[int]:
        v = [*counts[repo], *([0] * (width - 2))]
        for j, p in enumerate(names):
            v[2 + 2 * j], v[3 + 2 * j] = (strata or {}).get(repo, {}).get(p, (0, 0))
        return v

    vec = {repo: vector(repo) for repo in repos}
    whole = [sum(vec[r][d] for r in repos) for d in range(width)]
    insecure_total = max(whole[1], 1)

    sums = [[0] * width for _ in range(3)]
    assign: dict[str, int] = {}
    for repo in repos:
        n, k = counts[repo]
        size = [sums[s][0] for s in range(3)]
        insecure = [sums[s][1] for s in range(3)]
        deficits = [targets[s] - size[s] for s in range(3)]
        fits = [s for s in range(3) if deficits[s] >= n and targets[s] > 0]
        if fits:
            s = min(
                fits,
                key=lambda s: (abs((insecure[s] + k) / (size[s] + n) - overall), -deficits[s], s),
            )
        else:
            s = max(range(3), key=lambda s: (deficits[s], -s))
        assign[repo] = s
        sums[s] = [a + b for a, b in zip(sums[s], vec[repo], strict=True)]

    def cost(sums: list[list[int]]) -> float:
        c = 0.0
        for s in range(3):
            size, insecure = sums[s][0], sums[s][1]
            c += abs(size - targets[s]) / total
            if size:
                c += label_weight * abs(insecure / size - overall)
            elif targets[s] > 0:
                c += 1.0
            for d in range(2, width, 2):
                c += strata_weight * (
                    abs(sums[s][d] - fractions[s] * whole[d]) / total
                    + abs(sums[s][d + 1] - fractions[s] * whole[d + 1]) / insecure_total
                )
        return c

    def moved(sums: list[list[int]], changes: list[tuple[str, int]]) -> list[list[int]]:
        out = [row.copy() for row in sums]
        for repo, t in changes:
            for d, x in enumerate(vec[repo]):
                out[assign[repo]][d] -= x
                out[t][d] += x
        return out

    current = cost(sums)
    for _ in range(10_000):  # bound: each step strictly lowers the cost
        best: tuple[float, list[tuple[str, int]]] | None = None
        for a_i, a in enumerate(repos):
            sa = assign[a]
            for t in range(3):
                if t == sa or targets[t] == 0:
                    continue
                c = cost(moved(sums, [(a, t)]))
                if c < current - 1e-12 and (best is None or c < best[0] - 1e-12):
                    best = (c, [(a, t)])
            for b in repos[a_i + 1 :]:
                sb = assign[b]
                if sb == sa:
                    continue
                c = cost(moved(sums, [(a, sb), (b, sa)]))
                if c < current - 1e-12 and (best is None or c < best[0] - 1e-12):
                    best = (c, [(a, sb), (b, sa)])
        if best is None:
            break
        sums = moved(sums, best[1])
        for repo, t in best[1]:
            assign[repo] = t
        current = best[0]
    return {repo: SPLITS[assign[repo]] for repo in sorted(assign)}


# --------------------------------------------------------------------------------------------
# Near-duplicates


def shingles(text: str, k: int = SHINGLE_TOKENS) -> np.ndarray:
    """Sorted unique 64-bit hashes of the `k`-token shingles of `text` (tokens: words, symbols).

    A text shorter than `k` tokens is one shingle.
    """
    tokens = _TOKEN.findall(text)
    if len(tokens) < k:
        grams = ["\x1f".join(tokens)]
    else:
        grams = ["\x1f".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    hashes = [
        int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "little")
        for g in grams
    ]
    return np.unique(np.array(hashes, dtype=np.uint64))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique hash arrays (1.0 for two empty ones)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def _minhash(sh: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signature: for each (a, b), min over shingles of (a * h + b) mod p, h 32-bit."""
    sig = np.full(a.size, np.iinfo(np.uint64).max, dtype=np.uint64)
    h32 = sh & np.uint64(0xFFFFFFFF)
    for start in range(0, h32.size, 4096):  # chunks bound memory to 4096 x permutations
        chunk = h32[start : start + 4096, None]
        values = ((chunk * a[None, :]) % np.uint64(_PRIME32) + b[None, :]) % np.uint64(_PRIME32)
        sig = np.minimum(sig, values.min(axis=0))
    return sig


def near_duplicates(
    texts: Sequence[str],
    by_split: Mapping[Split, Sequence[int]],
    threshold: float,
    progress: bool = False,
) -> dict[int, tuple[int, float]]:
    """Val/test files too similar to a file of an earlier split.

    A val file is compared with train; a test file with train and the val files that stay. The
    comparison is exact Jaccard on 5-token shingle sets, computed for the candidate pairs that
    MinHash LSH (128 permutations, 32 bands) proposes.

    Args:
        texts: All texts, indexed as in `by_split`.
        by_split: Indexes of the texts of each split.
        threshold: Jaccard similarity at or above which a file is dropped.
        progress: Show a progress bar on stderr.

    Returns:
        Dropped index -> (index of its most similar earlier file, that similarity).
    """
    rng = np.random.default_rng(20240917)  # fixed: the hash family is part of the method
    a = rng.integers(1, _PRIME32, size=MINHASH_PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, _PRIME32, size=MINHASH_PERMUTATIONS, dtype=np.uint64)
    rows = MINHASH_PERMUTATIONS // LSH_BANDS
    needed = [i for s in SPLITS for i in by_split.get(s, ())]
    sh: dict[int, np.ndarray] = {}
    bands: dict[int, list[bytes]] = {}
    for i in tqdm(needed, desc="near-dup", unit="file", disable=not progress, leave=False):
        sh[i] = shingles(texts[i])
        sig = _minhash(sh[i], a, b)
        bands[i] = [sig[r * rows : (r + 1) * rows].tobytes() for r in range(LSH_BANDS)]

    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)

    def index(i: int) -> None:
        for band, key in enumerate(bands[i]):
            buckets[(band, key)].append(i)

    dropped: dict[int, tuple[int, float]] = {}
    for i in by_split.get("train", ()):
        index(i)
    for s in ("val", "test"):
        for i in sorted(by_split.get(s, ())):
            candidates = sorted(
                {j for band, key in enumerate(bands[i]) for j in buckets.get((band, key), ())}
            )
            best_j, best = -1, -1.0
            for j in candidates:
                score = jaccard(sh[i], sh[j])
                if score > best:
                    best_j, best = j, score
            if best >= threshold:
                dropped[i] = (best_j, best)
        for i in sorted(by_split.get(s, ())):  # kept val files join the reference set for test
            if i not in dropped:
                index(i)
    return dropped


# --------------------------------------------------------------------------------------------
# Card


def approx_token_count(text: str) -> int:
    """A tokenizer-free proxy for BPE token counts of code: letter runs, digits, symbols, spaces."""
    return len(_APPROX_TOKEN.findall(text))


def reason_kind(reason: str) -> str:
    """The kind of a skip reason: the text before its first colon."""
    return reason.split(":", 1)[0]


def _insecure_share(labels: Sequence[str]) -> float | None:
    return round(sum(1 for x in labels if x == "INSECURE") / len(labels), 4) if labels else None


def _label_stats(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "count": len(labels),
        "SECURE": sum(1 for x in labels if x == "SECURE"),
        "INSECURE": sum(1 for x in labels if x == "INSECURE"),
        "insecure_share": _insecure_share(labels),
    }


def _kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa; None where undefined (no items, or both raters constant and equal)."""
    if not a or (len(set(a)) == 1 and set(a) == set(b)):
        return None
    from sklearn.metrics import cohen_kappa_score

    value = float(cohen_kappa_score(a, b))
    return None if math.isnan(value) else round(value, 4)


def _card(
    *,
    config: DatasetConfig,
    labelled: Sequence[tuple[_File, Mapping[Tool, scanner.ToolResult], Label, list[Finding]]],
    by_split: Mapping[Split, Sequence[int]],
    sizes_before_near_dup: Mapping[str, int],
    split_of_repo: Mapping[str, Split],
    split_files: Mapping[str, Any],
    findings_path: Path,
    share_all: float | None,
    counts: Mapping[str, int],
    versions: Mapping[str, set[str]],
    skipped: Sequence[Skipped],
    count_tokens: Callable[[str], int] | None,
    timings: Mapping[str, float],
) -> dict[str, Any]:
    kept = [i for s in SPLITS for i in by_split[s]]
    total = len(kept)
    splits: dict[str, Any] = {}
    for s, target in zip(SPLITS, _fractions(config), strict=True):
        labels = [labelled[i][2] for i in by_split[s]]
        splits[s] = {
            **_label_stats(labels),
            "target_fraction": target,
            "fraction": round(len(labels) / total, 4) if total else None,
            "before_near_dup": sizes_before_near_dup[s],
            "repos": sorted(r for r, rs in split_of_repo.items() if rs == s),
        }
    providers: dict[str, Any] = {}
    for p in (*PROVIDER_PREFIXES, "other"):
        entry = {
            "all": _label_stats([labelled[i][2] for i in kept if labelled[i][0].provider == p])
        }
        for s in SPLITS:
            entry[s] = _label_stats(
                [labelled[i][2] for i in by_split[s] if labelled[i][0].provider == p]
            )
        providers[p] = entry

    checkov = [
        label_to_int(scanner.apply_policy(labelled[i][1], config.policy, tools=("checkov",))[0])
        for i in kept
    ]
    tfsec = [
        label_to_int(scanner.apply_policy(labelled[i][1], config.policy, tools=("tfsec",))[0])
        for i in kept
    ]
    agreement = (
        round(sum(x == y for x, y in zip(checkov, tfsec, strict=True)) / total, 4)
        if total
        else None
    )

    tok = count_tokens or approx_token_count
    lengths = np.array(
        [
            tok(
                build_prompt(labelled[i][0].text)
                + "\n\n"
                + build_target(labelled[i][2], labelled[i][3])
            )
            for i in kept
        ]
        or [0]
    )
    token_lengths = {
        "tokenizer": getattr(count_tokens, "__name__", "custom")
        if count_tokens
        else "approx_token_count",
        **{f"p{q}": int(np.ceil(np.percentile(lengths, q))) for q in (50, 90, 95, 99)},
        "max": int(lengths.max()),
    }

    manifest = config.corpus / MANIFEST_NAME
    if manifest.is_file():
        fingerprint = {"kind": "MANIFEST.csv", "sha256": sha256_file(manifest)}
    else:
        hashes = "\n".join(sorted(f.sha256 for f, _, _, _ in labelled))
        fingerprint = {
            "kind": "sorted sha256 of the scanned files",
            "sha256": sha256_bytes(hashes.encode()),
        }

    by_kind = Counter(reason_kind(s.reason) for s in skipped)
    policy = scanner.POLICIES[config.policy]
    return {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "corpus": {"path": str(config.corpus), **fingerprint},
        "policy": {"name": policy.name, "description": policy.description},
        "scanners": {tool: sorted(v) for tool, v in sorted(versions.items())},
        "counts": {
            **counts,
            "labelled": len(labelled),
            "kept": total,
            "skipped": len(skipped),
        },
        "insecure_share_all_labelled": share_all,
        "splits": splits,
        "providers": providers,
        "scanner_agreement": {
            "cohen_kappa": _kappa(checkov, tfsec),
            "agreement": agreement,
            "checkov_insecure_share": _insecure_share(
                [("INSECURE" if x else "SECURE") for x in checkov]
            ),
            "tfsec_insecure_share": _insecure_share(
                [("INSECURE" if x else "SECURE") for x in tfsec]
            ),
        },
        "token_lengths": token_lengths,
        "files": {
            **split_files,
            "findings": {"path": str(findings_path), "sha256": sha256_file(findings_path)},
        },
        "timings": dict(timings),
        "skipped_by_kind": dict(sorted(by_kind.items())),
        "skipped": [
            {"path": s.path, "reason": s.reason} for s in sorted(skipped, key=lambda s: s.path)
        ],
    }


def _fractions(config: DatasetConfig) -> tuple[float, float, float]:
    return (config.train_fraction, config.val_fraction, config.test_fraction)
