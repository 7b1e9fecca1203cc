"""One look for every figure: a model's colour, row labels, the labeler note, PNG writing."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from axon_infralinter.files import atomic_write_bytes
from axon_infralinter.models.benchmark_multi_run import model_kind

DPI = 150
_SCANNER_GREYS = {"checkov": "#555555", "tfsec": "#9a9a9a"}
_OTHER_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728")
FINETUNED_BLUE = "#1f5fbf"
BASE_ORANGE = "#ff7f0e"
_BASELINE_GREEN = "#2ca02c"
_GENERATE_HATCH = "///"


def model_color(model: str) -> str:
    """The colour of a model in every figure.

    Scanners are grey tones, the constant baseline black, the fine-tuned model blue (adapters
    trained with other seeds lighter blues), base models orange, the bag-of-words baseline green, other models a fixed colour
    chosen from a stable hash of the name.
    """
    kind = model_kind(model)
    if kind == "scanner":
        return _SCANNER_GREYS.get(model, "#777777")
    if kind == "constant":
        return "#000000"
    if kind == "finetuned":
        seed = re.search(r"_seed(\d+)$", model)
        if seed is None:
            return FINETUNED_BLUE
        # Seed k: mix the blue with white, 15-60%, cycling, so seeds stay distinct and blue.
        mix = 0.15 + 0.09 * ((int(seed.group(1)) - 1) % 6)
        rgb = np.array(to_rgb(FINETUNED_BLUE))
        return to_hex(rgb + (1 - rgb) * mix)
    if kind == "base":
        return BASE_ORANGE
    if kind == "baseline":
        return _BASELINE_GREEN
    digest = hashlib.sha256(model.encode("utf-8")).digest()
    return _OTHER_COLORS[digest[0] % len(_OTHER_COLORS)]


def row_label(row: dict[str, Any]) -> str:
    """`model (mode)`, with `*` when the model made its own labels."""
    return f"{row['model']} ({row['mode']}){' *' if row['labeler'] else ''}"


def hatch(row: dict[str, Any]) -> str | None:
    return _GENERATE_HATCH if row["mode"] == "generate" else None


def save_figure(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return path


_LABELER_NOTE = "* labeler: this scanner made the labels it is scored on"


def labeler_handles(rows: list[dict[str, Any]]) -> list[Line2D]:
    """An invisible legend entry carrying the labeler note, when a row is a labeler."""
    if not any(r["labeler"] for r in rows):
        return []
    return [Line2D([], [], linestyle="none", label=_LABELER_NOTE)]


def labeler_note(fig: Figure, rows: list[dict[str, Any]]) -> None:
    """The labeler note under the figure (a supxlabel, so the layout keeps room for it)."""
    if any(r["labeler"] for r in rows):
        fig.supxlabel(_LABELER_NOTE, fontsize=8, color="#444444", x=0.01, ha="left")
