"""Dask implementations of the executor interface (`axon_infralinter.executor`), the `[dask]` extra.

Only the CLI imports this package, and only for `--engine dask`; `dask_executor` reports a missing
extra in one line instead of an ImportError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from axon_infralinter.engine.config import DaskConfig
from axon_infralinter.errors import ConfigError

if TYPE_CHECKING:
    from axon_infralinter.engine.cluster import DaskExecutor

__all__ = ["DaskConfig", "dask_executor"]


@contextmanager
def dask_executor(config: DaskConfig) -> Iterator[DaskExecutor]:
    """A Dask executor for `config`, closed (with the cluster it started) on exit.

    Raises:
        ConfigError: the `[dask]` extra is not installed.
        EngineError: no scheduler answers at `config.scheduler`, or the cluster did not start.
    """
    try:
        from axon_infralinter.engine import cluster
    except ModuleNotFoundError as exc:
        if exc.name not in ("dask", "distributed"):
            raise
        raise ConfigError(
            "--engine dask needs the [dask] extra: pip install 'axon-infralinter[dask]' "
            "(make setup installs it)"
        ) from None
    executor = cluster.open_executor(config)
    try:
        yield executor
    finally:
        executor.close()
