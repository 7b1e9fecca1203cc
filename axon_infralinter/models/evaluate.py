"""Evaluate the LLM and the scanner baselines on the test set; write one run file per result.

Run files are `data/eval_runs/eval_<model>_run<N>_<timestamp>.json` (see `run_file_name`), one per
(model, label source). What is written:

- the LLM (`evaluate_llms`), in score mode (P(INSECURE) >= the predictor's threshold) or generate
  mode (free text parsed by `models.predict.parse_label`);
- Checkov and tfsec (`evaluate_baselines`), through `data.scanner.scan_texts` on the exact code
  the records hold, labelled with `data.scanner.apply_policy` restricted to that one tool;
- the constant "always INSECURE" reference (`constant_run`);
- the cross-labeler view (`cross_labeler_views`): every run scored again against labels made by one
  scanner alone, recomputed from the records' stored findings, so a scanner is not only graded by
  labels it made itself. `labeler` is true for a scanner that made the labels it is scored against.

A prediction that could not be made (an unparseable answer, a scanner error) is a parse failure:
`y_pred` is null and it is counted as WRONG in every classification metric (a failure on an
INSECURE file is a false negative, on a SECURE file a false positive), never silently as a class,
so a model cannot gain by refusing to answer. Its rate is reported as `parse_failure_rate`.

A finished run is never recomputed unless `force`: `find_finished_run` finds it by model, run id,
mode, seed, data set hash, label source and a fingerprint of what else decides the predictions
(adapter weights, threshold, decoding settings, label policy).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from axon_infralinter.data import scanner
from axon_infralinter.data.prompt import build_prompt, build_target, split_prompt
from axon_infralinter.errors import ConfigError, InputError
from axon_infralinter.files import atomic_write_json, read_json, sha256_file, sha256_text
from axon_infralinter.models import predict
from axon_infralinter.models.predict import Predictor
from axon_infralinter.schema import LABELS, Label, label_to_int
from axon_infralinter.settings import Settings, load_settings

Mode = Literal["score", "generate"]
LabelSource = Literal["both", "checkov", "tfsec", "external"]

#: Generated tokens per answer: SECURE/INSECURE and up to 3 short finding lines (the spec's 50).
MAX_NEW_TOKENS = 50
#: The two scanners, in the order their runs are written.
SCANNERS: tuple[Literal["checkov"], Literal["tfsec"]] = ("checkov", "tfsec")
#: Model name of the constant "always INSECURE" reference run.
CONSTANT_MODEL = "constant"


@dataclass
class EvalConfig:
    """What `axon evaluate` runs. Defaults are the CLI defaults."""

    data_dir: Path = Path("data")
    """Folder holding `test.jsonl` (--data)."""
    runs_dir: Path = Path("data/eval_runs")
    """Where run files are written and looked up for resuming (--runs-dir)."""
    adapter: Path | None = None
    """LoRA adapter folder (--adapter); None: see `resolve_adapter` (else the base model)."""
    base_model: str | None = None
    """Base model id or folder (--base-model); None: the adapter's own, else the default."""
    mode: Mode = "score"
    """`score`: P(INSECURE) from the answer token; `generate`: parse a generated answer (--mode)."""
    run_id: int = 1
    """Run number N in the file name; repeated runs of one setup differ by it (--run-id)."""
    limit: int | None = None
    """Evaluate only N records, evenly spaced over the file (--limit; see `spaced_sample`)."""
    baselines: bool = False
    """Also run Checkov and tfsec (--baselines)."""
    labels_csv: Path | None = None
    """Evaluate an external folder labelled by a `path,label` CSV instead of test.jsonl (--labels)."""
    force: bool = False
    """Recompute runs that are already finished (--force)."""
    seed: int | None = None
    """Sampling seed for generate mode in stochastic AXON_EVAL_MODE (--seed)."""
    explain: bool = False
    """Score mode: also generate the explanation of files predicted INSECURE (--explain)."""
    batch_size: int = 8
    """Prompts per model call (--batch-size); the predictor's own default."""
    policy: str | None = None
    """Label policy name for baselines and cross-labeler views; None: data.scanner.DEFAULT_POLICY."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.runs_dir = Path(self.runs_dir)
        self.adapter = Path(self.adapter) if self.adapter is not None else None
        self.labels_csv = Path(self.labels_csv) if self.labels_csv is not None else None
        if self.mode not in ("score", "generate"):
            raise ConfigError(f"--mode must be score or generate, got {self.mode!r}")
        if self.run_id < 1:
            raise ConfigError(f"--run-id must be >= 1, got {self.run_id}")
        if self.limit is not None and self.limit <= 0:
            raise ConfigError(f"--limit must be > 0, got {self.limit}")
        if self.batch_size <= 0:
            raise ConfigError(f"--batch-size must be > 0, got {self.batch_size}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        if self.policy is not None:
            resolve_policy(self.policy)


def resolve_policy(name: str | None) -> str:
    """Return the label policy name to use, checked against `data.scanner.POLICIES`.

    Raises:
        ConfigError: unknown policy name.
    """
    resolved = scanner.DEFAULT_POLICY if name is None else name
    if resolved not in scanner.POLICIES:
        valid = ", ".join(sorted(scanner.POLICIES))
        raise ConfigError(f"--policy must be one of {valid}, got {resolved!r}")
    return resolved


# ---------------------------------------------------------------------------------------------
# Metrics


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


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory in MiB of this process (or of its waited-for children)."""
    peak = resource.getrusage(who).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


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


# ---------------------------------------------------------------------------------------------
# Run files


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


def run_path(runs_dir: Path, run: dict[str, Any]) -> Path:
    """Where `run` is (or will be) written."""
    name = run_file_name(
        run["model"], run["run_id"], run["timestamp"], run["label_source"], run["mode"]
    )
    return runs_dir / name


def write_run(runs_dir: Path, run: dict[str, Any]) -> Path:
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


def _fingerprint(parts: dict[str, Any]) -> str:
    return sha256_text(json.dumps(parts, sort_keys=True, default=str))[:16]


def _config_json(config: EvalConfig) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()}


def _label_source(config: EvalConfig) -> LabelSource:
    """Labels of test.jsonl come from both scanners; a CSV's labels come from outside."""
    return "external" if config.labels_csv is not None else "both"


def _source_path(config: EvalConfig) -> Path:
    return config.labels_csv if config.labels_csv is not None else config.data_dir / "test.jsonl"


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
) -> dict[str, Any]:
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
        }
        for r, t, p, s, o, sec in zip(
            records, y_true, y_pred, scores, outputs, seconds, strict=True
        )
    ]
    return {
        "model": model,
        "run_id": config.run_id if run_id is None else run_id,
        "timestamp": timestamp or _timestamp(),
        "mode": mode,
        "seed": seed,
        "deterministic": deterministic,
        "labeler": labeler,
        "label_source": label_source,
        "config": {**_config_json(config), **run_config},
        "dataset": dataset_info(records, _source_path(config)),
        "repos": sorted({r.get("repo", "") for r in records}),
        "metrics": metrics(y_true, y_pred, scores),
        "predictions": predictions,
        "runtime": runtime,
    }


def relabel_run(
    run: dict[str, Any], y_true: Sequence[int], label_source: str, labeler: bool
) -> dict[str, Any]:
    """A copy of `run` scored against other labels: same predictions, new y_true and metrics."""
    predictions = [{**p, "y_true": int(t)} for p, t in zip(run["predictions"], y_true, strict=True)]
    scores = [p["score"] for p in predictions]
    return {
        **run,
        "labeler": labeler,
        "label_source": label_source,
        "metrics": metrics(y_true, [p["y_pred"] for p in predictions], scores),
        "predictions": predictions,
    }


Done = tuple[dict[str, Any], Path]
"""A run and the file it is in."""


def _reuse(
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
    return (read_json(path), path) if path is not None else None


def _write_unless_finished(config: EvalConfig, run: dict[str, Any]) -> Done:
    """Write a cheap derived run (constant, cross-labeler view) unless an identical one exists."""
    found = _reuse(
        config,
        run["model"],
        run_id=run["run_id"],
        mode=run["mode"],
        seed=run["seed"],
        dataset_sha256=run["dataset"]["sha256"],
        label_source=run["label_source"],
        fingerprint=run["config"]["fingerprint"],
    )
    return found if found is not None else (run, write_run(config.runs_dir, run))


# ---------------------------------------------------------------------------------------------
# Inputs


def load_test_records(data_dir: Path) -> list[dict[str, Any]]:
    """Read `data_dir/test.jsonl`.

    Raises:
        InputError: missing, empty or malformed file.
    """
    path = data_dir / "test.jsonl"
    if not path.is_file():
        raise InputError(f"{path} not found: build the data set first (axon dataset build)")
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            missing = [k for k in ("id", "path", "label", "input_text") if k not in record]
            if missing:
                raise InputError(f"{path}:{lineno}: record lacks {', '.join(missing)}")
            if record["label"] not in LABELS:
                raise InputError(f"{path}:{lineno}: label must be SECURE or INSECURE")
            records.append(record)
    if not records:
        raise InputError(f"{path} is empty: no test records to evaluate")
    return records


_CSV_LABELS: dict[str, Label] = {
    "SECURE": "SECURE",
    "INSECURE": "INSECURE",
    "0": "SECURE",
    "1": "INSECURE",
}


def load_labels_csv(csv_path: Path) -> list[dict[str, Any]]:
    """Records for an external folder labelled by a CSV with columns `path,label`.

    Paths are relative to the CSV's folder; labels are SECURE/INSECURE (any case) or 1/0
    (1 = INSECURE). Each record has `id` (`external::<path>`), `repo` = `external`, `path`,
    `sha256` of the file, `label`, `input_text` built by `data.prompt.build_prompt`,
    `target_text` (the bare label) and no `findings`.

    Raises:
        InputError: the CSV is missing or empty, lacks a column, has an unknown label, a
            repeated path, or names a file that does not exist or is not UTF-8 text.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{csv_path}: labels CSV not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{csv_path}: cannot read labels CSV ({e})") from None
    reader = csv.DictReader(text.splitlines())
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise InputError(f"{csv_path}: missing column(s) {', '.join(missing)} (need path,label)")
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in reader:
        lineno = reader.line_num
        rel = (row.get(columns["path"]) or "").strip()
        raw = (row.get(columns["label"]) or "").strip()
        if not rel and not raw:
            continue
        label = _CSV_LABELS.get(raw.upper())
        if label is None:
            raise InputError(
                f"{csv_path}:{lineno}: unknown label {raw!r} (use SECURE/INSECURE or 1/0)"
            )
        if not rel:
            raise InputError(f"{csv_path}:{lineno}: empty path")
        if rel in seen:
            raise InputError(f"{csv_path}:{lineno}: path {rel!r} is listed twice")
        seen.add(rel)
        file = csv_path.parent / rel
        try:
            code = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{csv_path}:{lineno}: no such file {rel!r}") from None
        except IsADirectoryError:
            raise InputError(f"{csv_path}:{lineno}: {rel!r} is a folder, not a file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{csv_path}:{lineno}: cannot read {rel!r} ({e})") from None
        records.append(
            {
                "id": f"external::{Path(rel).as_posix()}",
                "repo": "external",
                "path": Path(rel).as_posix(),
                "sha256": sha256_file(file),
                "label": label,
                "input_text": build_prompt(code),
                "target_text": build_target(label, []),
                "findings": [],
            }
        )
    if not records:
        raise InputError(f"{csv_path}: no rows (need a header path,label and one row per file)")
    return records


# ---------------------------------------------------------------------------------------------
# The LLM


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _adapter_sha256(adapter: Path | None) -> str | None:
    weights = adapter / "adapter_model.safetensors" if adapter is not None else None
    return sha256_file(weights) if weights is not None and weights.is_file() else None


def _train_config(adapter: Path | None) -> dict[str, Any] | None:
    """The adapter's `train_config.json` (written by train()), so a run traces back to it."""
    path = adapter / "train_config.json" if adapter is not None else None
    if path is None or not path.is_file():
        return None
    try:
        loaded = read_json(path)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def check_train_overlap(records: Sequence[dict[str, Any]], adapter: Path | None) -> None:
    """Refuse to evaluate an adapter on files of repositories it was trained on.

    `train()` records the repositories of its training examples (`summary.training_repos` in
    `train_config.json`). A test record whose `repo` is among them would flatter the adapter: the
    data set was rebuilt with another split (e.g. `--provider-weight`) since the adapter was
    trained. Records without `repo` (a `--labels` CSV) and adapters that predate the field pass.

    Raises:
        InputError: some records come from the adapter's training repositories.
    """
    summary = (_train_config(adapter) or {}).get("summary") or {}
    trained = set(summary.get("training_repos") or ())
    overlap = [r for r in records if r.get("repo") in trained]
    if overlap:
        hits = sorted({str(r["repo"]) for r in overlap})
        shown = ", ".join(hits[:3]) + (f" and {len(hits) - 3} more" if len(hits) > 3 else "")
        raise InputError(
            f"{len(overlap)} of {len(records)} test files come from repositories adapter {adapter} was "
            f"trained on ({shown}): evaluate it on the data set it was trained with, or train an "
            "adapter on this one"
        )


def evaluate_llms(
    test_records: Sequence[dict[str, Any]],
    predictor: Predictor,
    config: EvalConfig,
    *,
    settings: Settings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the LLM on `test_records`, write its run file and return the run.

    Score mode: `predictor.score_documents` (the worst block of a long file), INSECURE when P(INSECURE) >= `predictor.threshold`
    (a non-finite score is a failure). Generate mode: `predictor.generate_prompts` with greedy or
    sampled decoding from AXON_EVAL_MODE / AXON_EVAL_TEMPERATURE, answers parsed by
    `models.predict.parse_label`; an unparseable answer is a failure (see `metrics`).
    A finished identical run is returned from its file instead, unless `config.force`.

    Args:
        test_records: Records (`id`, `path`, `label`, `input_text`).
        predictor: A `models.predict.Predictor` (or anything with the same methods).
        config: Evaluation config; `config.adapter` is recorded and fingerprinted.
        settings: Environment settings (default: `load_settings()`).
        progress: Show a progress bar on stderr.

    Returns:
        The run dict, as written to its run file.
    """
    return _evaluate_llm(test_records, predictor, config, settings or load_settings(), progress)[0]


def _evaluate_llm(
    test_records: Sequence[dict[str, Any]],
    predictor: Predictor,
    config: EvalConfig,
    settings: Settings,
    progress: bool,
) -> Done:
    records = list(test_records)
    n = len(records)
    prompts = [r["input_text"] for r in records]
    do_sample = config.mode == "generate" and settings.eval_mode == "stochastic"
    # Greedy decoding ignores the temperature: keep it out of the run's identity.
    temperature = settings.eval_temperature if do_sample else None
    run_config: dict[str, Any] = {
        "base_model_only": config.adapter is None,
        "adapter_sha256": _adapter_sha256(config.adapter),
        "threshold": float(predictor.threshold),
        "eval_mode": settings.eval_mode if config.mode == "generate" else None,
        "do_sample": do_sample,
        "temperature": temperature,
        "max_new_tokens": MAX_NEW_TOKENS if config.mode == "generate" or config.explain else None,
        "train_config": _train_config(config.adapter),
    }
    run_config["fingerprint"] = _fingerprint(
        {
            "model": predictor.name,
            "base_model": config.base_model,
            "adapter_sha256": run_config["adapter_sha256"],
            "threshold": run_config["threshold"],
            "mode": config.mode,
            "explain": config.explain,
            "do_sample": do_sample,
            "temperature": temperature,
            "max_new_tokens": run_config["max_new_tokens"],
            "batch_size": config.batch_size,
            "unit": "worst-block",
        }
    )
    label_source = _label_source(config)
    found = _reuse(
        config,
        predictor.name,
        run_id=config.run_id,
        mode=config.mode,
        seed=config.seed,
        dataset_sha256=dataset_info(records, _source_path(config))["sha256"],
        label_source=label_source,
        fingerprint=run_config["fingerprint"],
    )
    if found is not None:
        return found

    scores: list[float | None] = [None] * n
    y_pred: list[int | None] = [None] * n
    outputs: list[str | None] = [None] * n
    seconds = [0.0] * n
    bar = tqdm(total=n, desc=f"{predictor.name} ({config.mode})", unit="file", disable=not progress)
    tokens_before = getattr(predictor, "tokens_processed", None)
    start = time.perf_counter()
    for k, chunk in enumerate(_chunks(n, config.batch_size)):
        batch = [prompts[i] for i in chunk]
        t0 = time.perf_counter()
        if config.mode == "score":
            # Whole files, judged like `axon scan`: split by block when too long, worst block wins.
            got: list[Any] = list(predictor.score_documents(batch, batch_size=config.batch_size))
        else:
            got = list(
                predictor.generate_prompts(
                    # A long file: generate on its worst block, the unit the model judges.
                    predictor.worst_block_prompts(batch, batch_size=config.batch_size),
                    max_new_tokens=MAX_NEW_TOKENS,
                    do_sample=do_sample,
                    temperature=settings.eval_temperature,
                    # One seed per batch, so batches do not replay the same random stream.
                    seed=None if config.seed is None else config.seed + k,
                    batch_size=config.batch_size,
                )
            )
        if len(got) != len(chunk):
            raise RuntimeError(f"predictor returned {len(got)} results for {len(chunk)} prompts")
        per_file = (time.perf_counter() - t0) / len(chunk)
        for i, value in zip(chunk, got, strict=True):
            seconds[i] = per_file
            if config.mode == "score":
                score = float(value)
                finite = math.isfinite(score)
                scores[i] = score if finite else None
                y_pred[i] = int(score >= predictor.threshold) if finite else None
            else:
                outputs[i] = value
        bar.update(len(chunk))
    bar.close()
    if config.mode == "generate":
        for i, output in enumerate(outputs):
            label = predict.parse_label(output or "")
            y_pred[i] = None if label is None else label_to_int(label)
    elif config.explain:
        flagged = [i for i in range(n) if y_pred[i] == 1]
        for chunk in _chunks(len(flagged), config.batch_size):
            ids = [flagged[j] for j in chunk]
            t0 = time.perf_counter()
            texts = predictor.generate_prompts(
                predictor.worst_block_prompts(
                    [prompts[i] for i in ids], batch_size=config.batch_size
                ),
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False,
                batch_size=config.batch_size,
            )
            per_file = (time.perf_counter() - t0) / len(ids)
            for i, text in zip(ids, texts, strict=True):
                outputs[i] = text
                seconds[i] += per_file
    total_s = time.perf_counter() - start

    runtime = runtime_stats(seconds, total_s)
    # Tokens the model read and wrote (prompt + generated, padding excluded), when it counts them.
    tokens = getattr(predictor, "tokens_processed", None)
    counted = isinstance(tokens, int) and isinstance(tokens_before, int) and total_s > 0
    runtime["tokens_per_s"] = (tokens - tokens_before) / total_s if counted else None
    runtime["peak_rss_mb"] = peak_rss_mb()
    run = make_run(
        model=predictor.name,
        config=config,
        records=records,
        mode=config.mode,
        seed=config.seed,
        labeler=False,
        label_source=label_source,
        run_config=run_config,
        y_pred=y_pred,
        scores=scores,
        outputs=outputs,
        seconds=seconds,
        runtime=runtime,
        deterministic=not do_sample,
    )
    return run, write_run(config.runs_dir, run)


# ---------------------------------------------------------------------------------------------
# Baselines, the constant reference and the cross-labeler view


def scanner_labels(records: Sequence[dict[str, Any]], policy: str, tool: str) -> list[int]:
    """Labels one scanner alone gives each record, from the record's stored findings."""
    labels = []
    for r in records:
        label, _ = scanner.apply_policy(r.get("findings", []), policy, tools=(tool,))
        labels.append(label_to_int(label))
    return labels


def cross_labeler_views(
    run: dict[str, Any],
    records: Sequence[dict[str, Any]],
    policy: str,
    sources: Sequence[str] = SCANNERS,
) -> list[dict[str, Any]]:
    """`run` scored against labels made by each scanner in `sources` alone (not written).

    Labels come from the records' stored findings through `apply_policy(..., tools=(source,))`.
    The view keeps the run's predictions and timestamp; its fingerprint adds the policy and the
    label source to the run's, so a changed policy gives a new view. `labeler` is true where the
    run's model is that scanner.
    """
    if [p["id"] for p in run["predictions"]] != [r["id"] for r in records]:
        raise ValueError("run predictions and records are not in the same order")
    views = []
    for source in sources:
        view = relabel_run(
            run, scanner_labels(records, policy, source), source, labeler=run["model"] == source
        )
        view["config"] = {
            **run["config"],
            "policy": policy,
            "fingerprint": _fingerprint(
                {"base": run["config"].get("fingerprint"), "policy": policy, "source": source}
            ),
        }
        views.append(view)
    return views


def constant_run(
    test_records: Sequence[dict[str, Any]], config: EvalConfig, label_source: str | None = None
) -> dict[str, Any]:
    """The "always INSECURE" reference run (not written). Always run 1: it never varies."""
    records = list(test_records)
    n = len(records)
    return make_run(
        model=CONSTANT_MODEL,
        config=config,
        records=records,
        mode="constant",
        seed=None,
        labeler=False,
        label_source=label_source or _label_source(config),
        run_config={"fingerprint": _fingerprint({"model": CONSTANT_MODEL})},
        y_pred=[1] * n,
        scores=[None] * n,
        outputs=[None] * n,
        seconds=[0.0] * n,
        runtime={**runtime_stats([0.0] * n, 0.0), "tokens_per_s": None, "peak_rss_mb": None},
        run_id=1,
    )


def evaluate_baselines(
    test_records: Sequence[dict[str, Any]],
    config: EvalConfig,
    *,
    settings: Settings | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run Checkov and tfsec on the records' code and write their runs.

    Each record's code is the Terraform inside its `input_text` (what the labels were computed
    on), scanned by `data.scanner.scan_texts` with the shared cache. Per tool: the label is
    `apply_policy(results, policy, tools=(tool,))` and the score is the number of findings the
    policy counted; a scan error is a failure (its message is the prediction's `output`).
    With the data set's own labels ("both"), each tool is also scored against the other tool's
    labels alone (cross-labeler view).

    Returns:
        The runs: checkov, [checkov vs tfsec labels], tfsec, [tfsec vs checkov labels]; each
        written, or reused when finished (unless `config.force`).
    """
    settings = settings or load_settings()
    return [run for run, _ in _baselines(test_records, config, settings, progress)]


def _baselines(
    test_records: Sequence[dict[str, Any]],
    config: EvalConfig,
    settings: Settings,
    progress: bool,
) -> list[Done]:
    records = list(test_records)
    policy = resolve_policy(config.policy)
    label_source = _label_source(config)
    dataset_sha = dataset_info(records, _source_path(config))["sha256"]
    items = [(r["path"], split_prompt(r["input_text"])[1]) for r in records]
    out: list[Done] = []
    for tool in SCANNERS:
        fingerprint = _fingerprint({"model": tool, "policy": policy})
        found = _reuse(
            config,
            tool,
            run_id=config.run_id,
            mode="scanner",
            seed=None,
            dataset_sha256=dataset_sha,
            label_source=label_source,
            fingerprint=fingerprint,
        )
        if found is None:
            scan_config = scanner.ScanConfig(cache_dir=settings.scan_cache, tools=(tool,))
            start = time.perf_counter()
            results = scanner.scan_texts(items, scan_config, progress=progress)
            total_s = time.perf_counter() - start
            y_pred: list[int | None] = []
            scores: list[float | None] = []
            outputs: list[str | None] = []
            for result in results:
                error = result[tool]["error"]
                if error:
                    y_pred.append(None)
                    scores.append(None)
                    outputs.append(error)
                    continue
                label, relevant = scanner.apply_policy(result, policy, tools=(tool,))
                y_pred.append(label_to_int(label))
                scores.append(float(len(relevant)))
                outputs.append(None)
            # One tool process scans a whole batch: its time is spread evenly over the files.
            # Cached files cost ~0 s, so compare speed on a fresh AXON_HOME (see bench/).
            seconds = [total_s / len(records)] * len(records)
            runtime = runtime_stats(seconds, total_s)
            runtime.update(
                tokens_per_s=None,
                # Scanners are child processes: this is the largest one's peak.
                peak_rss_mb=peak_rss_mb(resource.RUSAGE_CHILDREN),
                scan_cache=str(settings.scan_cache),
            )
            versions = sorted({r[tool]["version"] for r in results})
            run = make_run(
                model=tool,
                config=config,
                records=records,
                mode="scanner",
                seed=None,
                labeler=label_source in ("both", tool),
                label_source=label_source,
                run_config={"policy": policy, "tool_version": versions, "fingerprint": fingerprint},
                y_pred=y_pred,
                scores=scores,
                outputs=outputs,
                seconds=seconds,
                runtime=runtime,
            )
            found = (run, write_run(config.runs_dir, run))
        out.append(found)
        if label_source == "both":
            other = [s for s in SCANNERS if s != tool]
            for view in cross_labeler_views(found[0], records, policy, other):
                out.append(_write_unless_finished(config, view))
    return out


# ---------------------------------------------------------------------------------------------
# The stage


def resolve_adapter(config: EvalConfig, settings: Settings) -> Path | None:
    """The adapter to evaluate: --adapter, else LORA_OUTPUT_DIR when it holds an adapter, else
    None: the base model zero-shot.

    No folder is searched beyond these two, so "no adapter" reliably means the base model (the
    benchmark's zero-shot row relies on it); `axon evaluate` may pass its own default adapter.
    """
    if config.adapter is not None:
        return config.adapter
    default = settings.lora_output_dir
    if default is not None and (default / "adapter_config.json").is_file():
        return default
    return None


def spaced_sample(records: Sequence[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """`limit` records evenly spaced over the file (all of them when `limit` is None or larger).

    The test file is grouped by repository, so its first N records would come from a few
    repositories only; items i * n // limit cover the whole file, in order, deterministically.
    """
    n = len(records)
    if limit is None or limit >= n:
        return list(records)
    return [records[i * n // limit] for i in range(limit)]


def evaluate(
    config: EvalConfig, settings: Settings | None = None, *, progress: bool = True
) -> list[Path]:
    """`axon evaluate`: the LLM, the constant reference, optionally the baselines; write runs.

    Loads test.jsonl (or the `--labels` CSV), keeps `--limit` evenly spaced records, loads the
    predictor and evaluates it. With the data set's labels it also writes the cross-labeler
    views (the LLM and the constant against each scanner's labels alone; each scanner against
    the other's). Finished runs are reused unless `--force`.

    The first path is always the LLM's run; its `config.base_model_only` is true when no adapter
    was given or found and the base model was evaluated zero-shot.

    Args:
        config: What to evaluate.
        settings: Environment settings (default: `load_settings()`).
        progress: Show progress bars on stderr.

    Returns:
        Paths of all run files of this evaluation (written now or reused), LLM first.

    Raises:
        InputError: missing/empty test set or bad labels CSV.
        ModelError: the adapter or base model cannot be loaded.
        ConfigError: unknown label policy.
    """
    settings = settings or load_settings()
    if config.labels_csv is not None:
        records = load_labels_csv(config.labels_csv)
    else:
        records = load_test_records(config.data_dir)
    records = spaced_sample(records, config.limit)
    label_source = _label_source(config)
    cross = label_source == "both"
    # Fail on a bad policy before minutes of model work, not after.
    policy = resolve_policy(config.policy) if cross or config.baselines else None
    config = dataclasses.replace(config, adapter=resolve_adapter(config, settings))
    check_train_overlap(records, config.adapter)

    predictor = predict.load_predictor(
        config.adapter, base_model=config.base_model, settings=settings
    )
    llm = _evaluate_llm(records, predictor, config, settings, progress)
    constant = _write_unless_finished(config, constant_run(records, config, label_source))
    done = [llm, constant]
    if policy is not None and cross:
        for run in (llm[0], constant[0]):
            done.extend(
                _write_unless_finished(config, v) for v in cross_labeler_views(run, records, policy)
            )
    if config.baselines:
        done.extend(_baselines(records, config, settings, progress))
    return [path for _, path in done]
