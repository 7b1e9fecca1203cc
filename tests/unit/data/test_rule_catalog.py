from __future__ import annotations

import json
from pathlib import Path

from axon_infralinter.data.rule_catalog import (
    build_catalog,
    expand_finding,
    packaged_catalog,
    write_catalog,
)
from axon_infralinter.schema import Finding


def finding(
    rule_id: str, title: str, tool: str = "checkov", severity: str | None = None
) -> Finding:
    return Finding(
        tool=tool,  # type: ignore[typeddict-item]
        rule_id=rule_id,
        severity=severity,
        resource="aws_s3_bucket.b",
        path="main.tf",
        start_line=1,
        end_line=3,
        title=title,
    )


def test_catalog_keeps_the_first_title_and_sorts_by_id() -> None:
    catalog = build_catalog(
        [finding("CKV_B", "b"), finding("AWS-0001", "a", "tfsec", "HIGH"), finding("CKV_B", "b2")]
    )
    assert list(catalog) == ["AWS-0001", "CKV_B"]
    assert catalog["CKV_B"] == {"tool": "checkov", "title": "b", "severity": None}
    assert catalog["AWS-0001"]["severity"] == "HIGH"


def test_write_catalog_round_trips(tmp_path: Path) -> None:
    rows = [
        {"scanners": {"checkov": "3.3.30"}, "findings": [finding("CKV_A", "Ensure A")]},
        {"scanners": {"checkov": "3.3.30"}, "findings": []},
    ]
    write_catalog(tmp_path / "rule_titles.json", rows)
    data = json.loads((tmp_path / "rule_titles.json").read_text())
    assert data["scanners"] == {"checkov": "3.3.30"}
    assert data["rules"]["CKV_A"]["title"] == "Ensure A"


def test_expand_finding_adds_the_title_of_a_known_id_only() -> None:
    catalog = build_catalog([finding("CKV_A", "Ensure A")])
    assert expand_finding("CKV_A (aws_s3_bucket.b)", catalog) == "CKV_A: Ensure A (aws_s3_bucket.b)"
    assert expand_finding("CKV_Z (aws_s3_bucket.b)", catalog) == "CKV_Z (aws_s3_bucket.b)"
    assert expand_finding("CKV_A: own words (r.x)", catalog) == "CKV_A: own words (r.x)"
    assert expand_finding("not a finding line", catalog) == "not a finding line"


def test_packaged_catalog_has_both_scanners() -> None:
    tools = {entry["tool"] for entry in packaged_catalog().values()}
    assert tools == {"checkov", "tfsec"}
    assert len(packaged_catalog()) > 500
