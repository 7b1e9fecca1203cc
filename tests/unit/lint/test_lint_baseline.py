"""Baselines (lint/baseline.py): what absorbs a finding and what does not, the file, the outputs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from axon_infralinter.errors import InputError
from axon_infralinter.lint.baseline import apply_baseline, read_baseline, write_baseline
from axon_infralinter.lint.formats import to_json, to_sarif, write_text
from axon_infralinter.lint.scan import ScanOptions, ScanReport, exit_code, scan

SARIF_SCHEMA = (
    Path(__file__).resolve().parents[2] / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"
)
ACL = 'resource "aws_s3_bucket_acl" "logs" {\n  bucket = "logs"\n  acl    = "public-read"\n}\n'
SG = (
    'resource "aws_security_group" "web" {\n  ingress {\n    from_port   = 22\n    to_port     = 22\n'
    '    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n'
)
GOOD = 'resource "aws_s3_bucket" "logs" {\n  bucket = "logs"\n}\n'


def _scan(root: Path, predictor) -> ScanReport:
    return scan(ScanOptions(paths=[root], root=root, explain=False), predictor)


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _states(report: ScanReport) -> dict[str, list[str | None]]:
    return {
        f.path: [b.baseline for b in f.blocks if b.label == "INSECURE"]
        for f in report.files
        if f.label == "INSECURE"
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    _write(root, "storage/main.tf", ACL)
    _write(root, "network/main.tf", SG)
    _write(root, "ok.tf", GOOD)
    return root


def test_a_baseline_created_then_reused_reports_nothing_new(repo, predictor, tmp_path) -> None:
    first = _scan(repo, predictor)
    assert exit_code(first) == 1
    baseline = write_baseline(first, tmp_path / "baseline.json")
    assert [(x.path, x.resource) for x in baseline.findings] == [
        ("network/main.tf", "aws_security_group.web"),
        ("storage/main.tf", "aws_s3_bucket_acl.logs"),
    ]
    again = _scan(repo, predictor)
    assert apply_baseline(again, read_baseline(tmp_path / "baseline.json")) == 2
    assert _states(again) == {"network/main.tf": ["unchanged"], "storage/main.tf": ["unchanged"]}
    assert exit_code(again) == 0
    out = io.StringIO()
    write_text(again, out)
    assert out.getvalue() == "3 files, 2 insecure, 0 suppressed, 0 errors, 2 baselined\n"
    assert to_json(again)["summary"]["baselined"] == 2
    assert to_json(again)["exit_code"] == 0


def test_the_same_address_in_another_file_is_new(repo, predictor, tmp_path) -> None:
    baseline = write_baseline(_scan(repo, predictor), tmp_path / "b.json")
    _write(repo, "copy/main.tf", ACL)  # same block, same address, another file (checkov #7647)
    report = _scan(repo, predictor)
    apply_baseline(report, baseline)
    assert _states(report) == {
        "copy/main.tf": ["new"],
        "network/main.tf": ["unchanged"],
        "storage/main.tf": ["unchanged"],
    }
    assert exit_code(report) == 1
    out = io.StringIO()
    write_text(report, out)
    assert out.getvalue().splitlines()[0].startswith("copy/main.tf:1-4  INSECURE")
    assert len(out.getvalue().splitlines()) == 2  # the new finding and the summary


def test_an_edited_block_is_new_a_reformatted_one_is_not(repo, predictor, tmp_path) -> None:
    baseline = write_baseline(_scan(repo, predictor), tmp_path / "b.json")
    _write(
        repo, "storage/main.tf", "# moved down, reindented\n\n" + ACL.replace("  acl ", "    acl ")
    )
    _write(repo, "network/main.tf", SG.replace("22", "2222"))
    report = _scan(repo, predictor)
    apply_baseline(report, baseline)
    assert _states(report) == {"network/main.tf": ["new"], "storage/main.tf": ["unchanged"]}


def test_sarif_baseline_state_validates(repo, predictor, tmp_path) -> None:
    import jsonschema

    baseline = write_baseline(_scan(repo, predictor), tmp_path / "b.json")
    _write(repo, "copy/main.tf", ACL)
    _write(repo, "skip.tf", '# axon:ignore reviewed\nresource "a" "b" {}\n')
    report = _scan(repo, predictor)
    apply_baseline(report, baseline)
    log = to_sarif(report)
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(log))
    assert errors == [], [e.message for e in errors[:5]]
    (run,) = log["runs"]
    got = sorted(
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["baselineState"],
            r.get("kind", "fail"),
        )
        for r in run["results"]
    )
    assert got == [
        ("copy/main.tf", "new", "fail"),
        ("network/main.tf", "unchanged", "fail"),
        ("skip.tf", "new", "notApplicable"),
        ("storage/main.tf", "unchanged", "fail"),
    ]
    prints = {r["partialFingerprints"]["axonFinding/v1"] for r in run["results"] if "kind" not in r}
    assert len(prints) == 3
    assert run["properties"]["baseline"] == str(tmp_path / "b.json")
    # without a baseline there is no baselineState at all
    assert all(
        "baselineState" not in r for r in to_sarif(_scan(repo, predictor))["runs"][0]["results"]
    )


def test_the_baseline_file(repo, predictor, tmp_path) -> None:
    path = tmp_path / "b.json"
    write_baseline(_scan(repo, predictor), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc) == ["version", "tool", "findings"]
    assert doc["version"] == 1
    assert [sorted(f) for f in doc["findings"]] == [
        ["end_line", "fingerprint", "path", "resource", "rule_id", "start_line"]
    ] * 2
    assert read_baseline(path).findings == write_baseline(_scan(repo, predictor), path).findings


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{", "not JSON"),
        ('{"version": 1}', "not a baseline file"),
        ('{"version": 9, "findings": []}', "version 9, this axon reads 1"),
        ('{"version": 1, "findings": [{"path": "a.tf"}]}', "finding 0 has no string 'fingerprint'"),
    ],
)
def test_a_bad_baseline_file_is_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        read_baseline(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
