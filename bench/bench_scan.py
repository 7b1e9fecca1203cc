"""Bench section 4, scan: `axon scan` cold, warm and after a one-file edit, beside Checkov and Trivy.

`bench_scan` copies `sizes.scan_files` corpus files into one temporary folder and runs, side by side
in this one run, each in a child process that reports its own peak RSS (VmHWM) as it exits:

1. a cold `axon scan FOLDER --format json --no-explain` (an empty verdict cache),
2. the same again (warm cache: target >= 50x faster than cold, the same report, no model call),
3. the same after one file's last block is edited (only that block is scored),
4. a cold scan with explanations (what a user runs by default: the memory target, <= 1.5 GiB),
5. `checkov -d FOLDER` and `trivy config FOLDER`, run offline as `data.scanner` runs them,

then puts the cold scan's time beside its FLOP limit: 2 x linear-layer weights x prompt tokens of
the chunks it scored / the bf16 matmul peak measured here (target <= 1.5x). Last, one real module
repository (`sizes.context_repo`) is scanned cold twice, with context-only chunks (only variable,
output, locals and terraform blocks) reported SECURE unjudged (the default) and judged
(`--judge-context-blocks`): the time saved and whether any verdict differs. bench/README.md section
4 says what each figure means.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_common import (
    REPO,
    Context,
    Section,
    corpus_sample,
    fmt_x,
    get_predictor,
    linear_params,
    matmul_peak_gflops,
    print_table,
    ratio,
    verdict,
)

GIB_KB = 1024 * 1024  # VmHWM is in KiB

_PEAK_MARK = "AXON_BENCH_VMHWM_KB"
#: Runs `python -m axon_infralinter ARGS` and prints the process's peak RSS (VmHWM, KiB) last.
_PEAK_WRAPPER = f"""
import runpy, sys
sys.argv = ["axon", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("axon_infralinter", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
except BaseException:
    import traceback
    traceback.print_exc()
    code = 3  # a crash, told apart from exit 1 (findings)
finally:
    sys.stdout.flush()
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("\\n{_PEAK_MARK} " + peak + "\\n")
sys.exit(code)
"""
#: Added inside the edited file's last block: a change of code, not of a comment.
_EDIT = '  axon_bench_edit = "changed"\n'


def bench_scan(ctx: Context) -> Section:
    """The five runs side by side, their table, the FLOP limit and the verdicts."""
    sample = corpus_sample(ctx, ctx.sizes.scan_files)
    with tempfile.TemporaryDirectory(prefix="axon-bench-scan-") as tmp:
        folder = Path(tmp) / "repo"
        for rel, path, _ in sample:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        homes = [_home(Path(tmp) / name, ctx) for name in ("home", "home-explain")]
        args = [str(folder), "--format", "json"]
        peak_before = _bf16_peak(ctx)  # the machine is shared: measured before and after, max kept
        cold = _scan_in_child([*args, "--no-explain"], homes[0])
        warm = _scan_in_child([*args, "--no-explain"], homes[0])
        edited, expected = _edit_one_file(ctx, folder)
        after = _scan_in_child([*args, "--no-explain"], homes[0])
        explained = _scan_in_child(args, homes[1])
        scanners = {tool: _scanner_in_child(tool, folder) for tool in ("checkov", "tfsec")}
        limit = _flop_limit(ctx, folder, peak_before)
        context = _context_runs(ctx, Path(tmp))
    section = _report(
        ctx, len(sample), cold, warm, after, explained, scanners, edited, expected, limit
    )
    if context is not None:
        section.figures["context_blocks"] = context
    return section


def _context_runs(ctx: Context, tmp: Path) -> dict[str, Any] | None:
    """Cold scans of one module repository without and with judging context-only chunks: their
    times, chunks judged, and the verdicts that differ (None: the folder is not in the corpus)."""
    source = (ctx.settings.corpus or Path("/nonexistent")) / ctx.sizes.context_repo
    files = sorted(source.rglob("*.tf"))[: ctx.sizes.context_files]
    if not files:
        print(f"  context blocks: {source} not found: skipped")
        return None
    folder = tmp / "module"
    for path in files:
        target = folder / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    args = [str(folder), "--format", "json", "--no-explain"]
    skip = _scan_in_child(args, _home(tmp / "home-context", ctx))
    judge = _scan_in_child([*args, "--judge-context-blocks"], _home(tmp / "home-judge", ctx))
    a, b = skip["report"], judge["report"]
    by_path = {f["path"]: f for f in b["files"]}
    flagged = differs = 0
    for f in a["files"]:
        for mine, theirs in zip(f["blocks"], by_path[f["path"]]["blocks"], strict=True):
            if mine["context"]:
                flagged += theirs["label"] == "INSECURE"
            else:
                differs += mine["label"] != theirs["label"]
    changed = sum(f["label"] != by_path[f["path"]]["label"] for f in a["files"])
    speedup = ratio(b["seconds"], a["seconds"])
    print(f"  context-only chunks, {ctx.sizes.context_repo} ({len(files)} files, cold, "
          f"--no-explain): {a['stats']['context']} of {a['stats']['context'] + a['stats']['chunks']} "
          f"chunks reported SECURE unjudged; scan {a['seconds']:.1f} s vs {b['seconds']:.1f} s "
          f"judging them ({fmt_x(speedup)} faster); judged, {flagged} of them would be INSECURE; "
          f"other blocks' verdicts that differ: {differs}; file verdicts that differ: {changed}")  # fmt: skip
    return {"repo": ctx.sizes.context_repo, "files": len(files), "context_chunks": a["stats"]["context"],
            "judged_chunks": a["stats"]["chunks"], "scan_s": a["seconds"], "scan_s_judging": b["seconds"],
            "speedup": speedup, "context_flagged_when_judged": flagged,
            "other_blocks_differing": differs, "files_differing": changed}  # fmt: skip


def _report(
    ctx: Context,
    n: int,
    cold: dict[str, Any],
    warm: dict[str, Any],
    after: dict[str, Any],
    explained: dict[str, Any],
    scanners: dict[str, dict[str, Any]],
    edited: str,
    expected: int,
    limit: dict[str, Any],
) -> Section:
    """Print the table and verdicts; the section's figures and summary rows."""
    rows = []
    for name, run in (("axon scan, cold (empty cache, --no-explain)", cold),
                      ("axon scan, warm re-scan", warm),
                      ("axon scan, after editing one file", after),
                      ("axon scan, cold, with explanations (default)", explained)):  # fmt: skip
        stats = run["report"]["stats"]
        rows.append([name, n, stats["scored"], stats["explained"], stats["cache_hits"],
                     round(run["wall"], 2), round(run["report"]["seconds"], 3),
                     round(run["rss_kb"] / 1024), round(run["load"], 1)])  # fmt: skip
    for tool, run in scanners.items():
        name = "checkov -d" if tool == "checkov" else "trivy config"
        rows.append([f"{name} (offline)", n, "-", "-", "-", round(run["wall"], 2), "-",
                     round(run["rss_kb"] / 1024) if run["rss_kb"] else "n/a",
                     round(run["load"], 1)])  # fmt: skip
    print(f"  model: {cold['report']['model']}; {cold['report']['summary']['scanned']} files scanned, "
          f"{cold['report']['stats']['chunks']} chunks ({cold['report']['stats']['unique']} distinct), "
          f"{cold['report']['summary']['insecure']} files INSECURE")  # fmt: skip
    print_table(["run", "files", "scored", "explained", "cache hits", "wall s",
                 "scan s (no model load)", "peak RSS MiB", "load avg"], rows)  # fmt: skip
    warm_x = ratio(cold["report"]["seconds"], warm["report"]["seconds"])
    warm_wall_x = ratio(cold["wall"], warm["wall"])
    same = _comparable(cold["report"]) == _comparable(warm["report"])
    no_calls = warm["report"]["stats"]["scored"] == warm["report"]["stats"]["explained"] == 0
    v_warm = "met" if verdict(warm_x, 50) == "met" and same and no_calls else "missed"
    print(f"  warm re-scan: {fmt_x(warm_x)} faster than cold scanning (target >= 50x; wall with "
          f"model load {fmt_x(warm_wall_x)}); same report: {'yes' if same else 'no'}; model "
          f"calls {warm['report']['stats']['scored']}: {v_warm}")  # fmt: skip
    scored = after["report"]["stats"]["scored"]
    v_edit = "met" if scored == expected else "missed"
    print(f"  after editing {edited}: {scored} chunks scored, {expected} changed "
          f"(the rest from the cache): {v_edit}")  # fmt: skip
    limit_x = ratio(cold["report"]["seconds"], limit["limit_s"])
    v_limit = verdict(limit_x, 1.5, higher_is_better=False)
    print(f"  FLOP limit of the cold scan: 2 x {limit['linear_params'] / 1e6:.1f} M weights x "
          f"{limit['tokens']:,} prompt tokens / {limit['peak_gflops']:,.0f} GFLOP/s (bf16 matmul "
          f"peak) = {limit['limit_s']:.1f} s; the cold scan took {fmt_x(limit_x)} that "
          f"(target <= 1.5x): {v_limit}")  # fmt: skip
    ran = cold["report"]["stats"].get("model_tokens", 0)
    if ran:
        print(f"  the model ran {ran:,} of those prompt tokens ({100 * ran / limit['tokens']:.0f}%: "
              f"the instruction every prompt starts with once per call); "
              f"{ran / cold['report']['seconds']:,.0f} tokens/s ran, "
              f"{limit['tokens'] / cold['report']['seconds']:,.0f} prompt tokens/s judged")  # fmt: skip
    checkov_x = ratio(cold["wall"], scanners["checkov"]["wall"])
    print(f"  cold axon scan wall / checkov wall: {fmt_x(checkov_x)}")
    peak_kb = max(run["rss_kb"] for run in (cold, warm, after, explained))
    v_rss = verdict(peak_kb / GIB_KB, 1.5, higher_is_better=False)
    print(f"  peak RSS of the `axon scan` processes: {peak_kb / GIB_KB:.2f} GiB "
          f"(with explanations {explained['rss_kb'] / GIB_KB:.2f}; target <= 1.5 GiB): {v_rss}")  # fmt: skip
    figures = {
        "files": n, "model": cold["report"]["model"], "model_note": ctx.model_note,
        "runs": {name: {"wall_s": r["wall"], "scan_s": r["report"]["seconds"], "load_avg": r["load"],
                        "peak_rss_mib": r["rss_kb"] / 1024, "stats": r["report"]["stats"],
                        "summary": r["report"]["summary"]}
                 for name, r in (("cold", cold), ("warm", warm), ("edited", after),
                                 ("cold_explain", explained))},
        "scanners": {tool: {"wall_s": r["wall"], "peak_rss_mib": r["rss_kb"] / 1024,
                            "load_avg": r["load"]}
                     for tool, r in scanners.items()},
        "warm_ratio": warm_x, "warm_wall_ratio": warm_wall_x, "warm_same_report": same,
        "edited_file": edited, "edited_changed_chunks": expected, "edited_scored": scored,
        "flop_limit": limit, "cold_over_flop_limit": limit_x, "cold_over_checkov_wall": checkov_x,
        "peak_rss_mib": peak_kb / 1024,
        "files_per_s_wall": n / cold["wall"],
    }  # fmt: skip
    return Section(
        figures,
        [
            ("scan: warm / cold scan time (same report)", fmt_x(warm_x), ">= 50x", v_warm),
            ("scan: chunks scored after a one-file edit", f"{scored} of {expected}", f"= {expected}", v_edit),
            ("scan: cold scan / FLOP limit", fmt_x(limit_x), "<= 1.5x", v_limit),
            ("scan: cold axon wall / checkov wall", fmt_x(checkov_x), "(reported)", "-"),
            ("scan: peak RSS", f"{peak_kb / GIB_KB:.2f} GiB", "<= 1.5 GiB", v_rss),
        ],
    )  # fmt: skip


def _home(home: Path, ctx: Context) -> Path:
    """A fresh AXON_HOME (empty verdict cache) that reuses the dequantized base model."""
    home.mkdir(parents=True)
    models = ctx.settings.model_cache
    if models.is_dir():
        (home / "models").symlink_to(models, target_is_directory=True)
    return home


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A JSON report without what may differ between two scans of the same code."""
    return {k: v for k, v in report.items() if k not in ("seconds", "stats")}


def _edit_one_file(ctx: Context, folder: Path) -> tuple[str, int]:
    """Add a line of code to the last block of the file with the most chunks; (file, chunks
    whose text the edit changed)."""
    from axon_infralinter.terraform.blocks import split_blocks
    from axon_infralinter.terraform.chunks import CONTEXT_KINDS, plan_chunks

    predictor = get_predictor(ctx)
    budget = predictor.max_code_tokens
    plans = {}
    for path in sorted(folder.rglob("*.tf")):
        text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        plans[path] = (text, plan_chunks(text, budget, predictor.count_tokens))
    path = max(plans, key=lambda p: (len(plans[p][1]), str(p)))
    text, _ = plans[path]
    # A multi-line block (not `x {}`) that the scan judges (not an input, output or setting).
    last = [
        b for b in split_blocks(text) if b.end_line > b.start_line and b.kind not in CONTEXT_KINDS
    ][-1]
    lines = text.split("\n")
    lines.insert(last.end_line - 1, _EDIT.rstrip("\n"))
    edited = "\n".join(lines)
    path.write_text(edited, encoding="utf-8")
    known = {c.code for _, (_, chunks) in plans.items() for c in chunks}
    after = {
        c.code
        for c in plan_chunks(edited, budget, predictor.count_tokens)
        if not (c.suppressed or c.context_only)
    }
    return path.relative_to(folder).as_posix(), len(after - known)


def _bf16_peak(ctx: Context) -> float:
    import torch

    return matmul_peak_gflops(ctx.sizes.matmul_n, torch.bfloat16, ctx.sizes.matmul_seconds)


def _flop_limit(ctx: Context, folder: Path, peak_before: float) -> dict[str, Any]:
    """The cold scan's FLOP limit: its prompt tokens through the linear layers at the bf16 peak.

    The chunks are planned as `axon scan` plans them (its tokenizer and code budget, comments
    stripped), each distinct text once; attention is left out, so the limit is a lower bound. The
    peak is the higher of two measurements, before the cold scan and now.
    """
    from axon_infralinter.data.prompt import build_prompt
    from axon_infralinter.lint.inputs import read_terraform
    from axon_infralinter.models.tokens import prompt_ids
    from axon_infralinter.terraform.chunks import plan_chunks

    predictor = get_predictor(ctx)
    codes: set[str] = set()
    for path in sorted(folder.rglob("*.tf")):
        text = read_terraform(path, path.name, 1_000_000)
        if isinstance(text, str):
            chunks = plan_chunks(text, predictor.max_code_tokens, predictor.count_tokens)
            # What the scan judges: not suppressed chunks, not context-only ones (SECURE unjudged).
            codes.update(c.code for c in chunks if not (c.suppressed or c.context_only))
    tokens = sum(
        len(prompt_ids(build_prompt(code), predictor.tokenizer, predictor.max_length))
        for code in codes
    )
    n_linear = linear_params(predictor.model)
    peaks = [peak_before, _bf16_peak(ctx)]
    limit_s = 2 * n_linear * tokens / (max(peaks) * 1e9)
    return {"chunks": len(codes), "tokens": tokens, "linear_params": n_linear,
            "peak_gflops": max(peaks), "peaks_gflops": peaks, "limit_s": limit_s}  # fmt: skip


def _scan_in_child(args: list[str], home: Path) -> dict[str, Any]:
    """Wall seconds, peak RSS (KiB) and JSON report of `axon scan ARGS` in a child process."""
    # `python -m axon_infralinter scan ...`, run through runpy so that the child can report the
    # high-water mark of its own address space (VmHWM) as it exits. ru_maxrss cannot be used: Linux
    # carries the parent's RSS across fork/vfork + exec into the child's ru_maxrss, so it would
    # report this bench process's peak (several GiB after the train section).
    cmd = [sys.executable, "-c", _PEAK_WRAPPER, "scan", *args]
    env = {**os.environ, "AXON_HOME": str(home)}
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=err, cwd=REPO, env=env, check=False)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode not in (0, 1):
        lines = [line for line in stderr.strip().splitlines() if not line.startswith(_PEAK_MARK)]
        raise RuntimeError(
            f"axon scan exited {proc.returncode}: {(lines[-1:] or ['no output'])[0][:300]}"
        )
    marks = [line.split()[1] for line in stderr.splitlines() if line.startswith(_PEAK_MARK)]
    if not marks:
        raise RuntimeError("axon scan did not report its peak memory")
    report = json.loads(stdout)
    return {"wall": wall, "rss_kb": int(marks[-1]), "report": report, "load": load}


def _scanner_in_child(tool: str, folder: Path) -> dict[str, Any]:
    """Wall seconds and peak RSS (KiB, polled from /proc: VmHWM only grows) of one scanner run on
    the folder, offline, with the command line and environment `data.scanner` uses."""
    from axon_infralinter.data.scanner import _command, _tool_env, tool_version

    tool_version(tool)  # its first call is slow: keep it out of the timing
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        _command(tool, folder),  # type: ignore[arg-type]
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_tool_env(),
    )  # fmt: skip
    peak = [0]

    def poll() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    proc.wait(timeout=1800)
    wall = time.perf_counter() - started
    watcher.join()
    return {"wall": wall, "rss_kb": peak[0], "load": load}
