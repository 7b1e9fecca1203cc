"""What changed since a git ref, for `axon scan --diff REF`: files and the lines of each.

    changes = git_changes(Path("."), "origin/main")
    changes.files["modules/s3/main.tf"].touches(12, 30)

The working tree (staged, unstaged and untracked-but-not-ignored files) is compared with REF, as
semgrep's `--baseline-commit` does: what a pull request would add on top of REF.

- `git diff --name-status -M -z REF` lists the files; added (A), modified (M), type-changed (T),
  copied (C) and renamed (R, followed to the new path) are kept, deleted ones dropped.
- `git ls-files --others --exclude-standard -z` adds the untracked files (not ignored) as added.
- `git diff -U0 -M REF -- OLD NEW` gives the hunks of each modified or renamed file: the new
  file's changed lines, and the places where lines were deleted (between two new lines).

Every git call runs in the work tree's top folder with `core.quotePath` off and no external diff
driver, pager or colour, so the output is the same whatever the user's git config.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from axon_infralinter.errors import InputError

ChangeStatus = Literal["added", "modified", "renamed", "untracked"]
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)
_GIT_TIMEOUT_S = 120


@dataclass(frozen=True)
class ChangedFile:
    """One file that differs from the ref."""

    path: str
    """Posix path relative to the work tree's top (the new path of a renamed file)."""
    status: ChangeStatus
    """added / untracked (every line is new), modified, or renamed (maybe edited too)."""
    old_path: str | None = None
    """The path at the ref (renamed files only)."""
    lines: frozenset[int] = frozenset()
    """1-based lines of the working-tree file that are new or changed (modified / renamed)."""
    gaps: frozenset[int] = frozenset()
    """Where lines were deleted: g means between new lines g and g + 1 (0: before line 1)."""

    @property
    def whole(self) -> bool:
        """Every line is new (an added or untracked file)."""
        return self.status in ("added", "untracked")

    @property
    def edited(self) -> bool:
        """Some line was added, changed or deleted (False for a pure rename)."""
        return self.whole or bool(self.lines or self.gaps)

    def touches(self, start_line: int, end_line: int) -> bool:
        """Whether lines `start_line`..`end_line` (inclusive) were changed, or lost a line inside.

        A deletion right before a block's first line or right after its last one does not touch
        it: the block's own text is what it was.
        """
        if self.whole:
            return True
        if any(start_line <= n <= end_line for n in self.lines):
            return True
        return any(start_line <= g < end_line for g in self.gaps)


@dataclass(frozen=True)
class Changes:
    """The files of a work tree that differ from a ref."""

    top: Path
    """The work tree's top folder (absolute, real)."""
    ref: str
    """The ref as given."""
    commit: str
    """The commit it names (full sha)."""
    files: dict[str, ChangedFile]
    """Changed files by their path relative to `top`."""

    def get(self, path: Path) -> ChangedFile | None:
        """The change of a file (a link is looked up as itself, not as its target); None when it
        did not change or lies outside the work tree."""
        absolute = Path(os.path.abspath(path))
        # The work tree may be reached through a link (macOS /tmp): try its real parent too.
        for candidate in (absolute, Path(os.path.realpath(absolute.parent)) / absolute.name):
            if candidate.is_relative_to(self.top):
                return self.files.get(candidate.relative_to(self.top).as_posix())
        return None


def work_tree(folder: Path) -> Path | None:
    """The top folder (real path) of the git work tree holding `folder`; None outside one or
    when git is not installed."""
    try:
        out = _git(folder, "rev-parse", "--show-toplevel")
    except (InputError, OSError):
        return None
    return Path(os.path.realpath(out.strip())) if out.strip() else None


def git_changes(folder: Path, ref: str) -> Changes:
    """Files (and their changed lines) of the work tree holding `folder` that differ from `ref`.

    Raises:
        InputError: `folder` is not in a git work tree, git is missing, or `ref` names no commit.
    """
    top = work_tree(folder)
    if top is None:
        raise InputError(f"--diff {ref}: {folder} is not inside a git work tree")
    if not ref or ref.startswith("-"):
        raise InputError(f"--diff {ref!r}: not a git revision")
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except InputError:
        raise InputError(
            f"--diff {ref}: no such commit in {top} (a shallow clone may lack it: fetch it)"
        ) from None
    commit = commit.strip()
    files: dict[str, ChangedFile] = {}
    listing = _git(top, "diff", "--name-status", "-M", "-z", commit, "--")
    for status, old, new in _name_status(listing):
        if status in ("A", "C"):
            files[new] = ChangedFile(new, "added")
        elif status in ("M", "T"):
            files[new] = _with_hunks(top, commit, ChangedFile(new, "modified"), [new])
        elif status == "R":
            change = ChangedFile(new, "renamed", old_path=old)
            files[new] = _with_hunks(top, commit, change, [old, new])
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z")
    for path in filter(None, untracked.split("\0")):
        files.setdefault(path, ChangedFile(path, "untracked"))
    return Changes(top, ref, commit, files)


def _name_status(listing: str) -> list[tuple[str, str, str]]:
    """(status letter, old path, new path) of each entry of `git diff --name-status -z`."""
    parts = listing.split("\0")
    out: list[tuple[str, str, str]] = []
    i = 0
    while i < len(parts) and parts[i]:
        letter = parts[i][0]
        if letter in ("R", "C"):
            out.append((letter, parts[i + 1], parts[i + 2]))
            i += 3
        else:
            out.append((letter, parts[i + 1], parts[i + 1]))
            i += 2
    return out


def _with_hunks(top: Path, commit: str, change: ChangedFile, paths: list[str]) -> ChangedFile:
    """`change` with the changed lines and deletion gaps of `git diff -U0`."""
    # --text: a .tf file with a NUL byte still gets hunks (and is then reported as binary input)
    patch = _git(top, "diff", "-U0", "-M", "--text", commit, "--", *paths)
    lines: set[int] = set()
    gaps: set[int] = set()
    for m in _HUNK.finditer(patch):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        if count == 0:
            gaps.add(start)  # `+c,0`: lines deleted after new line c
        else:
            lines.update(range(start, start + count))
    return ChangedFile(
        change.path, change.status, change.old_path, frozenset(lines), frozenset(gaps)
    )


def _git(cwd: Path, *args: str) -> str:
    """stdout of `git ARGS` in `cwd`: no pager, colour, external diff or text conversion.

    Raises:
        InputError: git is not installed, or it exits non-zero (the message is its last line).
    """
    command, *rest = args
    if command == "diff":
        rest = ["--no-ext-diff", "--no-textconv", "--ignore-submodules", *rest]
    cmd = [
        "git",
        "-c",
        "core.quotePath=false",
        "-c",
        "color.ui=false",
        "--no-pager",
        command,
        *rest,
    ]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # a read-only diff must not take index.lock
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, env=env, timeout=_GIT_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise InputError("--diff needs git, and git is not installed") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(lines[-1] if lines else f"git {args[0]} exited {proc.returncode}")
    return proc.stdout.decode("utf-8", "surrogateescape")
