"""Bench section 1, scanner: batch labelling (scan_texts) vs one scanner process per file.

`bench_scanner` times both ways per tool on the same corpus sample, checks that they give the same
findings and labels, and prints the table and the verdict (target: batch >= 40x per-file files/s).
bench/README.md section 1 says what each figure means.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench_common import (
    Context,
    Section,
    corpus_sample,
    every_kth,
    fmt_x,
    print_table,
    ratio,
    timed_scan,
    verdict,
)

#: One per-file scanner result: (findings, error or None), as `_run_batch` returns it.
SingleResult = tuple[list[Any], str | None]


@dataclass
class ToolTimes:
    """One tool's timings and results, both ways."""

    batch1_s: float
    """Batch way, one batch process at a time."""
    batchw_s: float
    """Batch way, the data set builder's default workers."""
    single_s: float
    """Per-file way, serially."""
    batch_rows: list[Any]
    """scan_texts rows of the 1-worker batch run, one per sample file."""
    single_out: dict[int, SingleResult]
    """Per-file results by index into the sample."""


def bench_scanner(ctx: Context) -> Section:
    """Batch labelling (scan_texts) vs one scanner process per file, per tool; same findings?

    The batch way is timed twice: one batch process at a time (the issue's hand measurement,
    "before any parallelism") and with the data set builder's default `--workers` (parallel batch
    processes). The per-file way is always serial, one process after another.
    """
    from axon_infralinter.data.dataset import DatasetConfig
    from axon_infralinter.data.scanner import TOOLS

    sizes = ctx.sizes
    workers = DatasetConfig.__dataclass_fields__["workers"].default
    sample = corpus_sample(ctx, sizes.scanner_batch_files)
    items = [(rel, text) for rel, _, text in sample]
    single = every_kth(range(len(items)), sizes.scanner_single_files)
    times = {
        tool: _time_tool(tool, items, single, sizes.scanner_batch_size, workers) for tool in TOOLS
    }
    rows, figures = _tool_rows(times, len(items), len(single), workers)
    batch1_s = sum(t.batch1_s for t in times.values())
    batchw_s = sum(t.batchw_s for t in times.values())
    single_s = sum(t.single_s for t in times.values())
    single_fps = len(single) / single_s
    overall_1 = ratio(len(items) / batch1_s, single_fps)
    overall = ratio(len(items) / batchw_s, single_fps)
    rows.append(["both", len(items), round(batch1_s, 1), round(batchw_s, 1), len(single),
                 round(single_s, 1), single_fps, fmt_x(overall_1), fmt_x(overall)])  # fmt: skip
    differ = _differences(items, single, times)
    identical = not differ
    errors = sum(1 for t in times.values() for i in single if t.single_out[i][1]) + sum(
        1 for tool, t in times.items() for row in t.batch_rows if row[tool]["error"]
    )
    _print_table(rows, workers)
    print(f"  identical findings (rule ids per file) and labels on {len(single)} files: {'yes' if identical else 'no'}"
          + (f"; differ: {', '.join(differ[:5])}" if differ else "") + f"; scanner errors: {errors}")  # fmt: skip
    v = verdict(overall, 40)
    print(
        f"  verdict: batch labelling with the builder's {workers} workers is {fmt_x(overall)} faster "
        f"than one process per file, serially (target >= 40x): {v}; one batch process at a time: "
        f"{fmt_x(overall_1)}"
    )
    figures.update(
        workers=workers,
        overall_ratio=overall,
        overall_ratio_1_worker=overall_1,
        identical=identical,
        differ=differ,
        scanner_errors=errors,
    )
    return Section(
        figures,
        [
            (f"scanner: batch ({workers} workers) / per-file files/s", fmt_x(overall), ">= 40x", v),
            ("scanner: batch (1 worker) / per-file files/s", fmt_x(overall_1), "-", "-"),
            (
                "scanner: identical findings+labels",
                "yes" if identical else "no",
                "yes",
                "met" if identical else "missed",
            ),
        ],
    )


def _time_tool(
    tool: str, items: list[tuple[str, str]], single: list[int], batch_size: int, workers: int
) -> ToolTimes:
    """Time one tool the batch way (1 worker, then `workers`) and then per file on `single`."""
    from axon_infralinter.data.scanner import _run_batch

    batch1_s, batch_rows = timed_scan(items, tool, batch_size)
    batchw_s, _ = timed_scan(items, tool, batch_size, workers=workers)
    single_out: dict[int, SingleResult] = {}
    started = time.perf_counter()
    for i in single:
        try:
            single_out[i] = _run_batch(tool, [items[i][1]], 900.0)[0]  # type: ignore[arg-type]
        except Exception as exc:  # a failed run is a result here, as in scan_texts
            single_out[i] = ([], f"{type(exc).__name__}: {exc}")
    single_s = time.perf_counter() - started
    return ToolTimes(batch1_s, batchw_s, single_s, batch_rows, single_out)


def _tool_rows(
    times: dict[str, ToolTimes], n_items: int, n_single: int, workers: int
) -> tuple[list[list[Any]], dict[str, Any]]:
    """One table row and one figures entry per tool."""
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    for tool, t in times.items():
        single_fps = n_single / t.single_s
        r1 = ratio(n_items / t.batch1_s, single_fps)
        rw = ratio(n_items / t.batchw_s, single_fps)
        rows.append([tool, n_items, round(t.batch1_s, 1), round(t.batchw_s, 1), n_single,
                     round(t.single_s, 1), single_fps, fmt_x(r1), fmt_x(rw)])  # fmt: skip
        figures[tool] = {
            "batch_files": n_items, "batch_s_1_worker": t.batch1_s,
            f"batch_s_{workers}_workers": t.batchw_s, "single_files": n_single,
            "single_s": t.single_s, "single_files_per_s": single_fps,
            "ratio_1_worker": r1, f"ratio_{workers}_workers": rw,
        }  # fmt: skip
    return rows, figures


def _differences(
    items: list[tuple[str, str]], single: list[int], times: dict[str, ToolTimes]
) -> list[str]:
    """Files (and tools) where the two ways differ in rule ids, error status or policy label."""
    from axon_infralinter.data.scanner import apply_policy

    differ: list[str] = []
    for i in single:
        batch_findings, single_findings = [], []
        for tool, t in times.items():
            b = t.batch_rows[i][tool]
            s_findings, s_error = t.single_out[i]
            if sorted(f["rule_id"] for f in b["findings"]) != sorted(
                f["rule_id"] for f in s_findings
            ) or (b["error"] is None) != (s_error is None):
                differ.append(f"{items[i][0]} ({tool})")
            batch_findings += b["findings"]
            single_findings += s_findings
        if apply_policy(batch_findings)[0] != apply_policy(single_findings)[0]:
            differ.append(f"{items[i][0]} (label)")
    return differ


def _print_table(rows: list[list[Any]], workers: int) -> None:
    print_table(
        [
            "tool",
            "batch files",
            "batch s (1 worker)",
            f"batch s ({workers} workers)",
            "single files",
            "single s",
            "single files/s",
            "ratio (1 worker)",
            f"ratio ({workers} workers)",
        ],
        rows,
    )
