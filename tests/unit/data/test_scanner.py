"""Scanner normalization and label policies on recorded Checkov/Trivy JSON (no subprocess)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from axon_infralinter.data import scanner
from axon_infralinter.errors import ConfigError
from axon_infralinter.schema import Finding

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "scanner_json"


def _finding(tool: str, rule: str, severity: str | None = None) -> Finding:
    return Finding(
        tool=tool,
        rule_id=rule,
        severity=severity,
        resource="r.x",
        path="p.tf",
        start_line=1,
        end_line=2,
        title="t",
    )  # type: ignore[typeddict-item]


def test_parse_checkov_recorded_batch() -> None:
    per, broken = scanner._parse_checkov((RECORDED / "checkov_batch.json").read_text())
    assert broken == set()
    assert set(per) == {0}  # folder 00001 (variables only) has no failed check
    assert {f["rule_id"] for f in per[0]} == {"CKV2_AWS_5", "CKV_AWS_23", "CKV_AWS_24"}
    assert all(f["severity"] is None and f["tool"] == "checkov" for f in per[0])
    assert {f["resource"] for f in per[0]} == {"aws_security_group.web"}


def test_parse_trivy_recorded_batch() -> None:
    per, _ = scanner._parse_trivy((RECORDED / "trivy_batch.json").read_text())
    assert set(per) == {0}
    got = {(f["rule_id"], f["severity"], f["start_line"], f["end_line"]) for f in per[0]}
    assert got == {("AWS-0099", "LOW", 1, 9), ("AWS-0107", "HIGH", 7, 7), ("AWS-0124", "LOW", 3, 8)}
    assert all(f["tool"] == "tfsec" for f in per[0])


def test_parse_checkov_empty_report_is_no_findings() -> None:
    empty = '{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}'
    assert scanner._parse_checkov(empty) == ({}, set())


def test_folder_index() -> None:
    assert scanner._folder_index("/00042/main.tf") == 42
    assert scanner._folder_index("/tmp/x/00003/main.tf") == 3
    assert scanner._folder_index("/tmp/x/other.tf") is None


@pytest.mark.parametrize(
    ("findings", "policy", "tools", "label"),
    [
        ([], "any", None, "SECURE"),
        ([_finding("checkov", "CKV_AWS_23")], "any", None, "INSECURE"),
        (
            [_finding("checkov", "CKV_AWS_23")],
            "security-core",
            None,
            "SECURE",
        ),  # a description check
        ([_finding("tfsec", "AWS-0107", "HIGH")], "security-core", None, "INSECURE"),
        ([_finding("tfsec", "AWS-0107", "HIGH")], "security-core", ("checkov",), "SECURE"),
        ([_finding("tfsec", "AWS-0124", "LOW")], "tfsec-high", None, "SECURE"),
        ([_finding("tfsec", "AWS-0124", "CRITICAL")], "tfsec-high", None, "INSECURE"),
        ([_finding("checkov", "CKV_AWS_24")], "tfsec-high", None, "SECURE"),
    ],
)
def test_apply_policy(
    findings: list[Finding], policy: str, tools: tuple | None, label: str
) -> None:
    got, relevant = scanner.apply_policy(findings, policy, tools)
    assert got == label
    assert (len(relevant) > 0) == (label == "INSECURE")


def test_apply_policy_on_scan_row_and_unknown_policy() -> None:
    row = {
        "checkov": scanner.ToolResult(
            tool="checkov",
            version="1",
            sha256="s",
            findings=[_finding("checkov", "CKV_AWS_24")],
            error=None,
        ),
        "tfsec": scanner.ToolResult(tool="tfsec", version="1", sha256="s", findings=[], error=None),
    }
    assert scanner.apply_policy(row, "security-core")[0] == "INSECURE"  # open ingress to port 22
    with pytest.raises(ConfigError, match="unknown label policy"):
        scanner.apply_policy(row, "nope")


def test_security_core_list_is_curated_data() -> None:
    ids = scanner.security_core_ids()
    assert len(ids) > 100
    assert "CKV_AWS_24" in ids and "AWS-0107" in ids
    assert "CKV_TF_1" not in ids and "CKV_AWS_23" not in ids  # pinning / descriptions are hygiene


def test_scan_config_validates_flags(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--workers"):
        scanner.ScanConfig(cache_dir=tmp_path, workers=0)
    with pytest.raises(ConfigError, match="unknown scanner"):
        scanner.ScanConfig(cache_dir=tmp_path, tools=("semgrep",))  # type: ignore[arg-type]


def test_failed_batch_is_split_until_the_bad_file_is_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_run(
        tool: str, texts: list[str], timeout: float
    ) -> list[tuple[list[Finding], str | None]]:
        calls.append(len(texts))
        if "BAD" in texts:
            raise subprocess.TimeoutExpired("checkov", timeout)
        return [([], None) for _ in texts]

    monkeypatch.setattr(scanner, "_run_batch", fake_run)
    out = scanner._run_batch_safely("checkov", ["a", "b", "BAD", "d"], 1.0)
    assert [e is None for _, e in out] == [True, True, False, True]
    assert out[2][1] == "checkov failed on this file: timed out"
    assert calls[0] == 4 and 1 in calls


def test_scan_texts_uses_cache_and_sets_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    def fake_run(
        tool: str, texts: list[str], timeout: float
    ) -> list[tuple[list[Finding], str | None]]:
        runs.append(len(texts))
        return [([_finding(tool, "R1")] if "bad" in t else [], None) for t in texts]

    monkeypatch.setattr(scanner, "_run_batch", fake_run)
    monkeypatch.setattr(scanner, "tool_version", lambda tool: "9.9.9")
    config = scanner.ScanConfig(cache_dir=tmp_path, batch_size=2)
    items = [
        ("a/x.tf", "bad 1"),
        ("b/y.tf", "ok 2"),
        ("c/z.tf", "bad 1"),
    ]  # the third repeats the first
    first = scanner.scan_texts(items, config, progress=False)
    assert runs == [2, 2]  # two unique texts, one batch per tool
    assert [
        row["checkov"]["findings"][0]["path"] if row["checkov"]["findings"] else None
        for row in first
    ] == ["a/x.tf", None, "c/z.tf"]
    second = scanner.scan_texts(items, config, progress=False)
    assert runs == [2, 2]  # everything came from the cache
    assert second == first
    assert len(list(tmp_path.rglob("*.json"))) == 4  # 2 tools x 2 unique texts


def test_scanner_processes_get_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # Trivy would otherwise fetch remote modules: labels must not depend on the network.
    monkeypatch.setenv("NO_PROXY", "registry.terraform.io")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    env = scanner._tool_env()
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[name] == scanner.DEAD_PROXY
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    assert env["BC_SKIP_MAPPING"] == "TRUE"


def test_balanced_batches_deal_large_files_round_robin() -> None:
    keys = [f"k{i}" for i in range(7)]
    sizes = [10, 700, 30, 500, 600, 20, 40]
    batches = scanner._balanced_batches(keys, sizes, batch_size=3)
    assert sorted(k for b in batches for k in b) == sorted(keys)  # every key once
    assert [len(b) for b in batches] == [3, 2, 2]
    # the three largest (k1, k4, k3) land in different batches
    assert {b[0] for b in batches} == {"k1", "k4", "k3"}
    assert scanner._balanced_batches([], [], 5) == []
    assert scanner._balanced_batches(keys, sizes, batch_size=100) == [
        ["k1", "k4", "k3", "k6", "k2", "k5", "k0"]
    ]
