"""Run the evaluation several times and aggregate the run files into one honest summary.

Two entry points:

* `summarize(runs_dir)` reads every `eval_*.json` run file (`models.runs.load_runs`), groups them
  by row = (model, mode) and reports, per metric, the mean and sample sd over runs, the per-run
  values and a 95% bootstrap confidence interval over **repositories** (`models.stats`: test
  files of one repository are not independent, so whole repositories are resampled); McNemar's
  test of the fine-tuned model against each scanner and the base model; the prevalence and the
  constant-INSECURE baseline. `write_summary` writes it as `summary.json` and `summary.md`.
  `models.summary_md` renders the markdown.
* `run_benchmark(config, settings)` runs the evaluations (deterministic rows once: the adapter in
  score mode with the scanners and the constant, the base model zero-shot; N sampling seeds in
  generate mode; optionally N adapters trained with different seeds), then summarizes.

Every replicate is drawn from the repositories of all rows (so every row sees the same
replicates and CIs are comparable), and every run of a row is scored on the same replicate and
the per-run metrics are averaged: the interval is for the row's run-averaged metric and reflects
test-set sampling only (the run-to-run spread is the separate `sd`). A deterministic row has one
run, so its interval is simply that run's. Undefined cases follow scikit-learn's
`zero_division=0`: precision, recall, F1 and MCC are 0 when their denominator is 0; ROC-AUC and
PR-AUC are undefined (dropped from that replicate) when the replicate holds one class only, and
`None` for a run whose predictions carry no score (generate mode). A parse failure (`y_pred`
null) counts as a wrong answer.

Examples:
    >>> summary = summarize(Path("data/eval_runs"))          # doctest: +SKIP
    >>> write_summary(summary, Path("data/eval_runs"))       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.files import atomic_write_json, atomic_write_text
from axon_infralinter.models.bow import TFIDF_MODEL
from axon_infralinter.models.eval_config import CONSTANT_MODEL, SCANNERS, EvalConfig
from axon_infralinter.models.evaluate import evaluate
from axon_infralinter.models.metrics import (
    METRICS,
    confusion_counts,
    finite_or_none,
    sample_metrics,
)
from axon_infralinter.models.pairwise import PAIRS_SUBDIR, pairwise_rows
from axon_infralinter.models.runs import (
    SUMMARY_JSON,
    is_deterministic,
    is_labeler,
    load_runs,
    repo_of,
    row_mode,
    run_label_source,
)
from axon_infralinter.models.stats import (
    bootstrap_ci,
    cluster_counts,
    compare_paired,
    difference_ci,
    run_arrays,
)
from axon_infralinter.models.summary_md import LABELER_CAVEAT, render_markdown
from axon_infralinter.schema import EvalRun, read_adapter_meta
from axon_infralinter.settings import Settings

LabelSource = Literal["both", "checkov", "tfsec"]

SUMMARY_MD = "summary.md"


# ----------------------------------------------------------------------------- rows


def model_kind(
    model: str,
) -> Literal["finetuned", "llm", "base", "baseline", "scanner", "constant"]:
    """Which family a model name belongs to (decides table order and figure colours)."""
    if model in SCANNERS:
        return "scanner"
    if model == TFIDF_MODEL:
        return "baseline"
    if model == CONSTANT_MODEL:
        return "constant"
    if model.startswith("axon_lora"):
        return "finetuned"
    if model.endswith("-base") or model.startswith("base"):
        return "base"
    return "llm"


_KIND_ORDER = {"finetuned": 0, "llm": 1, "base": 2, "baseline": 3, "scanner": 4, "constant": 5}
_MODE_ORDER = {"score": 0, "generate": 1, "scan": 2, "constant": 3}


def _row_sort_key(key: tuple[str, str]) -> tuple[int, str, int, str]:
    model, mode = key
    return (_KIND_ORDER[model_kind(model)], model, _MODE_ORDER.get(mode, 4), mode)


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
        "pairwise": _pairwise(runs_dir / PAIRS_SUBDIR, n_boot, seed),
    }
    summary["warnings"] = warnings + summary["warnings"]
    return summary


def _pairwise(folder: Path, n_boot: int, seed: int) -> dict[str, Any] | None:
    """The pairwise rows of the runs over minimal pairs in `folder` (None: no such runs)."""
    runs, _ = load_runs(folder)
    rows = sorted(
        pairwise_rows(runs, n_boot=max(n_boot, 1), seed=seed),
        key=lambda r: _row_sort_key((r["model"], r["mode"])),
    )
    if not rows:
        return None
    return {
        "runs_dir": str(folder),
        "pairs_file": runs[0]["dataset"].get("path"),
        "rows": rows,
        "definition": "share of test pairs whose broken (INSECURE) member gets the higher score; "
        "ties count 1/2; 95% CI: repository bootstrap",
    }


def _summarize_runs(
    runs: list[EvalRun], label_source: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """The summary of runs that share one label source (see `summarize`)."""
    warnings: list[str] = []
    groups: dict[tuple[str, str], list[EvalRun]] = {}
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
            if key != target and model_kind(key[0]) in ("scanner", "base", "baseline"):
                comparisons.append(compare_paired(first, groups[key][0]))
    differences = _differences(groups, target, clusters, counts)

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
        "differences": differences,
        "warnings": warnings,
    }


def _differences(
    groups: dict[tuple[str, str], list[EvalRun]],
    target: tuple[str, str] | None,
    clusters: list[str],
    counts: Any,
) -> list[dict[str, Any]]:
    """F1 and ROC-AUC of the fine-tuned row minus the bag-of-words row's, with a paired
    repository-bootstrap 95% CI (run 1 of each, on the same replicates; none when not both there)."""
    baseline = (TFIDF_MODEL, "score")
    if target is None or baseline not in groups or counts is None:
        return []
    a, b = groups[target][0], groups[baseline][0]
    try:
        intervals = difference_ci(a, b, clusters, counts)
    except ValueError:
        return []  # not the same files: no paired difference
    out = []
    for metric in ("f1", "roc_auc"):
        va, vb = a["metrics"].get(metric), b["metrics"].get(metric)
        out.append({
            "model": target[0], "mode": target[1], "vs_model": baseline[0], "vs_mode": baseline[1],
            "metric": metric,
            "difference": None if va is None or vb is None else float(va) - float(vb),
            "ci": intervals[metric],
        })  # fmt: skip
    return out


def _summarize_row(
    runs: list[EvalRun], clusters: list[str], counts: np.ndarray | None
) -> dict[str, Any]:
    first = runs[0]
    failures = [
        sum(p.get("y_pred") is None for p in r.get("predictions") or [])
        / max(len(r.get("predictions") or []), 1)
        for r in runs
    ]
    seconds = _seconds_per_file(runs)
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
        "metrics": _row_metrics(runs, clusters, counts),
        "confusion": dict(zip(("tn", "fp", "fn", "tp"), _mean_confusion(runs), strict=True)),
        "parse_failure_rate": statistics.fmean(failures),
        "seconds_per_file": statistics.fmean(seconds) if seconds else None,
    }


def _row_metrics(
    runs: list[EvalRun], clusters: list[str], counts: np.ndarray | None
) -> dict[str, dict[str, Any]]:
    """Per metric: mean and sd over the runs' stored values, the values, the bootstrap CI."""
    recomputed: list[dict[str, float | None]] = []
    for run in runs:
        y_true, y_pred, score, _ = run_arrays(run)
        recomputed.append(sample_metrics(y_true.tolist(), y_pred.tolist(), score))
    ci = bootstrap_ci(runs, clusters, counts) if counts is not None else {}
    metrics: dict[str, dict[str, Any]] = {}
    for m in METRICS:
        values = []
        for run, fallback in zip(runs, recomputed, strict=True):
            stored = (run.get("metrics") or {}).get(m, fallback[m])
            if finite_or_none(stored) is not None:
                values.append(float(stored))
        mean, sd = _stat(values)
        metrics[m] = {"mean": mean, "sd": sd, "values": values, "ci": ci.get(m)}
    return metrics


def _mean_confusion(runs: list[EvalRun]) -> list[float]:
    """tn, fp, fn, tp averaged over the runs (stored counts, else recounted)."""
    confusions = []
    for run in runs:
        y_true, y_pred, _, _ = run_arrays(run)
        run_metrics = run.get("metrics") or {}
        # Older run files call it `confusion_matrix`.
        stored = run_metrics.get("confusion") or run_metrics.get("confusion_matrix")
        confusions.append(
            [int(stored[k]) for k in ("tn", "fp", "fn", "tp")]
            if isinstance(stored, dict)
            else confusion_counts(y_true, y_pred)
        )
    mean: list[float] = np.mean(np.array(confusions, dtype=np.float64), axis=0).tolist()
    return mean


def _seconds_per_file(runs: list[EvalRun]) -> list[float]:
    """Mean seconds per file of each run that timed its files."""
    seconds = []
    for run in runs:
        per_file = (run.get("runtime") or {}).get("per_file_mean_s")
        if per_file is None:
            times = [p.get("seconds") for p in run.get("predictions") or []]
            times = [t for t in times if t is not None]
            per_file = statistics.fmean(times) if times else None
        if per_file is not None:
            seconds.append(float(per_file))
    return seconds


# ----------------------------------------------------------------------------- writing


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
    pairs_dir: Path | None = None
    """Also score the minimal pairs of this folder (`axon dataset mutate`) with the adapter, the
    baselines and the base model: the summary's pairwise score (--pairs)."""

    def __post_init__(self) -> None:
        if self.runs <= 0:
            raise ConfigError(f"--runs must be > 0, got {self.runs}")
        if self.limit is not None and self.limit <= 0:
            raise ConfigError(f"--limit must be > 0, got {self.limit}")
        if self.generate_limit is not None and self.generate_limit <= 0:
            raise ConfigError(f"--generate-limit must be > 0, got {self.generate_limit}")
        if self.n_boot < 0:
            raise ConfigError(f"--n-boot must be >= 0, got {self.n_boot}")


EvaluateFn = Callable[[EvalConfig, Settings], list[Path]]
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


def _adapter_base(adapter: Path | None) -> str | None:
    """The base model recorded in an adapter's train_config.json, if there is one."""
    return read_adapter_meta(adapter).base_model if adapter is not None else None


@dataclass(frozen=True)
class _Step:
    """One `evaluate` call of the benchmark."""

    label: str
    """Shown on the progress bar."""
    fields: dict[str, Any]
    """EvalConfig fields on top of the common ones (data, runs folder, limit, force)."""
    settings: Settings
    train_seed: int | None = None
    """Train this seed's adapter first and evaluate it (`fields` is then built from it)."""


def run_benchmark(
    config: BenchmarkConfig,
    settings: Settings,
    evaluate_fn: EvaluateFn = evaluate,
    train_fn: TrainFn | None = None,
    progress: bool = True,
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

    Returns:
        {summary, summary_json, summary_md, run_files}.

    Raises:
        InputError: No run file was produced or found.
    """
    if config.train_seeds and train_fn is None:
        train_fn = seed_trainer(
            settings, config.profile, config.data_dir, force=config.force, progress=progress
        )
    steps = _plan(config, settings)

    common = {
        "data_dir": config.data_dir,
        "runs_dir": config.runs_dir,
        "limit": config.limit,
        "force": config.force,
    }
    run_files: list[Path] = []
    bar = tqdm(steps, desc="benchmark", unit="step", disable=not progress)
    for step in bar:
        bar.set_postfix_str(step.label)
        fields = step.fields
        if step.train_seed is not None:
            assert train_fn is not None
            fields = {
                "adapter": train_fn(step.train_seed),
                "base_model": config.base_model,
                "mode": "score",
                "run_id": 1,
            }
        run_files.extend(evaluate_fn(EvalConfig(**{**common, **fields}), step.settings))

    summary = summarize(config.runs_dir, config.label_source, n_boot=config.n_boot)
    json_path, md_path = write_summary(summary, config.runs_dir)
    return {
        "summary": summary,
        "summary_json": json_path,
        "summary_md": md_path,
        "run_files": run_files,
    }


def _plan(config: BenchmarkConfig, settings: Settings) -> list[_Step]:
    """The benchmark's evaluations, in order (see `run_benchmark`)."""
    adapter = {"adapter": config.adapter, "base_model": config.base_model}
    steps = [
        _Step(
            "score + baselines",
            {**adapter, "mode": "score", "run_id": 1, "baselines": True},
            settings,
        )
    ]
    if config.base:
        # No adapter and no LORA_OUTPUT_DIR: evaluate loads the base model alone.
        base_model = config.base_model or _adapter_base(config.adapter or settings.lora_output_dir)
        steps.append(
            _Step(
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
        steps.append(_Step(f"generate run {k}", fields, sampling))
    if config.train_seeds:
        for k in range(1, config.runs + 1):
            steps.append(_Step(f"adapter seed {k}", {}, settings, train_seed=k))
    if config.pairs_dir is not None:
        # The pairwise score of every row that has scores (score mode, scanners, tfidf-logreg).
        pairs = [s for s in steps if s.fields.get("mode") == "score" and s.train_seed is None]
        steps.extend(
            _Step(f"pairs: {s.label}", {**s.fields, "pairs_dir": config.pairs_dir}, s.settings)
            for s in pairs
        )
    return steps
