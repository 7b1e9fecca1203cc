"""Run E vs run F on the new test files outside run E's training repositories, overall and per cloud.

Reads the two score-mode run files written by `axon evaluate` (run F on `data/v2`, run E on
`data/v2/test_noE`, the same test split minus the files of run E's training repositories), keeps
the files both judged, and writes `e_vs_f.json` and `e_vs_f_roc_auc.png` beside this script.

    .venv/bin/python docs/results/split_v2/compare_e_f.py data/v2/eval_runs_F data/v2/eval_runs_E_noE
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from axon_infralinter.data.labelled import provider_of
from axon_infralinter.models.evaluate import metrics

HERE = Path(__file__).resolve().parent
CLOUDS = ("all", "aws", "azure", "gcp", "other")


def score_run(folder: Path) -> dict[str, Any]:
    """The one score-mode, both-labels, non-constant LLM run of a runs folder."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("eval_*_run1_*.json"))]
    runs = [r for r in runs if r["mode"] == "score" and r["label_source"] == "both"]
    runs = [r for r in runs if not r["labeler"] and r["model"] != "constant"]
    if len(runs) != 1:
        raise SystemExit(f"{folder}: expected one score-mode LLM run, found {len(runs)}")
    return runs[0]


def main(f_dir: str, e_dir: str, test: str = "data/v2/test.jsonl") -> None:
    runs = {"F": score_run(Path(f_dir)), "E": score_run(Path(e_dir))}
    cloud = {}
    for line in Path(test).read_text().splitlines():
        r = json.loads(line)
        types = re.findall(r'^\s*(?:resource|data)\s+"([^"]+)"', r["input_text"], re.M)
        cloud[r["id"]] = provider_of(types)
    shared = {p["id"] for p in runs["E"]["predictions"]} & {
        p["id"] for p in runs["F"]["predictions"]
    }
    out: dict[str, Any] = {}
    for name, run in runs.items():
        out[name] = {}
        for c in CLOUDS:
            ps = [
                p for p in run["predictions"] if p["id"] in shared and c in ("all", cloud[p["id"]])
            ]
            m = metrics(
                [p["y_true"] for p in ps], [p["y_pred"] for p in ps], [p["score"] for p in ps]
            )
            keep = ("f1", "roc_auc", "pr_auc", "mcc", "precision", "recall", "constant_f1")
            out[name][c] = {"n": len(ps), **{k: m[k] for k in keep}}
    (HERE / "e_vs_f.json").write_text(json.dumps(out, indent=1) + "\n")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.38
    for k, name in enumerate(("E", "F")):
        vals = [out[name][c]["roc_auc"] or 0.0 for c in CLOUDS]
        xs = [i + (k - 0.5) * width for i in range(len(CLOUDS))]
        ax.bar(xs, vals, width, label=f"run {name}")
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v + 0.01, f"{v:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(CLOUDS)), [f"{c}\n(n={out['E'][c]['n']})" for c in CLOUDS])
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("ROC-AUC")
    ax.set_title("Run E vs run F, new test files outside run E's training repositories")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(HERE / "e_vs_f_roc_auc.png", dpi=120)
    print(json.dumps({n: {c: round(out[n][c]["roc_auc"] or 0, 3) for c in CLOUDS} for n in out}))  # noqa: T201


if __name__ == "__main__":
    main(*sys.argv[1:])
