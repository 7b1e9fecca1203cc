"""Bench section 6, mutate: the mutation stage's throughput, variants scanned per second, cold cache.

`bench_mutate` runs `build_pairs` (`axon dataset mutate`) on a seeded sample of the test split's
source blocks with a fresh, temporary scanner cache, so every source, clean, broken and neutral
variant is scanned by the real Checkov and Trivy, and prints the table (no target: the figure says
how many pairs an hour of this machine makes). bench/README.md section 6 says what each figure means.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench_common import Context, Section, print_table

from axon_infralinter.errors import InputError


def bench_mutate(ctx: Context) -> Section:
    """`build_pairs` on `sizes.mutate_sources` test-split source blocks, cold cache."""
    from axon_infralinter.data.mutate import MutateConfig, build_pairs
    from axon_infralinter.data.scanner import TOOLS, tool_version

    corpus = ctx.settings.corpus
    if corpus is None:
        raise InputError(
            "no corpus: set AXON_CORPUS or place the shared corpus beside the checkout"
        )
    for tool in TOOLS:
        tool_version(tool)  # paid once per run, not per batch: keep it out of the timing
    with tempfile.TemporaryDirectory(prefix="axon-bench-mutate-") as tmp:
        config = MutateConfig(
            data=ctx.data_dir,
            corpus=corpus,
            out=Path(tmp) / "pairs",
            cache_dir=Path(tmp) / "cache",
            splits=("test",),
            limit_sources=ctx.sizes.mutate_sources,
        )
        started = time.perf_counter()
        card = build_pairs(config)
        wall = time.perf_counter() - started
    test = card["splits"]["test"]
    n = card["variants_scanned"]
    rows = [
        ["source blocks tried", test["sources_tried"]],
        ["texts scanned (sources + variants), both scanners", n],
        ["pairs kept (broken INSECURE, clean SECURE)", test["pairs"]],
        ["neutral variants", test["neutral"]],
        ["wall s", round(wall, 1)],
        ["variants scanned / s", n / wall if wall else "n/a"],
        ["pairs / hour", 3600 * test["pairs"] / wall if wall else "n/a"],
    ]
    print_table(["figure", "value"], rows)
    rate = n / wall if wall else 0.0
    print(f"  verdict: {rate:.2f} variants scanned per second (cold cache, Checkov + Trivy)")
    figures = {
        "sources_tried": test["sources_tried"],
        "variants_scanned": n,
        "pairs": test["pairs"],
        "neutral": test["neutral"],
        "wall_s": wall,
        "variants_per_s": rate,
        "intended": card["intended"]["by_kind"],
    }
    summary = [("mutate: variants scanned / s (cold)", f"{rate:.2f}", "-", "measured")]
    return Section(figures=figures, summary=summary)
