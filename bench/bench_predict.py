"""Bench section 3, predict: per-file latency of score mode vs generate mode, beside the scanners.

`bench_predict` times one predictor in both modes (batch 1, interleaved rounds) and Checkov and
Trivy in batch mode on the same test files, then measures how close score mode is to the
machine's matmul peak, and prints the table and the verdict (target: generate / score >= 5x).
bench/README.md section 3 says what each figure means.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench_common import (
    Context,
    Section,
    Sizes,
    every_kth,
    fmt_x,
    get_predictor,
    linear_params,
    matmul_peak_gflops,
    print_table,
    ratio,
    split_records,
    timed_scan,
    verdict,
)

from axon_infralinter.data.prompt import build_prompt, split_prompt


@dataclass
class ModeTimes:
    """Mean seconds of each mode over the rounds, and the last round's outputs."""

    score_s: float
    generate_s: float
    scores: list[float]
    answers: list[str]


def bench_predict(ctx: Context) -> Section:
    """Per-file latency of score vs generate mode (batch 1), beside Checkov and Trivy in batch mode."""
    from axon_infralinter.models.predict import parse_label

    sizes = ctx.sizes
    records = every_kth(split_records(ctx, "test"), sizes.predict_files)
    # Rebuilt from the code: a data set built before the prompt dropped blank lines stores old ones.
    prompts = [build_prompt(split_prompt(r["input_text"])[1], keep_comments=True) for r in records]
    predictor = get_predictor(ctx)
    print(f"  model: {predictor.name} ({ctx.model_note})")
    modes = _time_modes(predictor, prompts, sizes)
    score_s, generate_s = modes.score_s, modes.generate_s
    rounds, n = sizes.predict_rounds, len(prompts)
    # Generate = the same prompt pass + one decoding step per new token (+ EOS): the ratio is
    # bounded by how many tokens the model writes, which a SECURE answer keeps to ~2.
    new_tokens = sum(
        len(predictor.tokenizer(a, add_special_tokens=False)["input_ids"]) + 1
        for a in modes.answers
    )
    per_token_ms = 1000 * max(generate_s - score_s, 0.0) / max(new_tokens, 1)
    parsed = [parse_label(a) for a in modes.answers]
    score_labels = ["INSECURE" if s >= predictor.threshold else "SECURE" for s in modes.scores]
    agree = sum(1 for a, b in zip(parsed, score_labels, strict=True) if a == b)
    rows = [
        ["model, score mode", n, round(score_s, 2), 1000 * score_s / n],
        [f"model, generate mode ({sizes.max_new_tokens} new tokens, greedy)", n, round(generate_s, 2), 1000 * generate_s / n],
    ]  # fmt: skip
    scanners = _time_scanners(records, sizes)
    rows += [[f"{tool} (batch mode, fresh cache)", n, round(s, 2), 1000 * s / n] for tool, s in scanners.items()]  # fmt: skip
    print_table(["way", "files", "s", "ms/file"], rows)
    r = ratio(generate_s, score_s)
    print(
        f"  generate answers parsed: {sum(p is not None for p in parsed)}/{n}; same label as score mode: {agree}/{n}"
    )
    print(
        f"  generated tokens per file: {new_tokens / n:.1f} (EOS included; max {sizes.max_new_tokens}); "
        f"(generate - score) / new tokens = {per_token_ms:.0f} ms per token; {rounds} interleaved round(s)"
    )
    share = _score_share_of_peak(predictor, prompts, sizes, score_s, generate_s)
    v = verdict(r, 5)
    print(
        f"  verdict: score mode is {fmt_x(r)} faster per file than generate mode (target >= 5x): {v}"
    )
    figures = {
        "model": predictor.name, "model_note": ctx.model_note, "files": n,
        "score_s": score_s, "generate_s": generate_s, "ratio": r,
        "score_ms_per_file": 1000 * score_s / n, "generate_ms_per_file": 1000 * generate_s / n,
        "scanner_ms_per_file": {t: 1000 * s / n for t, s in scanners.items()},
        "generate_parsed": sum(p is not None for p in parsed), "score_generate_agree": agree,
        "max_new_tokens": sizes.max_new_tokens, "rounds": rounds,
        "generated_tokens_per_file": new_tokens / n, "decode_ms_per_token": per_token_ms,
        **share,
    }  # fmt: skip
    return Section(figures, [("predict: generate / score ms per file", fmt_x(r), ">= 5x", v)])


def _time_modes(predictor: Any, prompts: list[str], sizes: Sizes) -> ModeTimes:
    """Score and generate mode on `prompts`, batch 1, after one untimed warm-up of each."""
    predictor.score_prompts(prompts[:1], batch_size=1)  # warm-up, not timed
    predictor.generate_prompts(prompts[:1], max_new_tokens=2, batch_size=1)
    # Interleaved rounds, each mode summed: a slow moment of the machine hits both modes alike.
    score_s = generate_s = 0.0
    for _ in range(sizes.predict_rounds):
        started = time.perf_counter()
        scores = predictor.score_prompts(prompts, batch_size=1)
        score_s += time.perf_counter() - started
        started = time.perf_counter()
        answers = predictor.generate_prompts(
            prompts, max_new_tokens=sizes.max_new_tokens, do_sample=False, batch_size=1
        )
        generate_s += time.perf_counter() - started
    rounds = sizes.predict_rounds
    return ModeTimes(score_s / rounds, generate_s / rounds, scores, answers)


def _time_scanners(records: list[dict[str, Any]], sizes: Sizes) -> dict[str, float]:
    """Seconds of each scanner in batch mode (fresh cache) on the records' Terraform text."""
    from axon_infralinter.data.scanner import TOOLS

    scanners: dict[str, float] = {}
    codes = [(r["path"], split_prompt(r["input_text"])[1]) for r in records]
    for tool in TOOLS:
        seconds, _ = timed_scan(codes, tool, sizes.scanner_batch_size)
        scanners[tool] = seconds
    return scanners


def _score_share_of_peak(
    predictor: Any, prompts: list[str], sizes: Sizes, score_s: float, generate_s: float
) -> dict[str, Any]:
    """Print and return how close score mode is to the measured bf16 matmul peak.

    The ratio can only reach 5x by a faster score pass (generate's decoding steps are what they
    are), and one forward pass is a fixed number of FLOPs. Linear layers only (attention scores
    left out: a lower bound on the work).
    """
    import torch

    from axon_infralinter.models.tokens import prompt_ids

    n = len(prompts)
    tokens = sum(len(prompt_ids(p, predictor.tokenizer, predictor.max_length)) for p in prompts)
    n_linear = linear_params(predictor.model)
    score_gflops = 2 * n_linear * tokens / score_s / 1e9 if score_s else 0.0
    peak = matmul_peak_gflops(sizes.matmul_n, torch.bfloat16, sizes.matmul_seconds)
    needed_s = max(generate_s - score_s, 0.0) / 4  # score time at which generate / score = 5
    needed_share = (score_gflops * score_s / needed_s / peak) if needed_s and peak else None
    print(
        f"  score mode: {tokens / n:.0f} prompt tokens per file, {score_gflops:,.0f} GFLOP/s in the linear layers "
        f"= {100 * score_gflops / peak:.0f}% of the measured bf16 matmul peak ({peak:,.0f} GFLOP/s); "
        f"a 5x ratio with these answers needs {1000 * needed_s / n:.0f} ms per file, "
        + (f"{100 * needed_share:.0f}% of that peak" if needed_share is not None else "n/a")
    )
    return {
        "prompt_tokens": tokens, "linear_params": n_linear, "score_linear_gflops": score_gflops,
        "matmul_peak_gflops_bf16": peak, "score_share_of_peak": score_gflops / peak if peak else None,
        "share_of_peak_needed_for_5x": needed_share,
    }  # fmt: skip
