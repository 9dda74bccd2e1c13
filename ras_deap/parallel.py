"""Backends for ``toolbox.map``: serial, a local process pool, or Dask.

Every backend is a :class:`~ras_deap.contracts.MapBackend`: it yields
results *in input order* and lazily, so the search can
checkpoint and log each individual as soon as its result (and those before
it) are in. Results do not depend on the backend: each individual carries
its own evaluation seed and the evaluator seeds torch/numpy/random from it.

A native crash never ends a search: when an evaluation kills its worker
(a signal, ``abort()``, the OOM killer), :class:`ProcessMap` starts a fresh
pool and retries that individual once, alone; if it kills its process again
it yields a :class:`WorkerDied` result (fitness 0, ``failure="worker died:
SIGABRT"``) and the search goes on. Evaluations that were merely running
beside the crash are resubmitted, not charged.

Worker processes never outlive the search: each one watches its parent and
exits as soon as it is gone (even after ``kill -9`` of the parent, which
runs no cleanup), ignores Ctrl-C (the parent handles it and prints one
line), and a search that stops on an error or a signal terminates them
instead of waiting for their evaluations.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from .contracts import MapBackend
from .errors import InfrastructureError

__all__ = ["SerialMap", "ProcessMap", "DaskMap", "WorkerDied", "make_map",
           "PARENT_POLL_SECONDS", "DASK_CONNECT_TIMEOUT"]

log = logging.getLogger(__name__)

PARENT_POLL_SECONDS = 0.5  # how often a worker checks that its parent is alive
DASK_CONNECT_TIMEOUT = 10  # seconds for the Dask client to connect to a scheduler
DASK_PROBE_TIMEOUT = 5  # seconds for the scheduler's port to accept a connection
_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as ``parent`` is no longer its parent."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(PARENT_POLL_SECONDS)


def _worker_init(parent: int) -> None:
    """Runs first in every pool worker: die with the parent, leave Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # the kernel kills us when the parent dies
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="ras_deap-parent-watch").start()


@dataclass
class WorkerDied:
    """The result of an item whose evaluation killed its process twice: the
    shape of a failed evaluator result (see
    :class:`~ras_deap.contracts.FitnessEvaluator`), so the search gives it
    fitness 0, logs ``failure`` and goes on."""

    failure: str
    fitness: float = 0.0
    metrics: dict[str, float] = field(default_factory=lambda: {
        "failed": 1.0, "fitness": 0.0, "accuracy": 0.0, "robustness": 0.0})


def _death(processes: Iterable[Any]) -> str:
    """How a broken pool's worker died: the signal or exit code of the one
    that did not merely get terminated by the executor after it."""
    codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
    cause = [c for c in codes if c != -signal.SIGTERM] or codes
    if not cause:
        return "unknown cause"
    code = cause[0]
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit code {code}"


class SerialMap:
    """The builtin ``map``, with the same close() as the other backends."""

    description = "serial"

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)

    def close(self, abort: bool = False) -> None:
        pass


class ProcessMap:
    """A persistent pool of ``workers`` processes (``spawn``: forking a
    process that already runs torch threads can deadlock). Each worker loads
    the dataset and bank once and keeps them for the whole search. A worker
    that dies is replaced (see the module docstring); ``ProcessMap(1)`` is
    how ``--isolate`` evaluates one individual at a time in a child."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} process{'es' if workers > 1 else ''}"
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(),))

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        items = list(items)
        futures = [self._pool.submit(fn, item) for item in items]
        return self._in_order(fn, items, futures)

    def _in_order(self, fn: Callable[[Any], Any], items: list[Any],
                  futures: list[Future]) -> Iterator[Any]:
        for i, item in enumerate(items):
            try:
                result = futures[i].result()
            except BrokenProcessPool:
                first = self._restart()
                result = self._retry(fn, item, first)
                # what was running or queued beside the crash runs again
                futures[i + 1:] = [f if _succeeded(f) else self._pool.submit(fn, it)
                                   for f, it in zip(futures[i + 1:], items[i + 1:], strict=True)]
            yield result

    def _retry(self, fn: Callable[[Any], Any], item: Any, first: str) -> Any:
        """``item`` once more, alone in a fresh pool: a second death is its own."""
        try:
            return self._pool.submit(fn, item).result()
        except BrokenProcessPool:
            second = self._restart()
            log.warning("an evaluation killed its worker twice (%s, then %s): fitness 0",
                        first, second)
            return WorkerDied(f"worker died: {second}")

    def _restart(self) -> str:
        """Replace a broken pool; returns how its worker died."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:  # reaped, so their exit codes are known
            with contextlib.suppress(Exception):
                process.join(timeout=5)
        self._pool = self._new_pool()
        return _death(processes)

    def close(self, abort: bool = False) -> None:
        """Shut the pool down; ``abort`` (an error, Ctrl-C, SIGTERM) terminates
        the workers at once instead of letting running evaluations finish."""
        if not abort:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        processes = list(getattr(self._pool, "_processes", {}).values())
        # the queued calls are dropped anyway: without this, the queue's feeder thread
        # can block on a pipe no dead worker reads, and exit would wait for it forever
        with contextlib.suppress(Exception):
            self._pool._call_queue.cancel_join_thread()
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()


def _succeeded(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _refuse(address: str, problem: str) -> InfrastructureError:
    return InfrastructureError(
        f"scheduler={address!r}: {problem}; start one (dask scheduler) and workers "
        "(dask worker ADDRESS --nthreads 1), fix --scheduler, or leave it out to use "
        "--workers local processes")


def _identify(address: str, timeout: float) -> Any:
    """What the server at ``address`` says to Dask's ``identity`` request
    (the handshake included), within ``timeout`` seconds; raises
    TimeoutError or OSError when it does not speak Dask's protocol. Runs its
    own event loop in a thread, so a caller's running loop does not matter."""
    import asyncio

    from distributed.comm import connect

    async def ask() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    answer: dict[str, Any] = {}

    def run() -> None:
        try:
            answer["value"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as exc:  # handed to the caller
            answer["error"] = exc

    thread = threading.Thread(target=run, name="dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 1)
    if "error" in answer:
        raise answer["error"]
    if "value" not in answer:
        raise TimeoutError(f"no answer within {timeout:g} s")
    return answer["value"]


def _probe(address: str) -> None:
    """Fail within about 2 x :data:`DASK_PROBE_TIMEOUT` seconds unless a Dask
    scheduler answers at a ``tcp://host:port`` address: nothing listening
    (the Dask client would retry for its whole timeout, then raise an
    OSError), or a service that is not a scheduler, such as a web server
    (the client would wait for its handshake for minutes)."""
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)),
                                      timeout=DASK_PROBE_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        raise _refuse(address, f"no Dask scheduler answers there ({exc})") from exc
    try:
        answer = _identify(address, DASK_PROBE_TIMEOUT)
    except Exception as exc:  # whatever went wrong, it is not a scheduler
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise _refuse(address, "something answers there but it is not a Dask scheduler (no "
                               f"Dask handshake within {DASK_PROBE_TIMEOUT} s: {detail})"
                      ) from exc
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise _refuse(address, "something answers there but it is not a Dask scheduler "
                               f"(it identifies as {kind or type(answer).__name__!r})")


class DaskMap:
    """Evaluate on a Dask distributed cluster: ``address`` of a running
    scheduler (``tcp://host:port``), or ``None`` for a LocalCluster of
    ``workers`` single-threaded processes."""

    def __init__(self, address: str | None = None, workers: int = 2) -> None:
        from distributed import Client, LocalCluster

        self._cluster = None
        if address is not None:
            _probe(address)
        if address is None:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            address = self._cluster.scheduler_address
        try:
            self.client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise _refuse(address, f"no Dask scheduler answered within {DASK_CONNECT_TIMEOUT} s "
                                   f"({exc})") from exc
        self.description = f"dask {address}"

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        futures = self.client.map(fn, list(items), pure=False)
        return (self._result(future) for future in futures)

    @staticmethod
    def _result(future: Any) -> Any:
        """The future's result; an item that killed the scheduler's allowed
        number of workers (``distributed.scheduler.allowed-failures``) gets
        fitness 0 like any other crash."""
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            return WorkerDied(f"worker died: {exc}")

    def close(self, abort: bool = False) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_map(workers: int = 1, scheduler: str | None = None,
             isolate: bool = False) -> MapBackend:
    """``scheduler='local'`` or ``tcp://...`` selects Dask, else ``workers``
    processes; one worker evaluates in this process (easy debugging) unless
    ``isolate`` asks for a child process, which a native crash cannot take
    down with it. Each backend satisfies :class:`~ras_deap.contracts.MapBackend`."""
    if scheduler is not None:
        return DaskMap(None if scheduler == "local" else scheduler, workers=max(workers, 1))
    if workers > 1 or isolate:
        return ProcessMap(workers)
    return SerialMap()
