"""The benchmark summary as markdown: the tables of `summary.md` and of the figures' REPORT.md.

`render_markdown(summary)` takes a `benchmark_multi_run.summarize` result: per label source the
results table (F1 mean ± sd [95% CI], the other metrics, seconds per file), the prevalence and
constant-baseline line, McNemar's table, the labeler caveat and the summary's warnings.
"""

from __future__ import annotations

from typing import Any

#: The caveat printed under every table.
LABELER_CAVEAT = (
    "labels come from the scanners, so a scanner that made the labels scores itself "
    "(labeler=yes); compare on the cross-labeler rows"
)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _fmt_metric(entry: dict[str, Any], with_ci: bool = False) -> str:
    text = _fmt(entry["mean"])
    if entry["sd"] is not None:
        text += f" ± {entry['sd']:.3f}"
    if with_ci and entry.get("ci"):
        low, high = entry["ci"]
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}"


def _fmt_p(value: float) -> str:
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def render_table(block: dict[str, Any]) -> list[str]:
    """The results table of one label source, as markdown lines."""
    lines = [
        "| model | mode | runs | labeler | F1 mean ± sd [95% CI] | precision | recall | accuracy "
        "| ROC-AUC | MCC | s/file |",
        "|---|---|---:|---|---|---|---|---|---|---|---:|",
    ]
    for row in block["rows"]:
        m = row["metrics"]
        lines.append(
            f"| {row['model']} | {row['mode']} | {row['runs']} | "
            f"{'yes' if row['labeler'] else 'no'} | {_fmt_metric(m['f1'], with_ci=True)} | "
            f"{_fmt_metric(m['precision'])} | {_fmt_metric(m['recall'])} | "
            f"{_fmt_metric(m['accuracy'])} | {_fmt_metric(m['roc_auc'])} | "
            f"{_fmt_metric(m['mcc'])} | {_fmt_seconds(row['seconds_per_file'])} |"
        )
    return lines


def _render_block(block: dict[str, Any], heading: str) -> list[str]:
    lines = [
        f"{block['n_files']} test files from {block['n_repos']} repositories.",
        "",
        *render_table(block),
        "",
    ]
    if block.get("prevalence") is not None:
        lines += [
            f"Prevalence (share of INSECURE test files): {block['prevalence']:.3f}; "
            f"the constant INSECURE baseline scores F1 = {block['constant_f1']:.3f}, "
            "the floor a useful model must clear.",
            "",
        ]
    if block["mcnemar"]:
        lines += [
            f"{heading} McNemar's test (labels: {block['label_source']}; paired on shared files, "
            "run 1 of each row)",
            "",
            "| model | vs | shared files | only model right | only vs right | test | p |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        for c in block["mcnemar"]:
            lines.append(
                f"| {c['model']} ({c['mode']}) | {c['vs_model']} ({c['vs_mode']}) | "
                f"{c['n_shared']} | {c['only_model_correct']} | {c['only_vs_correct']} | "
                f"{'exact binomial' if c['test'] == 'exact' else 'χ² (continuity)'} | "
                f"{_fmt_p(c['p_value'])} |"
            )
        lines.append("")
    if block.get("differences"):
        lines += [
            f"{heading} Fine-tuned model minus the bag-of-words baseline (paired repository "
            "bootstrap, same files and replicates)",
            "",
            "| model | vs | metric | difference [95% CI] |",
            "|---|---|---|---|",
        ]
        for d in block["differences"]:
            ci = d["ci"]
            cell = _fmt(d["difference"]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
            lines.append(
                f"| {d['model']} ({d['mode']}) | {d['vs_model']} | {d['metric']} | {cell} |"
            )
        lines.append("")
    return lines


def render_pairwise(pairwise: dict[str, Any] | None, heading: str) -> list[str]:
    """The minimal-pairs table (`models.pairwise`), as markdown lines (none without pairs)."""
    if not pairwise:
        return []
    lines = [
        f"{heading} Minimal pairs: does the judge rank the broken member above the fixed one?",
        "",
        f"Pairs from `{pairwise['pairs_file']}`; pairwise = {pairwise['definition']}. "
        "Both correct: both members get the right verdict at the row's threshold.",
        "",
        "| model | mode | pairs | repos | pairwise [95% CI] | ties | both correct |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for row in pairwise["rows"]:
        ci = row["ci"]
        cell = f"{_fmt(row['pairwise'])} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "–"
        lines.append(
            f"| {row['model']} | {row['mode']} | {row['pairs']} | {row['repos']} | {cell} | "
            f"{_fmt(row['ties'], 2)} | {_fmt(row['both_correct'])} |"
        )
    return [*lines, ""]


def render_markdown(summary: dict[str, Any], heading: str = "#") -> str:
    """The summary as markdown: results table, McNemar table, prevalence line and caveat, then
    the same for each cross-labeler label source.

    Args:
        summary: A `summarize` result.
        heading: Markdown heading prefix of the top heading ("#", or "##" when embedded).
    """
    boot = summary["bootstrap"]
    sub = heading + "#"
    lines = [
        f"{heading} Benchmark summary (labels: {summary['label_source']})",
        "",
        f"F1 is the mean ± sd over runs with a 95% bootstrap CI ({boot['n_boot']} resamples of "
        "whole repositories, percentile method, runs of a row averaged on each resample); the "
        "other metric columns are mean ± sd over runs (one value for a deterministic row); "
        "s/file is the mean wall-clock seconds per test file. A parse failure counts as a "
        "wrong answer.",
        "",
        f"Caveat: {LABELER_CAVEAT}.",
        "",
        *_render_block(summary, sub),
    ]
    lines += render_pairwise(summary.get("pairwise"), sub)
    for source, block in summary.get("cross_labeler", {}).items():
        lines += [
            f"{sub} Cross-labeler view: labels from {source} only",
            "",
            *_render_block(block, sub + "#"),
        ]
    if summary["warnings"]:
        lines += [f"{sub} Warnings", ""]
        lines += [f"- {w}" for w in summary["warnings"]]
        lines.append("")
    return "\n".join(lines)
