"""Figures and a REPORT.md from the eval run files of `data/eval_runs/`.

`make_plots(runs_dir, out_dir)` writes, into `out_dir`:

* `f1_boxplot.png` – F1 per row across runs, each run a point, the constant baseline dashed;
* `metrics_comparison.png` – accuracy, precision, recall, F1 per row with bootstrap 95% CIs;
* `runtime_comparison.png` – seconds per test file per row, log scale;
* `confusion_matrices.png` – one annotated confusion matrix per row;
* `pairwise.png` – the minimal-pairs score per row (only with pairs runs, `axon evaluate --pairs`);
* `pr_curve.png` – precision–recall and ROC curves of score-mode rows, operating points of the
  rest (scanners, generate mode, the constant baseline);
* `training_loss.png` – train and target-token validation loss, learning rate, tokens/s from a
  `training_log.jsonl` (only when one is given and holds steps);
* `REPORT.md` – the summary tables and every figure, with what each row means.

Rows are (model, mode) as in `benchmark_multi_run`; a row whose model made the labels it is
scored on is marked `*` (see the labeler caveat). Colours come from one function, `model_color`,
so a model has the same colour in every figure. Figures are drawn on `matplotlib.figure.Figure`
objects with the Agg canvas (no pyplot, no global backend switch) and written atomically.

Examples:
    >>> make_plots(Path("data/eval_runs"), Path("figures"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from axon_infralinter.errors import InputError
from axon_infralinter.files import atomic_write_text
from axon_infralinter.models.benchmark_multi_run import summarize
from axon_infralinter.models.eval_config import CONSTANT_MODEL
from axon_infralinter.models.figure_style import (
    BASE_ORANGE,
    DPI,
    FINETUNED_BLUE,
    hatch,
    labeler_handles,
    labeler_note,
    model_color,
    row_label,
    save_figure,
)
from axon_infralinter.models.runs import load_runs, row_mode, run_label_source
from axon_infralinter.models.summary_md import LABELER_CAVEAT, render_markdown
from axon_infralinter.models.visualize_pairwise import plot_pairwise
from axon_infralinter.schema import EvalRun

#: Metrics of the grouped bar chart, with their axis names.
BAR_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
)

# ----------------------------------------------------------------------------- figures


def plot_f1_boxplot(summary: dict[str, Any], path: Path) -> Path:
    """F1 across runs per row (boxes, every run a jittered point), constant baseline dashed."""
    rows = [r for r in summary["rows"] if r["model"] != CONSTANT_MODEL]
    fig = Figure(figsize=(10, 1.6 + 0.55 * max(len(rows), 1)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # jitter only; fixed so figures are reproducible
    positions = np.arange(len(rows))[::-1]
    for pos, row in zip(positions, rows, strict=True):
        values = row["metrics"]["f1"]["values"]
        color = model_color(row["model"])
        if not values:
            continue
        box = ax.boxplot(
            values,
            positions=[pos],
            orientation="horizontal",
            widths=0.5,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black"},
        )
        for patch in box["boxes"]:
            patch.set_facecolor(color)
            patch.set_alpha(0.35)
            patch.set_hatch(hatch(row))
        jitter = rng.uniform(-0.15, 0.15, size=len(values))
        ax.scatter(
            values, pos + jitter, color=color, edgecolor="black", linewidth=0.5, s=28, zorder=3
        )
        ax.annotate(
            f"n={len(values)}",
            (1.0, pos),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(positions, [row_label(r) for r in rows])
    if summary.get("constant_f1") is not None:
        ax.axvline(
            summary["constant_f1"],
            color="black",
            linestyle="--",
            linewidth=1.2,
            label=f"constant INSECURE baseline (F1 = {summary['constant_f1']:.3f})",
        )
    handles = ax.get_legend_handles_labels()[0] + labeler_handles(rows)
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            frameon=False,
            fontsize=9,
            ncols=len(handles),
        )
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("F1 on the test set (INSECURE = positive class; 0–1)")
    ax.set_title(f"F1 across runs per model (labels: {summary['label_source']})")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def plot_metrics_comparison(summary: dict[str, Any], path: Path) -> Path:
    """Grouped bars of accuracy, precision, recall and F1 per row, bootstrap 95% CI whiskers."""
    rows = summary["rows"]
    fig = Figure(figsize=(12, 5.5), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(BAR_METRICS))
    for i, row in enumerate(rows):
        means, low_err, high_err = [], [], []
        for metric, _ in BAR_METRICS:
            entry = row["metrics"][metric]
            mean = entry["mean"] if entry["mean"] is not None else np.nan
            ci = entry.get("ci") or [mean, mean]
            means.append(mean)
            low_err.append(max(mean - ci[0], 0.0))
            high_err.append(max(ci[1] - mean, 0.0))
        ax.bar(
            x - 0.4 + width * (i + 0.5),
            means,
            width,
            yerr=[low_err, high_err],
            capsize=2,
            color=model_color(row["model"]),
            edgecolor="black",
            linewidth=0.5,
            hatch=hatch(row),
            label=row_label(row),
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(x, [name for _, name in BAR_METRICS])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score (0–1, higher is better)")
    ax.set_title(
        f"Metrics per model, mean over runs with bootstrap 95% CI over repositories "
        f"(labels: {summary['label_source']})"
    )
    ax.grid(axis="y", alpha=0.3)
    handles = ax.get_legend_handles_labels()[0] + labeler_handles(rows)
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="model (mode)")
    return save_figure(fig, path)


def plot_runtime(summary: dict[str, Any], path: Path) -> Path:
    """Seconds per test file per row on a log axis (untimed rows, e.g. constant, left out)."""
    rows = [r for r in summary["rows"] if (r["seconds_per_file"] or 0) > 0]
    fig = Figure(figsize=(10, 1.6 + 0.5 * max(len(rows), 1)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(rows))[::-1]
    for pos, row in zip(positions, rows, strict=True):
        seconds = row["seconds_per_file"]
        ax.barh(
            pos,
            seconds,
            color=model_color(row["model"]),
            edgecolor="black",
            linewidth=0.5,
            hatch=hatch(row),
            height=0.6,
        )
        ax.annotate(
            f"{seconds:.3g} s",
            (seconds, pos),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(positions, [row_label(r) for r in rows])
    ax.set_xscale("log")
    if rows:
        values = [r["seconds_per_file"] for r in rows]
        # Whole decades, so the log axis always has labelled major ticks.
        ax.set_xlim(
            10 ** math.floor(math.log10(min(values) / 2)),
            10 ** math.ceil(math.log10(max(values) * 4)),
        )
    ax.set_xlabel("wall-clock seconds per test file (log scale)")
    ax.set_title("Runtime per file (mean over runs)")
    ax.grid(axis="x", which="both", alpha=0.3)
    labeler_note(fig, rows)
    return save_figure(fig, path)


def plot_confusion_matrices(summary: dict[str, Any], path: Path) -> Path:
    """One 2x2 confusion matrix per row, counts annotated (means over runs for several runs)."""
    rows = summary["rows"]
    ncols = min(4, max(len(rows), 1))
    nrows = -(-max(len(rows), 1) // ncols)
    fig = Figure(figsize=(3.4 * ncols, 3.3 * nrows + 0.4), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    labels = ["SECURE", "INSECURE"]
    for ax, row in zip(axes, rows, strict=False):
        c = row["confusion"]
        matrix = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=float)
        total = matrix.sum() or 1.0
        ax.imshow(matrix / total, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            text = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=12,
                color="white" if value / total > 0.5 else "black",
            )
        ax.set_xticks([0, 1], labels, fontsize=8)
        ax.set_yticks([0, 1], labels, fontsize=8, rotation=90, va="center")
        ax.set_xlabel("predicted", fontsize=9)
        ax.set_ylabel("true", fontsize=9)
        runs = f", mean of {row['runs']} runs" if row["runs"] > 1 else ""
        ax.set_title(
            f"{row['model']}\n({row['mode']}{runs}){' *' if row['labeler'] else ''}",
            fontsize=9,
            color=model_color(row["model"]) if row["kind"] != "scanner" else "black",
        )
    for ax in axes[len(rows) :]:
        ax.set_axis_off()
    fig.suptitle(f"Confusion matrices, test files (labels: {summary['label_source']})")
    labeler_note(fig, rows)
    return save_figure(fig, path)


def _operating_point(row: dict[str, Any]) -> tuple[float, float, float] | None:
    """(recall, precision, false-positive rate) of a row from its mean confusion counts."""
    c = row["confusion"]
    if c["tp"] + c["fn"] == 0 or c["fp"] + c["tn"] == 0:
        return None
    recall = c["tp"] / (c["tp"] + c["fn"])
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    return recall, precision, c["fp"] / (c["fp"] + c["tn"])


def plot_pr_roc(summary: dict[str, Any], runs: list[EvalRun], path: Path) -> Path:
    """Precision–recall (left) and ROC (right): curves for score-mode rows from run 1's scores,
    operating points for scanners, generate mode and the constant baseline."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    first: dict[tuple[str, str], EvalRun] = {}
    for run in sorted(runs, key=lambda r: int(r.get("run_id") or 1)):
        first.setdefault((str(run["model"]), row_mode(run)), run)
    fig = Figure(figsize=(12, 6), dpi=DPI, layout="constrained")
    ax_pr, ax_roc = fig.subplots(1, 2)
    for row in summary["rows"]:
        color = model_color(row["model"])
        label = row_label(row)
        run = first.get((row["model"], row["mode"]))
        preds = (run or {}).get("predictions") or []
        scores = [p.get("score") for p in preds]
        y_true = [int(p["y_true"]) for p in preds]
        curve = (
            row["mode"] == "score"
            and preds
            and all(s is not None for s in scores)
            and len(set(y_true)) == 2
        )
        if curve:
            precision, recall, _ = precision_recall_curve(y_true, scores)
            fpr, tpr, _ = roc_curve(y_true, scores)
            auc = row["metrics"]["roc_auc"]["mean"]
            ap = row["metrics"]["pr_auc"]["mean"]
            ax_pr.plot(
                recall,
                precision,
                color=color,
                linewidth=1.8,
                label=f"{label}  AP={ap:.3f}, ROC-AUC={auc:.3f}"
                if ap is not None and auc is not None
                else label,
                drawstyle="steps-post",
            )
            ax_roc.plot(fpr, tpr, color=color, linewidth=1.8)
            continue
        point = _operating_point(row)
        if point is None:
            continue
        recall, precision, fpr = point
        marker = {"checkov": "s", "tfsec": "^", CONSTANT_MODEL: "X"}.get(row["model"], "D")
        style = {
            "color": color,
            "marker": marker,
            "s": 70,
            "edgecolor": "black",
            "zorder": 4,
            "clip_on": False,
        }
        ax_pr.scatter([recall], [precision], label=f"{label} (operating point)", **style)
        ax_roc.scatter([fpr], [recall], **style)
    _pr_roc_axes(ax_pr, ax_roc, summary.get("prevalence"))
    handles = ax_pr.get_legend_handles_labels()[0] + labeler_handles(summary["rows"])
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    fig.suptitle(
        f"Ranking quality: curves from P(INSECURE), points for fixed verdicts "
        f"(labels: {summary['label_source']})"
    )
    return save_figure(fig, path)


def _pr_roc_axes(ax_pr: Any, ax_roc: Any, prevalence: float | None) -> None:
    """Chance lines, limits, labels and grids of the precision-recall and ROC panels."""
    if prevalence is not None:
        ax_pr.axhline(
            prevalence,
            color="black",
            linestyle=":",
            linewidth=1,
            label=f"no skill (prevalence {prevalence:.3f})",
        )
    ax_roc.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=1)
    ax_pr.set(
        xlim=(-0.01, 1.03),
        ylim=(-0.01, 1.03),
        xlabel="recall (share of INSECURE files found)",
        ylabel="precision (share of flagged files truly INSECURE)",
        title="Precision–recall",
    )
    ax_roc.set(
        xlim=(-0.01, 1.03),
        ylim=(-0.01, 1.03),
        xlabel="false-positive rate (SECURE files flagged)",
        ylabel="true-positive rate (recall)",
        title="ROC (dotted: chance)",
    )
    for ax in (ax_pr, ax_roc):
        ax.grid(alpha=0.3)
        ax.set_aspect("equal")


def read_training_log(path: Path) -> list[dict[str, Any]]:
    """Rows of a training_log.jsonl that have a `step`; unreadable lines are skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int | float):
            rows.append(row)
    return rows


def plot_training(log: list[dict[str, Any]], path: Path) -> Path:
    """Train and target-token validation loss, learning rate and throughput against step."""
    fig = Figure(figsize=(15, 4.5), dpi=DPI, layout="constrained")
    ax_loss, ax_lr, ax_tps = fig.subplots(1, 3)

    def series(key: str) -> tuple[list[float], list[float]]:
        pts = [(r["step"], r[key]) for r in log if isinstance(r.get(key), int | float)]
        return [p[0] for p in pts], [p[1] for p in pts]

    steps, loss = series("loss")
    if steps:
        ax_loss.plot(steps, loss, color=FINETUNED_BLUE, linewidth=1.2, label="train loss")
    steps, val = series("val_loss")
    if steps:
        ax_loss.plot(
            steps,
            val,
            color=BASE_ORANGE,
            marker="o",
            markersize=4,
            linewidth=1.5,
            label="validation loss (target tokens)",
        )
    ax_loss.set(xlabel="optimizer step", ylabel="cross-entropy (nats / token)", title="Loss")
    ax_loss.legend(fontsize=8, loc="upper right")
    steps, lr = series("lr")
    ax_lr.plot(steps, lr, color="#2ca02c")
    ax_lr.set(xlabel="optimizer step", ylabel="learning rate", title="Learning-rate schedule")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    steps, tps = series("tokens_per_s")
    ax_tps.plot(steps, tps, color="#555555")
    ax_tps.set(xlabel="optimizer step", ylabel="tokens per second", title="Throughput")
    for ax in (ax_loss, ax_lr, ax_tps):
        ax.grid(alpha=0.3)
    fig.suptitle("LoRA training")
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- report

_CAPTIONS = {
    "f1_boxplot.png": (
        "F1 across runs",
        "Each point is one run; boxes show the spread of a row's runs (deterministic rows have "
        "one run). The dashed line is the F1 of always answering INSECURE: a model left of it "
        "is worse than no model.",
    ),
    "metrics_comparison.png": (
        "Accuracy, precision, recall and F1",
        "Bars are means over runs; whiskers are 95% bootstrap CIs from resampling whole "
        "repositories, so they show how much the numbers depend on which repositories are in "
        "the test set. Hatched bars are generate mode.",
    ),
    "runtime_comparison.png": (
        "Runtime per file",
        "Mean wall-clock seconds per test file on this machine, log scale. Scanner times "
        "include their process start-up spread over a batch.",
    ),
    "confusion_matrices.png": (
        "Confusion matrices",
        "Rows are the true label, columns the prediction; counts (means for several runs). "
        "Parse failures count as wrong answers.",
    ),
    "pr_curve.png": (
        "Precision–recall and ROC",
        "Curves come from P(INSECURE) of score-mode rows (run 1); rows with fixed verdicts "
        "(scanners, generate mode, the constant) are single operating points.",
    ),
    "pairwise.png": (
        "Minimal pairs",
        "The share of test pairs (one resource written insecure and the same resource fixed, "
        "each labelled by the scanners) whose insecure member gets the higher score; ties count "
        "one half, whiskers are repository-bootstrap 95% CIs. 0.5 is a judge that cannot tell "
        "the two apart.",
    ),
    "training_loss.png": (
        "Training",
        "Train loss per logging step, validation loss on the answer (target) tokens only, the "
        "learning-rate schedule and throughput.",
    ),
}

_ROWS_HELP = """\
## What the rows mean

- **axon_lora_… (score)**: the fine-tuned model; P(INSECURE) from the next-token probabilities of
  the two answers, thresholded at the threshold tuned on the validation split. Deterministic.
- **axon_lora_… (generate)**: the same model writing its answer, sampled with a different seed
  per run; the answer is parsed for SECURE/INSECURE. Shows run-to-run variance.
- **axon_lora_…_seedK**: adapters trained with different seeds (with `--train-seeds`).
- **…-base**: the base model without the adapter (zero-shot), the same prompt.
- **checkov / tfsec (scanner)**: the rule-based scanners; score = number of failed checks.
- **constant**: always INSECURE; the floor every model must beat.
- **tfidf-logreg (score)**: a bag of code tokens (TF-IDF, 1-2-grams) with logistic regression,
  trained in seconds on the same training split, threshold tuned on validation: what a user
  would try first, and what the fine-tuned model has to beat.
- **labeler = yes / \\***: {caveat}. On the default labels (both scanners) a scanner is judged
  partly against itself, which flatters it. In the cross-labeler view the labels come from one
  scanner only, so the *other* scanner is an honest, independent baseline.
"""


def write_report(
    summary: dict[str, Any], figures: list[Path], out_dir: Path, runs_dir: Path
) -> Path:
    """Write `REPORT.md`: tables, every figure (relative links) with a caption, row meanings."""
    lines = [
        "# Axon InfraLinter benchmark report",
        "",
        f"Generated from the run files in `{runs_dir}` "
        f"({summary['n_files']} test files, {summary['n_repos']} repositories).",
        "",
        render_markdown(summary, heading="##"),
        _ROWS_HELP.format(caveat=LABELER_CAVEAT[0].upper() + LABELER_CAVEAT[1:]),
        *(
            []
            if summary.get("cross_labeler")
            else [
                "No cross-labeler runs were found (run files with `label_source` checkov or "
                "tfsec; `axon evaluate --baselines` writes them), so every scanner row above "
                "is graded partly on its own labels.",
                "",
            ]
        ),
        "## Figures",
        "",
    ]
    for figure in figures:
        title, caption = _CAPTIONS.get(figure.name, (figure.stem, ""))
        lines += [f"### {title}", "", f"![{title}]({figure.name})", "", caption, ""]
    path = out_dir / "REPORT.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def make_plots(
    runs_dir: Path, out_dir: Path, training_log: Path | None = None, n_boot: int = 2000
) -> list[Path]:
    """Write every figure and REPORT.md for the run files of `runs_dir`.

    Figures use the runs scored on labels of both scanners (or, without such runs, the first
    label source present); REPORT.md adds the cross-labeler tables.

    Args:
        runs_dir: Folder of eval run files.
        out_dir: Folder for the PNGs and REPORT.md (created).
        training_log: Optional training_log.jsonl; without one (or an empty one) there is no
            training figure.
        n_boot: Bootstrap replicates for the CIs.

    Returns:
        The files written, figures first, REPORT.md last.

    Raises:
        InputError: No run files, or `training_log` given but missing.
    """
    runs, _ = load_runs(runs_dir)
    if not runs:
        raise InputError(
            f"no run files in {runs_dir}: run `axon evaluate` or `axon benchmark` first"
        )
    if training_log is not None and not training_log.is_file():
        raise InputError(f"training log not found: {training_log}")
    sources = sorted({run_label_source(r) for r in runs})
    source = "both" if "both" in sources else sources[0]
    summary = summarize(runs_dir, label_source=source, n_boot=n_boot)
    main_runs = [r for r in runs if run_label_source(r) == source]

    out_dir.mkdir(parents=True, exist_ok=True)
    figures = [
        plot_f1_boxplot(summary, out_dir / "f1_boxplot.png"),
        plot_metrics_comparison(summary, out_dir / "metrics_comparison.png"),
        plot_runtime(summary, out_dir / "runtime_comparison.png"),
        plot_confusion_matrices(summary, out_dir / "confusion_matrices.png"),
        plot_pr_roc(summary, main_runs, out_dir / "pr_curve.png"),
    ]
    pairwise = plot_pairwise(summary, out_dir / "pairwise.png")
    if pairwise is not None:
        figures.append(pairwise)
    if training_log is not None:
        log = read_training_log(training_log)
        if log:
            figures.append(plot_training(log, out_dir / "training_loss.png"))
    return [*figures, write_report(summary, figures, out_dir, runs_dir)]
