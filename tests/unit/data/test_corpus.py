"""Finding corpus files, reading manifests and sources, guessing licences (no git here)."""

import os
from pathlib import Path

import pytest

from axon_infralinter.data.corpus import (
    Skipped,
    find_terraform_files,
    guess_license,
    read_manifest,
    read_sources,
    repo_folder,
)
from axon_infralinter.errors import InputError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write(path: Path, text: str = 'resource "a" "b" {}\n') -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_files_are_sorted_with_repo_from_top_folder(tmp_path: Path) -> None:
    write(tmp_path / "own__two" / "main.tf")
    write(tmp_path / "own__one" / "mod" / "b.tf")
    write(tmp_path / "own__one" / "a.tf")
    write(tmp_path / "own__one" / "README.md")
    write(tmp_path / "own__one" / "x.tfvars")
    files, skipped = find_terraform_files(tmp_path)
    assert [(f.rel, f.repo, f.repo_path) for f in files] == [
        ("own__one/a.tf", "own__one", "a.tf"),
        ("own__one/mod/b.tf", "own__one", "mod/b.tf"),
        ("own__two/main.tf", "own__two", "main.tf"),
    ]
    assert all(f.path.is_absolute() and f.path.is_file() for f in files)
    assert skipped == []


def test_repo_comes_from_manifest(tmp_path: Path) -> None:
    write(tmp_path / "acme__infra" / "main.tf")
    write(tmp_path / "acme__infra" / "extra.tf")  # not listed: the folder's repo still applies
    write(tmp_path / "loose" / "x.tf")
    (tmp_path / "MANIFEST.csv").write_text(
        f"repo,commit,path,sha256,bytes,license\nacme/infra,{COMMIT},main.tf,{'0' * 64},19,MIT\n"
    )
    files, _ = find_terraform_files(tmp_path)
    assert {f.rel: f.repo for f in files} == {
        "acme__infra/extra.tf": "acme/infra",
        "acme__infra/main.tf": "acme/infra",
        "loose/x.tf": "loose",
    }


def test_file_at_root_belongs_to_the_root_folder(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "main.tf")
    files, _ = find_terraform_files(root)
    assert [(f.rel, f.repo, f.repo_path) for f in files] == [("main.tf", "corpus", "main.tf")]


def test_terraform_and_git_folders_are_not_entered(tmp_path: Path) -> None:
    write(tmp_path / "r" / "main.tf")
    write(tmp_path / "r" / ".terraform" / "modules" / "m" / "main.tf")
    write(tmp_path / "r" / ".git" / "x.tf")
    files, skipped = find_terraform_files(tmp_path)
    assert [f.rel for f in files] == ["r/main.tf"]
    assert skipped == []


def test_large_files_are_skipped_with_reason(tmp_path: Path) -> None:
    write(tmp_path / "r" / "small.tf", "a" * 10)
    write(tmp_path / "r" / "big.tf", "a" * 11)
    files, skipped = find_terraform_files(tmp_path, max_bytes=10)
    assert [f.rel for f in files] == ["r/small.tf"]
    assert skipped == [Skipped("r/big.tf", "too large: 11 bytes > 10")]


def test_symlinks_leaving_the_root_dangling_or_looping_are_skipped(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "secret.tf")
    root = tmp_path / "corpus"
    write(root / "r" / "main.tf")
    os.symlink(outside, root / "r" / "out_file.tf")
    os.symlink(outside.parent, root / "r" / "out_dir")
    os.symlink(root / "r" / "missing.tf", root / "r" / "dangling.tf")
    os.symlink(root / "r", root / "r" / "loop")
    os.symlink(root / "r" / "main.tf", root / "r" / "inside.tf")  # stays inside: followed
    files, skipped = find_terraform_files(root)
    assert [f.rel for f in files] == ["r/inside.tf", "r/main.tf"]
    assert {(s.path, s.reason) for s in skipped} == {
        ("r/dangling.tf", "broken symbolic link"),
        ("r/loop", "symbolic link loop: points to a parent folder"),
        ("r/out_dir", "symbolic link leaves the corpus folder"),
        ("r/out_file.tf", "symbolic link leaves the corpus folder"),
    }


def test_missing_or_empty_root_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        find_terraform_files(tmp_path / "nope")
    with pytest.raises(InputError, match="holds no .tf files"):
        find_terraform_files(tmp_path)
    file = write(tmp_path / "a.tf")
    with pytest.raises(InputError, match="is not a folder"):
        find_terraform_files(file)


def test_read_manifest(tmp_path: Path) -> None:
    assert read_manifest(tmp_path / "MANIFEST.csv") == []
    (tmp_path / "MANIFEST.csv").write_text(
        f"repo,commit,path,sha256,bytes,license\na/b,{COMMIT},x.tf,{'1' * 64},3,MIT\n"
    )
    rows = read_manifest(tmp_path / "MANIFEST.csv")
    assert rows == [
        {
            "repo": "a/b",
            "commit": COMMIT,
            "path": "x.tf",
            "sha256": "1" * 64,
            "bytes": "3",
            "license": "MIT",
        }
    ]
    (tmp_path / "MANIFEST.csv").write_text("repo,path\na/b,x.tf\n")
    with pytest.raises(InputError, match="lacks the column"):
        read_manifest(tmp_path / "MANIFEST.csv")


def test_repo_folder() -> None:
    assert repo_folder("owner/name") == "owner__name"


def test_read_sources(tmp_path: Path) -> None:
    path = tmp_path / "sources.txt"
    path.write_text(
        "# header\n\n"
        f"https://github.com/owner/one {COMMIT}\n"
        f"https://github.com/owner/two.git {COMMIT.upper()}  # trailing comment\n"
        f"file:///tmp/x/acme/three {COMMIT}\n"
    )
    sources = read_sources(path)
    assert [(s.repo, s.commit, s.line) for s in sources] == [
        ("owner/one", COMMIT, 3),
        ("owner/two", COMMIT, 4),
        ("acme/three", COMMIT, 5),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("https://github.com/owner/repo", "line 2: expected `URL COMMIT`"),
        (f"https://github.com/owner/repo {COMMIT} extra", "line 2: expected `URL COMMIT`"),
        ("https://github.com/owner/repo abc123", "line 2: commit must be 40 hex digits"),
        (f"repo {COMMIT}", "line 2: cannot read owner/name"),
    ],
)
def test_bad_sources_line_names_its_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "sources.txt"
    path.write_text(f"# header\n{line}\n")
    with pytest.raises(InputError, match=message):
        read_sources(path)


def test_sources_file_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_sources(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="lists no repositories"):
        read_sources(tmp_path / "empty.txt")


MIT_BODY = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    "software, to deal in the Software without restriction."
)


@pytest.mark.parametrize(
    ("text", "spdx"),
    [
        ("Apache License\n  Version 2.0, January 2004", "Apache-2.0"),
        (
            MIT_BODY
            + "\nThe above copyright notice and this permission notice shall be included in all copies",
            "MIT",
        ),
        ("MIT No Attribution\n" + MIT_BODY, "MIT-0"),
        ("Mozilla Public License Version 2.0", "MPL-2.0"),
        (
            "Redistribution and use in source and binary forms ... Neither the name of the "
            "copyright holder",
            "BSD-3-Clause",
        ),
        ("Redistribution and use in source and binary forms, with or without", "BSD-2-Clause"),
        ("GNU AFFERO GENERAL PUBLIC LICENSE Version 3", "AGPL-3.0"),
        ("GNU GENERAL PUBLIC LICENSE\nVersion 2, June 1991", "GPL-2.0"),
        ("All rights reserved.", "UNKNOWN"),
    ],
)
def test_guess_license(text: str, spdx: str) -> None:
    assert guess_license(text) == spdx
