"""`axon demo --tiny` end to end: real scanners, real SmolLM2, every stage, then a re-run reuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "terraform-corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not beside the checkout")
def test_tiny_demo_runs_every_stage_and_reuses_work(tmp_path: Path) -> None:
    env = {**os.environ, "AXON_CORPUS": str(CORPUS), "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "axon_infralinter",
        "demo",
        "--tiny",
        "--workdir",
        str(tmp_path / "demo"),
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert first.returncode == 0, first.stderr[-3000:]
    work = tmp_path / "demo"
    for split in ("train", "val", "test"):
        assert (work / "data" / f"{split}.jsonl").stat().st_size > 0
    assert (work / "models" / "axon_lora_smollm2-cpu" / "adapter_model.safetensors").is_file()
    runs = [json.loads(p.read_text()) for p in (work / "eval_runs").glob("eval_*.json")]
    models = {r["model"] for r in runs}
    assert {"checkov", "tfsec", "constant", "axon_lora_smollm2-cpu", "smollm2-base"} <= models
    assert {r["mode"] for r in runs if r["model"] == "axon_lora_smollm2-cpu"} == {
        "score",
        "generate",
    }
    for name in ("f1_boxplot.png", "metrics_comparison.png", "runtime_comparison.png", "REPORT.md"):
        assert (work / "figures" / name).stat().st_size > 0
    assert "5/5 axon scan" in first.stderr and "done;" in first.stderr
    # The last stage judges examples/ with the shipped adapter, the demo's own beside it.
    scan_lines = [line for line in first.stderr.splitlines() if "axon scan" in line]
    assert "(shipped adapter " in scan_lines[0] and "demo's adapter" in scan_lines[1]
    # A second run reuses the data set, the adapter and the finished run files.
    before = {p.name: p.stat().st_mtime_ns for p in (work / "eval_runs").glob("eval_*.json")}
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "data set: reusing" in second.stderr and "training: reusing" in second.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (work / "eval_runs").glob("eval_*.json")}
    assert after == before
