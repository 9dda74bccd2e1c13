"""A single background writer for MLflow calls, so logging never holds up the
search.

Every MLflow write is a store round trip (a network one with ``mlflow
server``). The search hands each write to :class:`BackgroundWriter` and goes
on handing out evaluations; one daemon thread performs the writes in the
order they were submitted. :meth:`BackgroundWriter.flush` waits until every
submitted write is done (the search flushes before each checkpoint, so a
checkpoint never names a run MLflow does not have) and re-raises the first
error a write hit. The queue is bounded: when the store is slower than the
evaluations, ``submit`` blocks instead of growing memory without limit.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..validate import check_int

__all__ = ["BackgroundWriter", "WriterError"]

_STOP = object()


class WriterError(RuntimeError):
    """A write failed in the background; raised by the next flush or submit."""


class BackgroundWriter:
    """One thread that runs submitted calls in order.

    ``maxsize``: writes waiting at most (``submit`` blocks beyond it).
    ``synchronous=True`` runs each call at once in the caller's thread (for
    debugging and for stores that must not be written from two threads).
    """

    def __init__(self, maxsize: int = 256, *, synchronous: bool = False,
                 name: str = "ras_deap-mlflow-writer") -> None:
        check_int("maxsize", maxsize)
        self.synchronous = synchronous
        self.busy_seconds = 0.0  # time spent in writes (in the writer thread)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        if not synchronous:
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:  # after a failure, later writes are dropped
                    fn, args, kwargs = item
                    start = time.perf_counter()
                    try:
                        fn(*args, **kwargs)
                    except BaseException as exc:  # re-raised by the next flush
                        self._error = exc
                    finally:
                        self.busy_seconds += time.perf_counter() - start
            finally:
                self._queue.task_done()

    # -- the caller's side ---------------------------------------------------------------
    def _raise_pending(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise WriterError(f"an MLflow write failed in the background: "
                              f"{type(exc).__name__}: {exc}") from exc

    @property
    def pending(self) -> int:
        """Writes submitted but not finished (approximate)."""
        return self._queue.unfinished_tasks

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` in the writer thread, after every call
        submitted before it."""
        if self._closed:
            raise WriterError("the writer is closed")
        self._raise_pending()
        if self.synchronous:
            start = time.perf_counter()
            try:
                fn(*args, **kwargs)
            finally:
                self.busy_seconds += time.perf_counter() - start
            return
        self._queue.put((fn, args, kwargs))

    def flush(self, *, message_after: float | None = None) -> None:
        """Wait until every submitted write is done; re-raise a failed one.
        ``message_after``: if the backlog takes longer than this many
        seconds, say so on stderr (the user sees why the exit waits). Called
        from a write itself it returns at once: every earlier write is done."""
        if self._thread is not None and threading.current_thread() is not self._thread:
            if message_after is not None and self.pending:
                done = threading.Event()

                def tell() -> None:
                    if not done.wait(message_after):
                        print(f"[tracking] writing {self.pending} queued MLflow updates ...",
                              file=sys.stderr, flush=True)

                teller = threading.Thread(target=tell, daemon=True)
                teller.start()
                self._queue.join()
                done.set()
            else:
                self._queue.join()
        self._raise_pending()

    def close(self, *, message_after: float | None = 1.0) -> None:
        """Flush and stop the thread (idempotent)."""
        if self._closed:
            return
        try:
            self.flush(message_after=message_after)
        finally:
            self._closed = True
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
