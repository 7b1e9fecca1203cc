"""Text, JSON and SARIF writers (lint/formats.py) and the rule table (lint/rules.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter import __version__
from axon_infralinter.lint.baseline import fingerprint
from axon_infralinter.lint.formats import FORMATS, to_json, to_sarif, write_text
from axon_infralinter.lint.rules import LEVELS, RULES, level_for
from axon_infralinter.lint.scan import (
    BlockVerdict,
    FileVerdict,
    Notification,
    ScanOptions,
    ScanReport,
    scan,
)

# The official OASIS schema, copied from ../shared/schemas so the check runs in a plain clone too.
SARIF_SCHEMA = (
    Path(__file__).resolve().parents[2] / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"
)


def _report() -> ScanReport:
    """A hand-made report with every kind of entry."""
    return ScanReport(
        files=[
            FileVerdict(
                "envs/prod/main.tf",
                "scanned",
                "INSECURE",
                0.93,
                [
                    BlockVerdict(1, 4, "aws_s3_bucket.logs", "SECURE", 0.12),
                    BlockVerdict(
                        6, 9, "aws_s3_bucket_acl.logs", "INSECURE", 0.93, "CKV_AWS_20: public ACL"
                    ),
                    BlockVerdict(11, 20, "aws_security_group.web", "INSECURE", 0.61),
                    BlockVerdict(
                        22, 30, "aws_security_group.vpn", None, None, "", True, "VPN only"
                    ),
                ],
            ),
            FileVerdict(
                "my dir/ok.tf", "scanned", "SECURE", 0.2, [BlockVerdict(1, 3, None, "SECURE", 0.2)]
            ),
            FileVerdict(
                "vendored.tf",
                "suppressed",
                blocks=[BlockVerdict(1, 5, None, None, None, "", True, "reviewed upstream")],
                reason="reviewed upstream",
            ),
            FileVerdict("vendor/x.tf", "suppressed", reason="axonignore"),
            FileVerdict("bad.tf", "error", error="not UTF-8 (byte 0xe9 at offset 8)"),
        ],
        notifications=[
            Notification("bad.tf", "encoding", "not UTF-8 (byte 0xe9 at offset 8)"),
            Notification(
                "big.tf",
                "oversize",
                "larger than 1000000 bytes (2000000 bytes), skipped",
                "warning",
            ),
            Notification("gone/*.tf", "no-match", "no files match this pattern"),
        ],
        model="axon_lora_smollm2-cpu",
        threshold=0.5,
        seconds=1.25,
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- rules -------------------------------------------------------------------------------------


def test_levels_table() -> None:
    assert LEVELS[0] == (0.9, "error")
    assert [level_for(s) for s in (0.99, 0.9, 0.8999, 0.5, 0.0)] == [
        "error",
        "error",
        "warning",
        "warning",
        "warning",
    ]


def test_rule_ids_are_stable() -> None:
    assert [(r.id, r.name) for r in RULES] == [("AXON001", "insecure-terraform-block")]


# --- text --------------------------------------------------------------------------------------


def test_text_plain() -> None:
    out = io.StringIO()
    write_text(_report(), out)
    assert out.getvalue() == (
        "envs/prod/main.tf:6-9  INSECURE  0.93  aws_s3_bucket_acl.logs  CKV_AWS_20: public ACL\n"
        "envs/prod/main.tf:11-20  INSECURE  0.61  aws_security_group.web\n"
        "5 files, 1 insecure, 3 suppressed, 3 errors\n"
    )


def test_text_colour_only_on_a_terminal() -> None:
    out = _Tty()
    write_text(_report(), out)
    text = out.getvalue()
    assert "\033[31m" in text and "\033[0m" in text
    assert text.count("\n") == 3


def test_text_summary_singular_and_clean() -> None:
    report = ScanReport(
        [FileVerdict("a.tf", "scanned", "SECURE", 0.1, [BlockVerdict(1, 2, None, "SECURE", 0.1)])],
        [Notification("b.tf", "empty", "empty file", "warning")],
        "m",
        0.5,
        0.0,
    )
    out = io.StringIO()
    write_text(report, out)
    assert out.getvalue() == "1 file, 0 insecure, 0 suppressed, 1 error\n"


# --- json --------------------------------------------------------------------------------------


def test_json_document() -> None:
    out = io.StringIO()
    FORMATS["json"](_report(), out)
    doc = json.loads(out.getvalue())
    assert list(doc) == [
        "schema_version",
        "tool",
        "model",
        "threshold",
        "seconds",
        "exit_code",
        "summary",
        "stats",
        "diff",
        "baseline",
        "files",
        "notifications",
    ]
    assert doc["schema_version"] == 1
    assert doc["tool"] == {"name": "axon-infralinter", "version": __version__}
    assert (doc["model"], doc["threshold"], doc["seconds"], doc["exit_code"]) == (
        "axon_lora_smollm2-cpu",
        0.5,
        1.25,
        1,
    )
    assert doc["summary"] == {
        "files": 5,
        "scanned": 2,
        "insecure": 1,
        "suppressed": 3,
        "errors": 3,
        "findings": 2,
        "baselined": 0,
    }
    assert doc["stats"] == {
        "chunks": 0,
        "unique": 0,
        "cache_hits": 0,
        "scored": 0,
        "explained": 0,
        "corrupt": 0,
        "context": 0,
        "model_tokens": 0,
        "cache": False,
    }
    assert (doc["diff"], doc["baseline"]) == (None, None)
    first = doc["files"][0]
    assert {k: v for k, v in first.items() if k != "blocks"} == {
        "path": "envs/prod/main.tf",
        "status": "scanned",
        "label": "INSECURE",
        "score": 0.93,
        "reason": None,
        "error": None,
    }
    assert first["blocks"][1] == {
        "start_line": 6,
        "end_line": 9,
        "resource": "aws_s3_bucket_acl.logs",
        "label": "INSECURE",
        "score": 0.93,
        "explanation": "CKV_AWS_20: public ACL",
        "suppressed": False,
        "context": False,
        "reason": None,
        "fingerprint": fingerprint(_report().files[0], _report().files[0].blocks[1]),
        "baseline": None,
    }
    assert first["blocks"][0]["fingerprint"] is None  # SECURE: not a finding
    assert first["blocks"][3]["suppressed"] is True
    assert first["blocks"][3]["reason"] == "VPN only"
    assert [(f["path"], f["status"], f["reason"]) for f in doc["files"][2:4]] == [
        ("vendored.tf", "suppressed", "reviewed upstream"),
        ("vendor/x.tf", "suppressed", "axonignore"),
    ]
    assert doc["files"][4]["error"] == "not UTF-8 (byte 0xe9 at offset 8)"
    assert doc["notifications"][0] == {
        "path": "bad.tf",
        "kind": "encoding",
        "level": "error",
        "rule_id": "AXON900",
        "message": "not UTF-8 (byte 0xe9 at offset 8)",
    }


# --- sarif -------------------------------------------------------------------------------------


def _validate_sarif(log: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(log), key=str)
    assert errors == [], "\n".join(e.message for e in errors[:5])


def test_sarif_is_valid_against_the_official_schema() -> None:
    out = io.StringIO()
    FORMATS["sarif"](_report(), out)
    _validate_sarif(json.loads(out.getvalue()))


def test_sarif_driver_and_results() -> None:
    log = to_sarif(_report())
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("axon-infralinter", __version__)
    assert "informationUri" not in driver  # no public home page yet: no made-up URL
    assert [r["id"] for r in driver["rules"]] == ["AXON001"]
    assert [n["id"] for n in driver["notifications"]] == ["AXON900"]

    active = [r for r in run["results"] if "suppressions" not in r]
    assert [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"],
            r["locations"][0]["physicalLocation"]["region"],
            r["properties"]["score"],
        )
        for r in active
    ] == [
        (
            "AXON001",
            "error",
            {"uri": "envs/prod/main.tf", "uriBaseId": "%SRCROOT%"},
            {"startLine": 6, "endLine": 9},
            0.93,
        ),
        (
            "AXON001",
            "warning",
            {"uri": "envs/prod/main.tf", "uriBaseId": "%SRCROOT%"},
            {"startLine": 11, "endLine": 20},
            0.61,
        ),
    ]
    assert active[0]["message"]["text"] == (
        "aws_s3_bucket_acl.logs judged INSECURE (P(INSECURE) = 0.93): CKV_AWS_20: public ACL"
    )


def test_sarif_suppressed_results() -> None:
    run = to_sarif(_report())["runs"][0]
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert [
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"].get("region"),
            r["suppressions"],
            r["level"],
            r["kind"],
        )
        for r in suppressed
    ] == [
        (
            "envs/prod/main.tf",
            {"startLine": 22, "endLine": 30},
            [{"kind": "inSource", "status": "accepted", "justification": "VPN only"}],
            "none",
            "notApplicable",
        ),
        (
            "vendored.tf",
            {"startLine": 1, "endLine": 5},
            [{"kind": "inSource", "status": "accepted", "justification": "reviewed upstream"}],
            "none",
            "notApplicable",
        ),
        (
            "vendor/x.tf",
            None,
            [{"kind": "external", "status": "accepted", "justification": "listed in .axonignore"}],
            "none",
            "notApplicable",
        ),
    ]


def test_sarif_notifications_and_uris() -> None:
    run = to_sarif(_report())["runs"][0]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    notes = invocation["toolExecutionNotifications"]
    assert [(n["level"], n["descriptor"]["id"], n["properties"]["kind"]) for n in notes] == [
        ("error", "AXON900", "encoding"),
        ("warning", "AXON900", "oversize"),
        ("error", "AXON900", "no-match"),
    ]
    assert notes[0]["message"]["text"] == "bad.tf: error: not UTF-8 (byte 0xe9 at offset 8)"
    assert notes[0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "bad.tf",
        "uriBaseId": "%SRCROOT%",
    }
    assert "locations" not in notes[2]  # a pattern is not a file
    # spaces are percent-encoded; absolute paths (named outside the root) become file: URIs
    report = _report()
    report.files = [
        FileVerdict(
            "my dir/a.tf", "scanned", "INSECURE", 0.95, [BlockVerdict(1, 2, None, "INSECURE", 0.95)]
        ),
        FileVerdict(
            "/abs/b.tf", "scanned", "INSECURE", 0.95, [BlockVerdict(1, 2, None, "INSECURE", 0.95)]
        ),
    ]
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]
        for r in to_sarif(report)["runs"][0]["results"]
    ]
    assert uris == [{"uri": "my%20dir/a.tf", "uriBaseId": "%SRCROOT%"}, {"uri": "file:///abs/b.tf"}]
    _validate_sarif(to_sarif(report))


def test_sarif_nothing_scanned_is_unsuccessful() -> None:
    report = ScanReport(
        [FileVerdict("a.tf", "error", error="empty file")],
        [Notification("a.tf", "empty", "empty file", "warning")],
        "m",
        0.5,
        0.0,
    )
    log = to_sarif(report)
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert log["runs"][0]["results"] == []
    _validate_sarif(log)


def test_end_to_end_on_fixtures_with_fake_predictor(tree: Path, predictor) -> None:
    predictor.max_code_tokens = 200
    report = scan(ScanOptions(paths=[tree], root=tree), predictor)
    doc = to_json(report)
    assert doc["exit_code"] == 1
    assert doc["summary"] == {
        "files": 7,
        "scanned": 4,
        "insecure": 2,
        "suppressed": 3,
        "errors": 2,
        "findings": 4,
        "baselined": 0,
    }
    log = to_sarif(report)
    _validate_sarif(log)
    results = log["runs"][0]["results"]
    assert sorted(
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            "suppressions" in r,
        )
        for r in results
    ) == [
        ("insecure_public_bucket.tf", 1, False),
        ("long_mixed_blocks.tf", 94, False),
        ("long_mixed_blocks.tf", 208, False),
        ("long_mixed_blocks.tf", 298, False),
        ("long_mixed_blocks.tf", 313, True),
        ("suppressed_block.tf", 1, True),
        ("suppressed_file.tf", 1, True),
    ]
    for name, writer in FORMATS.items():
        out = io.StringIO()
        writer(report, out)
        assert out.getvalue().endswith("\n"), name


def test_sarif_validation_catches_a_broken_log() -> None:
    # Guards the guard: the schema check above must be able to fail.
    log = to_sarif(_report())
    log["runs"][0]["results"][0]["level"] = "fatal"
    del log["runs"][0]["tool"]["driver"]["name"]
    with pytest.raises(AssertionError):
        _validate_sarif(log)
