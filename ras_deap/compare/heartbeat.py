"""Keep a running comparison session's record current.

A session used to be recorded in the manifest only when it ended. A session
whose machine was lost (killed with its container, an API error ending the
job) left no record at all, so its wall and CPU time were missing from the
comparison's accounting (#28 sessions 5 and 10). Now the session's entry is
written when it starts and refreshed every minute by a :class:`Heartbeat`
thread; an entry with ``last_seen`` and no ``ended`` is a session that was
lost, and its times are those of its last beat.

CPU time is that of the whole process tree (:func:`tree_cpu_seconds`): the
main process, the cell workers and whatever they started, alive or ended,
which is what ``/usr/bin/time`` around the command would have reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psutil

__all__ = ["HEARTBEAT_SECONDS", "Heartbeat", "session_times", "tree_cpu_seconds", "utc_now"]

HEARTBEAT_SECONDS = 60.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cpu(times: Any) -> float:
    # children_*: descendants that ended and were waited for (Linux); absent elsewhere
    return (times.user + times.system + getattr(times, "children_user", 0.0)
            + getattr(times, "children_system", 0.0))


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and all its descendants,
    those running now included. A descendant that ended counts through its
    parent's ``children_*`` times, one still running through its own, so
    nothing is counted twice."""
    me = psutil.Process()
    total = _cpu(me.cpu_times())
    for child in me.children(recursive=True):
        try:
            total += _cpu(child.cpu_times())
        except psutil.Error:  # it ended between the listing and the read
            continue
    return total


def session_times(started: float) -> dict[str, Any]:
    """A session record's clock, now: wall seconds since ``started`` (a
    ``time.perf_counter()`` value), the process tree's CPU seconds and the
    UTC time of this beat (``last_seen``)."""
    return {"seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(tree_cpu_seconds(), 1), "last_seen": utc_now()}


class Heartbeat:
    """Call ``beat()`` every ``seconds`` on a daemon thread until stopped.

    A beat that raises ``OSError`` (a full disk, say) is reported once through
    ``warn`` and the beats go on: the record is for accounting, and it must
    never stop the comparison it accounts for.
    """

    def __init__(self, beat: Callable[[], None], warn: Callable[[str], None],
                 seconds: float = HEARTBEAT_SECONDS, what: str = "compare") -> None:
        if not seconds > 0:
            raise ValueError(f"seconds={seconds!r}: give the interval between beats, > 0")
        self._beat, self._warn, self._seconds = beat, warn, float(seconds)
        self._what = what  # the command, in the warning
        self._stop = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name=f"{what}-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._beat()
            except OSError as e:
                if not self._warned:
                    self._warned = True
                    self._warn(f"[{self._what}] could not refresh this session's record "
                               f"({e}); the command goes on, its times are written when it "
                               "ends")
