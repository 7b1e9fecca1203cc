"""`axon scan` end to end: the real command in a subprocess, with the real model.

Uses `--adapter $AXON_TEST_ADAPTER` when that variable is set, else the command's default adapter.
Each `axon scan` run loads the model once, so runs are shared by module-scoped fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "lint"
EXAMPLES = REPO / "examples"
SARIF_SCHEMA = REPO / "tests" / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"
LONG_BLOCKS = json.loads((FIXTURES / "long_mixed_blocks.blocks.json").read_text(encoding="utf-8"))


def axon_scan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m axon_infralinter scan ARGS` in `cwd` (the scan root)."""
    cmd = [sys.executable, "-m", "axon_infralinter", "scan", *args]
    adapter = os.environ.get("AXON_TEST_ADAPTER")
    if adapter:
        cmd += ["--adapter", adapter]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=850)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fixtures, examples, bad inputs and an .axonignore'd folder under one scan root."""
    root = tmp_path_factory.mktemp("scan") / "repo"
    shutil.copytree(FIXTURES, root)
    shutil.copytree(EXAMPLES, root / "examples")
    (root / "bad").mkdir()
    (root / "bad" / "binary.tf").write_bytes(b"\x7fELF\x00\x00\x01")
    (root / "bad" / "latin1.tf").write_bytes(b'locals {\n  city = "M\xfcnchen"\n}\n')
    (root / "bad" / "huge.tf").write_text("#" * 1_000_001, encoding="utf-8")
    outside = root.parent / "outside.tf"
    outside.write_text('resource "aws_s3_bucket" "x" {}\n', encoding="utf-8")
    (root / "bad" / "escape.tf").symlink_to(outside)
    (root / "bad" / "loop.tf").symlink_to(root / "bad" / "loop.tf")
    (root / "vendor").mkdir()
    shutil.copy(EXAMPLES / "insecure_public_s3.tf", root / "vendor" / "copied.tf")
    (root / ".axonignore").write_text("# third-party code\nvendor/\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def json_run(workspace: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One JSON scan of the whole workspace."""
    proc = axon_scan(".", "--format", "json", "--output", "report.json", cwd=workspace)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads((workspace / "report.json").read_text(encoding="utf-8"))
    return proc, report


def _stderr_line(proc: subprocess.CompletedProcess[str], path: str, message: str) -> bool:
    """Whether one stderr line names both the path and the message."""
    return any(path in line and message in line for line in proc.stderr.splitlines())


def _files(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in report["files"]}


def test_json_statuses_and_notifications(json_run: tuple[Any, dict[str, Any]]) -> None:
    proc, report = json_run
    assert report["schema_version"] == 1
    assert proc.returncode == report["exit_code"]
    statuses = {path: f["status"] for path, f in _files(report).items()}
    assert statuses == {
        "bad/binary.tf": "error",
        "bad/huge.tf": "error",
        "bad/latin1.tf": "error",
        "empty.tf": "error",
        "examples/insecure_open_ssh_security_group.tf": "scanned",
        "examples/insecure_public_azure_storage.tf": "scanned",
        "examples/insecure_public_gcs_bucket.tf": "scanned",
        "examples/insecure_public_s3.tf": "scanned",
        "examples/secure_private_azure_storage.tf": "scanned",
        "examples/secure_private_gcs_bucket.tf": "scanned",
        "examples/secure_private_s3.tf": "scanned",
        "insecure_public_bucket.tf": "scanned",
        "invalid_hcl.tf": "error",
        "long_mixed_blocks.tf": "scanned",
        "secure_private_bucket.tf": "scanned",
        "suppressed_block.tf": "scanned",
        "suppressed_file.tf": "suppressed",
        "vendor/copied.tf": "suppressed",
    }
    assert {(n["path"], n["kind"], n["level"]) for n in report["notifications"]} == {
        ("bad/binary.tf", "binary", "error"),
        ("bad/huge.tf", "oversize", "warning"),
        ("bad/latin1.tf", "encoding", "error"),
        ("bad/escape.tf", "link-outside-root", "error"),
        ("bad/loop.tf", "link-loop", "error"),
        ("empty.tf", "empty", "warning"),
        ("invalid_hcl.tf", "invalid-hcl", "error"),
    }
    # each notification is one line on stderr
    for n in report["notifications"]:
        assert _stderr_line(proc, n["path"], n["message"]), n


def test_json_verdicts_are_consistent(json_run: tuple[Any, dict[str, Any]]) -> None:
    _, report = json_run
    threshold = report["threshold"]
    assert 0 < threshold < 1
    assert report["model"]
    for f in report["files"]:
        judged = [b for b in f["blocks"] if not (b["suppressed"] or b["context"])]
        if f["status"] != "scanned":
            assert f["label"] is None and f["score"] is None and judged == []
            continue
        # Chunks of only variable/output/locals/terraform blocks: SECURE, never sent to the model.
        context = [b for b in f["blocks"] if b["context"]]
        assert all(b["label"] == "SECURE" and b["score"] is None for b in context)
        for b in judged:
            assert 0.0 <= b["score"] <= 1.0
            assert b["label"] == ("INSECURE" if b["score"] >= threshold else "SECURE")
        assert f["score"] == (max(b["score"] for b in judged) if judged else None)
        worst = any(b["label"] == "INSECURE" for b in judged)
        assert f["label"] == ("INSECURE" if worst else "SECURE")
    any_insecure = any(f["label"] == "INSECURE" for f in report["files"])
    assert report["exit_code"] == (1 if any_insecure else 0)


def test_json_suppressions(json_run: tuple[Any, dict[str, Any]]) -> None:
    _, report = json_run
    files = _files(report)
    block = files["suppressed_block.tf"]
    assert [(b["resource"], b["suppressed"], b["reason"]) for b in block["blocks"]] == [
        ("aws_s3_bucket.logs", False, None),
        (
            "aws_security_group.bastion",
            True,
            "bastion is reachable only through the corporate VPN",
        ),
    ]
    assert files["suppressed_file.tf"]["reason"] == "vendored module, reviewed upstream"
    assert files["vendor/copied.tf"]["reason"] == "axonignore"


def test_long_file_is_judged_block_by_block(json_run: tuple[Any, dict[str, Any]]) -> None:
    _, report = json_run
    blocks = _files(report)["long_mixed_blocks.tf"]["blocks"]
    assert len(blocks) > 1, "long_mixed_blocks.tf fits the model's context: make it longer"
    assert [[b["start_line"], b["end_line"], b["resource"]] for b in blocks] == LONG_BLOCKS
    assert [b["resource"] for b in blocks if b["suppressed"]] == ["aws_security_group.admin"]


SHIPPED_ADAPTER = Path(__file__).resolve().parents[2] / "axon_infralinter" / "adapters" / "default"
needs_trained_adapter = pytest.mark.skipif(
    not os.environ.get("AXON_TEST_ADAPTER")
    and not (SHIPPED_ADAPTER / "adapter_config.json").is_file(),
    reason="no trained default adapter is shipped yet (issue 6) and AXON_TEST_ADAPTER is unset: "
    "the base model alone judges every example SECURE, so these acceptance checks would be vacuous",
)


# The shipped adapter (run E, test ROC-AUC 0.84, see its README.md) flags every insecure example but
# also every secure one: measured 2026-11-25, insecure 0.768/0.926/0.993/0.160 vs secure
# 0.991/0.969/0.538 at threshold 0.124. The secure check stays, strict: it starts failing (XPASS) once a better adapter
# passes it, and then the marker must go.
KNOWN_WEAK = pytest.mark.xfail(
    strict=True, reason="shipped adapter misjudges the examples (README: model status)"
)


def test_examples_are_labelled_by_their_names_by_the_real_scanners(tmp_path: Path) -> None:
    """The examples mean what their names say under the labels the model is trained on."""
    from axon_infralinter.data.scanner import ScanConfig, apply_policy, scan_texts

    paths = sorted(EXAMPLES.glob("*.tf"))
    items = [(p.name, p.read_text(encoding="utf-8")) for p in paths]
    rows = scan_texts(items, ScanConfig(cache_dir=tmp_path / "cache"), progress=False)
    got = {name: apply_policy(row) for (name, _), row in zip(items, rows, strict=True)}
    wrong = {
        name: [f["rule_id"] for f in findings]
        for name, (label, findings) in got.items()
        if label != ("INSECURE" if name.startswith("insecure_") else "SECURE")
    }
    assert len(got) == 7
    assert wrong == {}


@needs_trained_adapter
def test_insecure_examples_are_insecure(json_run: tuple[Any, dict[str, Any]]) -> None:
    _, report = json_run
    got = {
        p: (f["label"], round(f["score"], 3))
        for p, f in _files(report).items()
        if p.startswith("examples/insecure_")
    }
    assert len(got) == 4
    assert {p for p, (label, _) in got.items() if label != "INSECURE"} == set(), got


@needs_trained_adapter
@KNOWN_WEAK
def test_secure_examples_are_secure(json_run: tuple[Any, dict[str, Any]]) -> None:
    _, report = json_run
    got = {
        p: (f["label"], round(f["score"], 3))
        for p, f in _files(report).items()
        if p.startswith("examples/secure_")
    }
    assert len(got) == 3
    assert {p for p, (label, _) in got.items() if label != "SECURE"} == set(), got


def test_sarif_is_valid_with_relative_uris(workspace: Path) -> None:
    args = ["suppressed_block.tf", "examples/insecure_public_s3.tf", "bad/binary.tf", "vendor"]
    proc = axon_scan(*args, "--format", "sarif", "--output", "axon.sarif", cwd=workspace)
    assert proc.returncode in (0, 1), proc.stderr
    log = json.loads((workspace / "axon.sarif").read_text(encoding="utf-8"))
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(log))
    assert errors == [], [e.message for e in errors[:5]]
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "axon-infralinter"
    locations = [r["locations"][0]["physicalLocation"] for r in run["results"]]
    assert all(loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%" for loc in locations)
    uris = {loc["artifactLocation"]["uri"] for loc in locations}
    assert {"suppressed_block.tf", "vendor/copied.tf"} <= uris
    assert uris <= {"suppressed_block.tf", "examples/insecure_public_s3.tf", "vendor/copied.tf"}
    suppressions = sorted(
        (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], s["kind"])
        for r in run["results"]
        for s in r.get("suppressions", [])
    )
    assert suppressions == [("suppressed_block.tf", "inSource"), ("vendor/copied.tf", "external")]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [(n["descriptor"]["id"], n["properties"]["kind"]) for n in notes] == [
        ("AXON900", "binary")
    ]
    assert run["invocations"][0]["executionSuccessful"] is True
    insecure = [r for r in run["results"] if "suppressions" not in r]
    assert proc.returncode == (1 if insecure else 0)


def test_nothing_scannable_exits_2_with_text_summary(workspace: Path) -> None:
    proc = axon_scan("bad/binary.tf", "empty.tf", "missing.tf", cwd=workspace)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines()[-1] == "2 files, 0 insecure, 0 suppressed, 3 errors"
    assert _stderr_line(proc, "missing.tf", "no such file or folder")


def test_all_suppressed_exits_0(workspace: Path) -> None:
    proc = axon_scan("suppressed_file.tf", "vendor", cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "2 files, 0 insecure, 2 suppressed, 0 errors"


def test_usage_error_exits_2(workspace: Path) -> None:
    proc = axon_scan("--format", "xml", "suppressed_file.tf", cwd=workspace)
    assert proc.returncode == 2
    assert "--format" in proc.stderr
