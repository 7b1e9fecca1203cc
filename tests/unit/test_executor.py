"""The executor interface: LocalExecutor, the engine's config and flags, no dask without [dask]."""

from __future__ import annotations

import ast
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import axon_infralinter
from axon_infralinter import cli
from axon_infralinter.data import scanner
from axon_infralinter.engine import DaskConfig, dask_executor
from axon_infralinter.errors import ConfigError, ScannerError
from axon_infralinter.executor import LocalExecutor
from axon_infralinter.schema import Finding

PACKAGE = Path(axon_infralinter.__file__).parent


def _slow_negate(x: int) -> int:
    time.sleep(0.02 * (4 - x))  # the first items finish last
    return -x


def test_local_map_keeps_input_order_and_reports_each_task_once() -> None:
    done: list[tuple[int, int]] = []
    out = LocalExecutor(workers=4).map(_slow_negate, [0, 1, 2, 3], lambda i, r: done.append((i, r)))
    assert out == [0, -1, -2, -3]
    assert sorted(done) == [(0, 0), (1, -1), (2, -2), (3, -3)]
    assert [i for i, _ in done] != [0, 1, 2, 3]  # reported as they finished, not in order


def test_one_local_worker_runs_the_tasks_here_one_after_another() -> None:
    threads: list[int] = []
    order: list[int] = []

    def task(x: int) -> int:
        threads.append(threading.get_ident())
        order.append(x)
        return x * 2

    assert LocalExecutor().map(task, [3, 1, 2]) == [6, 2, 4]
    assert order == [3, 1, 2] and set(threads) == {threading.get_ident()}
    assert LocalExecutor().map(task, []) == []


def test_a_failing_task_fails_the_map() -> None:
    def task(x: int) -> int:
        if x == 2:
            raise ScannerError("checkov is not installed")
        return x

    for workers in (1, 3):
        with pytest.raises(ScannerError, match="checkov is not installed"):
            LocalExecutor(workers=workers).map(task, [1, 2, 3])


def test_configs_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--workers"):
        LocalExecutor(workers=0)
    with pytest.raises(ConfigError, match="--scheduler"):
        DaskConfig(scheduler="not an address")
    with pytest.raises(ConfigError, match="--workers"):
        DaskConfig(n_workers=0)
    assert DaskConfig(scheduler="tcp://10.0.0.5:8786").scheduler == "tcp://10.0.0.5:8786"
    assert DaskConfig(scheduler="scheduler-host:8786").n_workers is None


def test_no_module_outside_engine_imports_dask() -> None:
    """Without the [dask] extra nothing changes: only engine/ (the CLI's choice) imports dask."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "engine":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(PACKAGE)}: {n}"
                for n in names
                if n.split(".")[0] in ("dask", "distributed")
            ]
    assert offenders == []


def test_a_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import axon_infralinter.engine as engine

    monkeypatch.delattr(engine, "cluster", raising=False)
    monkeypatch.delitem(sys.modules, "axon_infralinter.engine.cluster", raising=False)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'axon-infralinter\[dask\]'"):
        with dask_executor(DaskConfig()):
            pass


def test_scheduler_without_the_dask_engine_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dataset", "build", "--corpus", str(tmp_path), "--scheduler", "tcp://127.0.0.1:8786"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == "axon: --scheduler needs --engine dask"
    for command in (["dataset", "build"], ["evaluate"], ["scan", "x.tf"]):
        args = cli.build_parser().parse_args([*command, "--engine", "dask", "--scheduler", "h:1"])
        assert (args.engine, args.scheduler) == ("dask", "h:1")


# --------------------------------------------------------------------------------------------
# The scanner's batches as tasks


def _finding(tool: Any, rule: str) -> Finding:
    return Finding(tool=tool, rule_id=rule, severity=None, resource="r", path="", start_line=1,
                   end_line=2, title="t")  # fmt: skip


class Recording:
    """A LocalExecutor that records each map call's function and items."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[Any]]] = []
        self.local = LocalExecutor()

    name = "recording"
    workers = 1
    torch_threads = 1

    def map(self, fn: Any, items: Any, on_done: Any = None) -> list[Any]:
        self.calls.append((fn, list(items)))
        return self.local.map(fn, items, on_done)


def test_each_scanner_batch_is_one_task_and_the_caller_writes_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run(tool: Any, texts: Any, timeout: float) -> list[tuple[list[Finding], None]]:
        return [([_finding(tool, "R1")] if "bad" in t else [], None) for t in texts]

    monkeypatch.setattr(scanner, "_run_batch", fake_run)
    monkeypatch.setattr(scanner, "tool_version", lambda tool: "9.9.9")
    items = [("a.tf", "bad 1"), ("b.tf", "ok 2"), ("c.tf", "bad 3")]
    local = scanner.scan_texts(items, scanner.ScanConfig(tmp_path / "local", batch_size=2), False)
    recording = Recording()
    config = scanner.ScanConfig(tmp_path / "remote", batch_size=2, executor=recording)
    assert scanner.scan_texts(items, config, False) == local
    assert [fn for fn, _ in recording.calls] == [scanner.scan_batch, scanner.scan_batch]
    tasks = [task for _, tasks in recording.calls for task in tasks]
    assert [(t.tool, t.version, len(t.texts)) for t in tasks] == [
        ("checkov", "9.9.9", 2), ("checkov", "9.9.9", 1),
        ("tfsec", "9.9.9", 2), ("tfsec", "9.9.9", 1),
    ]  # fmt: skip
    assert len(list((tmp_path / "remote").rglob("*.json"))) == 6
    recording.calls.clear()
    assert scanner.scan_texts(items, config, False) == local  # a second run: all cached
    assert [tasks for _, tasks in recording.calls] == [[], []]


def test_a_worker_with_another_scanner_version_refuses_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scanner, "tool_version", lambda tool: "3.3.31")
    task = scanner.BatchTask("checkov", "3.3.30", ["x"], 10.0)
    with pytest.raises(ScannerError, match="same scanner versions on every node"):
        scanner.scan_batch(task)
