"""`pairwise.png`: the minimal-pairs score of every row, with its repository-bootstrap 95% CI.

One horizontal bar per (model, mode) of `summary["pairwise"]` (`models.pairwise`); the dotted line
at 0.5 is a judge that cannot tell the broken member of a pair from the fixed one (ties, or
guessing), the solid line at 1 a judge that always ranks the broken member higher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from axon_infralinter.models.figure_style import DPI, model_color, save_figure


def plot_pairwise(summary: dict[str, Any], path: Path) -> Path | None:
    """Draw the pairwise figure; None (nothing written) when the summary has no pairs."""
    pairwise = summary.get("pairwise")
    if not pairwise or not pairwise["rows"]:
        return None
    rows = [r for r in pairwise["rows"] if r["pairwise"] is not None]
    fig = Figure(figsize=(9, 1.6 + 0.5 * len(rows)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    values = [r["pairwise"] for r in rows]
    errors = [
        [v - r["ci"][0] for v, r in zip(values, rows, strict=True)],
        [r["ci"][1] - v for v, r in zip(values, rows, strict=True)],
    ]
    ax.barh(y, values, color=[model_color(r["model"]) for r in rows], height=0.6)
    ax.errorbar(values, y, xerr=errors, fmt="none", ecolor="black", capsize=4, linewidth=1)
    for yi, row in zip(y, rows, strict=True):
        ax.text(
            min(row["ci"][1] + 0.02, 1.01),
            yi,
            f"{row['pairwise']:.3f}  ({row['pairs']} pairs, ties {row['ties']:.0%})",
            va="center",
            fontsize=8,
        )
    ax.axvline(0.5, color="black", linestyle=":", linewidth=1, label="chance (0.5)")
    ax.set_yticks(y, [f"{r['model']} ({r['mode']})" for r in rows])
    ax.set_xlim(0, 1.35)
    ax.set_xlabel("pairwise score: share of pairs whose broken member scores higher (ties ½)")
    ax.set_title("Minimal pairs: the same resource written insecure and fixed (test split)")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)
