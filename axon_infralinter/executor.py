"""The executor interface: how a stage runs its independent tasks, here or on a cluster.

A stage that has many independent pieces of work (a scanner batch, a batch of prompts to score)
hands them to an `Executor` and gets the results back in input order. The stages only know this
Protocol; `LocalExecutor` (here) runs the tasks in this process, and the Dask executor of
`axon_infralinter.engine` (the optional `[dask]` extra) runs them on the workers of a Dask cluster.
The CLI picks one (`--engine local|dask`) and passes it down; nothing below the CLI imports dask.

A task is `fn(item)`: `fn` must be a module-level function (or a `functools.partial` of one) and
`item` plain data, so that both pickle by reference to another process. A task must be safe to run
twice: a cluster re-runs the task of a worker that died. Results come back to the caller, and
`on_done` runs in the caller's process, so whatever a task's result is written to (the scanner's
findings cache, a progress bar) lives beside the caller, whichever engine ran the task.

Examples:
    >>> LocalExecutor().map(abs, [-2, 1, -3])
    [2, 1, 3]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol, TypeVar

from axon_infralinter.errors import AxonError, ConfigError

T = TypeVar("T")
R = TypeVar("R")

#: Called once per finished task, in the caller's process, in completion order.
OnDone = Callable[[int, R], None]


class EngineError(AxonError):
    """The engine could not run the tasks: no cluster answered, or a task kept killing workers."""


class Executor(Protocol):
    """Runs independent tasks and returns their results in input order."""

    @property
    def name(self) -> str:
        """`local` or `dask`: recorded beside the run's timings."""
        ...

    @property
    def workers(self) -> int:
        """How many tasks run at once."""
        ...

    @property
    def torch_threads(self) -> int:
        """CPU threads one model task may use where it runs (torch's intra-op threads)."""
        ...

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], on_done: OnDone[R] | None = None
    ) -> list[R]:
        """`fn(item)` for every item, results in the order of `items`.

        Args:
            fn: A module-level function (or a partial of one) of one argument.
            items: The tasks' arguments: plain, picklable data.
            on_done: Called here with (index into `items`, result) once per task as each
                finishes, in completion order (a task re-run after a worker died still counts once).

        Raises:
            The first exception a task raised (an `AxonError` stays one, so the CLI prints it
            in one line); `EngineError` when the engine itself failed.
        """
        ...


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class LocalExecutor:
    """Runs the tasks in this process: one after another, or on `workers` threads.

    Threads suit tasks that wait on a child process (a scanner batch); a model task uses all cores
    itself, so the stages score with one worker, as they did before there was an executor.
    """

    workers: int = 1
    """Tasks at once (threads); 1 runs them one after another in the calling thread."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")

    @property
    def name(self) -> str:
        """Always `local`."""
        return "local"

    @property
    def torch_threads(self) -> int:
        """Every core of this machine: a local model task runs alone."""
        return usable_cores()

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], on_done: OnDone[R] | None = None
    ) -> list[R]:
        """`fn(item)` for every item, in order; see `Executor.map`."""
        results: dict[int, R] = {}
        if self.workers == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                results[i] = fn(item)
                if on_done is not None:
                    on_done(i, results[i])
            return [results[i] for i in range(len(items))]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    if on_done is not None:
                        on_done(i, results[i])
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [results[i] for i in range(len(items))]
