"""Backends for ``toolbox.map``: serial, a local process pool, or Dask.

Every backend yields results *in input order* and lazily, so the search can
checkpoint and log each individual as soon as its result (and those before
it) are in. Results do not depend on the backend: each individual carries
its own evaluation seed and the evaluator seeds torch/numpy/random from it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["SerialMap", "ProcessMap", "DaskMap", "make_map"]


class SerialMap:
    """The builtin ``map``, with the same close() as the other backends."""

    description = "serial"

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)

    def close(self) -> None:
        pass


class ProcessMap:
    """A persistent pool of ``workers`` processes (``spawn``: forking a
    process that already runs torch threads can deadlock). Each worker loads
    the dataset and bank once and keeps them for the whole search."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} processes"
        self._pool = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"))

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return self._pool.map(fn, list(items))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskMap:
    """Evaluate on a Dask distributed cluster: ``address`` of a running
    scheduler (``tcp://host:port``), or ``None`` for a LocalCluster of
    ``workers`` single-threaded processes."""

    def __init__(self, address: str | None = None, workers: int = 2) -> None:
        from distributed import Client, LocalCluster

        self._cluster = None
        if address is None:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            address = self._cluster.scheduler_address
        self.client = Client(address)
        self.description = f"dask {address}"

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        futures = self.client.map(fn, list(items), pure=False)
        return (future.result() for future in futures)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_map(workers: int = 1, scheduler: str | None = None) -> SerialMap | ProcessMap | DaskMap:
    """``scheduler='local'`` or ``tcp://...`` selects Dask, else ``workers``
    processes (1 = serial, the default, for easy debugging)."""
    if scheduler is not None:
        return DaskMap(None if scheduler == "local" else scheduler, workers=max(workers, 1))
    if workers > 1:
        return ProcessMap(workers)
    return SerialMap()
