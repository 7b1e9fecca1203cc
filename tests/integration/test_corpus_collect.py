"""`collect` against local git repositories (file:// URLs): real git, no network."""

import csv
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from axon_infralinter.data.corpus import collect, find_terraform_files
from axon_infralinter.errors import InputError

MIT = (
    "MIT License\n\nCopyright (c) 2024 Acme\n\nPermission is hereby granted, free of charge, to any "
    "person obtaining a copy of this software...\n\nThe above copyright notice and this permission "
    "notice shall be included in all copies or substantial portions of the Software.\n"
)


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def make_repo(
    root: Path, files: dict[str, str], links: dict[str, Path] | None = None
) -> tuple[Path, str]:
    """A git repository holding `files` (and symbolic `links`) in its first commit, and a later
    commit on top; returns the folder and the first commit."""
    root.mkdir(parents=True)
    git(root, "init", "--quiet")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel, target in (links or {}).items():
        os.symlink(target, root / rel)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "pinned")
    pinned = git(root, "rev-parse", "HEAD")
    (root / "later.tf").write_text('resource "later" "x" {}\n')
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "later")
    return root, pinned


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_collect_copies_pinned_tf_files_licence_and_manifest(tmp_path: Path) -> None:
    outside = tmp_path / "outside.tf"
    outside.write_text("secret\n")
    repo, pinned = make_repo(
        tmp_path / "src" / "acme" / "infra",
        {
            "main.tf": 'resource "aws_s3_bucket" "b" {}\n',
            "modules/db/db.tf": 'resource "aws_db_instance" "d" {}\n',
            ".terraform/modules/m/cached.tf": "cached\n",
            "README.md": "# infra\n",
            "LICENSE": MIT,
        },
        links={"escape.tf": outside},  # a link leaving the checkout: not copied
    )
    sources = tmp_path / "sources.txt"
    sources.write_text(f"# test\n{repo.as_uri()} {pinned}\n")
    out = tmp_path / "corpus"

    assert collect(sources, out, progress=False) == out

    rows = read_rows(out / "MANIFEST.csv")
    assert [(r["repo"], r["commit"], r["path"], r["license"]) for r in rows] == [
        ("acme/infra", pinned, "main.tf", "MIT"),
        ("acme/infra", pinned, "modules/db/db.tf", "MIT"),
    ]
    for r in rows:
        data = (out / "acme__infra" / r["path"]).read_bytes()
        assert data == (repo / r["path"]).read_bytes()
        assert r["sha256"] == hashlib.sha256(data).hexdigest()
        assert r["bytes"] == str(len(data))
    assert (out / "acme__infra" / "LICENSE").read_text() == MIT
    assert not (out / "acme__infra" / "later.tf").exists()  # only the pinned commit
    assert not (out / "acme__infra" / "README.md").exists()
    files, _ = find_terraform_files(out)
    assert [(f.repo, f.repo_path) for f in files] == [
        ("acme/infra", "main.tf"),
        ("acme/infra", "modules/db/db.tf"),
    ]


def test_collect_resumes_and_reports_failed_sources(tmp_path: Path) -> None:
    one, c1 = make_repo(tmp_path / "src" / "acme" / "one", {"a.tf": 'resource "x" "y" {}\n'})
    two, c2 = make_repo(tmp_path / "src" / "acme" / "two", {"b.tf": 'resource "x" "z" {}\n'})
    out = tmp_path / "corpus"
    sources = tmp_path / "sources.txt"
    sources.write_text(f"{one.as_uri()} {c1}\n")
    collect(sources, out, progress=False)

    shutil.rmtree(one)  # a second fetch of `one` would now fail: it must be skipped
    missing = "f" * 40
    sources.write_text(
        f"{one.as_uri()} {c1}\n{two.as_uri()} {c2}\n{(tmp_path / 'src/acme/gone').as_uri()} {missing}\n"
    )
    with pytest.raises(
        InputError, match=r"1 of 3 sources could not be fetched, first: line 3 \(acme/gone\)"
    ):
        collect(sources, out, progress=False)
    rows = read_rows(out / "MANIFEST.csv")
    assert [(r["repo"], r["path"], r["license"]) for r in rows] == [
        ("acme/one", "a.tf", "UNKNOWN"),
        ("acme/two", "b.tf", "UNKNOWN"),
    ]


def test_collect_rejects_a_bad_line_before_fetching(tmp_path: Path) -> None:
    sources = tmp_path / "sources.txt"
    sources.write_text("# header\nhttps://github.com/acme/infra not-a-commit\n")
    with pytest.raises(InputError, match="line 2: commit must be 40 hex digits"):
        collect(sources, tmp_path / "corpus", progress=False)
    assert not (tmp_path / "corpus").exists()
