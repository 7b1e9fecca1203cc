"""`DaskExecutor`: the executor interface on a Dask cluster (loopback LocalCluster, or a scheduler).

By default a `LocalCluster` starts on 127.0.0.1 with its dashboard off: worker processes (a nanny
each, so a worker that dies is started again) with one task thread each, every socket on
loopback. With `--scheduler ADDR` a `Client` joins a running cluster instead (`dask scheduler` and
`dask worker` nodes, dask-kubernetes, dask-jobqueue; docs/scale-out.md) and leaves it running.

`map` submits one future per item and gathers them as they finish. A worker lost mid-task (its
process killed, its node gone) is noticed by the scheduler, which runs the task again elsewhere;
the future still resolves once, so every result arrives exactly once. A task that kills
`distributed.scheduler.allowed-failures` (3) workers in a row fails the run with `EngineError`.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import distributed
from dask.utils import funcname

from axon_infralinter.engine.config import DaskConfig
from axon_infralinter.executor import EngineError, OnDone, usable_cores

T = TypeVar("T")
R = TypeVar("R")


class DaskExecutor:
    """Runs tasks on the workers of a Dask cluster; results in input order (`Executor`)."""

    def __init__(
        self,
        client: distributed.Client,
        torch_threads: int,
        cluster: distributed.LocalCluster | None = None,
    ) -> None:
        self.client = client
        """The connected client."""
        self.cluster = cluster
        """The LocalCluster this executor started (closed with it); None when joined."""
        self._torch_threads = torch_threads

    @property
    def name(self) -> str:
        """Always `dask`."""
        return "dask"

    @property
    def workers(self) -> int:
        """Task threads over all workers now connected."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return sum(int(w["nthreads"]) for w in info.values()) or 1

    @property
    def torch_threads(self) -> int:
        """torch intra-op threads of one model task on a worker."""
        return self._torch_threads

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return str(self.client.scheduler.address)

    def describe(self) -> str:
        """One line for the user: where the tasks run."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        kind = "LocalCluster" if self.cluster is not None else "scheduler"
        return (
            f"dask {kind} at {self.address}: {len(info)} workers, {self.workers} task threads, "
            f"{self.torch_threads} torch thread(s) per model task"
        )

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], on_done: OnDone[R] | None = None
    ) -> list[R]:
        """`fn(item)` for every item on the cluster, results in input order; see `Executor.map`."""
        if not items:
            return []
        run = uuid.uuid4().hex[:12]
        keys = [f"axon-{funcname(fn)}-{run}-{i}" for i in range(len(items))]
        futures = self.client.map(fn, list(items), key=keys, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: dict[int, R] = {}
        try:
            for future in distributed.as_completed(futures):
                i = index[future.key]
                if i in results:  # as_completed yields each future once; guard anyway
                    continue
                results[i] = future.result()
                if on_done is not None:
                    on_done(i, results[i])
        except distributed.KilledWorker as exc:
            raise EngineError(
                f"a task kept killing its worker ({exc}); the run stopped (finished work is kept)"
            ) from None
        except (distributed.comm.CommClosedError, distributed.TimeoutError) as exc:
            raise EngineError(f"lost the Dask scheduler at {self.address}: {exc}") from None
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        """Close the client, and the LocalCluster when this executor started it."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_executor(config: DaskConfig) -> DaskExecutor:
    """Start a loopback LocalCluster, or connect to `config.scheduler`.

    Raises:
        EngineError: no scheduler answered, or the LocalCluster's workers did not start.
    """
    if config.scheduler is not None:
        try:
            client = distributed.Client(config.scheduler, timeout=config.connect_timeout_s)
        except (OSError, distributed.TimeoutError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"--scheduler {config.scheduler}: cannot connect: {reason}") from None
        return DaskExecutor(client, config.torch_threads or _torch_threads(client))
    n_workers = config.n_workers or usable_cores()
    try:
        cluster = distributed.LocalCluster(
            host="127.0.0.1",
            dashboard_address=None,
            n_workers=n_workers,
            threads_per_worker=config.threads_per_worker,
            processes=True,
            silence_logs=logging.ERROR,  # a replaced worker is routine; a failed task raises
        )
        client = distributed.Client(cluster, timeout=config.start_timeout_s)
        client.wait_for_workers(n_workers, timeout=config.start_timeout_s)
    except (OSError, distributed.TimeoutError) as exc:
        raise EngineError(f"the local Dask cluster did not start: {exc}") from None
    return DaskExecutor(client, config.torch_threads or _torch_threads(client), cluster)


def _torch_threads(client: distributed.Client) -> int:
    """Cores per Dask task thread on the most crowded machine of the cluster (at least 1).

    Workers on one machine share its cores: two 1-thread workers on 2 cores get 1 torch thread
    each, so that they do not fight over the cores.
    """
    info: dict[str, Any] = client.scheduler_info(n_workers=-1)["workers"]
    if not info:
        return 1
    cores: dict[str, int] = client.run(usable_cores)
    per_host: Counter[str] = Counter()
    for worker in info.values():
        per_host[str(worker["host"])] += int(worker["nthreads"])
    return max(
        1,
        min(
            cores.get(address, 1) // max(1, per_host[str(worker["host"])])
            for address, worker in info.items()
        ),
    )
