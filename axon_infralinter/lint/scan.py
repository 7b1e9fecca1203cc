"""`axon scan`: paths -> per-file and per-block verdicts of the fine-tuned model.

    report = scan(ScanOptions(paths=[Path(".")]), load_predictor(adapter), cache=cache)
    FORMATS["sarif"](report, sys.stdout)
    sys.exit(exit_code(report))

What is read is `lint.inputs`: files, folders and globs under the scan root (by default the git work
tree holding the paths, else their folder), links that stay inside it, each file checked (UTF-8,
size, valid HCL). `.axonignore` at the root (gitignore syntax) marks paths as suppressed;
`# axon:ignore <reason>` comments suppress a block or, on line 1, a file (see `terraform.blocks`).
Suppressed items stay in the report, marked suppressed.

Each file is cut into the chunks the model judges (`terraform.chunks.plan_chunks`). With
`diff_ref` (`--diff REF`) only files added, modified or renamed since that git ref are read
(`lint.diff`); with `diff_scope` "blocks" (the default) each is still parsed whole, but only its
chunks whose lines changed are judged and reported; "files" reports whole changed files.

A chunk of only `variable`, `output`, `locals` and `terraform` blocks (`terraform.chunks.
CONTEXT_KINDS`: nothing a scanner rule inspects) is reported SECURE without a model call, unless
`judge_context` (`--judge-context-blocks`); in a file judged whole such blocks are context for
the resources beside them.

Every distinct chunk text is judged once per scan (identical blocks in two files share a verdict),
from the verdict cache (`lint.cache`) when it holds it. The others go to the model's `score` in
slices of `SCORE_SLICE`, each slice stored as soon as it is scored, so a killed scan keeps its work;
`generate` (when the predictor has it) explains the INSECURE ones without a cached explanation.

Each bad input becomes one `Notification` (and, when it is a file, a `FileVerdict` with status
"error"); the rest is still scanned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tqdm import tqdm

from axon_infralinter.data.rule_catalog import expand_finding
from axon_infralinter.errors import ConfigError
from axon_infralinter.files import sha256_text
from axon_infralinter.lint.cache import CachedVerdict, VerdictCache
from axon_infralinter.lint.diff import ChangedFile, Changes, git_changes
from axon_infralinter.lint.inputs import (
    Notification,
    NotificationKind,
    NotificationLevel,
    default_root,
    expand_paths,
    load_ignore,
    read_terraform,
)
from axon_infralinter.schema import Label
from axon_infralinter.terraform.blocks import count_lines, file_suppression
from axon_infralinter.terraform.chunks import Chunk, plan_chunks
from axon_infralinter.terraform.lexer import normalize_whitespace, strip_comments

if TYPE_CHECKING:
    from axon_infralinter.models.predict import Predictor

__all__ = [
    "AXONIGNORE_REASON", "BlockVerdict", "DiffInfo", "FileVerdict", "Notification",
    "NotificationKind", "NotificationLevel", "ScanOptions", "ScanReport", "ScanStats",
    "exit_code", "expand_paths", "explanation_from_answer", "load_ignore", "read_terraform",
    "scan",
]  # fmt: skip

FileStatus = Literal["scanned", "suppressed", "error"]
DiffScope = Literal["blocks", "files"]
BaselineState = Literal["new", "unchanged"]

#: Reason recorded for paths that `.axonignore` skips.
AXONIGNORE_REASON = "axonignore"
#: Distinct chunk texts per model call; each slice is cached as soon as it is judged.
SCORE_SLICE = 64


@dataclass
class ScanOptions:
    """What `axon scan` reads and how it decides."""

    paths: list[Path]
    """Files, folders or glob patterns to scan."""
    threshold: float | None = None
    """P(INSECURE) at or above which a block is INSECURE (--threshold); None: the predictor's."""
    keep_comments: bool = False
    """Send comments to the model (--keep-comments); default strips them."""
    max_bytes: int = 1_000_000
    """Files larger than this many bytes are skipped with a warning."""
    root: Path | None = None
    """Reported paths are relative to this folder; links may not leave it. None: the git work
    tree holding the paths, else the folder holding them all (`inputs.default_root`)."""
    ignore_file: Path | None = None
    """gitignore-style file of paths to skip; None: `<root>/.axonignore` when it exists."""
    explain: bool = True
    """Ask the model for a short explanation of each INSECURE block (one extra generate call)."""
    diff_ref: str | None = None
    """Judge only files changed since this git ref (--diff); None: every file."""
    diff_scope: DiffScope = "blocks"
    """With diff_ref: report the chunks whose lines changed ("blocks") or whole files ("files")."""
    judge_context: bool = False
    """Also send chunks of only variable/output/locals/terraform blocks to the model
    (--judge-context-blocks); default: SECURE without a model call."""

    def __post_init__(self) -> None:
        if not self.paths:
            raise ConfigError("axon scan needs at least one PATH")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.max_bytes <= 0:
            raise ConfigError(f"max_bytes must be > 0, got {self.max_bytes}")
        if self.diff_scope not in ("blocks", "files"):
            raise ConfigError(f"--diff-scope must be blocks or files, got {self.diff_scope!r}")


@dataclass
class BlockVerdict:
    """The verdict on one chunk: a top-level block, or a whole short file."""

    start_line: int
    """First line (1-based, inclusive)."""
    end_line: int
    """Last line (1-based, inclusive)."""
    resource: str | None
    """Address such as `aws_s3_bucket.logs`; None for a whole file of several blocks."""
    label: Label | None
    """SECURE or INSECURE; None when suppressed."""
    score: float | None
    """P(INSECURE); None when suppressed."""
    explanation: str = ""
    """The model's short explanation for an INSECURE block (empty when none)."""
    suppressed: bool = False
    """True when an `# axon:ignore` comment skipped it."""
    reason: str | None = None
    """The suppression's reason."""
    context: bool = False
    """True for a chunk of only variable/output/locals/terraform blocks, reported SECURE without
    a model call (score None)."""
    text_sha256: str | None = field(default=None, compare=False)
    """sha256 of the judged text, comments stripped and whitespace collapsed
    (`lexer.normalize_whitespace`): the block part of a baseline fingerprint. None when
    suppressed."""
    baseline: BaselineState | None = field(default=None, compare=False)
    """For an INSECURE block when a baseline was applied: in it ("unchanged") or not ("new")."""


@dataclass
class FileVerdict:
    """The verdict on one file: its worst block."""

    path: str
    """Path relative to the root (posix); absolute for a file named outside the root."""
    status: FileStatus
    """scanned, suppressed (file-level `# axon:ignore` or `.axonignore`), or error."""
    label: Label | None = None
    """INSECURE when any judged block is; None when nothing was judged."""
    score: float | None = None
    """Highest P(INSECURE) of its judged blocks."""
    blocks: list[BlockVerdict] = field(default_factory=list)
    """Judged and suppressed blocks, by start line."""
    error: str | None = None
    """Why it could not be scanned (status error)."""
    reason: str | None = None
    """Why it was suppressed (status suppressed): the comment's reason, or `axonignore`."""


@dataclass
class ScanStats:
    """How the verdicts were obtained: the model calls a scan made, and what the cache saved."""

    chunks: int = 0
    """Chunks judged (suppressed ones and, with --diff, unchanged ones are not)."""
    unique: int = 0
    """Distinct chunk texts among them: identical blocks are judged once."""
    cache_hits: int = 0
    """Distinct texts whose score came from the verdict cache."""
    scored: int = 0
    """Distinct texts the model scored (one forward pass each)."""
    explained: int = 0
    """Distinct texts the model explained (one generate each)."""
    corrupt: int = 0
    """Cache entries that could not be read back, and were rescored."""
    context: int = 0
    """Chunks of only variable/output/locals/terraform blocks: SECURE without a model call (not
    counted in `chunks`)."""
    model_tokens: int = 0
    """Prompt tokens the model ran to score them: the instruction every prompt starts with is run
    once per call (`models.predict.Predictor.score_prompts`), so fewer than their prompts hold."""
    cache: bool = False
    """Whether a verdict cache was used (False with --no-cache)."""


@dataclass(frozen=True)
class DiffInfo:
    """What `--diff` compared."""

    ref: str
    """The ref as given."""
    commit: str
    """The commit it names."""
    scope: DiffScope
    """blocks or files."""
    changed_files: int
    """Files under the scanned paths that changed since the ref (those the report can list)."""


@dataclass
class ScanReport:
    """Everything one `axon scan` found."""

    files: list[FileVerdict]
    """One entry per file found (with --diff: per changed file), sorted by path."""
    notifications: list[Notification]
    """One entry per bad input."""
    model: str
    """The predictor's name."""
    threshold: float
    """Decision threshold used."""
    seconds: float
    """Wall time of the scan (model loading excluded)."""
    stats: ScanStats = field(default_factory=ScanStats)
    """Model calls and cache use."""
    diff: DiffInfo | None = None
    """What --diff compared; None for a whole scan."""
    baseline: str | None = None
    """The baseline file applied (`lint.baseline.apply_baseline`); None when none was."""


def exit_code(report: ScanReport) -> int:
    """1 when anything new is INSECURE (not in the baseline); 0 when everything scanned is SECURE
    or baselined, every file was suppressed, or --diff found no changed file; 2 when nothing could
    be scanned."""
    if any(_new_finding(f) for f in report.files):
        return 1
    if any(f.status == "scanned" for f in report.files):
        return 0
    if report.files and all(f.status == "suppressed" for f in report.files):
        return 0
    if report.diff is not None and not report.files and not report.notifications:
        return 0
    return 2


def _new_finding(f: FileVerdict) -> bool:
    """Whether a file has an INSECURE block that the baseline does not hold."""
    insecure = [b for b in f.blocks if b.label == "INSECURE"]
    return f.label == "INSECURE" and (
        not insecure or any(b.baseline != "unchanged" for b in insecure)
    )


def scan(
    options: ScanOptions,
    predictor: Predictor,
    progress: bool = False,
    cache: VerdictCache | None = None,
) -> ScanReport:
    """Judge every Terraform file under `options.paths` (with `diff_ref`: every changed one).

    Args:
        options: What to scan and how to decide.
        predictor: Loaded model (`models.predict.Predictor`): uses `score`, `generate` (optional),
            `threshold`, `max_code_tokens`, `count_tokens` and `name`.
        progress: Show progress bars on stderr.
        cache: Verdict cache of this predictor's judge (None: judge every chunk).

    Returns:
        The report; bad inputs are notifications, never exceptions.

    Raises:
        InputError: An explicitly given ignore file is missing or unreadable; with `diff_ref`, the
            root is not in a git work tree or the ref names no commit.
    """
    started = time.perf_counter()
    root = options.root if options.root is not None else default_root(options.paths)
    threshold = options.threshold if options.threshold is not None else predictor.threshold
    ignore = load_ignore(options.ignore_file or root / ".axonignore", options.ignore_file is None)
    changes = git_changes(root, options.diff_ref) if options.diff_ref is not None else None
    found, notifications = expand_paths(options.paths, root)
    changed: dict[str, ChangedFile] = {}
    if changes is not None:
        found, notifications, changed = _only_changed(found, notifications, changes, root, options)
    max_code_tokens = predictor.max_code_tokens  # a property that may tokenize: read it once

    verdicts: dict[str, FileVerdict] = {}
    pending: list[tuple[FileVerdict, list[Chunk]]] = []
    for path, rel in tqdm(found, desc="reading", unit="file", disable=not progress):
        if ignore is not None and not Path(rel).is_absolute() and ignore.match_file(rel):
            verdicts[rel] = FileVerdict(rel, "suppressed", reason=AXONIGNORE_REASON)
            continue
        text = read_terraform(path, rel, options.max_bytes, cache.parsed if cache else None)
        if isinstance(text, Notification):
            notifications.append(text)
            verdicts[rel] = FileVerdict(rel, "error", error=text.message)
            continue
        reason = file_suppression(text)
        if reason is not None:
            whole = BlockVerdict(1, count_lines(text), None, None, None, "", True, reason or None)
            verdicts[rel] = FileVerdict(rel, "suppressed", blocks=[whole], reason=reason or None)
            continue
        chunks = plan_chunks(text, max_code_tokens, predictor.count_tokens, options.keep_comments)
        if rel in changed and options.diff_scope == "blocks":
            chunks = _changed_chunks(chunks, changed[rel], count_lines(text))
            if not chunks:  # only lines outside every block changed (comments, blank lines)
                continue
        verdict = FileVerdict(rel, "scanned")
        verdicts[rel] = verdict
        pending.append((verdict, chunks))

    def context(c: Chunk) -> bool:
        return c.context_only and not options.judge_context

    judged = [c for _, chunks in pending for c in chunks if not c.suppressed and not context(c)]
    results, stats = _judge(
        predictor, [c.code for c in judged], threshold, options.explain, cache, progress
    )
    stats.context = sum(context(c) for _, chunks in pending for c in chunks if not c.suppressed)
    by_chunk = iter(results)
    for verdict, chunks in pending:
        for c in chunks:
            if c.suppressed:
                verdict.blocks.append(
                    BlockVerdict(
                        c.start_line, c.end_line, c.resource, None, None, "", True, c.reason
                    )
                )
                continue
            if context(c):
                verdict.blocks.append(
                    BlockVerdict(c.start_line, c.end_line, c.resource, "SECURE", None, context=True)
                )
                continue
            score, explanation = next(by_chunk)
            label: Label = "INSECURE" if score >= threshold else "SECURE"
            block = BlockVerdict(c.start_line, c.end_line, c.resource, label, score, explanation)
            block.text_sha256 = sha256_text(normalize_whitespace(strip_comments(c.code)))
            verdict.blocks.append(block)
        scored = [b.score for b in verdict.blocks if b.score is not None]
        if not scored and any(b.context for b in verdict.blocks):  # inputs, outputs, settings
            verdict.label = "SECURE"
            continue
        if not scored:  # every block suppressed
            verdict.status = "suppressed"
            verdict.reason = next((b.reason for b in verdict.blocks if b.reason), None)
            continue
        verdict.score = max(scored)
        insecure = any(b.label == "INSECURE" for b in verdict.blocks)
        verdict.label = "INSECURE" if insecure else "SECURE"

    diff = None
    if changes is not None:
        diff = DiffInfo(changes.ref, changes.commit, options.diff_scope, len(found))
    return ScanReport(
        files=sorted(verdicts.values(), key=lambda v: v.path),
        notifications=notifications,
        model=predictor.name,
        threshold=threshold,
        seconds=round(time.perf_counter() - started, 3),
        stats=stats,
        diff=diff,
    )


def _only_changed(
    found: list[tuple[Path, str]],
    notes: list[Notification],
    changes: Changes,
    root: Path,
    options: ScanOptions,
) -> tuple[list[tuple[Path, str]], list[Notification], dict[str, ChangedFile]]:
    """The files (and notifications) of `found` that changed since the ref, and their changes.

    With diff_scope "blocks" a pure rename (no line changed) is left out: it holds no changed
    block. Notifications about unchanged paths are dropped; those about the arguments themselves
    (missing, no match) stay.
    """
    changed: dict[str, ChangedFile] = {}
    kept: list[tuple[Path, str]] = []
    for path, rel in found:
        change = changes.get(path)
        if change is not None and (options.diff_scope == "files" or change.edited):
            kept.append((path, rel))
            changed[rel] = change
    notes = [
        n
        for n in notes
        if n.kind in ("missing", "no-match")
        or changes.get(Path(n.path) if Path(n.path).is_absolute() else root / n.path) is not None
    ]
    return kept, notes, changed


def _changed_chunks(chunks: list[Chunk], change: ChangedFile, n_lines: int) -> list[Chunk]:
    """The chunks whose lines changed; a whole-file chunk changes with any edit of the file."""
    return [
        c
        for c in chunks
        if (
            change.edited
            if c.start_line == 1 and c.end_line >= n_lines
            else change.touches(c.start_line, c.end_line)
        )
    ]


def _judge(
    predictor: Predictor,
    codes: list[str],
    threshold: float,
    explain: bool,
    cache: VerdictCache | None,
    progress: bool,
) -> tuple[list[tuple[float, str]], ScanStats]:
    """(score, explanation) of each code, each distinct text judged once, the cache consulted.

    The explanation is "" unless `explain` and the predictor can generate: the report is then the
    same with a cold cache, a warm one or none.
    """
    keys = [sha256_text(code) for code in codes]
    text_of = dict(zip(keys, codes, strict=True))
    stats = ScanStats(chunks=len(codes), unique=len(text_of), cache=cache is not None)
    known: dict[str, CachedVerdict] = {}
    if cache is not None:
        corrupt_before = cache.counts.corrupt
        for key in text_of:
            hit = cache.get(key)
            if hit is not None:
                known[key] = hit
        stats.corrupt = cache.counts.corrupt - corrupt_before
    stats.cache_hits = len(known)

    def store(key: str, verdict: CachedVerdict) -> None:
        known[key] = verdict
        if cache is not None:
            cache.put(key, verdict)

    # Shortest first: slices of similar lengths pad little in the predictor's batches.
    missing = sorted((k for k in text_of if k not in known), key=lambda k: len(text_of[k]))
    bar = tqdm(total=len(missing), desc="judging", unit="chunk", disable=not progress)
    counters = getattr(predictor, "stats", {})
    computed_before = counters.get("tokens_computed", 0)
    for part in _slices(missing):
        for key, score in zip(part, predictor.score([text_of[k] for k in part]), strict=True):
            store(key, CachedVerdict(float(score)))
        bar.update(len(part))
    bar.close()
    stats.scored = len(missing)
    stats.model_tokens = int(counters.get("tokens_computed", 0) - computed_before)

    generate = getattr(predictor, "generate", None)
    show = explain and generate is not None
    if show:
        wanted = [
            k for k in text_of if known[k].score >= threshold and known[k].explanation is None
        ]
        for part in _slices(wanted):
            answers = generate([text_of[k] for k in part], progress=progress)
            for key, answer in zip(part, answers, strict=True):
                store(key, CachedVerdict(known[key].score, explanation_from_answer(answer)))
        stats.explained = len(wanted)
    out = []
    for key in keys:
        verdict = known[key]
        shown = show and verdict.score >= threshold  # cached at a lower threshold: not shown
        out.append((verdict.score, (verdict.explanation or "") if shown else ""))
    return out, stats


def _slices(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + SCORE_SLICE] for i in range(0, len(keys), SCORE_SLICE)]


def explanation_from_answer(answer: str) -> str:
    """The finding lines of a generated answer, joined by `; `.

    A line is `- ID: title (res)` or, in the `ids` answer format, `- ID (res)`; the latter gets the
    scanner's title from the rule catalog (`data.rule_catalog`) when the id is a known one.
    """
    lines = [line.strip() for line in answer.strip().splitlines()]
    items = [line[1:].strip() for line in lines[1:] if line.startswith("-") and line[1:].strip()]
    return "; ".join(expand_finding(item) for item in items)
