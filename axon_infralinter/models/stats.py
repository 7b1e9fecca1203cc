"""Uncertainty and significance for the benchmark: the repository bootstrap and McNemar's test.

Bootstrap CI (percentile method). Each replicate draws as many repositories as the test set
has, with replacement (`cluster_counts`); `bootstrap_ci` scores every run of a row on the same
replicates with the vectorised metrics of `models.metrics` and averages them, so the interval is
for the row's run-averaged metric and reflects test-set sampling only. Test files of one
repository are not independent, hence whole repositories are resampled.

McNemar's test (`mcnemar`, `compare_paired`) compares two runs on the files they share: exact
binomial below 25 discordant pairs, chi-square with continuity correction from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from axon_infralinter.models.metrics import METRICS, confusion_metrics, ranking_metrics
from axon_infralinter.models.runs import repo_of, row_mode
from axon_infralinter.schema import EvalRun

#: Bootstrap replicates computed at once (bounds memory to ~chunk x files floats).
_CHUNK = 256


def run_arrays(run: EvalRun) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """y_true, y_pred (parse failure -> wrong answer), score (None if any is missing), repos."""
    preds = run.get("predictions") or []
    y_true = np.array([int(p["y_true"]) for p in preds], dtype=np.int64)
    y_pred = np.array(
        [int(p["y_pred"]) if p.get("y_pred") is not None else 1 - int(p["y_true"]) for p in preds],
        dtype=np.int64,
    )
    scores = [p.get("score") for p in preds]
    score = (
        np.array(scores, dtype=np.float64) if preds and all(s is not None for s in scores) else None
    )
    return y_true, y_pred, score, [repo_of(p) for p in preds]


# ---------------------------------------------------------------------------------------------
# Bootstrap


def cluster_counts(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each cluster is drawn in each replicate: (n_boot, n_clusters) integer counts.

    Each replicate draws `n_clusters` clusters uniformly with replacement.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    flat = (draws + np.arange(n_boot)[:, None] * n_clusters).ravel()
    return np.bincount(flat, minlength=n_boot * n_clusters).reshape(n_boot, n_clusters)


def replicate_metrics(
    run: EvalRun, clusters: Sequence[str], counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric of `run` on every replicate of `counts` (NaN where undefined).

    Args:
        run: One run.
        clusters: Cluster (repository) names; column j of `counts` is `clusters[j]`.
        counts: (replicates, clusters) draw counts from `cluster_counts`.
    """
    index = {c: j for j, c in enumerate(clusters)}
    n_boot = counts.shape[0]
    values = {m: np.zeros(n_boot) for m in METRICS}
    y_true, y_pred, score, repos = run_arrays(run)
    if not len(y_true):
        return {m: np.full(n_boot, np.nan) for m in METRICS}
    ci = np.array([index[r] for r in repos], dtype=np.int64)
    per_cluster = np.zeros((len(clusters), 4))
    cell = 2 * y_true + y_pred  # 0 tn, 1 fp, 2 fn, 3 tp
    np.add.at(per_cluster, (ci, cell), 1.0)
    for lo in range(0, n_boot, _CHUNK):
        block = counts[lo : lo + _CHUNK].astype(np.float64)
        chunk = confusion_metrics(block @ per_cluster)
        if score is not None:
            chunk.update(ranking_metrics(block[:, ci], y_true, score))
        else:
            chunk.update({"roc_auc": np.nan, "pr_auc": np.nan})
        for m in METRICS:
            values[m][lo : lo + _CHUNK] = chunk[m]
    return values


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return [float(low), float(high)]


def bootstrap_ci(
    runs: Sequence[EvalRun],
    clusters: Sequence[str],
    counts: np.ndarray,
    level: float = 0.95,
) -> dict[str, list[float] | None]:
    """Percentile CI of each metric, averaged over `runs`, under cluster resampling `counts`.

    Args:
        runs: The runs of one row.
        clusters: Cluster (repository) names; column j of `counts` is `clusters[j]`.
        counts: (replicates, clusters) draw counts from `cluster_counts`.
        level: Confidence level.

    Returns:
        metric -> [low, high], or None where no replicate defines it.
    """
    n_boot = counts.shape[0]
    sums = {m: np.zeros(n_boot) for m in METRICS}
    for run in runs:
        values = replicate_metrics(run, clusters, counts)
        for m in METRICS:
            sums[m] += values[m]
    return {m: _interval(sums[m] / max(len(runs), 1), level) for m in METRICS}


def difference_ci(
    run_a: EvalRun,
    run_b: EvalRun,
    clusters: Sequence[str],
    counts: np.ndarray,
    level: float = 0.95,
) -> dict[str, list[float] | None]:
    """Paired percentile CI of metric(a) - metric(b): both runs scored on the same replicates.

    Raises:
        ValueError: the runs are not over the same files.
    """
    if sorted(p["id"] for p in run_a["predictions"]) != sorted(
        p["id"] for p in run_b["predictions"]
    ):
        raise ValueError("difference_ci needs two runs over the same files")
    a = replicate_metrics(run_a, clusters, counts)
    b = replicate_metrics(run_b, clusters, counts)
    return {m: _interval(a[m] - b[m], level) for m in METRICS}


# ---------------------------------------------------------------------------------------------
# McNemar


def mcnemar(only_a: int, only_b: int) -> dict[str, Any]:
    """McNemar's test on the discordant pairs of two paired classifiers.

    Exact two-sided binomial test when `only_a + only_b < 25`, else the chi-square test with
    continuity correction.

    Args:
        only_a: Files only model A got right.
        only_b: Files only model B got right.

    Returns:
        {test: "exact"|"chi2", statistic, p_value}; p = 1 with no discordant pair.
    """
    from scipy.stats import binomtest, chi2

    n = only_a + only_b
    if n == 0:
        return {"test": "exact", "statistic": 0.0, "p_value": 1.0}
    if n < 25:
        result = binomtest(only_a, n, 0.5, alternative="two-sided")
        return {"test": "exact", "statistic": float(only_a), "p_value": float(result.pvalue)}
    stat = (abs(only_a - only_b) - 1) ** 2 / n
    return {"test": "chi2", "statistic": float(stat), "p_value": float(chi2.sf(stat, 1))}


def _correct_by_id(run: EvalRun) -> dict[str, bool]:
    out = {}
    for p in run.get("predictions") or []:
        out[str(p["id"])] = p.get("y_pred") is not None and int(p["y_pred"]) == int(p["y_true"])
    return out


def compare_paired(run_a: EvalRun, run_b: EvalRun) -> dict[str, Any]:
    """McNemar's test of two runs on the files they share (paired by prediction id)."""
    a, b = _correct_by_id(run_a), _correct_by_id(run_b)
    shared = sorted(a.keys() & b.keys())
    only_a = sum(1 for i in shared if a[i] and not b[i])
    only_b = sum(1 for i in shared if b[i] and not a[i])
    return {
        "model": run_a["model"],
        "mode": row_mode(run_a),
        "vs_model": run_b["model"],
        "vs_mode": row_mode(run_b),
        "n_shared": len(shared),
        "only_model_correct": only_a,
        "only_vs_correct": only_b,
        **mcnemar(only_a, only_b),
    }
