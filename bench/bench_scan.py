"""Bench section 4, scan: `axon scan` throughput and the peak memory of its process.

`bench_scan` runs `python -m axon_infralinter scan` on corpus files in a child process that reports
its own peak RSS (VmHWM) as it exits, and prints the table and the verdict (target: peak RSS
<= 1.5 GiB). bench/README.md section 4 says what each figure means.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_common import REPO, Context, Section, corpus_sample, print_table, verdict

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


def bench_scan(ctx: Context) -> Section:
    """`axon scan` on corpus files in a child process: wall time, files/s, peak RSS of the child."""
    sizes = ctx.sizes
    paths = [str(path) for _, path, _ in corpus_sample(ctx, sizes.scan_files)]
    wall, rss_kb, report = _scan_in_child(paths)
    n = len(paths)
    rows = [
        ["wall (model load included)", n, round(wall, 2), n / wall],
        ["scan only (report 'seconds')", n, round(report["seconds"], 2), n / report["seconds"] if report["seconds"] else "n/a"],
    ]  # fmt: skip
    print(f"  model: {report['model']}; files scanned {report['summary']['scanned']}, insecure "
          f"{report['summary']['insecure']}, notifications {report['summary']['errors']}")  # fmt: skip
    print_table(["time", "files", "s", "files/s"], rows)
    print(f"  peak RSS of the `axon scan` process: {rss_kb / 1024:,.0f} MiB")
    v = verdict(rss_kb / GIB_KB, 1.5, higher_is_better=False)
    print(
        f"  verdict: {n / wall:.2f} files/s end to end; peak RSS {rss_kb / GIB_KB:.2f} GiB (target <= 1.5 GiB): {v}"
    )
    figures = {
        "files": n, "wall_s": wall, "files_per_s_wall": n / wall, "scan_s": report["seconds"],
        "peak_rss_mib": rss_kb / 1024, "model": report["model"], "summary": report["summary"],
    }  # fmt: skip
    return Section(
        figures,
        [
            ("scan: files/s (wall, incl. model load)", f"{n / wall:.2f}", "(reported)", "-"),
            ("scan: peak RSS", f"{rss_kb / GIB_KB:.2f} GiB", "<= 1.5 GiB", v),
        ],
    )


def _scan_in_child(paths: list[str]) -> tuple[float, int, dict[str, Any]]:
    """Wall seconds, peak RSS (KiB) and JSON report of `axon scan PATHS` in a child process."""
    # `python -m axon_infralinter scan ...`, run through runpy so that the child can report the
    # high-water mark of its own address space (VmHWM) as it exits. ru_maxrss cannot be used: Linux
    # carries the parent's RSS across fork/vfork + exec into the child's ru_maxrss, so it would
    # report this bench process's peak (several GiB after the train section).
    cmd = [sys.executable, "-c", _PEAK_WRAPPER, "scan", *paths, "--format", "json", "--no-explain"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        returncode = subprocess.run(cmd, stdout=out, stderr=err, cwd=REPO, check=False).returncode
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if returncode not in (0, 1):
        lines = [line for line in stderr.strip().splitlines() if not line.startswith(_PEAK_MARK)]
        raise RuntimeError(
            f"axon scan exited {returncode}: {(lines[-1:] or ['no output'])[0][:300]}"
        )
    marks = [line.split()[1] for line in stderr.splitlines() if line.startswith(_PEAK_MARK)]
    if not marks:
        raise RuntimeError("axon scan did not report its peak memory")
    return wall, int(marks[-1]), json.loads(stdout)
