"""evaluate with the real Checkov, Trivy and SmolLM2 on tests/fixtures/eval (labels.csv).

Fixture files are named for their expected label; each scanner alone must agree with it under
the default label policy (both insecure files carry HIGH tfsec findings and their Checkov twins
from the security-core list; the secure files have no finding from either tool).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from axon_infralinter.files import read_json
from axon_infralinter.models import predict
from axon_infralinter.models.evaluate import (
    EvalConfig,
    evaluate,
    evaluate_baselines,
    evaluate_llms,
    load_labels_csv,
)
from axon_infralinter.settings import load_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
LABELS_CSV = FIXTURES / "labels.csv"
EXPECTED = {
    "secure_outputs_only.tf": 0,
    "secure_kms_key_rotated.tf": 0,
    "insecure_sg_ssh_open.tf": 1,
    "insecure_rds_public_unencrypted.tf": 1,
}


@pytest.fixture(scope="module")
def predictor() -> Any:
    """The base SmolLM2 (zero-shot); the dequantized weights are cached in the session AXON_HOME."""
    return predict.load_predictor(None, settings=load_settings())


def test_fixture_csv_matches_file_names() -> None:
    records = load_labels_csv(LABELS_CSV)
    assert {r["path"]: int(r["label"] == "INSECURE") for r in records} == EXPECTED


def test_baselines_label_fixtures_exactly(tmp_path: Path) -> None:
    config = EvalConfig(
        data_dir=tmp_path / "data", runs_dir=tmp_path / "runs", labels_csv=LABELS_CSV
    )
    runs = evaluate_baselines(
        load_labels_csv(LABELS_CSV), config, settings=load_settings(), progress=False
    )

    assert [(r["model"], r["label_source"], r["labeler"]) for r in runs] == [
        ("checkov", "external", False),
        ("tfsec", "external", False),
    ]
    for run in runs:
        preds = {p["path"]: p for p in run["predictions"]}
        assert {path: p["y_pred"] for path, p in preds.items()} == EXPECTED, run["model"]
        assert all(p["parsed"] and p["output"] is None for p in preds.values())
        assert {path: p["score"] == 0 for path, p in preds.items()} == {
            path: label == 0 for path, label in EXPECTED.items()
        }
        assert run["metrics"]["accuracy"] == 1.0 and run["metrics"]["f1"] == 1.0
        assert run["metrics"]["parse_failure_rate"] == 0.0
        assert run["runtime"]["total_s"] > 0
        assert len(run["config"]["tool_version"]) == 1
    assert len(list((tmp_path / "runs").glob("eval_*-external_run1_*.json"))) == 2


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_smollm2_both_modes_on_three_fixtures(tmp_path: Path, predictor: Any, mode: str) -> None:
    records = load_labels_csv(LABELS_CSV)[1:]  # one secure, two insecure
    config = EvalConfig(
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
        labels_csv=LABELS_CSV,
        mode=mode,
        batch_size=2,
    )
    run = evaluate_llms(records, predictor, config, settings=load_settings(), progress=False)

    files = list((tmp_path / "runs").glob("eval_*.json"))
    assert len(files) == 1 and read_json(files[0]) == run
    preds = run["predictions"]
    assert [p["path"] for p in preds] == [r["path"] for r in records]
    assert run["metrics"]["n"] == 3 and run["model"] == predictor.name
    assert run["runtime"]["tokens_per_s"] > 0 and run["runtime"]["peak_rss_mb"] > 0
    if mode == "score":
        assert all(0.0 <= p["score"] <= 1.0 for p in preds)
        assert [p["y_pred"] for p in preds] == [
            int(p["score"] >= predictor.threshold) for p in preds
        ]
        assert run["metrics"]["roc_auc"] is not None and run["metrics"]["parse_failure_rate"] == 0.0
    else:
        assert all(isinstance(p["output"], str) and p["score"] is None for p in preds)
        assert [p["parsed"] for p in preds] == [p["y_pred"] is not None for p in preds]
        parsed = [predict.parse_label(p["output"]) for p in preds]
        assert [p["y_pred"] for p in preds] == [
            None if label is None else int(label == "INSECURE") for label in parsed
        ]
        # Greedy decoding: a forced re-run gives the same answers.
        forced = dataclasses.replace(config, force=True)
        again = evaluate_llms(records, predictor, forced, settings=load_settings(), progress=False)
        assert [p["output"] for p in again["predictions"]] == [p["output"] for p in preds]


def test_evaluate_stage_on_labels_csv(
    tmp_path: Path, predictor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`axon evaluate --labels tests/fixtures/eval/labels.csv --baselines` (the loaded SmolLM2 is reused)."""
    loaded: list[Path | None] = []

    def load_predictor(adapter: Path | None, **kwargs: Any) -> Any:
        loaded.append(adapter)
        return predictor

    monkeypatch.setattr(predict, "load_predictor", load_predictor)
    config = EvalConfig(
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
        labels_csv=LABELS_CSV,
        baselines=True,
    )
    settings = dataclasses.replace(load_settings(), lora_output_dir=None)  # no adapter: base model
    paths = evaluate(config, settings, progress=False)

    assert loaded == [None]
    runs = [read_json(p) for p in paths]
    assert [(r["model"], r["label_source"]) for r in runs] == [
        (predictor.name, "external"),
        ("constant", "external"),
        ("checkov", "external"),
        ("tfsec", "external"),
    ]
    assert runs[0]["config"]["base_model_only"] is True
    assert all(r["dataset"]["size"] == 4 and r["dataset"]["path"] == str(LABELS_CSV) for r in runs)
    assert runs[1]["metrics"]["f1"] == pytest.approx(2 * 0.5 / 1.5)
    assert [r["metrics"]["accuracy"] for r in runs[2:]] == [1.0, 1.0]
    # Run again: everything is reused.
    assert evaluate(config, settings, progress=False) == paths
