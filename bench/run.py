"""`make bench`: speed, memory and robustness figures of Axon InfraLinter, measured side by side.

Every speed figure is a ratio of two ways of doing the same work, both measured in this one run on
this machine (never asserted in a test). Each section prints a small table and a one-line verdict
against its target; a summary table closes the run and everything is also written, atomically, to
`data/bench/results.json` (`data/bench/results-quick.json` with --quick). bench/README.md says what
each figure means.

Sections (targets from the issues):
    scanner    batch labelling vs one process per file (files/s ratio >= 40x), same labels
    train      this recipe vs the seed's recipe, useful tokens/s (ratio >= 3x), and MFU
    predict    per-file latency, generate mode / score mode (ratio >= 5x), beside Checkov and Trivy
    scan       `axon scan` cold, warm (>= 50x) and after a one-file edit, beside Checkov and Trivy;
               cold time / FLOP limit (<= 1.5x), peak RSS of the process (<= 1.5 GiB)
    injection  verdict flips under a "this file is SECURE" comment (<= 2% with comment stripping)
    mutate     the mutation stage: variants scanned per second, cold cache (no target)
    dask       the Dask engine vs the local engine on the same files (overhead on one machine), and
               the per-file costs of the 100,000-file projection (docs/scale-out.md)

Examples:
    .venv/bin/python bench/run.py                        # all sections, default sizes
    .venv/bin/python bench/run.py --quick                # smoke run on tiny sizes
    .venv/bin/python bench/run.py --only scanner,predict

Each section lives in its own module beside this one (bench_scanner, bench_train, bench_predict,
bench_scan, bench_injection, bench_mutate) with its `bench_<section>(ctx) -> Section`; bench_common holds what
they share. This file only parses the flags, runs the chosen sections in order and writes the
results. It runs as a script, so its folder is first on sys.path and the modules import flat; their
names all start with `bench_` so that none shadows a standard or third-party module.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_common import QUICK, REPO, Context, Section, Sizes, machine_info, print_table
from bench_dask import bench_dask
from bench_injection import bench_injection
from bench_mutate import bench_mutate
from bench_predict import bench_predict
from bench_scan import bench_scan
from bench_scanner import bench_scanner
from bench_train import bench_train

from axon_infralinter.files import atomic_write_json
from axon_infralinter.settings import load_settings

SECTIONS = ("scanner", "train", "predict", "scan", "injection", "mutate", "dask")

BENCHES: dict[str, tuple[str, Callable[[Context], Section]]] = {
    "scanner": ("1. scanner: batch labelling vs one process per file", bench_scanner),
    "train": ("2. train: this recipe vs the seed's recipe", bench_train),
    "predict": ("3. predict: score mode vs generate mode, per file", bench_predict),
    "scan": ("4. scan: cold, warm and after an edit; Checkov and Trivy; memory", bench_scan),
    "injection": ("5. injection: comment prompt injection", bench_injection),
    "mutate": ("6. mutate: minimal pairs, variants scanned per second", bench_mutate),
    "dask": ("7. dask: the Dask engine vs the local engine, one machine", bench_dask),
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections; 0 unless one crashed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--data", default="data", help="data set folder (default data/)")
    parser.add_argument("--out", help="results file (default data/bench/results.json)")
    args = parser.parse_args(argv)
    asked = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(SECTIONS)
    unknown = [s for s in asked if s not in SECTIONS]
    if unknown:
        print(
            f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}",
            file=sys.stderr,
        )
        return 2
    chosen = [s for s in SECTIONS if s in asked]  # always in the documented order
    os.chdir(REPO)  # models/, data/ and find_default_adapter() are relative to the repository
    sizes = QUICK if args.quick else Sizes()
    ctx = Context(sizes=sizes, settings=load_settings(), data_dir=Path(args.data))
    out = (
        Path(args.out)
        if args.out
        else Path("data/bench") / ("results-quick.json" if args.quick else "results.json")
    )
    results: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": dataclasses.asdict(sizes),
        "machine": machine_info(),
        "sections": {},
        "summary": [],
    }
    print(f"Axon InfraLinter bench{' (--quick: tiny sizes, figures are a smoke test only)' if args.quick else ''}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    summary, crashed = _run_sections(chosen, ctx, results["sections"])
    print("\n== summary")
    print_table(["figure", "value", "target", "verdict"], summary)
    results["summary"] = [
        dict(zip(("figure", "value", "target", "verdict"), row, strict=True)) for row in summary
    ]
    atomic_write_json(out, results)
    print(f"\nwrote {out}")
    return 1 if crashed else 0


def _run_sections(
    chosen: list[str], ctx: Context, sections: dict[str, Any]
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Run `chosen` in order, filling `sections` with their figures; (summary rows, crashed).

    A crash is reported (traceback on stderr, one line in the output and the summary) and the
    other sections still run.
    """
    crashed = []
    summary: list[tuple[str, str, str, str]] = []
    for name in chosen:
        title, bench = BENCHES[name]
        print(f"\n== {title}", flush=True)
        started = time.perf_counter()
        try:
            section = bench(ctx)
        except Exception as exc:
            traceback.print_exc()
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"  CRASHED: {type(exc).__name__}: {message}")
            crashed.append(name)
            sections[name] = {"error": f"{type(exc).__name__}: {message}"}
            summary.append((f"{name}: crashed", message[:60], "", "crashed"))
            continue
        section.figures["section_seconds"] = time.perf_counter() - started
        sections[name] = section.figures
        summary.extend(section.summary)
        print(f"  ({section.figures['section_seconds']:.0f} s)", flush=True)
    return summary, crashed


if __name__ == "__main__":
    sys.exit(main())
