"""`DaskConfig`: which Dask cluster `--engine dask` runs on (importable without the extra)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from axon_infralinter.errors import ConfigError

#: `[protocol://]host[:port]`, as `dask scheduler` prints it.
_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ucx|ws|wss)://)?[^\s:/]+(?::\d+)?$|^(?:tcp|tls)://\[[0-9a-fA-F:]+\](?::\d+)?$"
)


@dataclass(frozen=True)
class DaskConfig:
    """Where the tasks run: a new loopback `LocalCluster`, or an existing scheduler."""

    scheduler: str | None = None
    """Address of a running `dask scheduler` (--scheduler, e.g. `tcp://10.0.0.5:8786`); None:
    start a `LocalCluster` on 127.0.0.1 with its dashboard off."""
    n_workers: int | None = None
    """Worker processes of the LocalCluster (--workers); None: one per core. Ignored with
    --scheduler (the cluster's workers are whatever joined it)."""
    threads_per_worker: int = 1
    """Tasks one LocalCluster worker runs at once. 1: a model task then owns its torch threads."""
    torch_threads: int | None = None
    """torch intra-op threads of a model task on a worker; None: the cores of the worker's machine
    divided by the Dask threads of all workers on that machine (at least 1)."""
    connect_timeout_s: float = 10.0
    """Seconds to wait for `--scheduler` to answer."""
    start_timeout_s: float = 120.0
    """Seconds to wait for a LocalCluster's workers to start (each imports the package)."""

    def __post_init__(self) -> None:
        if self.scheduler is not None and not _ADDRESS.match(self.scheduler):
            raise ConfigError(
                f"--scheduler must be an address such as tcp://host:8786, got {self.scheduler!r}"
            )
        if self.n_workers is not None and self.n_workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.n_workers}")
        if self.threads_per_worker < 1:
            raise ConfigError(f"threads_per_worker must be >= 1, got {self.threads_per_worker}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if self.connect_timeout_s <= 0 or self.start_timeout_s <= 0:
            raise ConfigError("the engine's timeouts must be > 0")
