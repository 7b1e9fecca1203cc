"""`axon scan` without a model: path expansion, bad input, suppressions, chunking, verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.lint.scan import (
    BlockVerdict,
    FileVerdict,
    Notification,
    ScanOptions,
    ScanReport,
    exit_code,
    expand_paths,
    explanation_from_answer,
    read_terraform,
    scan,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"
GOOD = 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
BAD_ACL = 'resource "aws_s3_bucket_acl" "b" {\n  acl = "public-read"\n}\n'


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _scan(root: Path, predictor, *paths: str, **kwargs) -> ScanReport:
    targets = [root / p for p in paths] if paths else [root]
    return scan(ScanOptions(paths=targets, root=root, **kwargs), predictor)


def _by_path(report: ScanReport) -> dict[str, FileVerdict]:
    return {f.path: f for f in report.files}


def _notes(report: ScanReport) -> set[tuple[str, str, str]]:
    return {(n.path, n.kind, n.level) for n in report.notifications}


# --- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paths": []}, "at least one PATH"),
        ({"threshold": 1.5}, "--threshold must be between 0 and 1, got 1.5"),
        ({"threshold": 0.0}, "--threshold must be between 0 and 1, got 0.0"),
        ({"max_bytes": 0}, "max_bytes must be > 0, got 0"),
    ],
)
def test_options_are_validated(kwargs: dict, message: str) -> None:
    kwargs.setdefault("paths", [Path(".")])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ScanOptions(**kwargs)


# --- expansion ---------------------------------------------------------------------------------


def test_folder_expansion_is_recursive_tf_only_and_skips_terraform_dir(tmp_path: Path) -> None:
    _write(tmp_path / "main.tf", GOOD)
    _write(tmp_path / "modules" / "net" / "vpc.tf", GOOD)
    _write(tmp_path / "README.md", "# docs\n")
    _write(tmp_path / "vars.tfvars", 'a = "b"\n')
    _write(tmp_path / "main.tf.json", "{}\n")
    _write(tmp_path / ".terraform" / "modules" / "x" / "main.tf", GOOD)
    _write(tmp_path / "sub" / ".terraform" / "y.tf", GOOD)
    found, notes = expand_paths([tmp_path], tmp_path)
    assert [rel for _, rel in found] == ["main.tf", "modules/net/vpc.tf"]
    assert notes == []


def test_explicit_files_any_extension_and_dedup(tmp_path: Path) -> None:
    _write(tmp_path / "a.tf", GOOD)
    _write(tmp_path / "b.hcl", GOOD)
    found, _ = expand_paths([tmp_path / "b.hcl", tmp_path / "a.tf", tmp_path], tmp_path)
    assert [rel for _, rel in found] == ["a.tf", "b.hcl"]


def test_globs(tmp_path: Path) -> None:
    _write(tmp_path / "envs" / "prod" / "main.tf", GOOD)
    _write(tmp_path / "envs" / "dev" / "main.tf", GOOD)
    _write(tmp_path / "envs" / "dev" / "notes.txt", "x")
    _write(tmp_path / "top.tf", GOOD)
    found, notes = expand_paths([tmp_path / "envs" / "**" / "*.tf"], tmp_path)
    assert [rel for _, rel in found] == ["envs/dev/main.tf", "envs/prod/main.tf"]
    assert notes == []
    found, _ = expand_paths([tmp_path / "env?"], tmp_path)  # a glob matching a folder
    assert [rel for _, rel in found] == ["envs/dev/main.tf", "envs/prod/main.tf"]
    pattern = tmp_path / "nothing" / "*.tf"
    found, notes = expand_paths([pattern], tmp_path)
    assert found == []
    assert notes == [Notification(str(pattern), "no-match", "no files match this pattern")]


def test_missing_path(tmp_path: Path) -> None:
    found, notes = expand_paths([tmp_path / "nope.tf"], tmp_path)
    assert found == []
    assert [(n.kind, n.message) for n in notes] == [("missing", "no such file or folder")]


def test_relative_paths_use_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "repo" / "infra" / "main.tf", GOOD)
    outside = _write(tmp_path / "elsewhere.tf", GOOD)
    monkeypatch.chdir(tmp_path / "repo")
    found, _ = expand_paths([Path("infra"), outside], Path("."))
    assert [rel for _, rel in found] == [outside.as_posix(), "infra/main.tf"]


def test_links_inside_root_are_followed(tmp_path: Path) -> None:
    _write(tmp_path / "real" / "main.tf", GOOD)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    (tmp_path / "link.tf").symlink_to(tmp_path / "real" / "main.tf")
    found, notes = expand_paths([tmp_path], tmp_path)
    assert [rel for _, rel in found] == ["alias/main.tf", "link.tf", "real/main.tf"]
    assert notes == []


def test_links_that_leave_the_root_or_loop(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _write(root / "main.tf", GOOD)
    _write(tmp_path / "secret" / "keys.tf", GOOD)
    (root / "escape.tf").symlink_to(tmp_path / "secret" / "keys.tf")
    (root / "escape_dir").symlink_to(tmp_path / "secret")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root)  # a folder link back to an ancestor
    (root / "self.tf").symlink_to(root / "self.tf")  # a link to itself
    (root / "dangling.tf").symlink_to(root / "gone.tf")
    found, notes = expand_paths([root], root)
    assert [rel for _, rel in found] == ["main.tf"]
    assert {(n.path, n.kind) for n in notes} == {
        ("escape.tf", "link-outside-root"),
        ("escape_dir", "link-outside-root"),
        ("sub/up", "link-loop"),
        ("self.tf", "link-loop"),
        ("dangling.tf", "missing"),
    }
    # named explicitly, a link that leaves the root is refused too
    found, notes = expand_paths([root / "escape.tf"], root)
    assert found == []
    assert [n.kind for n in notes] == ["link-outside-root"]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "level", "message"),
    [
        (b"", "empty", "warning", "empty file"),
        (b"  \n\n", "empty", "warning", "empty file"),
        (b"# only\n/* comments */\n", "empty", "warning", "no Terraform code (only comments)"),
        (b'resource "a" "b" {\x00}\n', "binary", "error", "binary file (contains NUL bytes)"),
        (b'a = "caf\xe9"\n', "encoding", "error", "not UTF-8 (byte 0xe9 at offset 8)"),
        (
            b'resource "a" "b" {\n  x =\n}\n',
            "invalid-hcl",
            "error",
            "invalid HCL at line 2, column 6: unexpected line break",
        ),
        (
            b"locals {\n  a = 1\n}\n}\n",
            "invalid-hcl",
            "error",
            "invalid HCL at line 4, column 1: unexpected '}'",
        ),
        (b'resource "a" "b" {\n', "invalid-hcl", "error", "invalid HCL: unexpected end of file"),
    ],
)
def test_read_terraform_bad_input(
    tmp_path: Path, content: bytes, kind: str, level: str, message: str
) -> None:
    path = _write(tmp_path / "x.tf", content)
    result = read_terraform(path, "x.tf", 1_000_000)
    assert isinstance(result, Notification)
    assert (result.path, result.kind, result.level) == ("x.tf", kind, level)
    assert result.message == message


def test_read_terraform_oversize(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.tf", GOOD)
    result = read_terraform(path, "big.tf", 10)
    assert result == Notification(
        "big.tf", "oversize", f"larger than 10 bytes ({len(GOOD)} bytes), skipped", "warning"
    )
    assert read_terraform(path, "big.tf", len(GOOD)) == GOOD


def test_read_terraform_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "locked.tf", GOOD)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.tf":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert read_terraform(path, "locked.tf", 1_000_000) == Notification(
        "locked.tf", "unreadable", "cannot read: Permission denied"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_read_terraform_unreadable_mode(tmp_path: Path) -> None:
    path = _write(tmp_path / "locked.tf", GOOD)
    path.chmod(0)
    result = read_terraform(path, "locked.tf", 1_000_000)
    assert isinstance(result, Notification)
    assert result.kind == "unreadable"


def test_read_terraform_normalizes_bom_and_crlf(tmp_path: Path) -> None:
    path = _write(tmp_path / "win.tf", b'\xef\xbb\xbfresource "a" "b" {\r\n  x = 1\r\n}\r\n')
    assert read_terraform(path, "win.tf", 1_000_000) == 'resource "a" "b" {\n  x = 1\n}\n'


def test_bad_inputs_are_reported_and_the_rest_is_scanned(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "good.tf", GOOD)
    _write(tmp_path / "insecure.tf", BAD_ACL)
    _write(tmp_path / "empty.tf", b"")
    _write(tmp_path / "binary.tf", b"\x00\x01\x02")
    _write(tmp_path / "latin1.tf", b"# caf\xe9\n")
    _write(tmp_path / "big.tf", "locals {\n" + "  a = 1\n" * 200 + "}\n")
    _write(tmp_path / "broken.tf", 'resource "a" "b" {\n')
    (tmp_path / "loop.tf").symlink_to(tmp_path / "loop.tf")
    report = _scan(tmp_path, predictor, max_bytes=1000)
    files = _by_path(report)
    assert {p: f.status for p, f in files.items()} == {
        "good.tf": "scanned",
        "insecure.tf": "scanned",
        "empty.tf": "error",
        "binary.tf": "error",
        "latin1.tf": "error",
        "big.tf": "error",
        "broken.tf": "error",
    }
    assert _notes(report) == {
        ("empty.tf", "empty", "warning"),
        ("binary.tf", "binary", "error"),
        ("latin1.tf", "encoding", "error"),
        ("big.tf", "oversize", "warning"),
        ("broken.tf", "invalid-hcl", "error"),
        ("loop.tf", "link-loop", "error"),
    }
    assert files["binary.tf"].error == "binary file (contains NUL bytes)"
    assert files["insecure.tf"].label == "INSECURE"
    assert exit_code(report) == 1
    assert len(predictor.score_calls) == 1  # only the two good files reach the model
    assert len(predictor.score_calls[0]) == 2


def test_nothing_scannable_exits_2(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "empty.tf", b"")
    report = _scan(tmp_path, predictor)
    assert exit_code(report) == 2
    assert predictor.score_calls == []
    assert exit_code(_scan(tmp_path, predictor, "missing.tf")) == 2
    empty = tmp_path / "no_tf_here"
    empty.mkdir()
    assert exit_code(scan(ScanOptions(paths=[empty], root=tmp_path), predictor)) == 2


# --- .axonignore -------------------------------------------------------------------------------


def test_axonignore_lists_paths_as_suppressed(tmp_path: Path, predictor) -> None:
    _write(tmp_path / ".axonignore", "# comment\nvendor/\n*.generated.tf\n!keep.generated.tf\n")
    _write(tmp_path / "main.tf", GOOD)
    _write(tmp_path / "vendor" / "mod" / "main.tf", BAD_ACL)
    _write(tmp_path / "x.generated.tf", BAD_ACL)
    _write(tmp_path / "keep.generated.tf", BAD_ACL)
    report = _scan(tmp_path, predictor)
    files = _by_path(report)
    assert {p: (f.status, f.reason) for p, f in files.items()} == {
        "main.tf": ("scanned", None),
        "keep.generated.tf": ("scanned", None),
        "vendor/mod/main.tf": ("suppressed", "axonignore"),
        "x.generated.tf": ("suppressed", "axonignore"),
    }
    assert files["vendor/mod/main.tf"].blocks == []
    assert exit_code(report) == 1  # keep.generated.tf
    # explicitly named files obey .axonignore too (pre-commit passes file names)
    report = _scan(tmp_path, predictor, "x.generated.tf")
    assert [(f.path, f.status) for f in report.files] == [("x.generated.tf", "suppressed")]
    assert exit_code(report) == 0


def test_explicit_ignore_file(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "a.tf", BAD_ACL)
    ignore = _write(tmp_path / "conf" / "ignore", "a.tf\n")
    report = _scan(tmp_path, predictor, ignore_file=ignore)
    assert [(f.path, f.status) for f in report.files] == [("a.tf", "suppressed")]
    with pytest.raises(InputError, match="ignore file not found"):
        _scan(tmp_path, predictor, ignore_file=tmp_path / "nope")


# --- suppressions ------------------------------------------------------------------------------


def test_block_suppression(tree: Path, predictor) -> None:
    report = _scan(tree, predictor, "suppressed_block.tf")
    (f,) = report.files
    assert (f.status, f.label, f.score) == ("scanned", "SECURE", 0.05)
    assert f.blocks == [
        BlockVerdict(1, 15, "aws_s3_bucket.logs", "SECURE", 0.05, ""),
        BlockVerdict(
            1,
            11,
            "aws_security_group.bastion",
            None,
            None,
            "",
            True,
            "bastion is reachable only through the corporate VPN",
        ),
    ]
    assert all("0.0.0.0/0" not in code for call in predictor.score_calls for code in call)
    assert exit_code(report) == 0


def test_file_suppression(tree: Path, predictor) -> None:
    report = _scan(tree, predictor, "suppressed_file.tf")
    (f,) = report.files
    assert (f.status, f.label, f.score, f.reason) == (
        "suppressed",
        None,
        None,
        "vendored module, reviewed upstream",
    )
    assert f.blocks == [
        BlockVerdict(1, 5, None, None, None, "", True, "vendored module, reviewed upstream")
    ]
    assert predictor.score_calls == []
    assert exit_code(report) == 0


def test_file_suppression_wins_over_invalid_hcl(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "x.tf", "# axon:ignore work in progress\nresource {\n")
    report = _scan(tmp_path, predictor)
    assert [(f.path, f.status) for f in report.files] == [("x.tf", "suppressed")]
    assert report.notifications == []


def test_every_block_suppressed_makes_the_file_suppressed(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "x.tf", 'resource "a" "b" {\n  # axon:ignore accepted risk\n}\n')
    (f,) = _scan(tmp_path, predictor).files
    assert (f.status, f.label, f.reason) == ("suppressed", None, "accepted risk")


# --- verdicts, chunking, threshold ----------------------------------------------------------------


def test_fixture_tree_verdicts_and_single_score_call(tree: Path, predictor) -> None:
    report = _scan(tree, predictor)
    files = _by_path(report)
    assert {p: (f.status, f.label) for p, f in files.items()} == {
        "empty.tf": ("error", None),
        "insecure_public_bucket.tf": ("scanned", "INSECURE"),
        "invalid_hcl.tf": ("error", None),
        "long_mixed_blocks.tf": ("scanned", "INSECURE"),
        "secure_private_bucket.tf": ("scanned", "SECURE"),
        "suppressed_block.tf": ("scanned", "SECURE"),
        "suppressed_file.tf": ("suppressed", None),
    }
    assert _notes(report) == {
        ("empty.tf", "empty", "warning"),
        ("invalid_hcl.tf", "invalid-hcl", "error"),
    }
    assert len(predictor.score_calls) == 1
    assert (report.model, report.threshold) == ("fake-predictor", 0.5)
    assert report.seconds >= 0
    assert exit_code(report) == 1


def test_long_file_is_chunked_with_exact_line_ranges(tree: Path, predictor) -> None:
    predictor.max_code_tokens = 200
    report = _scan(tree, predictor, "long_mixed_blocks.tf")
    (f,) = report.files
    expected = json.loads((FIXTURES / "long_mixed_blocks.blocks.json").read_text("utf-8"))
    assert [[b.start_line, b.end_line, b.resource] for b in f.blocks] == expected
    insecure = [(b.start_line, b.end_line, b.resource) for b in f.blocks if b.label == "INSECURE"]
    assert insecure == [
        (94, 97, "aws_s3_bucket_acl.billing"),
        (208, 211, "aws_s3_bucket_acl.reports"),
        (298, 311, "aws_security_group.web"),
    ]
    suppressed = [(b.start_line, b.resource) for b in f.blocks if b.suppressed]
    assert suppressed == [(313, "aws_security_group.admin")]
    assert (f.label, f.score) == ("INSECURE", 0.95)  # the worst block
    assert len(predictor.score_calls) == 1
    # 37 blocks: one suppressed, six (terraform, 3 variables, locals, output) SECURE unjudged
    assert len(predictor.score_calls[0]) == 30 and report.stats.context == 6
    context = [(b.start_line, b.resource) for b in f.blocks if b.context]
    assert context == [
        (4, "terraform"), (18, "var.region"), (27, "var.environment"), (29, "var.allowed_cidrs"),
        (38, "locals"), (331, "output.bucket_arns"),
    ]  # fmt: skip
    assert all(b.label == "SECURE" and b.score is None for b in f.blocks if b.context)
    # explanations come from one generate call over the insecure blocks only
    assert [len(c) for c in predictor.generate_calls] == [3]
    explained = {b.resource: b.explanation for b in f.blocks if b.explanation}
    assert explained == {
        "aws_s3_bucket_acl.billing": "CKV_AWS_20: S3 bucket ACL allows public access (fake)",
        "aws_s3_bucket_acl.reports": "CKV_AWS_20: S3 bucket ACL allows public access (fake)",
        "aws_security_group.web": "CKV_AWS_20: S3 bucket ACL allows public access (fake)",
    }


def test_context_blocks_are_judged_on_request_and_alone_make_a_secure_file(
    tree: Path, tmp_path: Path, predictor
) -> None:
    predictor.max_code_tokens = 200
    report = _scan(tree, predictor, "long_mixed_blocks.tf", judge_context=True)
    assert len(predictor.score_calls[0]) == 36 and report.stats.context == 0
    assert not any(b.context for b in report.files[0].blocks)
    # A file of only inputs and outputs: scanned, SECURE, no model call, exit 0.
    predictor.score_calls.clear()
    _write(tmp_path / "variables.tf", 'variable "cidr" {\n  default = "0.0.0.0/0"\n}\n')
    _write(tmp_path / "outputs.tf", 'output "id" {\n  value = "weak-tls"\n}\n')
    report = _scan(tmp_path, predictor, "variables.tf", "outputs.tf")
    assert [(f.status, f.label, f.score) for f in report.files] == [("scanned", "SECURE", None)] * 2
    assert predictor.score_calls == [] and exit_code(report) == 0
    assert [b.context for f in report.files for b in f.blocks] == [True, True]
    # In a file judged whole, a variable beside a resource is context for it: judged together.
    _write(tmp_path / "mixed.tf", 'variable "v" {}\nresource "x" "tls" {\n  mode = "weak-tls"\n}\n')
    (f,) = _scan(tmp_path, predictor, "mixed.tf").files
    assert (f.label, f.blocks[0].context, len(predictor.score_calls[0])) == ("INSECURE", False, 1)


def test_short_file_is_judged_whole(tree: Path, predictor) -> None:
    report = _scan(tree, predictor, "insecure_public_bucket.tf")
    (f,) = report.files
    assert [(b.start_line, b.end_line, b.resource, b.label) for b in f.blocks] == [
        (1, 8, None, "INSECURE")
    ]
    assert predictor.score_calls == [[(FIXTURES / "insecure_public_bucket.tf").read_text().strip()]]


def test_threshold_option_overrides_predictor(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "tls.tf", 'resource "x" "tls" {\n  mode = "weak-tls"\n}\n')  # fake 0.6
    assert _scan(tmp_path, predictor).files[0].label == "INSECURE"
    report = _scan(tmp_path, predictor, threshold=0.7)
    assert (report.files[0].label, report.threshold, exit_code(report)) == ("SECURE", 0.7, 0)
    assert _scan(tmp_path, predictor, threshold=0.6).files[0].label == "INSECURE"  # inclusive


def test_no_explanations_when_disabled_or_not_supported(tree: Path, predictor) -> None:
    report = _scan(tree, predictor, "insecure_public_bucket.tf", explain=False)
    assert report.files[0].blocks[0].explanation == ""
    assert predictor.generate_calls == []

    class ScoreOnly:
        name, threshold, max_code_tokens = "score-only", 0.5, 1000

        def count_tokens(self, code: str) -> int:
            return len(code)

        def score(self, codes: list[str], **kwargs: object) -> list[float]:
            return [0.99] * len(codes)

    report = _scan(tree, ScoreOnly(), "insecure_public_bucket.tf")
    assert report.files[0].blocks[0].explanation == ""


def test_keep_comments_sends_comments(tmp_path: Path, predictor) -> None:
    _write(tmp_path / "c.tf", '# keep me\nresource "x" "c" {\n  a = 1\n}\n')
    _scan(tmp_path, predictor)
    _scan(tmp_path, predictor, keep_comments=True)
    code = 'resource "x" "c" {\n  a = 1\n}'
    assert predictor.score_calls == [[code], [f"# keep me\n{code}"]]


def test_explanation_from_answer() -> None:
    answer = (
        "INSECURE\n- CKV_AWS_20: public ACL (aws_s3_bucket_acl.a)\n- CKV_AWS_18: no logging (x)\n"
    )
    assert explanation_from_answer(answer) == (
        "CKV_AWS_20: public ACL (aws_s3_bucket_acl.a); CKV_AWS_18: no logging (x)"
    )
    assert explanation_from_answer("SECURE") == ""
    assert explanation_from_answer("INSECURE because reasons") == ""


def test_explanation_of_the_ids_format_gets_the_scanner_title() -> None:
    answer = "INSECURE\n- CKV_AWS_20 (aws_s3_bucket_acl.a)\n- CKV_MADE_UP_1 (x.y)"
    assert explanation_from_answer(answer) == (
        "CKV_AWS_20: S3 Bucket has an ACL defined which allows public READ access. "
        "(aws_s3_bucket_acl.a); CKV_MADE_UP_1 (x.y)"
    )


# --- exit codes --------------------------------------------------------------------------------


def _report(*files: FileVerdict) -> ScanReport:
    return ScanReport(list(files), [], "m", 0.5, 0.0)


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([FileVerdict("a.tf", "scanned", "SECURE", 0.1)], 0),
        ([FileVerdict("a.tf", "scanned", "SECURE", 0.1), FileVerdict("b.tf", "error")], 0),
        ([FileVerdict("a.tf", "scanned", "INSECURE", 0.9), FileVerdict("b.tf", "error")], 1),
        ([FileVerdict("a.tf", "suppressed")], 0),
        ([FileVerdict("a.tf", "suppressed"), FileVerdict("b.tf", "error")], 2),
        ([FileVerdict("a.tf", "error")], 2),
        ([], 2),
    ],
)
def test_exit_code(files: list[FileVerdict], code: int) -> None:
    assert exit_code(_report(*files)) == code


# --- the scan root ---------------------------------------------------------------------------


def test_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from axon_infralinter.lint import inputs

    monkeypatch.setattr(inputs, "work_tree", lambda folder: None)  # no git here
    _write(tmp_path / "infra" / "a" / "main.tf", GOOD)
    _write(tmp_path / "infra" / "b" / "main.tf", GOOD)
    infra = tmp_path / "infra"
    assert inputs.default_root([infra]) == infra
    assert inputs.default_root([infra / "a" / "main.tf"]) == infra / "a"
    assert inputs.default_root([infra / "a" / "main.tf", infra / "b"]) == infra
    assert inputs.default_root([infra / "**" / "*.tf"]) == infra
    monkeypatch.chdir(infra)
    assert inputs.default_root([Path("a"), Path("b/main.tf")]) == infra
    # inside a git work tree: its top, so that SARIF paths are relative to the repository
    monkeypatch.setattr(inputs, "work_tree", lambda folder: tmp_path)
    assert inputs.default_root([Path("a")]) == tmp_path


def test_a_link_to_etc_passwd_is_never_opened_when_the_folder_is_outside_cwd(
    tmp_path: Path, predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from axon_infralinter.lint import inputs

    monkeypatch.setattr(inputs, "work_tree", lambda folder: None)
    infra = tmp_path / "elsewhere" / "infra"
    _write(infra / "main.tf", GOOD)
    _write(infra / "sub" / "net.tf", BAD_ACL)
    (infra / "passwd.tf").symlink_to("/etc/passwd")
    (infra / "etc").symlink_to("/etc")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    opened: list[Path] = []
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        opened.append(self.resolve())
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = scan(ScanOptions(paths=[infra]), predictor)  # the root defaults to infra/
    assert [f.path for f in report.files] == ["main.tf", "sub/net.tf"]
    assert _notes(report) == {
        ("passwd.tf", "link-outside-root", "error"),
        ("etc", "link-outside-root", "error"),
    }
    # an explicit root elsewhere (the old default, the working directory) holds the line too
    report = scan(ScanOptions(paths=[infra], root=cwd), predictor)
    assert {(n.kind, Path(n.path).name) for n in report.notifications} == {
        ("link-outside-root", "passwd.tf"),
        ("link-outside-root", "etc"),
    }
    assert all(not p.is_relative_to(Path("/etc")) for p in opened), opened
    assert all("root:" not in code for call in predictor.score_calls for code in call)
