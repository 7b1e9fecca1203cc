"""models/stats.py: the repository bootstrap against a naive scikit-learn loop, McNemar's test
on known tables, pairing by prediction id."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from axon_infralinter.models.metrics import METRICS
from axon_infralinter.models.stats import bootstrap_ci, cluster_counts, compare_paired, mcnemar

try:
    from .synthetic_runs import make_files, noisy_answers
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from synthetic_runs import make_files, noisy_answers

# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_equals_naive_weighted_sklearn_loop() -> None:
    files = make_files(n_repos=7, files_per_repo=5, prevalence=0.5, seed=4)
    answers = noisy_answers(files, 0.7, seed=5)
    run = {
        "predictions": [
            {"id": f, "path": p, "y_true": y, "y_pred": a, "score": s}
            for (f, p, y), (a, s) in zip(files, answers, strict=True)
        ]
    }
    clusters = sorted({f.split("::")[0] for f, _, _ in files})
    counts = cluster_counts(len(clusters), 150, seed=2)
    assert (counts.sum(axis=1) == len(clusters)).all()
    got = bootstrap_ci([run], clusters, counts)

    y = np.array([y for *_, y in files])
    pred = np.array([a for a, _ in answers])
    score = np.array([s for _, s in answers])
    cluster_of = np.array([clusters.index(f.split("::")[0]) for f, _, _ in files])
    naive: dict[str, list[float]] = {m: [] for m in METRICS}
    for row in counts:
        w = row[cluster_of].astype(float)
        naive["accuracy"].append(accuracy_score(y, pred, sample_weight=w))
        naive["precision"].append(precision_score(y, pred, sample_weight=w, zero_division=0))
        naive["recall"].append(recall_score(y, pred, sample_weight=w, zero_division=0))
        naive["f1"].append(f1_score(y, pred, sample_weight=w, zero_division=0))
        naive["mcc"].append(matthews_corrcoef(y, pred, sample_weight=w))
        if len(set(y[w > 0])) == 2:
            naive["roc_auc"].append(roc_auc_score(y, score, sample_weight=w))
            naive["pr_auc"].append(average_precision_score(y, score, sample_weight=w))
    for metric in METRICS:
        expected = np.quantile(naive[metric], [0.025, 0.975])
        assert got[metric] == pytest.approx(expected.tolist()), metric


# ----------------------------------------------------------------------------- McNemar


def test_mcnemar_exact_on_known_table() -> None:
    got = mcnemar(10, 2)
    assert got["test"] == "exact"
    # two-sided binomial, n=12: 2 * P(X <= 2) = 2 * (1 + 12 + 66) / 4096
    assert got["p_value"] == pytest.approx(158 / 4096, rel=1e-12)


def test_mcnemar_chi2_with_continuity_from_25_discordant_pairs() -> None:
    got = mcnemar(30, 10)
    assert got["test"] == "chi2"
    assert got["statistic"] == pytest.approx(19**2 / 40)
    # chi-square with 1 dof: sf(x) = erfc(sqrt(x / 2))
    assert got["p_value"] == pytest.approx(math.erfc(math.sqrt(19**2 / 40 / 2)))
    assert mcnemar(12, 12)["test"] == "exact" and mcnemar(13, 12)["test"] == "chi2"
    assert mcnemar(0, 0)["p_value"] == 1.0


def test_compare_paired_pairs_by_id_on_shared_files_only() -> None:
    def run(model: str, rows: list[tuple[str, int, int | None]]) -> dict[str, Any]:
        return {
            "model": model,
            "mode": "score",
            "predictions": [{"id": i, "y_true": t, "y_pred": p} for i, t, p in rows],
        }

    a = run("axon_lora_x", [("r::a", 1, 1), ("r::b", 1, 1), ("r::c", 0, None), ("r::d", 0, 0)])
    b = run("checkov", [("r::b", 1, 0), ("r::c", 0, 0), ("r::d", 0, 0), ("r::e", 1, 1)])
    got = compare_paired(a, b)
    assert got["n_shared"] == 3  # b, c, d
    assert (got["only_model_correct"], got["only_vs_correct"]) == (1, 1)  # b; c (parse failure)
    assert got["p_value"] == 1.0 and got["vs_model"] == "checkov"
