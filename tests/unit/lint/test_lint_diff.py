"""`--diff` without git (lint/diff.py parsing, and scan() on hand-made changes); real git runs in
tests/integration/test_scan_pr.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from axon_infralinter.lint import diff as diff_module
from axon_infralinter.lint import scan as scan_module
from axon_infralinter.lint.diff import ChangedFile, Changes, _name_status, git_changes
from axon_infralinter.lint.formats import to_json
from axon_infralinter.lint.scan import ScanOptions, ScanReport, exit_code, scan

BAD_ACL = 'resource "aws_s3_bucket_acl" "b" {\n  acl = "public-read"\n}\n'


def test_name_status_listing() -> None:
    listing = "M\0a.tf\0A\0new dir/b.tf\0R097\0old.tf\0moved.tf\0D\0gone.tf\0C100\0x.tf\0y.tf\0"
    assert _name_status(listing) == [
        ("M", "a.tf", "a.tf"),
        ("A", "new dir/b.tf", "new dir/b.tf"),
        ("R", "old.tf", "moved.tf"),
        ("D", "gone.tf", "gone.tf"),
        ("C", "x.tf", "y.tf"),
    ]
    assert _name_status("") == []


def test_git_changes_from_git_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What git_changes makes of git's answers: statuses, hunks, deletions, untracked files."""
    answers = {
        ("rev-parse", "--show-toplevel"): f"{tmp_path}\n",
        ("rev-parse", "--verify"): "c0ffee" * 6 + "abcd\n",
        ("diff", "--name-status"): "M\0main.tf\0R088\0old.tf\0new.tf\0D\0gone.tf\0A\0added.tf\0",
        ("diff", "-U0", "main.tf"): "@@ -3 +3 @@\n-a\n+b\n@@ -10,2 +10,3 @@\n@@ -20,4 +22,0 @@\n",
        (
            "diff",
            "-U0",
            "new.tf",
        ): "diff --git a/old.tf b/new.tf\nsimilarity index 88%\n@@ -1,0 +2 @@\n",
        ("ls-files", "--others"): "scratch.tf\0",
    }

    def fake_git(cwd: Path, *args: str) -> str:
        for key, out in answers.items():
            if args[: len(key) - 1] == key[:-1] and key[-1] in args:
                return out
            if args[:2] == key:
                return out
        raise AssertionError(args)

    monkeypatch.setattr(diff_module, "_git", fake_git)
    changes = git_changes(tmp_path, "main")
    assert changes.commit == "c0ffee" * 6 + "abcd"
    assert changes.files == {
        "main.tf": ChangedFile(
            "main.tf", "modified", None, frozenset({3, 10, 11, 12}), frozenset({22})
        ),
        "new.tf": ChangedFile("new.tf", "renamed", "old.tf", frozenset({2}), frozenset()),
        "added.tf": ChangedFile("added.tf", "added"),
        "scratch.tf": ChangedFile("scratch.tf", "untracked"),
    }


def test_touches() -> None:
    change = ChangedFile("m.tf", "modified", None, frozenset({5}), frozenset({20}))
    assert change.touches(1, 5) and change.touches(5, 9)
    assert not change.touches(1, 4) and not change.touches(6, 19)
    assert change.touches(18, 21)  # lines deleted inside the block
    assert not change.touches(10, 20)  # deleted right after its last line
    assert not change.touches(21, 30)  # deleted right before its first line
    assert ChangedFile("n.tf", "added").touches(100, 200)
    rename = ChangedFile("r.tf", "renamed", "q.tf")
    assert not rename.edited and not rename.touches(1, 1000)


def test_bad_refs_and_folders_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from axon_infralinter.errors import InputError

    monkeypatch.setattr(diff_module, "work_tree", lambda folder: None)
    with pytest.raises(InputError, match="is not inside a git work tree"):
        git_changes(tmp_path, "main")
    monkeypatch.setattr(diff_module, "work_tree", lambda folder: tmp_path)
    with pytest.raises(InputError, match="not a git revision"):
        git_changes(tmp_path, "--output=x")


# --- scan() on hand-made changes ---------------------------------------------------------------


def _changes(root: Path, *files: ChangedFile) -> Changes:
    return Changes(root.resolve(), "base", "0" * 40, {f.path: f for f in files})


def _scan_diff(
    root: Path, predictor, changes: Changes, monkeypatch: pytest.MonkeyPatch, **kwargs
) -> ScanReport:
    monkeypatch.setattr(scan_module, "git_changes", lambda folder, ref: changes)
    return scan(ScanOptions(paths=[root], root=root, diff_ref="base", **kwargs), predictor)


def _blocks(report: ScanReport) -> dict[str, list[tuple[int, int, str | None]]]:
    return {
        f.path: [(b.start_line, b.end_line, b.resource) for b in f.blocks] for f in report.files
    }


def test_diff_blocks_reports_only_changed_blocks_of_changed_files(tree, predictor, monkeypatch):
    predictor.max_code_tokens = 200  # long_mixed_blocks.tf is judged block by block
    changes = _changes(
        tree,
        # line 95 is inside aws_s3_bucket_acl.billing (94-97); a deletion inside kms (109-123)
        ChangedFile("long_mixed_blocks.tf", "modified", None, frozenset({95}), frozenset({110})),
        ChangedFile("secure_private_bucket.tf", "modified", None, frozenset({2})),
    )
    report = _scan_diff(tree, predictor, changes, monkeypatch)
    assert _blocks(report) == {
        "long_mixed_blocks.tf": [
            (94, 97, "aws_s3_bucket_acl.billing"),
            (109, 123, "aws_kms_key.billing"),
        ],
        "secure_private_bucket.tf": [(1, 11, None)],  # a short file is one chunk: the whole file
    }
    assert [len(call) for call in predictor.score_calls] == [3]  # nothing else was judged
    assert report.diff is not None
    assert (report.diff.scope, report.diff.changed_files) == ("blocks", 2)
    assert exit_code(report) == 1  # the changed ACL block is public
    assert report.notifications == []  # invalid_hcl.tf and empty.tf did not change
    doc = to_json(report)
    assert doc["diff"] == {"ref": "base", "commit": "0" * 40, "scope": "blocks", "changed_files": 2}
    assert doc["stats"]["chunks"] == 3


def test_diff_files_reports_whole_changed_files(tree, predictor, monkeypatch) -> None:
    predictor.max_code_tokens = 200
    changes = _changes(
        tree,
        ChangedFile("long_mixed_blocks.tf", "modified", None, frozenset({95})),
        ChangedFile("invalid_hcl.tf", "modified", None, frozenset({1})),
    )
    report = _scan_diff(tree, predictor, changes, monkeypatch, diff_scope="files")
    assert [f.path for f in report.files] == ["invalid_hcl.tf", "long_mixed_blocks.tf"]
    assert len(report.files[1].blocks) == 37
    assert [(n.path, n.kind) for n in report.notifications] == [("invalid_hcl.tf", "invalid-hcl")]


def test_diff_renames_and_lines_outside_blocks(tmp_path: Path, predictor, monkeypatch) -> None:
    (tmp_path / "moved.tf").write_text(BAD_ACL, encoding="utf-8")
    (tmp_path / "two.tf").write_text("locals {\n  a = 1\n}\n\n# note\nlocals {\n  b = 2\n}\n")
    predictor.max_code_tokens = 5  # two.tf block by block
    rename = ChangedFile("moved.tf", "renamed", "old.tf")
    comment = ChangedFile("two.tf", "modified", None, frozenset({5}))
    blocks = _scan_diff(tmp_path, predictor, _changes(tmp_path, rename, comment), monkeypatch)
    assert blocks.files == [] and predictor.score_calls == []
    assert exit_code(blocks) == 0  # nothing changed that holds code: clean, not an error
    files = _scan_diff(
        tmp_path, predictor, _changes(tmp_path, rename, comment), monkeypatch, diff_scope="files"
    )
    assert [f.path for f in files.files] == ["moved.tf", "two.tf"]  # a rename is a changed file


def test_diff_with_no_changed_file_exits_0(tree, predictor, monkeypatch) -> None:
    report = _scan_diff(tree, predictor, _changes(tree), monkeypatch)
    assert (report.files, report.notifications, exit_code(report)) == ([], [], 0)
    assert predictor.score_calls == []


def test_diff_scope_is_validated() -> None:
    from axon_infralinter.errors import ConfigError

    with pytest.raises(ConfigError, match="--diff-scope must be blocks or files"):
        ScanOptions(paths=[Path(".")], diff_scope="lines")  # type: ignore[arg-type]
