"""Classification metrics, INSECURE = 1 the positive class: one definition, two forms.

* `metrics` is the point estimate a run file stores, computed by scikit-learn.
* `confusion_metrics` and `ranking_metrics` compute the same quantities with numpy for many
  weightings of one sample at once: the bootstrap scores every replicate with them (a loop over
  scikit-learn calls would take minutes). Unit tests check them against scikit-learn on random
  data, ties and weights included.

Everywhere a parse failure (`y_pred` None) counts as the wrong answer, and precision, recall, F1
and MCC are 0 where their denominator is 0 (scikit-learn's `zero_division=0`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Metrics the benchmark summary aggregates per row, in table order.
METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "mcc", "roc_auc", "pr_auc")


def metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int | None],
    scores: Sequence[float | None] | None = None,
) -> dict[str, Any]:
    """Classification metrics with INSECURE = 1 as the positive class.

    A `None` in `y_pred` is a parse failure and counts as wrong: a false negative where the truth
    is INSECURE, a false positive where it is SECURE. Precision, recall, F1 and MCC are 0.0 where
    undefined (no predicted positives, no true positives, ...) and `<name>_defined` says so.
    ROC-AUC and PR-AUC (average precision) need a finite score for every item and both classes
    in `y_true`; otherwise they are None.

    Args:
        y_true: True labels, 0 or 1.
        y_pred: Predicted labels, 0 or 1, or None for a parse failure.
        scores: Optional scores where higher means more likely INSECURE.

    Returns:
        accuracy, precision, recall, f1, mcc, roc_auc, pr_auc, the `_defined` flags,
        confusion {tn, fp, fn, tp}, n, prevalence, parse_failures, parse_failure_rate and
        constant_f1 (the F1 of always answering INSECURE at this prevalence, 2p / (1 + p)).

    Raises:
        ValueError: empty input, lengths that differ, or labels other than 0/1.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        matthews_corrcoef,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    n = len(y_true)
    if n == 0:
        raise ValueError("metrics needs at least one item")
    if len(y_pred) != n or (scores is not None and len(scores) != n):
        raise ValueError("y_true, y_pred and scores must have the same length")
    if any(t not in (0, 1) for t in y_true) or any(p not in (0, 1, None) for p in y_pred):
        raise ValueError("labels must be 0 or 1 (y_pred may be None)")
    truth = [int(t) for t in y_true]
    # A failure is counted as the wrong class, never as a guess that may happen to be right.
    pred = [1 - t if p is None else int(p) for t, p in zip(truth, y_pred, strict=True)]
    failures = sum(p is None for p in y_pred)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(truth, pred, labels=[0, 1]).ravel())
    mcc_defined = min(tp + fp, tp + fn, tn + fp, tn + fn) > 0
    ranked = (
        scores is not None
        and all(s is not None and math.isfinite(s) for s in scores)
        and 0 < sum(truth) < n
    )
    prevalence = sum(truth) / n
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "precision": float(precision_score(truth, pred, zero_division=0)),
        "recall": float(recall_score(truth, pred, zero_division=0)),
        "f1": float(f1_score(truth, pred, zero_division=0)),
        "mcc": float(matthews_corrcoef(truth, pred)) if mcc_defined else 0.0,
        "roc_auc": float(roc_auc_score(truth, scores)) if ranked else None,
        "pr_auc": float(average_precision_score(truth, scores)) if ranked else None,
        "precision_defined": tp + fp > 0,
        "recall_defined": tp + fn > 0,
        "f1_defined": tp + fp + fn > 0,
        "mcc_defined": mcc_defined,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "n": n,
        "prevalence": prevalence,
        "parse_failures": failures,
        "parse_failure_rate": failures / n,
        "constant_f1": 2 * prevalence / (1 + prevalence),
    }


# ---------------------------------------------------------------------------------------------
# Vectorised forms, for the bootstrap


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> list[int]:
    """[tn, fp, fn, tp] of 0/1 arrays (parse failures already replaced by the wrong answer)."""
    return [
        int(((y_true == 0) & (y_pred == 0)).sum()),
        int(((y_true == 0) & (y_pred == 1)).sum()),
        int(((y_true == 1) & (y_pred == 0)).sum()),
        int(((y_true == 1) & (y_pred == 1)).sum()),
    ]


def confusion_metrics(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Threshold metrics from confusion counts `conf[..., (tn, fp, fn, tp)]` (any leading shape).

    Accuracy is NaN where a row holds no item; the others are 0 where undefined, as in `metrics`.
    """
    tn, fp, fn, tp = (conf[..., i].astype(np.float64) for i in range(4))
    n = tn + fp + fn + tp
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(n > 0, (tp + tn) / n, np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / denom, 0.0)
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "mcc": mcc}


def ranking_metrics(
    weights: np.ndarray, y_true: np.ndarray, score: np.ndarray
) -> dict[str, np.ndarray]:
    """Weighted ROC-AUC and average precision (PR-AUC) for each row of `weights`.

    Equal to scikit-learn's `roc_auc_score` / `average_precision_score` with `sample_weight`
    (ties share credit, as there) up to floating-point summation order; NaN where a row holds
    one class only.

    Args:
        weights: (replicates, files) non-negative weights.
        y_true: (files,) 0/1 labels.
        score: (files,) P(INSECURE) or any score where higher means more insecure.
    """
    order = np.argsort(-score, kind="mergesort")  # descending thresholds, as in sklearn
    s_sorted = score[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * y_true[order], starts, axis=1)  # (R, groups), high score first
    neg = np.add.reduceat(w * (1 - y_true[order]), starts, axis=1)
    p_total = pos.sum(axis=1)
    n_total = neg.sum(axis=1)
    tp = np.cumsum(pos, axis=1)
    fp = np.cumsum(neg, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A positive beats every negative with a lower score, ties count half.
        neg_below = n_total[:, None] - fp
        auc = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (p_total * n_total)
        precision = np.nan_to_num(tp / (tp + fp))
        ap = (pos * precision).sum(axis=1) / p_total
    valid = (p_total > 0) & (n_total > 0)
    return {"roc_auc": np.where(valid, auc, np.nan), "pr_auc": np.where(valid, ap, np.nan)}


def sample_metrics(
    y_true: Sequence[int], y_pred: Sequence[int | None], score: Sequence[float] | None = None
) -> dict[str, float | None]:
    """The `METRICS` of one unresampled sample (every weight 1), by the vectorised forms.

    The summary falls back to these for a run file that lacks a stored metric, so its value is
    the one the bootstrap gives the whole test set.

    Args:
        y_true: 0/1 labels, INSECURE = 1.
        y_pred: 0/1 predictions; None (parse failure) counts as a wrong answer.
        score: Optional scores for ROC-AUC / PR-AUC.

    Returns:
        accuracy, precision, recall, f1, mcc, roc_auc, pr_auc (None where undefined).
    """
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.array([1 - t if p is None else int(p) for t, p in zip(yt, y_pred, strict=True)])
    conf = np.array([confusion_counts(yt, yp)])
    out = {k: finite_or_none(v[0]) for k, v in confusion_metrics(conf).items()}
    if score is not None and len(yt):
        ranking = ranking_metrics(np.ones((1, len(yt))), yt, np.asarray(score, dtype=np.float64))
        out.update({k: finite_or_none(v[0]) for k, v in ranking.items()})
    else:
        out.update({"roc_auc": None, "pr_auc": None})
    return {k: out[k] for k in METRICS}


def finite_or_none(value: Any) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
