"""Backends for ``toolbox.map``: serial, local processes, or Dask.

Every backend is a :class:`~ras_deap.contracts.MapBackend`: it yields
results *in input order* and lazily, so the search can
checkpoint and log each individual as soon as its result (and those before
it) are in. Results do not depend on the backend: each individual carries
its own evaluation seed and the evaluator seeds torch/numpy/random from it.

A native crash never ends a search: local processes are the one process
pool of :mod:`ras_deap.executor`, whose crash policy runs an evaluation that
killed its worker (a signal, ``abort()``, the OOM killer) once more in a
fresh process; if it kills that one too, :class:`ProcessMap` yields a
:class:`WorkerDied` result (fitness 0, ``failure="worker died: SIGABRT"``)
and the search goes on. Workers never outlive the search (the executor's
die-with-parent policy).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .contracts import MapBackend
from .errors import InfrastructureError
from .executor import Crash, ProcessPool

__all__ = ["SerialMap", "ProcessMap", "DaskMap", "WorkerDied", "make_map",
           "DASK_CONNECT_TIMEOUT"]

DASK_CONNECT_TIMEOUT = 10  # seconds for the Dask client to connect to a scheduler
DASK_PROBE_TIMEOUT = 5  # seconds for the scheduler's port to accept a connection


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


class SerialMap:
    """The builtin ``map``, with the same close() as the other backends."""

    description = "serial"

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)

    def close(self, abort: bool = False) -> None:
        pass


class ProcessMap:
    """``workers`` evaluation processes that stay for the whole search, so
    each loads the dataset and bank once (:class:`~ras_deap.executor.ProcessPool`);
    ``ProcessMap(1)`` is how ``--isolate`` evaluates one individual at a time
    in a child. An individual that killed its process twice gets a
    :class:`WorkerDied` result."""

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPool(workers, name="ras_deap-eval")
        self.description = self._pool.description

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return (WorkerDied(f"worker died: {r.reason}") if isinstance(r, Crash) else r
                for r in self._pool.map(fn, items))

    def close(self, abort: bool = False) -> None:
        """Let running evaluations finish, or with ``abort`` (an error,
        Ctrl-C, SIGTERM) terminate the workers at once."""
        self._pool.close(abort=abort)


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
