"""File ROC-AUC against pairwise score, one point per run, from a `compare_runs.py` JSON.

    python docs/results/pair_training/frontier.py docs/results/pair_training/anchor_ablation.json \
        docs/results/pair_training/anchor_frontier.png

Vertical bars: the pairwise score's repository-bootstrap 95% CI. Runs with the anchor term are
drawn as squares; the arrows join P05 to A05 (the anchor added), then the anchored runs in the order
of pair weight and steps (A05, A2, A8, A8L).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "axon_lora_default": "run E (shipped)",
    "S1": "S1: no pairs",
    "P05": "P05: pairs x0.5",
    "A05": "A05: pairs x0.5 + anchor",
    "H2": "H2: pairs x2, 200 steps",
    "A2": "A2: pairs x2 + anchor",
    "A8": "A8: pairs x8 + anchor",
    "A8L": "A8L: pairs x8 + anchor, 200 steps",
    "tfidf-logreg": "tfidf-logreg",
}
ANCHORED = {"A05", "A2", "A8", "A8L"}
ARROWS = (("P05", "A05"), ("A05", "A2"), ("A2", "A8"), ("A8", "A8L"))


def main(source: str, target: str) -> None:
    rows = {r["model"]: r for r in json.loads(Path(source).read_text(encoding="utf-8"))["rows"]}
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, row in rows.items():
        x, y = row["files"]["roc_auc"], row["pairs"]["pairwise"]
        low, high = row["pairs"]["ci"]
        marker = "s" if name in ANCHORED else "D" if name == "tfidf-logreg" else "o"
        ax.errorbar(x, y, yerr=[[y - low], [high - y]], fmt=marker, capsize=3, markersize=7)
        ax.annotate(LABELS.get(name, name), (x, y), textcoords="offset points", xytext=(6, 4),
                    fontsize=8)  # fmt: skip
    for a, b in ARROWS:
        if a in rows and b in rows:
            start = (rows[a]["files"]["roc_auc"], rows[a]["pairs"]["pairwise"])
            end = (rows[b]["files"]["roc_auc"], rows[b]["pairs"]["pairwise"])
            ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": "grey"})
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("file ROC-AUC (320 v2 test files)")
    ax.set_ylabel("pairwise score (228 test pairs), 95% CI")
    ax.set_title("Pair training from run E, 100 steps unless said: ranking vs attribute")
    fig.tight_layout()
    fig.savefig(target, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
