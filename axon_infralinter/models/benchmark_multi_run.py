"""Run the evaluation several times and aggregate the run files into one honest summary.

Two entry points:

* `summarize(runs_dir)` reads every `eval_*.json` run file, groups them by row = (model, mode)
  and reports, per metric, the mean and sample sd over runs, the per-run values and a 95%
  bootstrap confidence interval over **repositories** (test files of one repository are not
  independent, so whole repositories are resampled); McNemar's test of the fine-tuned model
  against each scanner and the base model; the prevalence and the constant-INSECURE baseline.
  `write_summary` writes it as `summary.json` and `summary.md`.
* `run_benchmark(config, settings)` runs the evaluations (deterministic rows once: the adapter in
  score mode with the scanners and the constant, the base model zero-shot; N sampling seeds in
  generate mode; optionally N adapters trained with different seeds), then summarizes.

Bootstrap CI (percentile method). Each replicate draws as many repositories as the test set
has, with replacement, from the repositories of all rows (so every row sees the same replicates
and CIs are comparable). Every run of a row is scored on the same replicate and the per-run
metrics are averaged: the interval is for the row's run-averaged metric and reflects test-set
sampling only (the run-to-run spread is the separate `sd`). A deterministic row has one run, so
its interval is simply that run's. Undefined cases follow scikit-learn's `zero_division=0`:
precision, recall, F1 and MCC are 0 when their denominator is 0; ROC-AUC and PR-AUC are
undefined (dropped from that replicate) when the replicate holds one class only, and `None` for a
run whose predictions carry no score (generate mode). A parse failure (`y_pred` null) counts as a
wrong answer.

Examples:
    >>> summary = summarize(Path("data/eval_runs"))          # doctest: +SKIP
    >>> write_summary(summary, Path("data/eval_runs"))       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.files import atomic_write_json, atomic_write_text, read_json
from axon_infralinter.settings import Settings

LabelSource = Literal["both", "checkov", "tfsec"]

#: Metrics aggregated per row, in table order.
METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "mcc", "roc_auc", "pr_auc")
#: Scanner baselines (their labels may also be the ground truth: see `labeler`).
SCANNERS: tuple[str, ...] = ("checkov", "tfsec")
#: The always-INSECURE baseline.
CONSTANT = "constant"
#: The caveat printed under every table.
LABELER_CAVEAT = (
    "labels come from the scanners, so a scanner that made the labels scores itself "
    "(labeler=yes); compare on the cross-labeler rows"
)
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
#: Bootstrap replicates computed at once (bounds memory to ~chunk x files floats).
_CHUNK = 256


# ----------------------------------------------------------------------------- reading runs


def load_runs(runs_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read the run files of `runs_dir`.

    Files that are not valid run files (bad JSON, missing `model`/`predictions`) are skipped
    with a warning. When the same (model, mode, run_id, label_source) appears twice, the later
    file in name order (the later timestamp) wins. `summary.json` is never a run file.

    Args:
        runs_dir: Folder of `eval_<model>_run<N>_<timestamp>.json` files.

    Returns:
        The runs, each with `_file` (the file name) added, and the warnings.
    """
    warnings: list[str] = []
    by_key: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    if not runs_dir.is_dir():
        return [], warnings
    for path in sorted(runs_dir.glob("*.json")):
        if path.name == SUMMARY_JSON:
            continue
        try:
            run = read_json(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            warnings.append(f"skipped {path.name}: not valid JSON ({error})")
            continue
        if not isinstance(run, dict) or "model" not in run or "predictions" not in run:
            warnings.append(f"skipped {path.name}: not a run file (no model/predictions)")
            continue
        run["_file"] = path.name
        key = (str(run["model"]), row_mode(run), int(run.get("run_id") or 1), run_label_source(run))
        if key in by_key:
            old = by_key[key]
            # A deterministic row re-run on a subset (the constant beside a --generate-limit run)
            # must not replace the same row over the whole test split: more files wins, then newer.
            if len(old["predictions"]) > len(run["predictions"]):
                warnings.append(f"{path.name} ignored: {old['_file']} covers more files")
                continue
            warnings.append(f"{old['_file']} replaced by newer {path.name}")
        by_key[key] = run
    return list(by_key.values()), warnings


def row_mode(run: dict[str, Any]) -> str:
    """The mode of a run; scanners and the constant baseline get theirs when it is missing."""
    mode = run.get("mode")
    if mode:
        return str(mode)
    model = str(run.get("model"))
    if model in SCANNERS:
        return "scan"
    return "constant" if model == CONSTANT else "score"


def repo_of(prediction: dict[str, Any]) -> str:
    """The repository (bootstrap cluster) of a prediction: `id` before `::`, else the first
    path component of `path` (or of `id`)."""
    pid = str(prediction.get("id", ""))
    if "::" in pid:
        return pid.split("::", 1)[0]
    parts = PurePosixPath(str(prediction.get("path") or pid)).parts
    return parts[0] if parts else pid


def run_label_source(run: dict[str, Any]) -> str:
    """The labels a run was scored against; old files without the field used both scanners."""
    return str(run.get("label_source") or "both")


def is_labeler(run: dict[str, Any]) -> bool:
    """True when the run's model made (part of) the labels it is scored against."""
    if "labeler" in run and run["labeler"] is not None:
        return bool(run["labeler"])
    source = run_label_source(run)
    return run["model"] in SCANNERS and source in ("both", run["model"])


def is_deterministic(run: dict[str, Any]) -> bool:
    """True for a run whose repetition gives the same predictions (score, scanners, constant,
    greedy generate); the run file's own `deterministic` field wins."""
    if run.get("deterministic") is not None:
        return bool(run["deterministic"])
    if row_mode(run) != "generate":
        return True
    config = run.get("config") or {}
    return config.get("eval_mode", "deterministic") != "stochastic" and not config.get("do_sample")


def model_kind(model: str) -> Literal["finetuned", "llm", "base", "scanner", "constant"]:
    """Which family a model name belongs to (decides table order and figure colours)."""
    if model in SCANNERS:
        return "scanner"
    if model == CONSTANT:
        return "constant"
    if model.startswith("axon_lora"):
        return "finetuned"
    if model.endswith("-base") or model.startswith("base"):
        return "base"
    return "llm"


_KIND_ORDER = {"finetuned": 0, "llm": 1, "base": 2, "scanner": 3, "constant": 4}
_MODE_ORDER = {"score": 0, "generate": 1, "scan": 2, "constant": 3}


def _row_sort_key(key: tuple[str, str]) -> tuple[int, str, int, str]:
    model, mode = key
    return (_KIND_ORDER[model_kind(model)], model, _MODE_ORDER.get(mode, 4), mode)


# ----------------------------------------------------------------------------- metrics


def _arrays(run: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
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


def _confusion_metrics(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Threshold metrics from confusion counts `conf[..., (tn, fp, fn, tp)]` (any leading shape)."""
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


def _ranking_metrics(
    weights: np.ndarray, y_true: np.ndarray, score: np.ndarray
) -> dict[str, np.ndarray]:
    """Weighted ROC-AUC and average precision (PR-AUC) for each row of `weights`.

    Equal to scikit-learn's `roc_auc_score` / `average_precision_score` with `sample_weight`
    (ties share credit, as there); NaN where a row holds one class only.

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


def compute_metrics(
    y_true: Sequence[int], y_pred: Sequence[int | None], score: Sequence[float] | None = None
) -> dict[str, float | None]:
    """The summary's metrics for one set of predictions (used where a run file lacks one).

    Args:
        y_true: 0/1 labels, INSECURE = 1.
        y_pred: 0/1 predictions; None (parse failure) counts as a wrong answer.
        score: Optional scores for ROC-AUC / PR-AUC.

    Returns:
        accuracy, precision, recall, f1, mcc, roc_auc, pr_auc (None where undefined).
    """
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.array([1 - t if p is None else int(p) for t, p in zip(yt, y_pred, strict=True)])
    conf = np.array([_confusion(yt, yp)])
    out: dict[str, float | None] = {k: _num(v[0]) for k, v in _confusion_metrics(conf).items()}
    if score is not None and len(yt):
        ranking = _ranking_metrics(np.ones((1, len(yt))), yt, np.asarray(score, dtype=np.float64))
        out.update({k: _num(v[0]) for k, v in ranking.items()})
    else:
        out.update({"roc_auc": None, "pr_auc": None})
    return {k: out[k] for k in METRICS}


def _confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[int]:
    """[tn, fp, fn, tp]."""
    return [
        int(((y_true == 0) & (y_pred == 0)).sum()),
        int(((y_true == 0) & (y_pred == 1)).sum()),
        int(((y_true == 1) & (y_pred == 0)).sum()),
        int(((y_true == 1) & (y_pred == 1)).sum()),
    ]


def _num(value: Any) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- bootstrap


def cluster_counts(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each cluster is drawn in each replicate: (n_boot, n_clusters) integer counts.

    Each replicate draws `n_clusters` clusters uniformly with replacement.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    flat = (draws + np.arange(n_boot)[:, None] * n_clusters).ravel()
    return np.bincount(flat, minlength=n_boot * n_clusters).reshape(n_boot, n_clusters)


def bootstrap_ci(
    runs: Sequence[dict[str, Any]],
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
    index = {c: j for j, c in enumerate(clusters)}
    n_boot = counts.shape[0]
    sums = {m: np.zeros(n_boot) for m in METRICS}
    for run in runs:
        y_true, y_pred, score, repos = _arrays(run)
        if not len(y_true):
            for m in METRICS:
                sums[m][:] = np.nan
            continue
        ci = np.array([index[r] for r in repos], dtype=np.int64)
        per_cluster = np.zeros((len(clusters), 4))
        cell = 2 * y_true + y_pred  # 0 tn, 1 fp, 2 fn, 3 tp
        np.add.at(per_cluster, (ci, cell), 1.0)
        for lo in range(0, n_boot, _CHUNK):
            block = counts[lo : lo + _CHUNK].astype(np.float64)
            values = _confusion_metrics(block @ per_cluster)
            if score is not None:
                values.update(_ranking_metrics(block[:, ci], y_true, score))
            else:
                values.update({"roc_auc": np.nan, "pr_auc": np.nan})
            for m in METRICS:
                sums[m][lo : lo + _CHUNK] += values[m]
    alpha = (1 - level) / 2
    out: dict[str, list[float] | None] = {}
    for m in METRICS:
        mean = sums[m] / max(len(runs), 1)
        finite = mean[np.isfinite(mean)]
        if not len(finite):
            out[m] = None
            continue
        low, high = np.quantile(finite, [alpha, 1 - alpha])
        out[m] = [float(low), float(high)]
    return out


# ----------------------------------------------------------------------------- McNemar


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


def _correct_by_id(run: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for p in run.get("predictions") or []:
        out[str(p["id"])] = p.get("y_pred") is not None and int(p["y_pred"]) == int(p["y_true"])
    return out


def compare_paired(run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, Any]:
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


def pick_finetuned(keys: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The fine-tuned row: an `axon_lora*` model in score mode (the one without a `_seed<k>`
    suffix first), else the first other LLM row, else None."""
    lora = [k for k in keys if model_kind(k[0]) == "finetuned" and k[1] == "score"]
    if lora:
        return sorted(lora, key=lambda k: ("_seed" in k[0], k[0]))[0]
    others = [k for k in keys if model_kind(k[0]) in ("finetuned", "llm")]
    return sorted(others, key=_row_sort_key)[0] if others else None


# ----------------------------------------------------------------------------- summary


def _stat(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else None
    return mean, sd


def summarize(
    runs_dir: Path, label_source: str = "both", n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Aggregate the run files of `runs_dir` scored against `label_source` labels.

    Args:
        runs_dir: Folder of run files.
        label_source: Keep runs whose `label_source` is this ("both" for files without one).
        n_boot: Bootstrap replicates (0 turns the CI off).
        seed: Seed of the bootstrap draws.

    Returns:
        A JSON-ready dict: `rows` (one per (model, mode), fine-tuned first), `mcnemar`,
        `prevalence`, `constant_f1`, `n_files`, `n_repos`, `label_sources` (all present in the
        folder), `cross_labeler` (the same summary for each other label source present, so a
        scanner can be compared on labels it did not make), `warnings` and the bootstrap
        settings.

    Raises:
        InputError: `runs_dir` holds no run file at all, or none for `label_source`.
    """
    all_runs, warnings = load_runs(runs_dir)
    if not all_runs:
        raise InputError(
            f"no run files in {runs_dir}: run `axon evaluate` or `axon benchmark` first"
        )
    sources = sorted({run_label_source(r) for r in all_runs})
    runs = [r for r in all_runs if run_label_source(r) == label_source]
    if not runs:
        raise InputError(
            f"no run files with label_source {label_source!r} in {runs_dir}; "
            f"found: {', '.join(sources)}"
        )
    summary = {
        "runs_dir": str(runs_dir),
        **_summarize_runs(runs, label_source, n_boot, seed),
        "label_sources": sources,
        "cross_labeler": {
            source: _summarize_runs(
                [r for r in all_runs if run_label_source(r) == source], source, n_boot, seed
            )
            for source in sources
            if source != label_source
        },
        "caveat": LABELER_CAVEAT,
    }
    summary["warnings"] = warnings + summary["warnings"]
    return summary


def _summarize_runs(
    runs: list[dict[str, Any]], label_source: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """The summary of runs that share one label source (see `summarize`)."""
    warnings: list[str] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((str(run["model"]), row_mode(run)), []).append(run)
    keys = sorted(groups, key=_row_sort_key)
    for key in keys:
        groups[key].sort(key=lambda r: int(r.get("run_id") or 1))

    clusters = sorted({repo_of(p) for r in runs for p in r.get("predictions") or []})
    counts = cluster_counts(len(clusters), n_boot, seed) if n_boot > 0 and clusters else None
    rows = [_summarize_row(groups[key], clusters, counts) for key in keys]

    datasets = {r["dataset_sha256"] for r in rows if r["dataset_sha256"]}
    if len(datasets) > 1:
        warnings.append(
            f"labels {label_source}: rows were evaluated on {len(datasets)} different test sets"
        )
    truth: dict[str, int] = {}
    for run in runs:
        for p in run.get("predictions") or []:
            truth.setdefault(str(p["id"]), int(p["y_true"]))
    prevalence = statistics.fmean(truth.values()) if truth else None

    comparisons = []
    target = pick_finetuned(keys)
    if target is not None:
        first = groups[target][0]
        for key in keys:
            if key != target and model_kind(key[0]) in ("scanner", "base"):
                comparisons.append(compare_paired(first, groups[key][0]))

    return {
        "label_source": label_source,
        "n_files": len(truth),
        "n_repos": len(clusters),
        "prevalence": prevalence,
        "constant_f1": None if prevalence is None else 2 * prevalence / (1 + prevalence),
        "bootstrap": {
            "n_boot": n_boot,
            "seed": seed,
            "level": 0.95,
            "method": "percentile; repositories resampled with replacement; per-run metrics "
            "averaged over the runs of a row on the same replicate",
        },
        "finetuned": None if target is None else {"model": target[0], "mode": target[1]},
        "rows": rows,
        "mcnemar": comparisons,
        "warnings": warnings,
    }


def _summarize_row(
    runs: list[dict[str, Any]], clusters: list[str], counts: np.ndarray | None
) -> dict[str, Any]:
    first = runs[0]
    metrics: dict[str, dict[str, Any]] = {}
    recomputed: list[dict[str, float | None]] = []
    for run in runs:
        y_true, y_pred, score, _ = _arrays(run)
        recomputed.append(compute_metrics(y_true.tolist(), y_pred.tolist(), score))
    ci = bootstrap_ci(runs, clusters, counts) if counts is not None else {}
    for m in METRICS:
        values = []
        for run, fallback in zip(runs, recomputed, strict=True):
            stored = (run.get("metrics") or {}).get(m, fallback[m])
            if _num(stored) is not None:
                values.append(float(stored))
        mean, sd = _stat(values)
        metrics[m] = {"mean": mean, "sd": sd, "values": values, "ci": ci.get(m)}

    confusions = []
    for run in runs:
        y_true, y_pred, _, _ = _arrays(run)
        run_metrics = run.get("metrics") or {}
        stored = run_metrics.get("confusion") or run_metrics.get("confusion_matrix")
        confusions.append(
            [int(stored[k]) for k in ("tn", "fp", "fn", "tp")]
            if isinstance(stored, dict)
            else _confusion(y_true, y_pred)
        )
    confusion = np.mean(np.array(confusions, dtype=np.float64), axis=0)
    seconds = []
    for run in runs:
        per_file = (run.get("runtime") or {}).get("per_file_mean_s")
        if per_file is None:
            times = [p.get("seconds") for p in run.get("predictions") or []]
            times = [t for t in times if t is not None]
            per_file = statistics.fmean(times) if times else None
        if per_file is not None:
            seconds.append(float(per_file))
    failures = [
        sum(p.get("y_pred") is None for p in r.get("predictions") or [])
        / max(len(r.get("predictions") or []), 1)
        for r in runs
    ]
    return {
        "model": first["model"],
        "mode": row_mode(first),
        "kind": model_kind(str(first["model"])),
        "runs": len(runs),
        "run_ids": [int(r.get("run_id") or 1) for r in runs],
        "seeds": [r.get("seed") for r in runs],
        "files": [r["_file"] for r in runs],
        "labeler": any(is_labeler(r) for r in runs),
        "label_source": run_label_source(first),
        "deterministic": all(is_deterministic(r) for r in runs),
        "n": len(first.get("predictions") or []),
        "dataset_sha256": (first.get("dataset") or {}).get("sha256"),
        "metrics": metrics,
        "confusion": dict(zip(("tn", "fp", "fn", "tp"), confusion.tolist(), strict=True)),
        "parse_failure_rate": statistics.fmean(failures),
        "seconds_per_file": statistics.fmean(seconds) if seconds else None,
    }


# ----------------------------------------------------------------------------- writing


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _fmt_metric(entry: dict[str, Any], with_ci: bool = False) -> str:
    text = _fmt(entry["mean"])
    if entry["sd"] is not None:
        text += f" ± {entry['sd']:.3f}"
    if with_ci and entry.get("ci"):
        low, high = entry["ci"]
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}"


def _fmt_p(value: float) -> str:
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def render_table(block: dict[str, Any]) -> list[str]:
    """The results table of one label source, as markdown lines."""
    lines = [
        "| model | mode | runs | labeler | F1 mean ± sd [95% CI] | precision | recall | accuracy "
        "| ROC-AUC | MCC | s/file |",
        "|---|---|---:|---|---|---|---|---|---|---|---:|",
    ]
    for row in block["rows"]:
        m = row["metrics"]
        lines.append(
            f"| {row['model']} | {row['mode']} | {row['runs']} | "
            f"{'yes' if row['labeler'] else 'no'} | {_fmt_metric(m['f1'], with_ci=True)} | "
            f"{_fmt_metric(m['precision'])} | {_fmt_metric(m['recall'])} | "
            f"{_fmt_metric(m['accuracy'])} | {_fmt_metric(m['roc_auc'])} | "
            f"{_fmt_metric(m['mcc'])} | {_fmt_seconds(row['seconds_per_file'])} |"
        )
    return lines


def _render_block(block: dict[str, Any], heading: str) -> list[str]:
    lines = [
        f"{block['n_files']} test files from {block['n_repos']} repositories.",
        "",
        *render_table(block),
        "",
    ]
    if block.get("prevalence") is not None:
        lines += [
            f"Prevalence (share of INSECURE test files): {block['prevalence']:.3f}; "
            f"the constant INSECURE baseline scores F1 = {block['constant_f1']:.3f}, "
            "the floor a useful model must clear.",
            "",
        ]
    if block["mcnemar"]:
        lines += [
            f"{heading} McNemar's test (labels: {block['label_source']}; paired on shared files, "
            "run 1 of each row)",
            "",
            "| model | vs | shared files | only model right | only vs right | test | p |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        for c in block["mcnemar"]:
            lines.append(
                f"| {c['model']} ({c['mode']}) | {c['vs_model']} ({c['vs_mode']}) | "
                f"{c['n_shared']} | {c['only_model_correct']} | {c['only_vs_correct']} | "
                f"{'exact binomial' if c['test'] == 'exact' else 'χ² (continuity)'} | "
                f"{_fmt_p(c['p_value'])} |"
            )
        lines.append("")
    return lines


def render_markdown(summary: dict[str, Any], heading: str = "#") -> str:
    """The summary as markdown: results table, McNemar table, prevalence line and caveat, then
    the same for each cross-labeler label source.

    Args:
        summary: A `summarize` result.
        heading: Markdown heading prefix of the top heading ("#", or "##" when embedded).
    """
    boot = summary["bootstrap"]
    sub = heading + "#"
    lines = [
        f"{heading} Benchmark summary (labels: {summary['label_source']})",
        "",
        f"F1 is the mean ± sd over runs with a 95% bootstrap CI ({boot['n_boot']} resamples of "
        "whole repositories, percentile method, runs of a row averaged on each resample); the "
        "other metric columns are mean ± sd over runs (one value for a deterministic row); "
        "s/file is the mean wall-clock seconds per test file. A parse failure counts as a "
        "wrong answer.",
        "",
        f"Caveat: {LABELER_CAVEAT}.",
        "",
        *_render_block(summary, sub),
    ]
    for source, block in summary.get("cross_labeler", {}).items():
        lines += [
            f"{sub} Cross-labeler view: labels from {source} only",
            "",
            *_render_block(block, sub + "#"),
        ]
    if summary["warnings"]:
        lines += [f"{sub} Warnings", ""]
        lines += [f"- {w}" for w in summary["warnings"]]
        lines.append("")
    return "\n".join(lines)


def write_summary(summary: dict[str, Any], runs_dir: Path) -> tuple[Path, Path]:
    """Write `summary.json` and `summary.md` into `runs_dir` atomically.

    Returns:
        (json path, markdown path).
    """
    json_path = runs_dir / SUMMARY_JSON
    md_path = runs_dir / SUMMARY_MD
    atomic_write_json(json_path, summary)
    atomic_write_text(md_path, render_markdown(summary))
    return json_path, md_path


# ----------------------------------------------------------------------------- benchmark


@dataclass(frozen=True)
class BenchmarkConfig:
    """What `axon benchmark` runs."""

    runs: int = 5
    """Sampling seeds in generate mode (and adapters with --train-seeds)."""
    train_seeds: bool = False
    """Also train `runs` adapters with seeds 1..runs and evaluate each in score mode."""
    runs_dir: Path = Path("data/eval_runs")
    """Where run files and the summary go."""
    data_dir: Path = Path("data")
    """Folder holding test.jsonl."""
    adapter: Path | None = None
    """Adapter to evaluate (None: evaluate's default)."""
    base_model: str | None = None
    """Base model id or folder (None: the adapter's / the default)."""
    limit: int | None = None
    """Evaluate only N test files (an evenly spaced sample; evaluate's --limit)."""
    generate_limit: int | None = None
    """Generate-mode runs evaluate only N test files (on 2 CPU cores one costs ~4 s a file);
    None: the same files as the score rows."""
    force: bool = False
    """Re-run evaluations whose run files already exist (and retrain seed adapters)."""
    profile: str = "smollm2-cpu"
    """Training profile of the seed adapters (`--train-seeds`)."""
    base: bool = True
    """Also evaluate the base model zero-shot in score mode (the McNemar comparison needs it)."""
    label_source: LabelSource = "both"
    """Labels the summary is computed against."""
    n_boot: int = 2000
    """Bootstrap replicates in the summary."""

    def __post_init__(self) -> None:
        if self.runs <= 0:
            raise ConfigError(f"--runs must be > 0, got {self.runs}")
        if self.limit is not None and self.limit <= 0:
            raise ConfigError(f"--limit must be > 0, got {self.limit}")
        if self.generate_limit is not None and self.generate_limit <= 0:
            raise ConfigError(f"--generate-limit must be > 0, got {self.generate_limit}")
        if self.n_boot < 0:
            raise ConfigError(f"--n-boot must be >= 0, got {self.n_boot}")


EvaluateFn = Callable[[Any, Settings], list[Path]]
TrainFn = Callable[[int], Path]


def seed_trainer(
    settings: Settings,
    profile: str = "smollm2-cpu",
    data_dir: Path = Path("data"),
    models_dir: Path = Path("models"),
    force: bool = False,
    progress: bool = False,
) -> TrainFn:
    """A `train_fn` for `--train-seeds`: seed k trains `models/axon_lora_<profile>_seed<k>`.

    An adapter whose `train_config.json` exists (written last by `train`) is reused unless
    `force`; an interrupted one resumes from its newest Trainer checkpoint.
    """

    def train_seed(seed: int) -> Path:
        from axon_infralinter.models.train_lora import resolve_config, train

        # Train on the block-level examples next to the test split when they exist (the default
        # recipe, `axon dataset chunks`), else on the file-level splits.
        chunks = data_dir / "chunks"
        train_dir = chunks if (chunks / "chunks_card.json").is_file() else data_dir
        config = resolve_config(
            profile,
            seed=seed,
            data_dir=train_dir,
            output_dir=models_dir / f"axon_lora_{profile}_seed{seed}",
            resume_from_checkpoint=None if force else "last",
        )
        if not force and (config.adapter_dir / "train_config.json").is_file():
            return config.adapter_dir
        return train(config, settings, progress=progress)

    return train_seed


def _default_evaluate() -> tuple[EvaluateFn, type]:
    from axon_infralinter.models import evaluate as evaluate_module

    return evaluate_module.evaluate, evaluate_module.EvalConfig


def _eval_config(eval_config_cls: type, **fields: Any) -> Any:
    """Build an EvalConfig from the fields it has (others keep their defaults)."""
    names = {f.name for f in dataclasses.fields(eval_config_cls)}
    return eval_config_cls(**{k: v for k, v in fields.items() if k in names})


def _adapter_base(adapter: Path | None) -> str | None:
    """The base model recorded in an adapter's train_config.json, if there is one."""
    path = adapter / "train_config.json" if adapter is not None else None
    if path is None or not path.is_file():
        return None
    try:
        base = read_json(path)["config"]["base_model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(base) if base else None


def run_benchmark(
    config: BenchmarkConfig,
    settings: Settings,
    evaluate_fn: EvaluateFn | None = None,
    train_fn: TrainFn | None = None,
    progress: bool = True,
    eval_config_cls: type | None = None,
) -> dict[str, Any]:
    """Run the evaluations of the benchmark, then summarize them.

    Plan, each step one `evaluate` call: (1) the adapter in score mode with the baselines, once
    (score mode, scanners and the constant are deterministic); (2) with `base`, the base model
    zero-shot in score mode, once; (3) generate mode with sampling (`eval_mode="stochastic"`),
    `runs` times, run_id = seed = 1..runs; (4) with `train_seeds`, `train_fn(k)` trains adapter k
    (default `seed_trainer`: folder `models/axon_lora_<profile>_seed<k>`, which names the model)
    and it is evaluated once in score mode. Each evaluation reuses a finished run file
    (evaluate's own resume), so a killed benchmark continues where it stopped; `force` re-runs
    everything. Whether a row is deterministic is read from its run files by `summarize`.

    Args:
        config: What to run.
        settings: Environment settings.
        evaluate_fn: `evaluate(EvalConfig, Settings) -> list[Path]` (default: models.evaluate).
        train_fn: `train_fn(seed) -> adapter folder` (default: `seed_trainer`).
        progress: Show a progress bar on stderr.
        eval_config_cls: The EvalConfig dataclass (default: models.evaluate.EvalConfig).

    Returns:
        {summary, summary_json, summary_md, run_files}.

    Raises:
        InputError: No run file was produced or found.
    """
    if config.train_seeds and train_fn is None:
        train_fn = seed_trainer(
            settings, config.profile, config.data_dir, force=config.force, progress=progress
        )
    if evaluate_fn is None or eval_config_cls is None:
        default_fn, default_cls = _default_evaluate()
        evaluate_fn = evaluate_fn or default_fn
        eval_config_cls = eval_config_cls or default_cls
    common = {
        "data_dir": config.data_dir,
        "runs_dir": config.runs_dir,
        "limit": config.limit,
        "force": config.force,
    }
    adapter = {"adapter": config.adapter, "base_model": config.base_model}
    steps: list[tuple[str, dict[str, Any], Settings]] = [
        (
            "score + baselines",
            {**adapter, "mode": "score", "run_id": 1, "baselines": True},
            settings,
        ),
    ]
    if config.base:
        # No adapter and no LORA_OUTPUT_DIR: evaluate loads the base model alone.
        base_model = config.base_model or _adapter_base(config.adapter or settings.lora_output_dir)
        steps.append(
            (
                "base model zero-shot",
                {"adapter": None, "base_model": base_model, "mode": "score", "run_id": 1},
                dataclasses.replace(settings, lora_output_dir=None),
            )
        )
    sampling = dataclasses.replace(settings, eval_mode="stochastic")
    for k in range(1, config.runs + 1):
        fields = {**adapter, "mode": "generate", "run_id": k, "seed": k}
        if config.generate_limit is not None:
            fields["limit"] = min(config.generate_limit, config.limit or config.generate_limit)
        steps.append((f"generate run {k}", fields, sampling))
    if config.train_seeds:
        for k in range(1, config.runs + 1):
            steps.append((f"adapter seed {k}", {"train_seed": k}, settings))

    run_files: list[Path] = []
    bar = tqdm(steps, desc="benchmark", unit="step", disable=not progress)
    for label, fields, step_settings in bar:
        bar.set_postfix_str(label)
        if "train_seed" in fields:
            assert train_fn is not None
            k = fields["train_seed"]
            fields = {
                "adapter": train_fn(k),
                "base_model": config.base_model,
                "mode": "score",
                "run_id": 1,
            }
        eval_config = _eval_config(eval_config_cls, **{**common, **fields})
        run_files.extend(evaluate_fn(eval_config, step_settings))

    summary = summarize(config.runs_dir, config.label_source, n_boot=config.n_boot)
    json_path, md_path = write_summary(summary, config.runs_dir)
    return {
        "summary": summary,
        "summary_json": json_path,
        "summary_md": md_path,
        "run_files": run_files,
    }
