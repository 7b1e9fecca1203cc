"""models/metrics.py: the scikit-learn point estimate on hand-computable cases, and the
vectorised forms the bootstrap uses, checked against scikit-learn on random data."""

from __future__ import annotations

import math
import random

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

from axon_infralinter.models.metrics import (
    METRICS,
    confusion_metrics,
    metrics,
    ranking_metrics,
    sample_metrics,
)

# ------------------------------------------------------------------------------------- metrics


def test_metrics_hand_computed() -> None:
    # tp=2 (items 0, 2), fn=1 (item 1), fp=1 (item 3), tn=1 (item 4)
    m = metrics([1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0.9, 0.2, 0.8, 0.7, 0.1])
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 2}
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 - 1) / sqrt(3*3*2*2)
    assert m["mcc"] == pytest.approx(1 / 6)
    # 5 of the 6 (positive, negative) pairs are ranked right (0.2 < 0.7 is the wrong one).
    assert m["roc_auc"] == pytest.approx(5 / 6)
    # Ranked: P P N P N -> precision 1 at recall 1/3 and 2/3, 3/4 at recall 1.
    assert m["pr_auc"] == pytest.approx(1 / 3 + 1 / 3 + 1 / 3 * 3 / 4)
    assert m["n"] == 5
    assert m["prevalence"] == pytest.approx(0.6)
    assert m["constant_f1"] == pytest.approx(2 * 0.6 / 1.6)
    assert m["parse_failures"] == 0 and m["parse_failure_rate"] == 0.0
    assert all(m[f"{k}_defined"] for k in ("precision", "recall", "f1", "mcc"))


def test_metrics_undefined_precision_is_zero_and_flagged() -> None:
    m = metrics([1, 0, 0], [0, 0, 0])
    assert m["confusion"] == {"tn": 2, "fp": 0, "fn": 1, "tp": 0}
    assert m["precision"] == 0.0 and m["precision_defined"] is False
    assert m["recall"] == 0.0 and m["recall_defined"] is True
    assert m["f1"] == 0.0 and m["f1_defined"] is True
    assert m["mcc"] == 0.0 and m["mcc_defined"] is False
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["roc_auc"] is None and m["pr_auc"] is None  # no scores


def test_metrics_single_class() -> None:
    secure = metrics([0, 0], [0, 0], [0.1, 0.2])
    assert secure["accuracy"] == 1.0
    assert secure["roc_auc"] is None and secure["pr_auc"] is None
    assert not secure["precision_defined"] and not secure["recall_defined"]
    assert not secure["f1_defined"] and not secure["mcc_defined"]
    assert secure["prevalence"] == 0.0 and secure["constant_f1"] == 0.0

    insecure = metrics([1, 1], [1, 0], [0.9, 0.1])
    assert insecure["precision"] == 1.0 and insecure["recall"] == 0.5
    assert insecure["roc_auc"] is None
    assert insecure["constant_f1"] == 1.0


def test_metrics_parse_failures_count_as_wrong() -> None:
    # A failure on an INSECURE file is a FN, on a SECURE file a FP, never a lucky guess.
    m = metrics([1, 0, 1, 0], [None, None, 1, 0])
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert m["accuracy"] == 0.5
    assert m["parse_failures"] == 2 and m["parse_failure_rate"] == 0.5
    # Scores missing for any item -> no ranking metrics.
    assert metrics([1, 0], [1, 0], [0.9, None])["roc_auc"] is None
    assert metrics([1, 0], [1, 0], [0.9, float("nan")])["pr_auc"] is None


def test_metrics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        metrics([], [])
    with pytest.raises(ValueError, match="same length"):
        metrics([1, 0], [1])
    with pytest.raises(ValueError, match="0 or 1"):
        metrics([2], [1])


# ------------------------------------------------------------------------------------- vectorised


def test_sample_metrics_hand_case_parse_failure_counts_as_wrong() -> None:
    # tp=1 fn=1 fp=2 (one of them a parse failure on a SECURE file) tn=0
    got = sample_metrics([1, 1, 0, 0], [1, 0, 1, None])
    assert got["accuracy"] == pytest.approx(0.25)
    assert got["precision"] == pytest.approx(1 / 3)
    assert got["recall"] == pytest.approx(0.5)
    assert got["f1"] == pytest.approx(0.4)
    assert got["mcc"] == pytest.approx(-2 / math.sqrt(12))
    assert got["roc_auc"] is None and got["pr_auc"] is None


def test_sample_metrics_undefined_cases_are_zero_like_sklearn() -> None:
    got = sample_metrics([0, 0, 0], [0, 0, 0], [0.1, 0.2, 0.3])
    assert got["accuracy"] == 1.0
    assert (got["precision"], got["recall"], got["f1"], got["mcc"]) == (0.0, 0.0, 0.0, 0.0)
    assert got["roc_auc"] is None and got["pr_auc"] is None  # one class: undefined


def test_ranking_metrics_equal_sklearn_with_weights_and_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    score = rng.integers(0, 6, 60).astype(float)  # many ties, like scanner check counts
    weights = rng.integers(0, 4, (5, 60)).astype(float)
    got = ranking_metrics(weights, y, score)
    for i, w in enumerate(weights):
        assert got["roc_auc"][i] == pytest.approx(roc_auc_score(y, score, sample_weight=w))
        assert got["pr_auc"][i] == pytest.approx(average_precision_score(y, score, sample_weight=w))


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_metrics_equal_sklearn_on_random_weighted_data(seed: int) -> None:
    """Each weighting row of the bootstrap form equals scikit-learn with `sample_weight`."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.7, y, 1 - y)
    score = np.round(rng.random(n), int(rng.integers(1, 4)))  # ties at coarse rounding
    weights = rng.integers(0, 4, (6, n)).astype(float)
    conf = np.stack(
        [[w[(y == t) & (pred == p)].sum() for t in (0, 1) for p in (0, 1)] for w in weights]
    )
    threshold = confusion_metrics(conf)
    ranking = ranking_metrics(weights, y, score)
    for i, w in enumerate(weights):
        kept = w > 0
        expected = {
            "accuracy": accuracy_score(y, pred, sample_weight=w),
            "precision": precision_score(y, pred, sample_weight=w, zero_division=0),
            "recall": recall_score(y, pred, sample_weight=w, zero_division=0),
            "f1": f1_score(y, pred, sample_weight=w, zero_division=0),
            "mcc": matthews_corrcoef(y, pred, sample_weight=w),
        }
        for name, value in expected.items():
            assert threshold[name][i] == pytest.approx(value, abs=1e-12), name
        if len(set(y[kept])) == 2:
            assert ranking["roc_auc"][i] == pytest.approx(roc_auc_score(y, score, sample_weight=w))
            assert ranking["pr_auc"][i] == pytest.approx(
                average_precision_score(y, score, sample_weight=w)
            )
        else:
            assert math.isnan(ranking["roc_auc"][i]) and math.isnan(ranking["pr_auc"][i])


@pytest.mark.parametrize("seed", range(20))
def test_sample_metrics_equal_the_point_estimate(seed: int) -> None:
    """The summary's fallback (vectorised, all weights 1) agrees with `metrics` (scikit-learn)."""
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    y_true = [rng.randint(0, 1) for _ in range(n)]
    y_pred = [rng.choice([0, 1, None]) for _ in range(n)]
    scores = None if seed % 3 == 0 else [round(rng.random(), 1) for _ in range(n)]
    got = sample_metrics(y_true, y_pred, scores)
    expected = metrics(y_true, y_pred, scores)
    assert list(got) == list(METRICS)
    for name in METRICS:
        if expected[name] is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-12), name
