"""What `axon scan` reads: paths -> Terraform files under a scan root, each read and checked.

Paths may be files (scanned whatever their extension), folders (searched recursively for `*.tf`,
skipping `.terraform/` and `.git/`) or globs (`modules/**/*.tf`). Reported paths are relative to
the scan root; `default_root` picks it when none is given: the git work tree holding the scanned
paths, else the folder holding them all. No link found under the root is followed out of it (a
`link-outside-root` notification instead), so a `main.tf -> /etc/passwd` link is never opened.

Each bad input becomes one `Notification`; the rest is still read.
"""

from __future__ import annotations

import errno
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import hcl2
import pathspec

from axon_infralinter.errors import InputError
from axon_infralinter.lint.diff import work_tree
from axon_infralinter.terraform.blocks import file_suppression
from axon_infralinter.terraform.lexer import strip_comments

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

#: Folders never searched.
SKIP_DIRS = frozenset({".terraform", ".git"})
_GLOB_CHARS = frozenset("*?[")


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


def default_root(paths: list[Path]) -> Path:
    """The scan root when none is given: the top of the git work tree holding every path, else
    the deepest folder holding them all (a folder itself, a file's or a link's parent, a glob's
    fixed leading part)."""
    anchors: list[str] = []
    for given in paths:
        text = str(given)
        if not given.exists() and not given.is_symlink() and _GLOB_CHARS & set(text):
            fixed = text[: min(text.index(c) for c in _GLOB_CHARS if c in text)]
            given = Path(os.path.dirname(fixed) or ".")
        absolute = Path(os.path.abspath(given))
        is_folder = absolute.is_dir() and not absolute.is_symlink()
        anchors.append(str(absolute if is_folder else absolute.parent))
    common = Path(os.path.commonpath(anchors)) if anchors else Path(os.path.abspath("."))
    top = work_tree(common) if common.is_dir() else None
    return top if top is not None else common


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
        root: Folder reported paths are relative to; links found under it may not leave it. A
            folder named outside it is searched with that folder as the bound instead.

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
        bound = None if Path(rel).is_absolute() else root_real  # named outside the root: allowed
        problem = _link_problem(path, bound)
        if problem is not None:
            notes.append(Notification(rel, *problem))
        else:
            files.setdefault(rel, path)

    def walk(folder: Path, ancestors: frozenset[Path], bound: Path) -> None:
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError as e:
            rel = _display(folder, root_abs, root_real)
            notes.append(Notification(rel, "unreadable", f"cannot list folder: {_why(e)}"))
            return
        for entry in entries:
            if entry.is_symlink():
                rel = _display(entry, root_abs, root_real)
                problem = _link_problem(entry, bound)
                if problem is not None:
                    notes.append(Notification(rel, *problem))
                    continue
                real = entry.resolve()
                if real.is_dir():
                    if real in ancestors:
                        notes.append(Notification(rel, "link-loop", "link loops back to a parent"))
                    elif entry.name not in SKIP_DIRS:
                        walk(entry, ancestors | {real}, bound)
                elif entry.suffix == ".tf" and real.is_file():
                    files.setdefault(rel, entry)
            elif entry.is_dir():
                if entry.name not in SKIP_DIRS:
                    walk(entry, ancestors | {entry.resolve()}, bound)
            elif entry.suffix == ".tf" and entry.is_file():
                files.setdefault(_display(entry, root_abs, root_real), entry)

    def walk_top(folder: Path) -> None:
        real = folder.resolve()
        walk(folder, frozenset({real}), root_real if real.is_relative_to(root_real) else real)

    for given in paths:
        text = str(given)
        if given.is_dir():
            rel = _display(given, root_abs, root_real)
            inside = not Path(rel).is_absolute()
            problem = _link_problem(given, root_real) if given.is_symlink() and inside else None
            if problem is not None:
                notes.append(Notification(rel, *problem))
            else:
                walk_top(given)
        elif given.is_symlink() or given.exists():
            add_file(given)
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                notes.append(Notification(text, "no-match", "no files match this pattern"))
            for match in matches:
                path = Path(match)
                if path.is_dir():
                    walk_top(path)
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


def _link_problem(path: Path, bound: Path | None) -> tuple[NotificationKind, str] | None:
    """Why a path (or a link on its way) cannot be followed; None when it is fine.

    `bound`: the real folder it must resolve inside (None: anywhere, for a file named outside
    the root).
    """
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
    if bound is not None and not real.is_relative_to(bound):
        return "link-outside-root", "link leaves the scan root"
    return None


class ParsedTexts(Protocol):
    """Texts known to parse as HCL, by sha256 (`lint.cache.ParseCache`)."""

    def holds(self, text: str) -> bool: ...

    def add(self, text: str) -> None: ...


def read_terraform(
    path: Path, rel: str, max_bytes: int, parsed: ParsedTexts | None = None
) -> str | Notification:
    """Read and check one file.

    Args:
        path: The file.
        rel: Its reported path (for the notification).
        max_bytes: Size limit.
        parsed: Texts already known to parse: such a text is not parsed again (the parse is most
            of a warm re-scan's time), and a text that parses is added.

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
    if parsed is not None and parsed.holds(text):
        return text
    try:
        hcl2.loads(text)
    except Exception as e:  # lark raises many types; any parse failure is bad input
        return Notification(rel, "invalid-hcl", _hcl_error(e))
    if parsed is not None:
        parsed.add(text)
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
