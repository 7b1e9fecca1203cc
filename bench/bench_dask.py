"""Bench section 7, dask: the Dask engine vs the local engine on one machine, and a projection.

`bench_dask` labels the scanner section's sample (200 corpus files by default) cold with both
scanners on the local engine (the builder's default `--workers` threads) and on a loopback Dask
LocalCluster of as many worker processes, then scores `predict_files` test files (worst block of
each, batches of 4) with the predictor here and with a `RemotePredictor` on the same cluster. It
prints the wall times and their ratio (Dask / local: the overhead on one machine), the CPU seconds
per file (this process, the workers and the scanner processes they start), whether the results are
identical, the fixed costs (cluster start, the scanners' first batch on each worker, the model load
per worker) and the projection for 100,000 files on N workers that docs/scale-out.md rests on.
bench/README.md section 7 says what each figure means.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cloudpickle
from bench_common import (
    Context,
    Section,
    corpus_sample,
    every_kth,
    fmt_x,
    get_predictor,
    print_table,
    ratio,
    split_records,
)

# `_warm` runs on the workers, which cannot import this script's folder: ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

PROJECTED_FILES = 100_000
PROJECTED_WORKERS = (2, 8, 32, 128)
SCORE_BATCH = 4


def _warm(spec: Any) -> int:
    """Load the model on this worker (the first task of a run does it otherwise)."""
    from axon_infralinter.models.remote import worker_predictor

    worker_predictor(spec)
    return os.getpid()


def _cpu_s() -> float:
    """CPU seconds of this process (all its threads) and of its finished children (scanners)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Clock:
    """Wall and CPU seconds of a piece of work, here and on the cluster's workers.

    CPU time is what the projection rests on: it is what a file costs a dedicated core, whatever
    else shares this machine's cores (wall time here moves with the load).
    """

    def __init__(self, client: Any = None) -> None:
        self.client = client
        self.wall = time.perf_counter()
        self.cpu = self._cpu()

    def _cpu(self) -> float:
        workers = sum(self.client.run(_cpu_s).values()) if self.client is not None else 0.0
        return _cpu_s() + workers

    def stop(self) -> tuple[float, float]:
        """(wall s, CPU s) since the clock started."""
        return time.perf_counter() - self.wall, self._cpu() - self.cpu


def _label(
    items: list[tuple[str, str]], workers: int, executor: Any
) -> tuple[float, float, list[Any]]:
    """Wall s, CPU s and rows of a cold scan_texts with both scanners (a fresh, temporary cache)."""
    from axon_infralinter.data.scanner import ScanConfig, scan_texts

    with tempfile.TemporaryDirectory(prefix="axon-bench-dask-") as cache:
        config = ScanConfig(cache_dir=Path(cache), workers=workers, executor=executor)
        clock = Clock(executor.client if executor is not None else None)
        rows = scan_texts(items, config, progress=False)
        return (*clock.stop(), rows)


def _score(predictor: Any, prompts: list[str], client: Any) -> tuple[float, float, list[float]]:
    """Wall s, CPU s and the worst-block scores of `prompts`."""
    clock = Clock(client)
    scores = predictor.score_documents(prompts, batch_size=SCORE_BATCH)
    return (*clock.stop(), scores)


def bench_dask(ctx: Context) -> Section:
    """Local vs Dask wall time on the same files, labelling and scoring; the projection's inputs."""
    from axon_infralinter.data.dataset import DatasetConfig
    from axon_infralinter.data.scanner import TOOLS, tool_version
    from axon_infralinter.engine import DaskConfig, dask_executor
    from axon_infralinter.models.remote import RemotePredictor, predictor_spec

    sizes = ctx.sizes
    workers = DatasetConfig.__dataclass_fields__["workers"].default
    sample = corpus_sample(ctx, sizes.scanner_batch_files + 2)
    warm, items = [(r, t) for r, _, t in sample[-2:]], [(r, t) for r, _, t in sample[:-2]]
    records = every_kth(split_records(ctx, "test"), sizes.predict_files)
    prompts = [r["input_text"] for r in records]
    predictor = get_predictor(ctx)
    print(f"  model: {predictor.name} ({ctx.model_note})")
    for tool in TOOLS:
        tool_version(tool)  # once per run here, as in the scanner section: not timed
    f: dict[str, Any] = {"workers": workers, "cores": os.cpu_count(), "score_batch": SCORE_BATCH,
                         "label_files": len(items), "score_files": len(prompts)}  # fmt: skip
    f["label_local_s"], f["label_local_cpu_s"], rows_local = _label(items, workers, None)
    f["score_local_s"], f["score_local_cpu_s"], scores_local = _score(predictor, prompts, None)

    started = time.perf_counter()
    with dask_executor(DaskConfig(n_workers=workers)) as executor:
        f["cluster_start_s"] = time.perf_counter() - started
        f["torch_threads_per_worker"] = executor.torch_threads
        # Fixed costs, paid once per worker: each asks its scanners' versions (2 files, untimed
        # below) and loads the model.
        f["scanner_start_s"] = _label(warm, workers, executor)[0]
        f["label_dask_s"], f["label_dask_cpu_s"], rows_dask = _label(items, workers, executor)
        client = executor.client
        spec = predictor_spec(predictor, None, executor.torch_threads)
        started = time.perf_counter()
        addresses = list(client.scheduler_info(n_workers=-1)["workers"])
        client.gather([client.submit(_warm, spec, workers=[a], pure=False) for a in addresses])
        f["model_load_s"] = time.perf_counter() - started
        remote = RemotePredictor.wrap(predictor, executor)
        f["score_dask_s"], f["score_dask_cpu_s"], scores_dask = _score(remote, prompts, client)

    f["labels_identical"] = rows_local == rows_dask
    f["max_score_diff"] = max(
        (abs(a - b) for a, b in zip(scores_local, scores_dask, strict=True)), default=0.0
    )
    _derive(f)
    _print(f)
    same = f["labels_identical"] and f["max_score_diff"] <= 1e-4
    return Section(
        f,
        [
            ("dask: labelling wall, dask / local (1 machine)", fmt_x(f["label_ratio"]), "-", "-"),
            ("dask: scoring wall, dask / local (1 machine)", fmt_x(f["score_ratio"]), "-", "-"),
            ("dask: same labels / max |score diff|",
             f"{'yes' if f['labels_identical'] else 'no'} / {f['max_score_diff']:.1e}",
             "yes / <= 1e-4", "met" if same else "missed"),
        ],
    )  # fmt: skip


def _derive(f: dict[str, Any]) -> None:
    """Ratios, per-file costs and the projection, from the measured times."""
    f["label_ratio"] = ratio(f["label_dask_s"], f["label_local_s"])
    f["score_ratio"] = ratio(f["score_dask_s"], f["score_local_s"])
    for work in ("label", "score"):
        n = f[f"{work}_files"]
        for engine in ("local", "dask"):
            f[f"{work}_{engine}_s_per_file"] = f[f"{work}_{engine}_s"] / n
            f[f"{work}_{engine}_cpu_s_per_file"] = f[f"{work}_{engine}_cpu_s"] / n
    # A file costs a dedicated core its CPU seconds on the Dask engine; fixed costs once.
    label_fixed = f["cluster_start_s"] + f["scanner_start_s"]
    score_fixed = f["cluster_start_s"] + f["model_load_s"]
    f["projected_files"] = PROJECTED_FILES
    f["projection"] = {
        str(n): {
            "label_h": (label_fixed + PROJECTED_FILES * f["label_dask_cpu_s_per_file"] / n) / 3600,
            "score_h": (score_fixed + PROJECTED_FILES * f["score_dask_cpu_s_per_file"] / n) / 3600,
        }
        for n in PROJECTED_WORKERS
    }


def _print(f: dict[str, Any]) -> None:
    w = f["workers"]
    print_table(
        ["work", "files", "local s", f"dask s ({w} workers)", "dask / local", "CPU s/file local",
         "CPU s/file dask"],
        [
            ["label (Checkov + Trivy, cold)", f["label_files"], round(f["label_local_s"], 1),
             round(f["label_dask_s"], 1), fmt_x(f["label_ratio"]),
             f["label_local_cpu_s_per_file"], f["label_dask_cpu_s_per_file"]],
            [f"score (worst block, batches of {f['score_batch']})", f["score_files"],
             round(f["score_local_s"], 1), round(f["score_dask_s"], 1), fmt_x(f["score_ratio"]),
             f["score_local_cpu_s_per_file"], f["score_dask_cpu_s_per_file"]],
        ],
    )  # fmt: skip
    print(
        f"  fixed costs: LocalCluster start {f['cluster_start_s']:.1f} s; scanners' first batch on "
        f"each worker {f['scanner_start_s']:.1f} s; model load {f['model_load_s']:.1f} s (all "
        f"workers at once, {f['torch_threads_per_worker']} torch thread(s) each)"
    )
    print(
        f"  same labels: {'yes' if f['labels_identical'] else 'no'}; max |score difference|: "
        f"{f['max_score_diff']:.1e}"
    )
    print(
        f"  projection, {f['projected_files']:,} files on N workers of one dedicated core each: "
        "CPU s/file (dask) x files / N, plus the fixed costs once:"
    )
    print_table(
        ["workers", "label h", "score h"],
        [[n, p["label_h"], p["score_h"]] for n, p in f["projection"].items()],
    )
