"""Bench section 2, train: this training recipe vs the seed's recipe, useful tokens/s and MFU.

`bench_train` trains both recipes for a few steps on the same records in a temporary folder,
reads tokens and seconds from each run's training_log.jsonl, and prints the table and the verdict
(target: this recipe >= 3x the seed's useful tokens/s). bench/README.md section 2 says what each
figure means.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_common import (
    Context,
    Section,
    Sizes,
    every_kth,
    fmt_x,
    matmul_peak_gflops,
    print_table,
    ratio,
    split_records,
    verdict,
)

from axon_infralinter.files import read_jsonl, write_jsonl
from axon_infralinter.schema import read_adapter_meta


def bench_train(ctx: Context) -> Section:
    """Useful tokens/s of this recipe vs the seed's recipe on the same records; MFU of each."""
    import torch

    from axon_infralinter.models.base_model import EMBEDDED_SMOLLM2, load_base_model

    sizes = ctx.sizes
    records = every_kth(split_records(ctx, "train"), sizes.train_records)
    recipe_batch, seed_batch = _batches(sizes)
    torch.set_num_threads(os.cpu_count() or 1)
    peak_bf16 = matmul_peak_gflops(sizes.matmul_n, torch.bfloat16, sizes.matmul_seconds)
    peak_fp32 = matmul_peak_gflops(sizes.matmul_n, torch.float32, sizes.matmul_seconds)
    model, _ = load_base_model(EMBEDDED_SMOLLM2, ctx.settings)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    runs = _train_both(ctx, records, recipe_batch, seed_batch)
    for run in runs:
        achieved = 6 * n_params * run["tokens"] / run["seconds"] / 1e9 if run["seconds"] else 0.0
        run["model_gflops"] = achieved
        run["mfu_vs_bf16_peak"] = achieved / peak_bf16 if peak_bf16 else None
    recipe, seed = runs
    r = ratio(recipe["tokens_per_s"] or 0.0, seed["tokens_per_s"] or 0.0)
    print(f"  matmul peak ({sizes.matmul_n}x{sizes.matmul_n}): bf16 {peak_bf16:,.1f} GFLOP/s, fp32 {peak_fp32:,.1f} GFLOP/s; "
          f"N = {n_params:,} parameters (base model, frozen included; LoRA's not counted)")  # fmt: skip
    _print_runs(runs)
    whole = ratio(recipe["whole_run_tokens_per_s"] or 0.0, seed["whole_run_tokens_per_s"] or 0.0)
    if recipe["steps_measured"] < recipe["steps"]:
        print(f"  timed: optimizer steps 2..{recipe['steps']} of each run (step 1 is warm-up); "
              f"with step 1 the ratio is {fmt_x(whole)}")  # fmt: skip
    print(
        "  MFU = 6 x N x useful tokens / seconds / measured bf16 matmul peak (useful = attention-mask ones)"
    )
    v = verdict(r, 3)
    print(
        f"  verdict: this recipe trains on {fmt_x(r)} the useful tokens/s of the seed's (target >= 3x): {v}"
    )
    figures = {
        "ratio": r, "ratio_whole_run": whole, "n_params": n_params, "matmul_peak_gflops": {"bf16": peak_bf16, "fp32": peak_fp32},
        "matmul_n": sizes.matmul_n, "records": len(records), "runs": runs,
        "mfu_formula": "6 * N * useful_tokens / seconds / bf16_matmul_peak",
    }  # fmt: skip
    return Section(
        figures,
        [
            ("train: recipe / seed useful tokens/s", fmt_x(r), ">= 3x", v),
            ("train: MFU recipe / seed", f"{100 * (recipe['mfu_vs_bf16_peak'] or 0):.1f}% / "
             f"{100 * (seed['mfu_vs_bf16_peak'] or 0):.1f}%", "(reported)", "-"),
        ],
    )  # fmt: skip


def _batches(sizes: Sizes) -> tuple[dict[str, int], dict[str, int]]:
    """Batch overrides of this recipe and of the seed's, both `sizes.train_accum` examples a step.

    The seed's is batch 1; this recipe's is the profile's micro-batch (length-grouped) times the
    accumulation that makes it up, or batch 1 when the micro-batch does not divide it.
    """
    from axon_infralinter.models.train_lora import resolve_config

    micro = resolve_config("smollm2-cpu").per_device_train_batch_size
    if sizes.train_accum % micro:
        micro = 1
    recipe_batch = {
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": sizes.train_accum // micro,
    }
    seed_batch = {
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": sizes.train_accum,
    }
    return recipe_batch, seed_batch


def _train_both(
    ctx: Context,
    records: list[dict[str, Any]],
    recipe_batch: dict[str, int],
    seed_batch: dict[str, int],
) -> list[dict[str, Any]]:
    """This recipe's run, then the seed's, on `records` in a temporary folder."""
    sizes = ctx.sizes
    with tempfile.TemporaryDirectory(prefix="axon-bench-train-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        write_jsonl(data_dir / "train.jsonl", records)  # no val.jsonl: no evaluation
        return [
            _train_once(ctx, "recipe", data_dir, work, **recipe_batch),
            _train_once(
                ctx,
                "seed",
                data_dir,
                work,
                **seed_batch,
                precision="fp32",
                padding="max_length",
                max_length=sizes.seed_max_length,
                loss_on="all",
                group_by_length=False,
            ),  # fmt: skip
        ]


def _train_once(
    ctx: Context, name: str, data_dir: Path, work: Path, **overrides: Any
) -> dict[str, Any]:
    """Train one recipe for a few steps; tokens and seconds from its training_log.jsonl."""
    from axon_infralinter.models.train_lora import resolve_config, train

    sizes = ctx.sizes
    config = resolve_config(
        "smollm2-cpu",
        data_dir=data_dir,
        output_dir=work / f"adapter-{name}",
        checkpoint_dir=work / f"checkpoints-{name}",
        max_steps=sizes.train_steps,
        tune_threshold=False,
        max_eval_samples=0,
        logging_steps=1,
        save_steps=100_000,
        eval_steps=100_000,
        **overrides,
    )
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its log dicts
        adapter = train(config, ctx.settings, progress=False)
    summary = read_adapter_meta(adapter).summary
    # One row per optimizer step (logging_steps 1); its clock starts at on_train_begin and the last
    # row comes before the final save. Steady state = from the end of step 1 to the end: step 1
    # carries one-time costs (first kernels, allocator growth) that 4 steps would not amortize.
    steps = [r for r in read_jsonl(adapter / "training_log.jsonl") if "loss" in r]
    if not steps:
        raise RuntimeError(f"{name}: training_log.jsonl has no step rows")
    first, last = steps[0], steps[-1]
    whole_tokens, whole_s = int(last["tokens_seen"]), float(last["elapsed_s"])
    if len(steps) >= 2:
        tokens = whole_tokens - int(first["tokens_seen"])
        seconds = float(last["elapsed_s"]) - float(first["elapsed_s"])
        measured = int(last["step"]) - int(first["step"])
    else:
        tokens, seconds, measured = whole_tokens, whole_s, int(last["step"])
    return {
        "recipe": name,
        "batch": f"{config.per_device_train_batch_size} x {config.gradient_accumulation_steps}",
        "precision": config.precision,
        "dtype": summary["dtype"],
        "padding": config.padding,
        "max_length": config.max_length,
        "loss_on": config.loss_on,
        "group_by_length": config.group_by_length,
        "steps": summary["global_step"],
        "steps_measured": measured,
        "examples_measured": measured * sizes.train_accum,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds if seconds else None,
        "whole_run_tokens": whole_tokens,
        "whole_run_seconds": whole_s,
        "whole_run_tokens_per_s": whole_tokens / whole_s if whole_s else None,
        "train_loss": summary["train_loss"],
    }


def _print_runs(runs: list[dict[str, Any]]) -> None:
    """The table of both runs."""
    print_table(
        ["recipe", "batch", "dtype", "padding", "max len", "loss on", "examples timed", "useful tokens", "s", "tokens/s",
         "tokens/s incl. step 1", "GFLOP/s", "MFU"],
        [[x["recipe"], x["batch"], x["dtype"], x["padding"], x["max_length"], x["loss_on"], x["examples_measured"],
          x["tokens"], round(x["seconds"], 1), x["tokens_per_s"], x["whole_run_tokens_per_s"], x["model_gflops"],
          f"{100 * (x['mfu_vs_bf16_peak'] or 0):.1f}%"] for x in runs],
    )  # fmt: skip
