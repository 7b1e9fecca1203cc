"""models/runs.py: run file names, finding a finished run, the bootstrap cluster of a file."""

from __future__ import annotations

import json
from pathlib import Path

from axon_infralinter.models.runs import find_finished_run, repo_of, run_file_name


def test_run_file_names() -> None:
    ts = "2025-01-02T03:04:05Z"
    assert run_file_name("axon_lora_smollm2-cpu", 3, ts) == (
        "eval_axon_lora_smollm2-cpu_run3_20250102T030405Z.json"
    )
    assert run_file_name("HuggingFaceTB/SmolLM2-135M", 1, ts) == (
        "eval_HuggingFaceTB-SmolLM2-135M_run1_20250102T030405Z.json"
    )
    assert (
        run_file_name("checkov", 1, ts, "tfsec") == "eval_checkov-tfsec_run1_20250102T030405Z.json"
    )
    assert run_file_name("m", 2, ts, "checkov", "generate") == (
        "eval_m-checkov-generate_run2_20250102T030405Z.json"
    )


def test_find_finished_run_matches_every_key_and_skips_junk(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "eval_m_run1_20250101T000000Z.json").write_text("{broken", encoding="utf-8")
    (runs / "eval_m_run1_20250101T000001Z.json").write_text("[1, 2]", encoding="utf-8")
    base = {"model": "m", "run_id": 1, "mode": "score", "seed": None, "label_source": "both",
            "config": {"fingerprint": "f1"}, "dataset": {"sha256": "d1"}}  # fmt: skip
    old = runs / "eval_m_run1_20250101T000002Z.json"
    new = runs / "eval_m_run1_20250101T000003Z.json"
    old.write_text(json.dumps({**base, "timestamp": "2025-01-01T00:00:02Z"}), encoding="utf-8")
    new.write_text(json.dumps({**base, "timestamp": "2025-01-01T00:00:03Z"}), encoding="utf-8")
    key = {"mode": "score", "seed": None, "dataset_sha256": "d1", "label_source": "both"}
    assert find_finished_run(runs, "m", 1, **key) == new
    assert find_finished_run(runs, "m", 1, **key, fingerprint="f1") == new
    assert find_finished_run(runs, "m", 1, **key, fingerprint="f2") is None
    assert find_finished_run(runs, "m", 2, **key) is None
    assert find_finished_run(runs, "other", 1, **key) is None
    assert find_finished_run(runs, "m", 1, **{**key, "seed": 1}) is None
    assert find_finished_run(runs, "m", 1, **{**key, "mode": "generate"}) is None
    assert find_finished_run(runs, "m", 1, **{**key, "dataset_sha256": "d2"}) is None
    assert find_finished_run(runs, "m", 1, **{**key, "label_source": "tfsec"}) is None
    assert find_finished_run(tmp_path / "missing", "m", 1, **key) is None


def test_repo_of_uses_id_prefix_then_first_path_component() -> None:
    assert repo_of({"id": "acme/infra::modules/a/main.tf", "path": "x/y.tf"}) == "acme/infra"
    assert repo_of({"id": "deadbeef", "path": "acme-infra/modules/main.tf"}) == "acme-infra"
    assert repo_of({"id": "solo/main.tf"}) == "solo"
