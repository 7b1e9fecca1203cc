"""The Dask engine on a loopback LocalCluster of 2 workers gives the local engine's results.

Real Checkov, Trivy and SmolLM2 with the shipped adapter. Every process of this module runs under
the no-network guard (`no_network/sitecustomize.py` on PYTHONPATH, and installed in this process):
the cluster's workers, the `axon dataset build --engine dask --scheduler ADDR` subprocess, and the
scanners' Python processes; `test_nothing_left_the_machine` asserts that none of them tried to
connect anywhere but loopback.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import axon_infralinter
from axon_infralinter.data import scanner
from axon_infralinter.data.dataset import DatasetConfig, build_dataset
from axon_infralinter.engine import DaskConfig, dask_executor
from axon_infralinter.engine.cluster import DaskExecutor
from axon_infralinter.executor import OnDone, usable_cores
from axon_infralinter.files import read_json
from axon_infralinter.lint.scan import ScanOptions, scan
from axon_infralinter.models import remote
from axon_infralinter.models.evaluate import EvalConfig, evaluate_llms, load_labels_csv
from axon_infralinter.models.predict import Predictor, load_predictor
from axon_infralinter.settings import load_settings
from axon_infralinter.terraform.lexer import strip_comments

# The helpers that run on the workers are defined here: ship them by value (workers cannot
# import this test module).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GUARD = Path(__file__).resolve().parent / "no_network"
AXON = Path(sys.executable).with_name("axon")
ADAPTER = Path(axon_infralinter.__file__).parent / "adapters" / "default"
LABELS_CSV = FIXTURES / "eval" / "labels.csv"
SPLITS = ("train", "val", "test")

#: Three fake repositories, so the split has one per split; two files are skipped before scanning.
LAYOUT = {
    "acme__aws": ["aws_s3_public_insecure.tf", "aws_s3_private_secure.tf", "kms_key_secure.tf",
                  "binary.tf"],
    "acme__azure": ["azure_storage_http_insecure.tf", "azure_storage_secure.tf", "invalid_hcl.tf"],
    "acme__gcp": ["gcp_bucket_public_insecure.tf", "gcp_bucket_secure.tf"],
}  # fmt: skip
SCANNED = 7
#: The scanner of the killed-worker test: Trivy starts in ~1 s, Checkov in ~3 s.
TOOL = "tfsec"


@dataclass
class Guard:
    refused: Path
    """One JSON line per refused connect."""
    loaded: Path
    """One JSON line per process that loaded the guard."""

    def rows(self, path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guard]:
    """The guard in this process and, through the environment, in every process started after."""
    logs = tmp_path_factory.mktemp("net")
    found = Guard(logs / "refused.jsonl", logs / "loaded.jsonl")
    patch = pytest.MonkeyPatch()
    patch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(GUARD), os.environ.get("PYTHONPATH")]))
    )
    patch.setenv("AXON_NET_GUARD_LOG", str(found.refused))
    patch.setenv("AXON_NET_GUARD_LOADED", str(found.loaded))
    spec = importlib.util.spec_from_file_location("axon_net_guard", GUARD / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # installs itself: the environment names a log
    yield found
    module.uninstall()
    patch.undo()


@pytest.fixture(scope="module")
def executor(guard: Guard) -> Iterator[DaskExecutor]:
    with dask_executor(DaskConfig(n_workers=2)) as ex:
        yield ex


@pytest.fixture(scope="module")
def corpus(guard: Guard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for repo, names in LAYOUT.items():
        (root / repo).mkdir()
        for name in names:
            shutil.copy(FIXTURES / "tf" / name, root / repo / name)
    return root


@pytest.fixture(scope="module")
def local_build(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> DatasetConfig:
    root = tmp_path_factory.mktemp("local")
    config = DatasetConfig(corpus=corpus, out=root / "out", cache_dir=root / "cache")
    build_dataset(config, progress=False)
    return config


@pytest.fixture(scope="module")
def dask_build(
    corpus: Path, executor: DaskExecutor, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, str]:
    """`axon dataset build --engine dask --scheduler ADDR`: (out, scan cache, stderr)."""
    root = tmp_path_factory.mktemp("dask")
    cmd = [str(AXON), "dataset", "build", "--corpus", str(corpus), "--out", str(root / "out"),
           "--engine", "dask", "--scheduler", executor.address]  # fmt: skip
    env = {**os.environ, "AXON_HOME": str(root / "home")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "out", root / "home" / "scan-cache", proc.stderr


def _card(out: Path) -> dict[str, Any]:
    """The data set card without what names the run's folders or times it."""
    card = read_json(out / "dataset_card.json")
    card.pop("timings")
    for key in ("out", "cache_dir"):
        card["config"].pop(key)
    for info in card["files"].values():
        info.pop("path")
    return card


def _cache(folder: Path) -> dict[str, Any]:
    return {p.relative_to(folder).as_posix(): read_json(p) for p in folder.rglob("*.json")}


def test_dataset_build_is_the_same_on_both_engines(
    local_build: DatasetConfig, dask_build: tuple[Path, Path, str]
) -> None:
    out, cache, stderr = dask_build
    assert "dask scheduler at tcp://127.0.0.1:" in stderr and "2 workers" in stderr
    for name in [f"{s}.jsonl" for s in SPLITS] + ["findings.jsonl", "rule_titles.json"]:
        assert (out / name).read_bytes() == (local_build.out / name).read_bytes(), name
    assert _card(out) == _card(local_build.out)
    assert _card(out)["counts"]["scanned"] == SCANNED
    assert len(_cache(cache)) == 2 * SCANNED  # one result per (tool, file), written by the caller
    assert _cache(cache) == _cache(local_build.cache_dir)


# --------------------------------------------------------------------------------------------
# Scoring


@pytest.fixture(scope="module")
def predictor(guard: Guard) -> Predictor:
    return load_predictor(ADAPTER, settings=load_settings())


def _evaluate(predictor: Predictor, runs_dir: Path) -> dict[str, Any]:
    config = EvalConfig(runs_dir=runs_dir, labels_csv=LABELS_CSV, batch_size=1)
    records = load_labels_csv(LABELS_CSV)[1:3]  # one secure, one insecure: a task each
    return dict(evaluate_llms(records, predictor, config, settings=load_settings(), progress=False))


@pytest.fixture(scope="module")
def scored(
    predictor: Predictor, executor: DaskExecutor, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The eval fixtures scored here and on the workers: (local run, dask run)."""
    root = tmp_path_factory.mktemp("runs")
    local = _evaluate(predictor, root / "local")
    on_dask = _evaluate(remote.RemotePredictor.wrap(predictor, executor), root / "dask")
    return local, on_dask


def _without_runtime(run: dict[str, Any]) -> dict[str, Any]:
    run = json.loads(json.dumps(run))
    for key in ("runtime", "timestamp"):
        run.pop(key)
    run["config"].pop("runs_dir")
    for p in run["predictions"]:
        p.pop("seconds")
        p["score"] = round(p["score"], 5)
    return run


def _worker_models() -> list[int]:
    return [id(p) for p in remote._LOADED.values()]


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def test_scores_are_the_same_on_both_engines(
    scored: tuple[dict[str, Any], dict[str, Any]], executor: DaskExecutor
) -> None:
    local, on_dask = scored
    assert [p["y_true"] for p in local["predictions"]] == [0, 1]
    for a, b in zip(local["predictions"], on_dask["predictions"], strict=True):
        assert (a["id"], a["y_true"], a["y_pred"]) == (b["id"], b["y_true"], b["y_pred"])
        # Under bf16 autocast a prompt's score depends on the batch it shares (padded width,
        # kernel blocking): the workers batch per task, the local run all prompts together. The
        # fp32 scores are equal to 1e-4 (tests/integration/test_score_mode.py); here a few 1e-4.
        assert b["score"] == pytest.approx(a["score"], abs=2e-3)
    # The run files differ in their runtime fields only.
    assert _without_runtime(on_dask) == _without_runtime(local)
    assert on_dask["runtime"]["tokens_per_s"] > 0  # the workers' token counts came back
    loaded = executor.client.run(_worker_models)
    assert all(len(ids) <= 1 for ids in loaded.values()) and any(loaded.values())
    threads = executor.client.run(_torch_threads)
    assert executor.torch_threads == max(1, usable_cores() // 2)  # 2 workers share the cores
    assert all(n == executor.torch_threads for addr, n in threads.items() if loaded[addr])


def test_scan_judges_the_same_on_both_engines(
    predictor: Predictor, executor: DaskExecutor, scored: Any
) -> None:
    before = executor.client.run(_worker_models)
    paths = [
        FIXTURES / "lint" / "insecure_public_bucket.tf",
        FIXTURES / "lint" / "secure_private_bucket.tf",
    ]
    options = ScanOptions(paths=paths, root=FIXTURES, explain=False)
    local = scan(options, predictor)
    on_dask = scan(options, remote.RemotePredictor.wrap(predictor, executor))
    assert [(f.path, f.status, f.label) for f in on_dask.files] == [
        (f.path, f.status, f.label) for f in local.files
    ]
    blocks = [(f.path, b.start_line, b.label) for f in local.files for b in f.blocks]
    assert [(f.path, b.start_line, b.label) for f in on_dask.files for b in f.blocks] == blocks
    local_scores = [b.score for f in local.files for b in f.blocks]
    assert [b.score for f in on_dask.files for b in f.blocks] == pytest.approx(
        local_scores, abs=1e-5
    )
    assert executor.client.run(_worker_models) == before  # no worker loaded its model again


# --------------------------------------------------------------------------------------------
# A worker killed mid-task


def _executing(dask_worker: Any) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


@dataclass
class Counting:
    """An executor that passes every call on and records what it was asked and told."""

    inner: DaskExecutor
    items: list[Any] = field(default_factory=list)
    done: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def workers(self) -> int:
        return self.inner.workers

    @property
    def torch_threads(self) -> int:
        return self.inner.torch_threads

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], on_done: OnDone[Any] | None = None
    ) -> list[Any]:
        self.items.extend(items)

        def record(i: int, result: Any) -> None:
            self.done.append(i)
            if on_done is not None:
                on_done(i, result)

        return self.inner.map(fn, items, record)


def _kill_mid_task(executor: DaskExecutor, pids: dict[str, int], killed: list[str]) -> None:
    """SIGKILL the first worker seen executing a task; record the task's key."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed:
        for address, keys in executor.client.run(_executing).items():
            if keys and address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed.extend(keys)
                return
        time.sleep(0.05)


def test_a_killed_worker_is_replaced_and_its_task_run_again(
    executor: DaskExecutor, local_build: DatasetConfig, corpus: Path, tmp_path: Path
) -> None:
    scanned = [p for p in corpus.rglob("*.tf") if p.stem.endswith(("_secure", "_insecure"))]
    texts = sorted(strip_comments(p.read_bytes().decode("utf-8")) for p in scanned)
    items = [(f"f{i}.tf", t) for i, t in enumerate(texts)]
    assert len(items) == SCANNED
    reference = scanner.scan_texts(
        items, scanner.ScanConfig(local_build.cache_dir, tools=(TOOL,)), False
    )
    # What a run killed halfway leaves: the cache entries of its finished batches (here two files).
    version = scanner.tool_version(TOOL)
    cache = tmp_path / "cache"
    for _, text in items[:2]:
        sha = scanner.sha256_text(text)
        source = scanner._cache_path(local_build.cache_dir, TOOL, version, sha)
        target = scanner._cache_path(cache, TOOL, version, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)

    pids: dict[str, int] = executor.client.run(os.getpid)
    counting = Counting(executor)
    killed: list[str] = []
    killer = threading.Thread(target=_kill_mid_task, args=(executor, pids, killed))
    killer.start()
    config = scanner.ScanConfig(cache, batch_size=1, tools=(TOOL,), executor=counting)
    rows = scanner.scan_texts(items, config, progress=False)
    killer.join()

    assert len(killed) == 1 and killed[0].startswith("axon-scan_batch-")
    assert rows == reference  # nothing lost, every finding as the local engine found it
    assert len(counting.items) == SCANNED - 2  # the cached files were not scanned again
    assert sorted(counting.done) == list(range(SCANNED - 2))  # each batch came back once
    assert len(list(cache.rglob("*.json"))) == SCANNED
    executor.client.wait_for_workers(2, timeout=120)
    now = executor.client.run(os.getpid)
    assert len(now) == 2 and set(now.values()) != set(pids.values())  # the dead one was replaced


# --------------------------------------------------------------------------------------------
# No network


def test_nothing_left_the_machine(
    guard: Guard,
    executor: DaskExecutor,
    dask_build: tuple[Path, Path, str],
    scored: Any,
    tmp_path: Path,
) -> None:
    # The guard was in every Python process of the pipeline: this one, the workers (those of
    # now, replaced ones included), `axon dataset build` and the Checkov processes.
    loaded = guard.rows(guard.loaded)
    pids = {row["pid"] for row in loaded}
    assert os.getpid() in pids
    assert set(executor.client.run(os.getpid).values()) <= pids
    argvs = [" ".join(row["argv"]) for row in loaded]
    assert any("axon dataset build" in a for a in argvs)
    assert any("checkov -d" in a for a in argvs)  # Trivy is a Go binary: no Python, no guard
    # ... and nothing tried to leave the machine.
    assert guard.rows(guard.refused) == []
    # The guard refuses and records (a control, in a fresh process with its own log).
    control = tmp_path / "control.jsonl"
    code = "import socket; socket.create_connection(('203.0.113.7', 9), timeout=5)"
    env = {**os.environ, "AXON_NET_GUARD_LOG": str(control), "AXON_NET_GUARD_LOADED": ""}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "no-network guard" in proc.stderr
    assert [json.loads(line)["address"] for line in control.read_text().splitlines()] == [
        "('203.0.113.7', 9)"
    ]
