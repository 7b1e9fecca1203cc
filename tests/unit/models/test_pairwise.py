"""models/pairwise.py: the pairwise score on hand-computed pairs, its CI, the summary and figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from axon_infralinter.models import pairwise
from axon_infralinter.models.stats import cluster_counts, difference_ci


def _member(
    pair: str, role: str, score: float | None, y_pred: int | None, repo: str = "a"
) -> dict[str, Any]:
    return {"id": f"{repo}::{pair}-{role}", "path": f"{pair}.tf", "pair_id": pair, "role": role,
            "y_true": int(role == "broken"), "y_pred": y_pred, "score": score}  # fmt: skip


def _run(predictions: list[dict[str, Any]], model: str = "m", **extra: Any) -> Any:
    return {"model": model, "mode": "score", "run_id": 1, "label_source": "both",
            "predictions": predictions, "dataset": {"path": "pairs/test.jsonl"}, **extra}  # fmt: skip


PREDICTIONS = [
    _member("p1", "broken", 0.9, 1), _member("p1", "clean", 0.1, 0),   # right way round: 1
    _member("p2", "broken", 0.4, 0), _member("p2", "clean", 0.4, 0),   # tie: 1/2
    _member("p3", "broken", 0.2, 0, "b"), _member("p3", "clean", 0.7, 1, "b"),  # wrong way: 0
    _member("p4", "broken", 3.0, 1, "b"), _member("p4", "clean", 1.0, 1, "b"),  # scanner counts: 1
    _member("p5", "broken", 0.8, 1),  # no clean member: left out
]  # fmt: skip


def test_pairwise_score_ties_and_both_correct_by_hand() -> None:
    outcomes = pairwise.pair_outcomes(_run(PREDICTIONS))
    assert [(repo, value) for repo, value, _ in outcomes] == [
        ("a", 1.0),
        ("a", 0.5),
        ("b", 0.0),
        ("b", 1.0),
    ]
    m = pairwise.pairwise_metrics(outcomes, n_boot=500)
    assert m["pairs"] == 4 and m["repos"] == 2
    assert m["pairwise"] == pytest.approx(2.5 / 4)
    assert m["ties"] == pytest.approx(0.25)
    assert m["both_correct"] == pytest.approx(0.25)  # only p1 has INSECURE / SECURE verdicts
    low, high = m["ci"]
    # Resampling repositories: a replicate of repo a alone scores 0.75, of b alone 0.5.
    assert 0.5 <= low <= m["pairwise"] <= high <= 0.75


def test_rows_without_scores_rank_by_verdict_and_parse_failures_rank_lowest() -> None:
    predictions = [_member("p1", "broken", None, 1), _member("p1", "clean", None, 0),
                   _member("p2", "broken", None, None), _member("p2", "clean", None, 0)]  # fmt: skip
    values = [v for _, v, _ in pairwise.pair_outcomes(_run(predictions))]
    assert values == [1.0, 0.0]


def test_no_pair_gives_empty_metrics_and_no_row() -> None:
    assert pairwise.pairwise_metrics([])["pairwise"] is None
    run = _run([{"id": "x", "path": "x.tf", "y_true": 1, "y_pred": 1, "score": 0.5}])
    assert pairwise.pairwise_rows([run]) == []


def test_rows_skip_cross_labeler_views_and_repeated_runs() -> None:
    view = _run(PREDICTIONS, label_source="checkov")
    second = _run(PREDICTIONS[:2], run_id=2)
    rows = pairwise.pairwise_rows([_run(PREDICTIONS), view, second], n_boot=100)
    assert [(r["model"], r["pairs"]) for r in rows] == [("m", 4)]


def test_paired_difference_ci_is_zero_for_a_run_against_itself() -> None:
    files = [{"id": f"r{i % 3}::f{i}", "path": f"f{i}.tf", "y_true": i % 2, "y_pred": (i // 2) % 2,
              "score": (i * 37 % 10) / 10} for i in range(12)]  # fmt: skip
    run = _run(files)
    clusters = ["r0", "r1", "r2"]
    counts = cluster_counts(3, 200, 0)
    ci = difference_ci(run, run, clusters, counts)
    assert ci["f1"] == [0.0, 0.0] and ci["roc_auc"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="same files"):
        difference_ci(run, _run(files[:-1]), clusters, counts)


def test_summary_markdown_and_figure_show_the_pairs(tmp_path: Path) -> None:
    from axon_infralinter.files import atomic_write_json
    from axon_infralinter.models.benchmark_multi_run import summarize
    from axon_infralinter.models.summary_md import render_markdown
    from axon_infralinter.models.visualize_pairwise import plot_pairwise

    runs_dir = tmp_path / "runs"
    files = [{"id": f"r{i % 2}::f{i}", "path": f"f{i}.tf", "y_true": i % 2, "y_pred": i % 2,
              "score": float(i % 2), "output": None, "parsed": True, "seconds": 0.1}
             for i in range(6)]  # fmt: skip
    atomic_write_json(runs_dir / "eval_m_run1_x.json", {**_run(files), "metrics": {}})
    for model, shift in (("m", 0.0), ("tfidf-logreg", 0.5)):
        preds = [{**p, "score": None if p["score"] is None else p["score"] * (1 - shift),
                  "output": None, "parsed": True, "seconds": 0.1} for p in PREDICTIONS]  # fmt: skip
        atomic_write_json(runs_dir / "pairs" / f"eval_{model}_run1_x.json",
                          {**_run(preds, model=model), "metrics": {}})  # fmt: skip
    summary = summarize(runs_dir, n_boot=100)
    rows = summary["pairwise"]["rows"]
    assert [r["model"] for r in rows] == ["m", "tfidf-logreg"]
    assert rows[0]["pairwise"] == pytest.approx(0.625)
    text = render_markdown(summary)
    assert "Minimal pairs" in text and "| m | score | 4 | 2 | 0.625 [" in text
    path = plot_pairwise(summary, tmp_path / "pairwise.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert plot_pairwise({"pairwise": None}, tmp_path / "none.png") is None
    assert np.isfinite(rows[1]["pairwise"])
