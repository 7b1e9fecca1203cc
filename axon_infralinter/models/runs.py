"""Eval run files: their names, their content, finding a finished one, writing and reading them.

A run file is `data/eval_runs/eval_<model>_run<N>_<timestamp>.json` (see `run_file_name`), the
`schema.EvalRun` contract of DESIGN.md. `make_run` assembles one (and computes its metrics),
`write_run` writes it atomically, `find_finished_run` / `reuse` find a finished identical one so
that an evaluation resumes, and `load_runs` reads a folder of them for the benchmark summary and
the figures. The helpers at the end (`row_mode`, `repo_of`, `is_labeler`, ...) read fields that
older run files may lack.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import resource
import statistics
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, cast

from axon_infralinter.files import atomic_write_json, read_json, sha256_text
from axon_infralinter.models.eval_config import CONSTANT_MODEL, SCANNERS, EvalConfig
from axon_infralinter.models.metrics import metrics
from axon_infralinter.schema import EvalRun, label_to_int, read_eval_run

#: The benchmark summary written beside the run files; never read as a run.
SUMMARY_JSON = "summary.json"
PAIR_KEYS = ("pair_id", "role")
"""Record keys a prediction copies from a pair member."""

Done = tuple[EvalRun, Path]
"""A run and the file it is in."""


# ---------------------------------------------------------------------------------------------
# Names and files


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_slug(model: str) -> str:
    """`model` made safe for a file name: `HuggingFaceTB/SmolLM2-135M` -> `HuggingFaceTB-SmolLM2-135M`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"


def run_file_name(
    model: str, run_id: int, timestamp: str, label_source: str = "both", mode: str = "score"
) -> str:
    """File name of a run: `eval_<model>_run<N>_<YYYYmmddTHHMMSSZ>.json`.

    Runs scored against other labels than the data set's own (the cross-labeler view, an external
    CSV) carry the label source after the model, and generate-mode runs `-generate`
    (`eval_axon_lora_smollm2-cpu-tfsec-generate_run1_...json`), so two runs of one model
    finished in the same second never overwrite each other.
    """
    stamp = timestamp.replace("-", "").replace(":", "")
    name = model_slug(model)
    if label_source != "both":
        name = f"{name}-{label_source}"
    if mode == "generate":
        name = f"{name}-generate"
    return f"eval_{name}_run{run_id}_{stamp}.json"


def run_path(runs_dir: Path, run: EvalRun) -> Path:
    """Where `run` is (or will be) written."""
    name = run_file_name(
        run["model"], run["run_id"], run["timestamp"], run_label_source(run), run["mode"]
    )
    return runs_dir / name


def write_run(runs_dir: Path, run: EvalRun) -> Path:
    """Atomically write a run file; returns its path."""
    path = run_path(runs_dir, run)
    atomic_write_json(path, run)
    return path


def find_finished_run(
    runs_dir: Path,
    model: str,
    run_id: int,
    *,
    mode: str,
    seed: int | None,
    dataset_sha256: str,
    label_source: str = "both",
    fingerprint: str | None = None,
) -> Path | None:
    """The newest run file with the same model, run id, mode, seed, data set and label source.

    Run files are written atomically, so any file found is a finished run. Files that are not
    run files (unreadable, other JSON) are ignored.

    Args:
        runs_dir: Folder of run files.
        model: Model name as written in the run (`predictor.name`, `checkov`, ...).
        run_id: Run number.
        mode: `score`, `generate`, `scanner` or `constant`.
        seed: Seed of the run (None for none).
        dataset_sha256: `dataset.sha256` of the run (hash of the evaluated records).
        label_source: Which labels it was scored against.
        fingerprint: When given, `config.fingerprint` must match too (adapter weights, threshold,
            decoding, policy: whatever else decides the predictions).

    Returns:
        The path, or None when there is no such run.
    """
    if not runs_dir.is_dir():
        return None
    found: list[tuple[str, Path]] = []
    for path in runs_dir.glob(f"eval_{model_slug(model)}*_run{run_id}_*.json"):
        # Only the identity fields are compared, so this reads leniently: any JSON object.
        try:
            run = read_json(path)
        except (OSError, ValueError):
            continue
        if not isinstance(run, dict):
            continue
        config = run.get("config") if isinstance(run.get("config"), dict) else {}
        dataset = run.get("dataset") if isinstance(run.get("dataset"), dict) else {}
        if (
            run.get("model") == model
            and run.get("run_id") == run_id
            and run.get("mode") == mode
            and run.get("seed") == seed
            and run.get("label_source", "both") == label_source
            and dataset.get("sha256") == dataset_sha256
            and (fingerprint is None or config.get("fingerprint") == fingerprint)
        ):
            found.append((str(run.get("timestamp", "")), path))
    return max(found)[1] if found else None


# ---------------------------------------------------------------------------------------------
# Content


def dataset_info(records: Sequence[dict[str, Any]], source: Path) -> dict[str, Any]:
    """`{path, sha256, size}` of the evaluated records.

    `sha256` hashes what the evaluation depends on (id, label, input_text, findings of each
    evaluated record, in order), so `--limit`, a rebuilt data set or an edited external file all
    give a different hash, and a resumed run is one made on exactly these inputs.
    """
    canonical = json.dumps(
        [[r["id"], r["label"], r["input_text"], r.get("findings", [])] for r in records],
        sort_keys=True,
        ensure_ascii=False,
    )
    return {"path": str(source), "sha256": sha256_text(canonical), "size": len(records)}


def fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of what decides a run's predictions (its `config.fingerprint`)."""
    return sha256_text(json.dumps(parts, sort_keys=True, default=str))[:16]


def _config_json(config: EvalConfig) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()}


def make_run(
    *,
    model: str,
    config: EvalConfig,
    records: Sequence[dict[str, Any]],
    mode: str,
    seed: int | None,
    labeler: bool,
    label_source: str,
    run_config: dict[str, Any],
    y_pred: Sequence[int | None],
    scores: Sequence[float | None],
    outputs: Sequence[str | None],
    seconds: Sequence[float],
    runtime: dict[str, Any],
    deterministic: bool = True,
    run_id: int | None = None,
    timestamp: str | None = None,
) -> EvalRun:
    """Assemble a run dict (the run-file contract) and compute its metrics.

    `y_true` comes from each record's `label`; `parsed` is `y_pred is not None`; `run_id`
    defaults to `config.run_id`; `deterministic` says whether repeating the run gives the same
    predictions (false only for sampled generation).
    """
    y_true = [label_to_int(r["label"]) for r in records]
    predictions = [
        {
            "id": r["id"],
            "path": r["path"],
            "y_true": t,
            "y_pred": p,
            "score": s,
            "output": o,
            "parsed": p is not None,
            "seconds": sec,
            # A pair member (`axon evaluate --pairs`) keeps its pair: the pairwise score needs it.
            **{key: r[key] for key in PAIR_KEYS if key in r},
        }
        for r, t, p, s, o, sec in zip(
            records, y_true, y_pred, scores, outputs, seconds, strict=True
        )
    ]
    run = {
        "model": model,
        "run_id": config.run_id if run_id is None else run_id,
        "timestamp": timestamp or _timestamp(),
        "mode": mode,
        "seed": seed,
        "deterministic": deterministic,
        "labeler": labeler,
        "label_source": label_source,
        "config": {**_config_json(config), **run_config},
        "dataset": dataset_info(records, config.source_path),
        "repos": sorted({r.get("repo", "") for r in records}),
        "metrics": metrics(y_true, y_pred, scores),
        "predictions": predictions,
        "runtime": runtime,
    }
    return cast(EvalRun, run)


def relabel_run(run: EvalRun, y_true: Sequence[int], label_source: str, labeler: bool) -> EvalRun:
    """A copy of `run` scored against other labels: same predictions, new y_true and metrics."""
    predictions = [{**p, "y_true": int(t)} for p, t in zip(run["predictions"], y_true, strict=True)]
    scores = [p["score"] for p in predictions]
    relabelled = {
        **run,
        "labeler": labeler,
        "label_source": label_source,
        "metrics": metrics(y_true, [p["y_pred"] for p in predictions], scores),
        "predictions": predictions,
    }
    return cast(EvalRun, relabelled)


def runtime_stats(seconds: Sequence[float], total_s: float) -> dict[str, Any]:
    """Wall time of a run: total and per-file mean, median and 95th percentile, in seconds."""
    ordered = sorted(seconds)
    # Nearest-rank 95th percentile: a time some file actually took.
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0
    return {
        "total_s": total_s,
        "per_file_mean_s": statistics.fmean(ordered) if ordered else 0.0,
        "per_file_median_s": statistics.median(ordered) if ordered else 0.0,
        "per_file_p95_s": p95,
    }


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory in MiB of this process (or of its waited-for children)."""
    peak = resource.getrusage(who).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


# ---------------------------------------------------------------------------------------------
# Resume


def reuse(
    config: EvalConfig,
    model: str,
    *,
    run_id: int,
    mode: str,
    seed: int | None,
    dataset_sha256: str,
    label_source: str,
    fingerprint: str,
) -> Done | None:
    """The finished run to reuse, or None when it must be computed (none, or --force)."""
    if config.force:
        return None
    path = find_finished_run(
        config.runs_dir,
        model,
        run_id,
        mode=mode,
        seed=seed,
        dataset_sha256=dataset_sha256,
        label_source=label_source,
        fingerprint=fingerprint,
    )
    return (read_eval_run(path), path) if path is not None else None


def write_unless_finished(config: EvalConfig, run: EvalRun) -> Done:
    """Write a cheap derived run (constant, cross-labeler view) unless an identical one exists."""
    found = reuse(
        config,
        run["model"],
        run_id=run["run_id"],
        mode=run["mode"],
        seed=run["seed"],
        dataset_sha256=run["dataset"]["sha256"],
        label_source=run_label_source(run),
        fingerprint=run["config"]["fingerprint"],
    )
    return found if found is not None else (run, write_run(config.runs_dir, run))


# ---------------------------------------------------------------------------------------------
# Reading a folder of runs


def load_runs(runs_dir: Path) -> tuple[list[EvalRun], list[str]]:
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
        # Leniently, unlike `schema.read_eval_run`: files of older versions lack `mode` or
        # `metrics`, which `row_mode` and the summary's metric fallback supply.
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
    return [cast(EvalRun, run) for run in by_key.values()], warnings


def row_mode(run: Mapping[str, Any]) -> str:
    """The mode of a run; scanners and the constant baseline get theirs when it is missing."""
    mode = run.get("mode")
    if mode:
        return str(mode)
    model = str(run.get("model"))
    if model in SCANNERS:
        return "scan"
    return "constant" if model == CONSTANT_MODEL else "score"


def repo_of(prediction: Mapping[str, Any]) -> str:
    """The repository (bootstrap cluster) of a prediction: `id` before `::`, else the first
    path component of `path` (or of `id`)."""
    pid = str(prediction.get("id", ""))
    if "::" in pid:
        return pid.split("::", 1)[0]
    parts = PurePosixPath(str(prediction.get("path") or pid)).parts
    return parts[0] if parts else pid


def run_label_source(run: Mapping[str, Any]) -> str:
    """The labels a run was scored against; old files without the field used both scanners."""
    return str(run.get("label_source") or "both")


def is_labeler(run: EvalRun) -> bool:
    """True when the run's model made (part of) the labels it is scored against."""
    labeler = run.get("labeler")
    if labeler is not None:
        return bool(labeler)
    source = run_label_source(run)
    return run["model"] in SCANNERS and source in ("both", run["model"])


def is_deterministic(run: EvalRun) -> bool:
    """True for a run whose repetition gives the same predictions (score, scanners, constant,
    greedy generate); the run file's own `deterministic` field wins."""
    deterministic = run.get("deterministic")
    if deterministic is not None:
        return bool(deterministic)
    if row_mode(run) != "generate":
        return True
    config = run.get("config") or {}
    return config.get("eval_mode", "deterministic") != "stochastic" and not config.get("do_sample")
