"""Synthetic eval run files (the DESIGN.md contract) for the benchmark and plotting tests.

Metrics are computed here with scikit-learn, independently of the code under test.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

# (id, path, y_true)
File = tuple[str, str, int]
# (y_pred or None, score or None)
Answer = tuple[int | None, float | None]


def make_files(n_repos: int, files_per_repo: int, prevalence: float, seed: int = 0) -> list[File]:
    """Test files `owner/repoK::modules/fJ.tf`, about `prevalence` of them INSECURE."""
    rng = np.random.default_rng(seed)
    files = []
    for r in range(n_repos):
        for j in range(files_per_repo):
            path = f"modules/f{j}.tf"
            files.append((f"owner/repo{r}::{path}", path, int(rng.random() < prevalence)))
    return files


def noisy_answers(
    files: list[File],
    accuracy: float,
    seed: int,
    with_score: bool = True,
    parse_failures: float = 0.0,
) -> list[Answer]:
    """Answers right with probability `accuracy`; scores that rank roughly by the truth."""
    rng = np.random.default_rng(seed)
    out: list[Answer] = []
    for _, _, y in files:
        if rng.random() < parse_failures:
            out.append((None, None if not with_score else float(rng.random())))
            continue
        pred = y if rng.random() < accuracy else 1 - y
        score = float(np.clip(0.5 + (0.3 if pred else -0.3) + rng.normal(0, 0.15), 0, 1))
        out.append((pred, round(score, 4) if with_score else None))
    return out


def sk_metrics(y_true: list[int], answers: list[Answer]) -> dict[str, Any]:
    """The run file's metrics, by scikit-learn; parse failures count as wrong answers."""
    y_pred = [1 - t if p is None else p for t, (p, _) in zip(y_true, answers, strict=True)]
    scores = [s for _, s in answers]
    tn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == 0 and p == 0)
    fp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == 0 and p == 1)
    fn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == 1 and p == 0)
    tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == 1 and p == 1)
    has_score = all(s is not None for s in scores) and len(set(y_true)) == 2
    prevalence = statistics.fmean(y_true)
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "precision": precision_score(y_true, y_pred, zero_division=0),
        "recall": recall_score(y_true, y_pred, zero_division=0),
        "f1": f1_score(y_true, y_pred, zero_division=0),
        "mcc": matthews_corrcoef(y_true, y_pred),
        "roc_auc": roc_auc_score(y_true, scores) if has_score else None,
        "pr_auc": average_precision_score(y_true, scores) if has_score else None,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "parse_failure_rate": sum(p is None for p, _ in answers) / len(answers),
        "prevalence": prevalence,
        "constant_f1": 2 * prevalence / (1 + prevalence),
        "n": len(y_true),
    }


def write_run(
    runs_dir: Path,
    model: str,
    mode: str,
    run_id: int,
    files: list[File],
    answers: list[Answer],
    *,
    seconds: float = 0.1,
    label_source: str = "both",
    labeler: bool | None = None,
    deterministic: bool | None = None,
    metrics: dict[str, Any] | None = None,
    timestamp: str = "20250101T000000Z",
) -> Path:
    """Write one run file `eval_<model>_run<N>_<timestamp>.json` and return its path."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    y_true = [y for _, _, y in files]
    if labeler is None:
        labeler = model in ("checkov", "tfsec") and label_source in ("both", model)
    run: dict[str, Any] = {
        "model": model,
        "run_id": run_id,
        "timestamp": timestamp,
        "mode": mode,
        "seed": run_id if mode == "generate" else None,
        "config": {"profile": "smollm2-cpu"},
        "dataset": {"path": "data/test.jsonl", "sha256": "ab" * 32, "size": len(files)},
        "metrics": metrics if metrics is not None else sk_metrics(y_true, answers),
        "predictions": [
            {
                "id": fid,
                "path": path,
                "y_true": y,
                "y_pred": pred,
                "score": score,
                "output": None if pred is None else ("INSECURE" if pred else "SECURE"),
                "parsed": pred is not None,
                "seconds": seconds,
            }
            for (fid, path, y), (pred, score) in zip(files, answers, strict=True)
        ],
        "runtime": {
            "total_s": seconds * len(files),
            "per_file_mean_s": seconds,
            "per_file_median_s": seconds,
            "per_file_p95_s": seconds,
            "peak_rss_mb": 500.0,
        },
        "labeler": labeler,
        "label_source": label_source,
    }
    if deterministic is not None:
        run["deterministic"] = deterministic
    path = runs_dir / f"eval_{model}_run{run_id}_{timestamp}.json"
    if label_source != "both":
        path = runs_dir / f"eval_{model}-{label_source}_run{run_id}_{timestamp}.json"
    if mode == "generate":
        path = path.with_name(path.name.replace("_run", "-generate_run"))
    path.write_text(json.dumps(run), encoding="utf-8")
    return path


def write_study(runs_dir: Path, n_generate_runs: int = 5) -> list[File]:
    """A realistic folder: fine-tuned (score + sampled generate runs), base, two scanners,
    constant, scored on labels of both scanners; plus cross-labeler scanner runs."""
    files = make_files(n_repos=12, files_per_repo=8, prevalence=0.6, seed=1)
    insecure = [(1, 1.0) for _ in files]
    scanner_exact = [(y, float(3 * y)) for _, _, y in files]
    write_run(
        runs_dir,
        "axon_lora_smollm2-cpu",
        "score",
        1,
        files,
        noisy_answers(files, 0.85, 11),
        seconds=0.9,
        deterministic=True,
    )
    for k in range(1, n_generate_runs + 1):
        write_run(
            runs_dir,
            "axon_lora_smollm2-cpu",
            "generate",
            k,
            files,
            noisy_answers(files, 0.78, 100 + k, with_score=False, parse_failures=0.03),
            seconds=2.4,
            deterministic=False,
        )
    write_run(
        runs_dir, "smollm2-base", "score", 1, files, noisy_answers(files, 0.55, 21), seconds=0.8
    )
    write_run(runs_dir, "checkov", "scan", 1, files, noisy_answers(files, 0.9, 31), seconds=0.05)
    write_run(runs_dir, "tfsec", "scan", 1, files, scanner_exact, seconds=0.012)
    write_run(runs_dir, "constant", "constant", 1, files, insecure, seconds=0.0)
    # Cross-labeler view: labels from checkov only, so tfsec does not score itself.
    write_run(
        runs_dir,
        "tfsec",
        "scan",
        1,
        files,
        noisy_answers(files, 0.8, 41),
        seconds=0.012,
        label_source="checkov",
    )
    return files


def write_training_log(path: Path, steps: int = 60) -> Path:
    """A training_log.jsonl with step, loss, val_loss (every 10 steps), lr, tokens_per_s."""
    rng = np.random.default_rng(0)
    lines = []
    for step in range(1, steps + 1):
        row: dict[str, Any] = {
            "step": step,
            "loss": float(2.5 * np.exp(-step / 20) + 0.3 + rng.normal(0, 0.05)),
            "lr": 2e-4 * min(1.0, step / 10) * (1 - step / (steps + 1)),
            "tokens_per_s": float(180 + rng.normal(0, 10)),
        }
        if step % 10 == 0:
            row["val_loss"] = float(2.3 * np.exp(-step / 25) + 0.45)
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
