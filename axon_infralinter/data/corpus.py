"""Find Terraform files under a folder; collect pinned git sources into a corpus folder.

A corpus folder holds `<owner>__<repo>/<path inside the repository>` files, each repository's
LICENSE beside them, and `MANIFEST.csv` with one row per file (`repo, commit, path, sha256, bytes,
license`): the layout of the shared corpus (`settings.SHARED_CORPUS`) and of what `collect` writes.

Examples:
    >>> files, skipped = find_terraform_files(Path("data/corpus"))  # doctest: +SKIP
    >>> collect(Path("axon_infralinter/resources/sources.txt"), Path("data/corpus"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from axon_infralinter.errors import InputError
from axon_infralinter.files import atomic_write_bytes, atomic_write_text, sha256_bytes

MANIFEST_NAME = "MANIFEST.csv"
MANIFEST_COLUMNS = ("repo", "commit", "path", "sha256", "bytes", "license")
#: Folders never entered: provider/module caches and version control.
IGNORED_DIRS = frozenset({".terraform", ".git"})
#: Licence files copied beside a repository's `.tf` files, first match wins for the guess.
LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING")
#: Wall-clock limit for one git command, in seconds (a large repository over a slow link).
GIT_TIMEOUT_S = 600

_COMMIT = re.compile(r"^[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class TerraformFile:
    """One `.tf` file of a corpus."""

    path: Path
    """Absolute path on disk."""
    rel: str
    """POSIX path relative to the corpus root, e.g. `owner__repo/modules/s3/main.tf`."""
    repo: str
    """Repository: `owner/name` from MANIFEST.csv, else the top-level folder's name."""
    repo_path: str
    """Path inside the repository (`rel` without its top-level folder)."""


@dataclass(frozen=True)
class Skipped:
    """A file left out, with a one-line reason."""

    path: str
    """Where the file is, relative to the corpus root (or `repo/path` in the data set builder)."""
    reason: str
    """Why it was left out, one line."""


def find_terraform_files(
    root: Path, max_bytes: int = 1_000_000
) -> tuple[list[TerraformFile], list[Skipped]]:
    """List the `.tf` files under `root`, sorted by relative path.

    `.terraform/` and `.git/` folders are not entered. Symbolic links are followed only while they
    stay inside `root`; links that leave it, dangle or loop are skipped with a reason, as are files
    larger than `max_bytes`.

    Args:
        root: Corpus folder.
        max_bytes: Largest file kept, in bytes.

    Returns:
        The files found and the files skipped.

    Raises:
        InputError: `root` is missing, not a folder, or holds no `.tf` file.
    """
    if not root.exists():
        raise InputError(f"corpus folder {root} does not exist")
    if not root.is_dir():
        raise InputError(f"corpus {root} is not a folder")
    found, skipped = _walk(root, max_bytes)
    if not found:
        raise InputError(f"corpus folder {root} holds no .tf files")
    repo_of = _manifest_repos(root / MANIFEST_NAME)
    folder_repo = {rel.split("/", 1)[0]: repo for rel, repo in repo_of.items()}
    files = []
    for path, rel in found:
        top, _, inner = rel.partition("/")
        if not inner:  # a file directly in the root: its own folder is the repository
            top, inner = root.resolve().name, rel
        repo = repo_of.get(rel) or folder_repo.get(top) or top
        files.append(TerraformFile(path=path, rel=rel, repo=repo, repo_path=inner))
    return files, skipped


def _walk(root: Path, max_bytes: int) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """(absolute path, relative posix path) of every `.tf` file, and the skipped ones."""
    real_root = root.resolve()
    found: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    # (folder as walked, its real path, its corpus-relative prefix)
    stack: list[tuple[Path, Path, str]] = [(root.absolute(), real_root, "")]
    while stack:
        folder, real_folder, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(prefix or ".", f"unreadable folder: {exc.strerror}"))
            continue
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            is_tf = entry.name.endswith(".tf")
            if entry.is_dir(follow_symlinks=False) and entry.name in IGNORED_DIRS:
                continue
            if entry.is_symlink():
                try:
                    target = Path(entry.path).resolve(strict=True)
                except FileNotFoundError:
                    if is_tf:
                        skipped.append(Skipped(rel, "broken symbolic link"))
                    continue
                except (OSError, RuntimeError):  # Python raises one or the other on a loop
                    skipped.append(Skipped(rel, "symbolic link loop"))
                    continue
                if not target.is_relative_to(real_root):
                    if is_tf or target.is_dir():
                        skipped.append(Skipped(rel, "symbolic link leaves the corpus folder"))
                    continue
                if target.is_dir() and real_folder.is_relative_to(target):
                    skipped.append(Skipped(rel, "symbolic link loop: points to a parent folder"))
                    continue
                real = target
            else:
                real = real_folder / entry.name
            if entry.is_dir():
                stack.append((Path(entry.path), real, rel + "/"))
            elif is_tf and entry.is_file():
                size = entry.stat().st_size
                if size > max_bytes:
                    skipped.append(Skipped(rel, f"too large: {size} bytes > {max_bytes}"))
                else:
                    found.append((Path(entry.path), rel))
    found.sort(key=lambda item: item[1])
    skipped.sort(key=lambda s: s.path)
    return found, skipped


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a MANIFEST.csv; an absent file has none.

    Raises:
        InputError: The header lacks one of `MANIFEST_COLUMNS`.
    """
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path} lacks the column(s) {', '.join(missing)}")
        return list(reader)


def repo_folder(repo: str) -> str:
    """`owner/name` -> `owner__name`, the repository's folder in a corpus."""
    return repo.replace("/", "__")


def _manifest_repos(path: Path) -> dict[str, str]:
    """Corpus-relative path -> repository, from MANIFEST.csv when present."""
    return {f"{repo_folder(r['repo'])}/{r['path']}": r["repo"] for r in read_manifest(path)}


def _manifest_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Collecting pinned sources


@dataclass(frozen=True)
class Source:
    """One line of a sources file: a git URL pinned to a commit."""

    url: str
    commit: str
    repo: str
    """`owner/name`: the URL's last two path parts, without `.git`."""
    line: int
    """Line number in the sources file, for messages."""


def read_sources(path: Path) -> list[Source]:
    """Parse a sources file: one `URL COMMIT` per line; `#` starts a comment.

    Raises:
        InputError: The file is missing, or a line is not `URL COMMIT` with a 40-hex commit.
    """
    if not path.is_file():
        raise InputError(f"sources file {path} does not exist")
    sources: list[Source] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{path} line {number}: expected `URL COMMIT`, got {line!r}")
        url, commit = parts
        if not _COMMIT.match(commit):
            raise InputError(f"{path} line {number}: commit must be 40 hex digits, got {commit!r}")
        names = [p for p in re.split(r"[/:]", url.removesuffix("/").removesuffix(".git")) if p]
        if len(names) < 3:  # scheme or host, owner, name
            raise InputError(f"{path} line {number}: cannot read owner/name from URL {url!r}")
        sources.append(Source(url, commit.lower(), f"{names[-2]}/{names[-1]}", number))
    if not sources:
        raise InputError(f"sources file {path} lists no repositories")
    return sources


def guess_license(text: str) -> str:
    """An SPDX id guessed from a licence text's wording, or `UNKNOWN`."""
    t = " ".join(text.split())
    if "Apache License" in t and "Version 2.0" in t:
        return "Apache-2.0"
    if "Mozilla Public License" in t and "2.0" in t:
        return "MPL-2.0"
    if "Permission is hereby granted, free of charge" in t:
        # MIT-0 is MIT without the "above copyright notice ... shall be included" condition.
        return "MIT" if "shall be included in all" in t else "MIT-0"
    if "Redistribution and use in source and binary forms" in t:
        return (
            "BSD-3-Clause"
            if "Neither the name" in t or "endorse or promote" in t
            else "BSD-2-Clause"
        )
    if "GNU AFFERO GENERAL PUBLIC LICENSE" in t:
        return "AGPL-3.0"
    if "GNU LESSER GENERAL PUBLIC LICENSE" in t:
        return "LGPL-3.0" if "Version 3" in t else "LGPL-2.1"
    if "GNU GENERAL PUBLIC LICENSE" in t:
        return "GPL-3.0" if "Version 3" in t else "GPL-2.0"
    if "ISC License" in t or "Permission to use, copy, modify, and/or distribute" in t:
        return "ISC"
    if "This is free and unencumbered software released into the public domain" in t:
        return "Unlicense"
    return "UNKNOWN"


def collect(sources: Path, out: Path, progress: bool = True) -> Path:
    """Fetch each pinned source and copy its `.tf` files into a corpus folder.

    Each repository is fetched shallowly at its commit into a temporary folder; its `.tf` files
    (regular files up to 1 MB, symbolic links leaving the checkout excluded) are copied to
    `out/<owner>__<repo>/<path>`, its licence files beside them, and its rows are added to
    `out/MANIFEST.csv` (rewritten atomically after each repository). Repositories already in the
    manifest are skipped, so an interrupted run resumes.

    Args:
        sources: File of `URL COMMIT` lines (see `resources/sources.txt`).
        out: Corpus folder to fill.
        progress: Show a progress bar on stderr.

    Returns:
        The corpus folder `out` (its manifest is `out/MANIFEST.csv`).

    Raises:
        InputError: A bad sources line (naming its number), git missing, or sources that could
            not be fetched (after the others were collected).
    """
    todo = read_sources(sources)
    if shutil.which("git") is None:
        raise InputError("git is not installed; it is needed to fetch the sources")
    manifest = out / MANIFEST_NAME
    rows = read_manifest(manifest)
    done = {r["repo"] for r in rows}
    failures: list[str] = []
    for source in tqdm(todo, desc="collect", unit="repo", disable=not progress):
        if source.repo in done:
            continue
        try:
            new_rows = _collect_one(source, out)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            failures.append(f"line {source.line} ({source.repo}): {_git_error(exc)}")
            continue
        rows.extend(new_rows)
        done.add(source.repo)
        atomic_write_text(manifest, _manifest_text(rows))
    if not manifest.exists():
        atomic_write_text(manifest, _manifest_text(rows))
    if failures:
        raise InputError(
            f"{len(failures)} of {len(todo)} sources could not be fetched, first: {failures[0]}; "
            f"the others are in {manifest}"
        )
    return out


def _collect_one(source: Source, out: Path) -> list[dict[str, str]]:
    """Fetch one source and copy its files; returns its manifest rows."""
    with tempfile.TemporaryDirectory(prefix="axon-collect-") as tmp:
        checkout = Path(tmp)
        _git(checkout, "init", "--quiet")
        _git(checkout, "remote", "add", "origin", source.url)
        _git(checkout, "fetch", "--quiet", "--depth", "1", "origin", source.commit)
        _git(checkout, "checkout", "--quiet", "FETCH_HEAD")
        found, _ = _walk(checkout, 1_000_000)
        dest = out / repo_folder(source.repo)
        license_id = "UNKNOWN"
        for name in LICENSE_NAMES:
            lic = checkout / name
            if lic.is_file() and not lic.is_symlink():
                data = lic.read_bytes()
                atomic_write_bytes(dest / name, data)
                if license_id == "UNKNOWN":
                    license_id = guess_license(data.decode("utf-8", errors="replace"))
        rows = []
        for path, rel in found:
            data = path.read_bytes()
            atomic_write_bytes(dest / rel, data)
            rows.append(
                {
                    "repo": source.repo,
                    "commit": source.commit,
                    "path": rel,
                    "sha256": sha256_bytes(data),
                    "bytes": str(len(data)),
                    "license": license_id,
                }
            )
    return rows


def _git(cwd: Path, *args: str) -> None:
    # No credential prompt may block a batch run; public sources need none.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env,
        timeout=GIT_TIMEOUT_S,
    )  # fmt: skip


def _git_error(exc: subprocess.CalledProcessError | subprocess.TimeoutExpired) -> str:
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"git timed out after {GIT_TIMEOUT_S} s"
    lines = (exc.stderr or "").strip().splitlines()
    return lines[-1][:200] if lines else f"git exited {exc.returncode}"
