"""`axon scan`: paths -> per-file and per-block verdicts of the fine-tuned model.

    report = scan(ScanOptions(paths=[Path(".")]), load_predictor(adapter))
    FORMATS["sarif"](report, sys.stdout)
    sys.exit(exit_code(report))

Paths may be files (scanned whatever their extension), folders (searched recursively for `*.tf`,
skipping `.terraform/` and `.git/`) or globs (`modules/**/*.tf`). `.axonignore` at the root
(gitignore syntax) marks paths as suppressed; `# axon:ignore <reason>` comments suppress a block or,
on line 1, a file (see `terraform.blocks`). Suppressed items stay in the report, marked suppressed.

Each bad input becomes one `Notification` (and, when it is a file, a `FileVerdict` with status
"error"); the rest is still scanned. All chunks of all files go to the model in one `score` call;
`generate` (when the predictor has it) explains the INSECURE ones.
"""

from __future__ import annotations

import errno
import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import hcl2
import pathspec
from tqdm import tqdm

from axon_infralinter.data.rule_catalog import expand_finding
from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.schema import Label
from axon_infralinter.terraform.blocks import count_lines, file_suppression
from axon_infralinter.terraform.chunks import Chunk, plan_chunks
from axon_infralinter.terraform.lexer import strip_comments

if TYPE_CHECKING:
    from axon_infralinter.models.predict import Predictor

FileStatus = Literal["scanned", "suppressed", "error"]
NotificationLevel = Literal["error", "warning"]
NotificationKind = Literal[
    "missing",
    "no-match",
    "unreadable",
    "binary",
    "encoding",
    "empty",
    "oversize",
    "link-outside-root",
    "link-loop",
    "invalid-hcl",
]

#: Reason recorded for paths that `.axonignore` skips.
AXONIGNORE_REASON = "axonignore"
#: Folders never searched.
SKIP_DIRS = frozenset({".terraform", ".git"})
_GLOB_CHARS = frozenset("*?[")


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
    root: Path = field(default_factory=Path.cwd)
    """Reported paths are relative to this folder; links may not leave it."""
    ignore_file: Path | None = None
    """gitignore-style file of paths to skip; None: `<root>/.axonignore` when it exists."""
    explain: bool = True
    """Ask the model for a short explanation of each INSECURE block (one extra generate call)."""

    def __post_init__(self) -> None:
        if not self.paths:
            raise ConfigError("axon scan needs at least one PATH")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.max_bytes <= 0:
            raise ConfigError(f"max_bytes must be > 0, got {self.max_bytes}")


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


@dataclass(frozen=True)
class Notification:
    """One bad input, reported in one line."""

    path: str
    """The path as reported (relative to the root where possible) or the pattern given."""
    kind: NotificationKind
    """What went wrong."""
    message: str
    """One line, without the path."""
    level: NotificationLevel = "error"
    """warning for skipped-by-policy inputs (over-size, empty), else error."""

    def __str__(self) -> str:
        return f"{self.path}: {self.level}: {self.message}"


@dataclass
class ScanReport:
    """Everything one `axon scan` found."""

    files: list[FileVerdict]
    """One entry per file found, sorted by path."""
    notifications: list[Notification]
    """One entry per bad input."""
    model: str
    """The predictor's name."""
    threshold: float
    """Decision threshold used."""
    seconds: float
    """Wall time of the scan (model loading excluded)."""


def exit_code(report: ScanReport) -> int:
    """1 when anything is INSECURE; 0 when everything scanned is SECURE (or every file was
    suppressed); 2 when nothing could be scanned."""
    if any(f.label == "INSECURE" for f in report.files):
        return 1
    if any(f.status == "scanned" for f in report.files):
        return 0
    if report.files and all(f.status == "suppressed" for f in report.files):
        return 0
    return 2


def scan(options: ScanOptions, predictor: Predictor, progress: bool = False) -> ScanReport:
    """Judge every Terraform file under `options.paths`.

    Args:
        options: What to scan and how to decide.
        predictor: Loaded model (`models.predict.Predictor`): uses `score`, `generate` (optional),
            `threshold`, `max_code_tokens`, `count_tokens` and `name`.
        progress: Show progress bars on stderr.

    Returns:
        The report; bad inputs are notifications, never exceptions.

    Raises:
        InputError: An explicitly given ignore file is missing or unreadable.
    """
    started = time.perf_counter()
    root = options.root
    threshold = options.threshold if options.threshold is not None else predictor.threshold
    ignore = load_ignore(options.ignore_file or root / ".axonignore", options.ignore_file is None)
    found, notifications = expand_paths(options.paths, root)
    max_code_tokens = predictor.max_code_tokens  # a property that may tokenize: read it once

    verdicts: dict[str, FileVerdict] = {}
    pending: list[tuple[FileVerdict, list[Chunk]]] = []
    for path, rel in tqdm(found, desc="reading", unit="file", disable=not progress):
        if ignore is not None and not Path(rel).is_absolute() and ignore.match_file(rel):
            verdicts[rel] = FileVerdict(rel, "suppressed", reason=AXONIGNORE_REASON)
            continue
        text = read_terraform(path, rel, options.max_bytes)
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
        verdict = FileVerdict(rel, "scanned")
        verdicts[rel] = verdict
        pending.append((verdict, chunks))

    judged = [c for _, chunks in pending for c in chunks if not c.suppressed]
    scores = predictor.score([c.code for c in judged], progress=progress) if judged else []
    explanations = _explain(predictor, judged, scores, threshold, options.explain, progress)
    results = iter(zip(scores, explanations, strict=True))

    for verdict, chunks in pending:
        for c in chunks:
            if c.suppressed:
                verdict.blocks.append(
                    BlockVerdict(
                        c.start_line, c.end_line, c.resource, None, None, "", True, c.reason
                    )
                )
                continue
            score, explanation = next(results)
            label: Label = "INSECURE" if score >= threshold else "SECURE"
            verdict.blocks.append(
                BlockVerdict(c.start_line, c.end_line, c.resource, label, score, explanation)
            )
        scored = [b.score for b in verdict.blocks if b.score is not None]
        if not scored:  # every block suppressed
            verdict.status = "suppressed"
            verdict.reason = next((b.reason for b in verdict.blocks if b.reason), None)
            continue
        verdict.score = max(scored)
        insecure = any(b.label == "INSECURE" for b in verdict.blocks)
        verdict.label = "INSECURE" if insecure else "SECURE"

    return ScanReport(
        files=sorted(verdicts.values(), key=lambda v: v.path),
        notifications=notifications,
        model=predictor.name,
        threshold=threshold,
        seconds=round(time.perf_counter() - started, 3),
    )


def _explain(
    predictor: Predictor,
    judged: list[Chunk],
    scores: list[float],
    threshold: float,
    enabled: bool,
    progress: bool,
) -> list[str]:
    """Short explanations for the INSECURE chunks (empty strings elsewhere)."""
    out = [""] * len(judged)
    generate = getattr(predictor, "generate", None)
    insecure = [i for i, s in enumerate(scores) if s >= threshold]
    if not enabled or generate is None or not insecure:
        return out
    answers = generate([judged[i].code for i in insecure], progress=progress)
    for i, answer in zip(insecure, answers, strict=True):
        out[i] = explanation_from_answer(answer)
    return out


def explanation_from_answer(answer: str) -> str:
    """The finding lines of a generated answer, joined by `; `.

    A line is `- ID: title (res)` or, in the `ids` answer format, `- ID (res)`; the latter gets the
    scanner's title from the rule catalog (`data.rule_catalog`) when the id is a known one.
    """
    lines = [line.strip() for line in answer.strip().splitlines()]
    items = [line[1:].strip() for line in lines[1:] if line.startswith("-") and line[1:].strip()]
    return "; ".join(expand_finding(item) for item in items)


def load_ignore(path: Path, optional: bool = True) -> pathspec.PathSpec | None:
    """Read a gitignore-style file; None when it is absent and `optional`.

    Raises:
        InputError: The file is missing (and not optional) or unreadable.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        if optional:
            return None
        raise InputError(f"ignore file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read ignore file {path}: {e}") from None
    return pathspec.GitIgnoreSpec.from_lines(lines)


def expand_paths(
    paths: list[Path], root: Path
) -> tuple[list[tuple[Path, str]], list[Notification]]:
    """Turn files, folders and globs into the files to scan.

    Args:
        paths: What the user named.
        root: Folder reported paths are relative to; links found under it may not leave it.

    Returns:
        (path, reported path) pairs, unique and sorted by reported path, and the notifications for
        missing paths, empty globs and bad links.
    """
    root_abs = Path(os.path.abspath(root))
    root_real = root.resolve()
    files: dict[str, Path] = {}
    notes: list[Notification] = []

    def add_file(path: Path) -> None:
        rel = _display(path, root_abs, root_real)
        problem = _link_problem(path, rel, root_real)
        if problem is not None:
            notes.append(Notification(rel, *problem))
        else:
            files.setdefault(rel, path)

    def walk(folder: Path, ancestors: frozenset[Path]) -> None:
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError as e:
            rel = _display(folder, root_abs, root_real)
            notes.append(Notification(rel, "unreadable", f"cannot list folder: {_why(e)}"))
            return
        for entry in entries:
            if entry.is_symlink():
                rel = _display(entry, root_abs, root_real)
                problem = _link_problem(entry, rel, root_real)
                if problem is not None:
                    notes.append(Notification(rel, *problem))
                    continue
                real = entry.resolve()
                if real.is_dir():
                    if real in ancestors:
                        notes.append(Notification(rel, "link-loop", "link loops back to a parent"))
                    elif entry.name not in SKIP_DIRS:
                        walk(entry, ancestors | {real})
                elif entry.suffix == ".tf" and real.is_file():
                    files.setdefault(rel, entry)
            elif entry.is_dir():
                if entry.name not in SKIP_DIRS:
                    walk(entry, ancestors | {entry.resolve()})
            elif entry.suffix == ".tf" and entry.is_file():
                files.setdefault(_display(entry, root_abs, root_real), entry)

    for given in paths:
        text = str(given)
        if given.is_dir():
            rel = _display(given, root_abs, root_real)
            problem = _link_problem(given, rel, root_real) if given.is_symlink() else None
            if problem is not None:
                notes.append(Notification(rel, *problem))
            else:
                walk(given, frozenset({given.resolve()}))
        elif given.is_symlink() or given.exists():
            add_file(given)
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                notes.append(Notification(text, "no-match", "no files match this pattern"))
            for match in matches:
                path = Path(match)
                if path.is_dir():
                    walk(path, frozenset({path.resolve()}))
                else:
                    add_file(path)
        else:
            notes.append(Notification(text, "missing", "no such file or folder"))
    return [(path, rel) for rel, path in sorted(files.items())], notes


def _display(path: Path, root_abs: Path, root_real: Path) -> str:
    """Reported path: relative posix under the root, else the absolute path."""
    absolute = Path(os.path.abspath(path))
    if absolute.is_relative_to(root_abs):
        return absolute.relative_to(root_abs).as_posix()
    # The root may be reached through a link (macOS /tmp): compare real folders too.
    real_parent = absolute.parent.resolve() / absolute.name
    if real_parent.is_relative_to(root_real):
        return real_parent.relative_to(root_real).as_posix()
    return absolute.as_posix()


def _link_problem(path: Path, rel: str, root_real: Path) -> tuple[NotificationKind, str] | None:
    """Why a path (or a link on its way) cannot be followed; None when it is fine."""
    try:
        real = path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a symlink loop this way
        return "link-loop", "link loops"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "link-loop", "link loops"
        if path.is_symlink():
            return "missing", "broken link: its target does not exist"
        return "unreadable", f"cannot read: {_why(e)}"
    inside = not Path(rel).is_absolute()
    if inside and not real.is_relative_to(root_real):
        return "link-outside-root", "link leaves the scan root"
    return None


def read_terraform(path: Path, rel: str, max_bytes: int) -> str | Notification:
    """Read and check one file.

    Args:
        path: The file.
        rel: Its reported path (for the notification).
        max_bytes: Size limit.

    Returns:
        The text with `\\n` line ends when it is valid HCL or suppressed on line 1, else the
        notification saying why it cannot be scanned.
    """
    try:
        if not path.is_file():
            return Notification(rel, "unreadable", "not a regular file")
        size = path.stat().st_size
        if size > max_bytes:
            message = f"larger than {max_bytes} bytes ({size} bytes), skipped"
            return Notification(rel, "oversize", message, "warning")
        data = path.read_bytes()
    except OSError as e:
        return Notification(rel, "unreadable", f"cannot read: {_why(e)}")
    if b"\x00" in data:
        return Notification(rel, "binary", "binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        message = f"not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        return Notification(rel, "encoding", message)
    text = text.replace("\r\n", "\n")
    if file_suppression(text) is not None:
        return text  # skipped whole: its content does not matter
    if not strip_comments(text).strip():
        what = "empty file" if not text.strip() else "no Terraform code (only comments)"
        return Notification(rel, "empty", what, "warning")
    try:
        hcl2.loads(text)
    except Exception as e:  # lark raises many types; any parse failure is bad input
        return Notification(rel, "invalid-hcl", _hcl_error(e))
    return text


def _hcl_error(error: Exception) -> str:
    """One line describing an hcl2/lark parse error."""
    token = getattr(error, "token", None)  # lark UnexpectedToken
    char = getattr(error, "char", None)  # lark UnexpectedCharacters
    if token is not None and getattr(token, "type", "") == "$END":
        return "invalid HCL: unexpected end of file"
    if token is not None:
        newline = str(getattr(token, "type", "")).startswith("_NEW_LINE")
        detail = "unexpected line break" if newline else f"unexpected {str(token)!r}"
    elif char is not None:
        detail = f"unexpected character {char!r}"
    else:
        detail = " ".join(str(error).split()) or type(error).__name__
    line, column = getattr(error, "line", None), getattr(error, "column", None)
    if isinstance(line, int) and line > 0 and isinstance(column, int) and column > 0:
        return f"invalid HCL at line {line}, column {column}: {detail}"
    return f"invalid HCL: {detail}"


def _why(error: OSError) -> str:
    """The OS's reason without the path (which the notification already shows)."""
    return error.strerror or type(error).__name__
