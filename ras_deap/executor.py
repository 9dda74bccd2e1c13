"""The one process pool of ras_deap: work in ``spawn`` processes, for
``run`` (evaluations), ``compare`` (cells) and ``attacks build`` (sources).

``spawn``, not ``fork``: forking a process that already runs torch threads
can deadlock. Each worker runs one item at a time and answers on its own
pipe, so the parent always knows which item a worker was running:

* **Crash policy.** An item whose process dies (a signal, ``abort()``, the
  OOM killer) is run once more in a fresh process; if it kills that one too
  it gets a :class:`Crash` result naming how the process died, and the work
  goes on. Items running beside a crash are not disturbed.
* **An exception** raised by the function is raised in the parent, where
  the caller waits for that item, with the worker's traceback as its cause.
* **Die-with-parent policy.** A worker ignores Ctrl-C (the parent handles
  it and decides), asks Linux to SIGKILL it when the parent dies (even by
  ``kill -9``, which runs no cleanup) and, as a second guard, watches its
  parent and exits when it is gone. :meth:`ProcessPool.close` with
  ``abort`` (an error, Ctrl-C, SIGTERM) terminates the workers at once
  instead of letting their items finish: nothing is left running.

Workers are started when there is work for them, from the thread that
iterates the results: Linux's parent-death signal follows the thread that
started a process, so iterate from a thread that outlives the pool (the
main thread does).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.util import Finalize
from typing import Any

__all__ = ["PARENT_POLL_SECONDS", "Crash", "ProcessPool"]

log = logging.getLogger(__name__)

PARENT_POLL_SECONDS = 0.5  # how often a worker checks that its parent is alive
STOP_SECONDS = 5.0  # how long an aborted worker gets to end on SIGTERM before SIGKILL
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Crash:
    """The result of an item that killed its process twice: ``reason`` says
    how the second process died (``SIGABRT``, ``SIGKILL``, ``exit code 3``)."""

    reason: str


class _RemoteTraceback(Exception):
    """The worker's traceback, attached as the cause of a re-raised error."""

    def __str__(self) -> str:
        return f"\n\nin the worker process:\n{self.args[0]}"


# -- the worker side ------------------------------------------------------------------
def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as ``parent`` is no longer its parent."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(PARENT_POLL_SECONDS)


def _die_with_parent(parent: int) -> None:
    """The die-with-parent policy (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # the kernel kills us when the parent dies
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="ras_deap-parent-watch").start()


def _serve(conn: Connection, parent: int, tasks: int | None) -> None:
    """A worker's life: run ``(fn, item)`` messages until ``None`` (or
    ``tasks`` of them), answering ``(True, result)`` or ``(False, (error,
    traceback))`` for each."""
    _die_with_parent(parent)
    done = 0
    while tasks is None or done < tasks:
        message = conn.recv()
        if message is None:
            return
        fn, item = message
        try:
            reply: tuple[bool, Any] = (True, fn(item))
        except Exception as exc:
            reply = (False, (exc, traceback.format_exc()))
        try:
            conn.send(reply)
        except Exception as exc:  # a result or an error that does not pickle
            conn.send((False, (RuntimeError(f"the worker's answer could not be sent back: "
                                            f"{exc!r}"), traceback.format_exc())))
        done += 1


# -- the parent side ------------------------------------------------------------------
@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection
    task: tuple[int, int] | None = None  # (job, index) it is running


def _reason(exitcode: int | None) -> str:
    """How a process ended, from its exit code."""
    if exitcode is None:
        return "unknown cause"
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-exitcode).name
        return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def _stop(*groups: list[_Worker]) -> None:
    """Terminate the workers of ``groups`` (SIGTERM, then SIGKILL) and reap them."""
    workers = [w for group in groups for w in group]
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.process.terminate()
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.process.join(timeout=STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=STOP_SECONDS)
        with contextlib.suppress(Exception):
            worker.conn.close()


def _read(conn: Connection) -> tuple[bool, Any] | None:
    """A worker's answer; None when its pipe closed (the process is gone)."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None
    except Exception as exc:  # an answer that does not unpickle here
        return False, (RuntimeError(f"the worker's answer could not be read: {exc!r}"),
                       traceback.format_exc())


@dataclass
class _Job:
    """One call's items: what is left to send, and the items whose process died once."""

    id: int
    fn: Callable[[Any], Any]
    items: list[Any]
    todo: deque[int] = field(default_factory=deque)
    deaths: dict[int, str] = field(default_factory=dict)
    left: int = 0


def _given(ok: bool, value: Any) -> Any:
    """An item's result, or its error raised with the worker's traceback."""
    if not ok:
        error, remote = value
        raise error from _RemoteTraceback(remote)
    return value


class ProcessPool:
    """Up to ``workers`` spawn processes. By default a worker stays for the
    whole pool, so what it loads once (a dataset, a bank) serves every item;
    ``fresh=True`` gives every item a new process that ends with it (a
    comparison cell: nothing it leaves in a process can reach another cell).
    ``name`` prefixes the process names (``ps``, ``top``)."""

    def __init__(self, workers: int, *, fresh: bool = False, name: str = "ras_deap") -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r}: must be an int >= 1")
        self.workers, self.fresh, self.name = workers, fresh, name
        self.description = f"{workers} process{'es' if workers > 1 else ''}"
        self._context = multiprocessing.get_context("spawn")
        self._live: list[_Worker] = []
        self._ending: list[_Worker] = []  # fresh workers that answered and are exiting
        self._jobs = itertools.count()
        self._started = itertools.count(1)
        # a pool nobody closed still ends its workers when the interpreter exits, before
        # multiprocessing waits for its non-daemon children (which would wait for us)
        self._finalizer = Finalize(self, _stop, args=(self._live, self._ending),
                                   exitpriority=10)

    # -- running items ---------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``fn(item)`` for every item, lazily and in input order; a
        :class:`Crash` for an item that killed its process twice."""
        done: dict[int, tuple[bool, Any]] = {}
        following = 0
        for index, ok, value in self._outcomes(self._job(fn, items)):
            done[index] = (ok, value)
            while following in done:
                yield _given(*done.pop(following))
                following += 1

    def as_completed(self, fn: Callable[[Any], Any], items: Iterable[Any], *,
                     every: float | None = None, idle: Callable[[], None] | None = None
                     ) -> Iterator[tuple[int, Any]]:
        """``(index, fn(item))`` pairs as the items finish (a :class:`Crash`
        as above); ``idle()`` is called every ``every`` seconds while none
        finishes (a progress bar)."""
        for index, ok, value in self._outcomes(self._job(fn, items), every, idle):
            yield index, _given(ok, value)

    def _job(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> _Job:
        job = _Job(next(self._jobs), fn, list(items))
        job.todo.extend(range(len(job.items)))
        job.left = len(job.items)
        return job

    def _outcomes(self, job: _Job, every: float | None = None,
                  idle: Callable[[], None] | None = None) -> Iterator[tuple[int, bool, Any]]:
        """``(index, ok, value)`` as ``job``'s items finish: ``ok`` with the
        result or a :class:`Crash`, else the error and its traceback."""
        while job.left:
            self._dispatch(job)
            self._reap()
            ready = set(wait([o for w in self._live for o in (w.conn, w.process.sentinel)],
                             every))
            for worker in [w for w in self._live if ready & {w.conn, w.process.sentinel}]:
                task, ok, value = self._collect(worker)
                if task is None or task[0] != job.id:
                    continue  # an idle worker that ended, or an abandoned call's item
                if isinstance(value, Crash) and self._retry(job, task[1], value):
                    continue
                job.left -= 1
                yield task[1], ok, value
            if not ready and idle is not None:
                idle()

    def _dispatch(self, job: _Job) -> None:
        """Send ``job``'s next items to idle workers, starting workers as needed."""
        while job.todo:
            worker = next((w for w in self._live if w.task is None), None)
            if worker is None and len(self._live) >= self.workers:
                return
            worker = worker or self._start()
            index = job.todo.popleft()
            worker.conn.send((job.fn, job.items[index]))
            worker.task = (job.id, index)

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(theirs, os.getpid(), 1 if self.fresh else None),
            name=f"{self.name}-{next(self._started)}", daemon=False)
        process.start()
        theirs.close()  # the child holds its end: its death closes the pipe
        worker = _Worker(process, ours)
        self._live.append(worker)
        return worker

    def _collect(self, worker: _Worker) -> tuple[tuple[int, int] | None, bool, Any]:
        """What ``worker`` answered, or how it died: ``(task, ok, value)``."""
        task, worker.task = worker.task, None
        answer = _read(worker.conn) if worker.conn.poll() else None
        if answer is not None:
            if self.fresh:  # it ends after its one item
                self._live.remove(worker)
                self._ending.append(worker)
            return task, *answer
        self._live.remove(worker)
        worker.process.join(timeout=STOP_SECONDS)  # reaped: its exit code is known
        _stop([worker])
        return task, True, Crash(_reason(worker.process.exitcode))

    def _reap(self) -> None:
        """Forget the fresh workers that have exited."""
        for worker in [w for w in self._ending if w.process.exitcode is not None]:
            self._ending.remove(worker)
            _stop([worker])

    def _retry(self, job: _Job, index: int, crash: Crash) -> bool:
        """Whether item ``index`` runs again after its process died: after its first death."""
        if index not in job.deaths:
            job.deaths[index] = crash.reason
            job.todo.appendleft(index)
            return True
        log.warning("%s: an item killed its process twice (%s, then %s)", self.name,
                    job.deaths[index], crash.reason)
        return False

    # -- the end ---------------------------------------------------------------------
    def close(self, abort: bool = False) -> None:
        """End the workers: let running items finish, or with ``abort``
        (an error, Ctrl-C, SIGTERM) terminate them at once."""
        workers = self._live + self._ending
        self._live.clear()
        self._ending.clear()
        if abort:
            _stop(workers)
            return
        for worker in workers:
            if worker.task is not None:  # an abandoned call's item: let it finish
                wait([worker.conn, worker.process.sentinel])
                with contextlib.suppress(EOFError, OSError):
                    if worker.conn.poll():
                        worker.conn.recv()
            with contextlib.suppress(OSError):  # one that ended already cannot be told
                worker.conn.send(None)
        for worker in workers:
            worker.process.join()
            worker.conn.close()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(abort=exc_type is not None)
