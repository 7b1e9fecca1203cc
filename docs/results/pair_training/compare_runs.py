"""Two adapters (or an adapter and a baseline) on the same test files and the same minimal pairs.

Paired repository-bootstrap 95% CIs of B - A for file ROC-AUC, F1 and MCC (`models.stats`) and
for the pairwise score, and the pairwise score split by whether a pair's rule has at least 5
training pairs (`pairs_by_rule_coverage.py`). Writes the JSON to stdout.

    python docs/results/pair_training/compare_runs.py [--png FIGURE] PAIRS_DIR \
        A_FILES_RUN A_PAIRS_RUN B_FILES_RUN B_PAIRS_RUN [C_FILES_RUN C_PAIRS_RUN ...]

With --png, also a bar chart of file ROC-AUC, F1 and the pairwise scores (all, covered, uncovered).

Every run after the first pair is compared with the first (A), all on the files (and pair members)
that every run judged.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pairs_by_rule_coverage import MIN_TRAIN, broken_rules  # noqa: E402

from axon_infralinter.models.evaluate import metrics  # noqa: E402
from axon_infralinter.models.pairwise import pair_outcomes, pairwise_metrics  # noqa: E402
from axon_infralinter.models.runs import repo_of  # noqa: E402
from axon_infralinter.models.stats import cluster_counts, difference_ci  # noqa: E402

N_BOOT, SEED = 2000, 0


def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _pair_values(run: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """pair_id -> (repository, 1 / 0.5 / 0): the broken member ranked above / tied / below."""
    members: dict[str, dict[str, dict[str, Any]]] = {}
    for p in run["predictions"]:
        if p.get("pair_id") is not None and p.get("role") in ("broken", "clean"):
            members.setdefault(str(p["pair_id"]), {})[p["role"]] = p
    out = {}
    for pair_id, m in members.items():
        if len(m) == 2:
            a, b = (float(m[r]["score"] if m[r].get("score") is not None else m[r]["y_pred"])
                    for r in ("broken", "clean"))  # fmt: skip
            out[pair_id] = (repo_of(m["broken"]), 1.0 if a > b else 0.5 if a == b else 0.0)
    return out


def pairwise_difference(run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, Any]:
    """pairwise(B) - pairwise(A) on the pairs both scored, with a paired repository bootstrap."""
    a, b = _pair_values(run_a), _pair_values(run_b)
    shared = sorted(a.keys() & b.keys())
    repos = sorted({a[k][0] for k in shared})
    index = {r: j for j, r in enumerate(repos)}
    rows = np.array([index[a[k][0]] for k in shared])
    diff = np.array([b[k][1] - a[k][1] for k in shared])
    sums, counts = np.zeros(len(repos)), np.zeros(len(repos))
    np.add.at(sums, rows, diff)
    np.add.at(counts, rows, 1.0)
    draws = cluster_counts(len(repos), N_BOOT, SEED).astype(np.float64)
    replicate = (draws @ sums) / np.maximum(draws @ counts, 1.0)
    low, high = np.quantile(replicate, [0.025, 0.975])
    return {"pairs": len(shared), "difference": float(diff.mean()), "ci": [float(low), float(high)]}


def by_coverage(run: dict[str, Any], pairs_dir: Path) -> dict[str, Any]:
    """The pairwise score on the test pairs whose rule has >= MIN_TRAIN training pairs, and the rest."""
    train = Counter(broken_rules(pairs_dir / "train.jsonl").values())
    rules = broken_rules(pairs_dir / "test.jsonl")
    groups: dict[str, list[float]] = {"covered": [], "uncovered": []}
    for pair_id, (_, value) in _pair_values(run).items():
        if pair_id in rules:
            kind = "covered" if train.get(rules[pair_id], 0) >= MIN_TRAIN else "uncovered"
            groups[kind].append(value)
    return {k: {"pairs": len(v), "pairwise": float(np.mean(v)) if v else None}
            for k, v in groups.items()}  # fmt: skip


def file_metrics(run: dict[str, Any]) -> dict[str, Any]:
    preds = run["predictions"]
    m = metrics([p["y_true"] for p in preds], [p["y_pred"] for p in preds],
                [p["score"] for p in preds])  # fmt: skip
    return {"n": len(preds), "threshold": run["config"].get("threshold"),
            **{k: m[k] for k in ("f1", "roc_auc", "pr_auc", "mcc", "precision", "recall")}}  # fmt: skip


def _shared(loaded: list[tuple[dict, dict]]) -> list[tuple[dict, dict]]:
    """The runs cut to the files every file run judged and the pair members every pairs run scored."""
    files = set.intersection(*({p["id"] for p in f["predictions"]} for f, _ in loaded))
    members = set.intersection(*({p["id"] for p in q["predictions"]} for _, q in loaded))
    return [
        ({**f, "predictions": [p for p in f["predictions"] if p["id"] in files]},
         {**q, "predictions": [p for p in q["predictions"] if p["id"] in members]})
        for f, q in loaded
    ]  # fmt: skip


def main(pairs_dir: str, runs: list[str]) -> dict[str, Any]:
    if len(runs) < 4 or len(runs) % 2:
        raise SystemExit("usage: compare_runs.py PAIRS_DIR A_FILES A_PAIRS B_FILES B_PAIRS ...")
    loaded = _shared([(_load(f), _load(p)) for f, p in zip(runs[::2], runs[1::2], strict=True)])
    rows = []
    for files_run, pairs_run in loaded:
        rows.append({
            "model": files_run["model"],
            "files": file_metrics(files_run),
            "pairs": pairwise_metrics(pair_outcomes(pairs_run), N_BOOT, SEED),
            "pairs_by_coverage": by_coverage(pairs_run, Path(pairs_dir)),
        })  # fmt: skip
    first_files, first_pairs = loaded[0]
    repos = sorted({repo_of(p) for p in first_files["predictions"]})
    counts = cluster_counts(len(repos), N_BOOT, SEED)
    differences = []
    for (files_run, pairs_run), row in zip(loaded[1:], rows[1:], strict=True):
        ci = difference_ci(files_run, first_files, repos, counts)
        differences.append({
            "model": row["model"], "vs": rows[0]["model"],
            **{k: {"difference": row["files"][k] - rows[0]["files"][k], "ci": ci[k]}
               for k in ("roc_auc", "f1", "mcc")},
            "pairwise": pairwise_difference(first_pairs, pairs_run),
        })  # fmt: skip
    return {"pairs_dir": pairs_dir, "min_train_pairs": MIN_TRAIN, "bootstrap": N_BOOT,
            "rows": rows, "differences": differences}  # fmt: skip


def figure(result: dict[str, Any], path: Path) -> None:
    """Bars per row: file ROC-AUC and F1, pairwise on all, covered and uncovered test pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    cover = rows[0]["pairs_by_coverage"]
    groups = [
        ("file ROC-AUC", lambda r: r["files"]["roc_auc"]),
        ("file F1", lambda r: r["files"]["f1"]),
        (f"pairwise\n(all {rows[0]['pairs']['pairs']})", lambda r: r["pairs"]["pairwise"]),
        (f"pairwise, covered\n({cover['covered']['pairs']})",
         lambda r: r["pairs_by_coverage"]["covered"]["pairwise"]),
        (f"pairwise, uncovered\n({cover['uncovered']['pairs']})",
         lambda r: r["pairs_by_coverage"]["uncovered"]["pairwise"]),
    ]  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(rows)
    for k, row in enumerate(rows):
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(groups))]
        vals = [get(row) or 0.0 for _, get in groups]
        ax.bar(xs, vals, width, label=row["model"])
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=8)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.15)
    ax.set_title(f"Same test files ({rows[0]['files']['n']}) and pairs; covered = rule has "
                 f">= {MIN_TRAIN} training pairs", fontsize=9)  # fmt: skip
    ax.legend(loc="upper center", ncol=len(rows), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    args = sys.argv[1:]
    png = None
    if args[:1] == ["--png"]:
        png, args = Path(args[1]), args[2:]
    out = main(args[0], args[1:])
    if png is not None:
        figure(out, png)
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
