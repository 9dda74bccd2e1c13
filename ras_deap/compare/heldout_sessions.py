"""The compute a held-out assessment took, recorded as it runs.

AutoAttack on an mnist10k winner takes hours, so an assessment runs across
many commands, and its report must say what all of them cost. Each
``compare.heldout`` command records itself as a comparison session does
(:mod:`.heartbeat`): an entry in ``<arm>/<name>.sessions.json``, written
when it starts, refreshed every minute with its wall and CPU time (the
whole process tree), and marked when it ends (finished, interrupted,
failed); an entry left without an end is a command whose machine was lost,
its times those of its last beat. A command over several arms records
itself in each of them under one id, and the report counts it once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import read_json_if_valid, write_json_atomic
from ..validate import json_number
from .heartbeat import Heartbeat, session_times, utc_now

__all__ = ["SESSIONS_SUFFIX", "HeldoutSession", "compute_line", "load_sessions",
           "sessions_path"]

SESSIONS_SUFFIX = ".sessions.json"
FORMAT = "ras_deap.heldout-sessions/1"


def sessions_path(out: Path, name: str) -> Path:
    """Where the held-out commands of ``--name name`` on comparison ``out`` are recorded."""
    return Path(out) / f"{name}{SESSIONS_SUFFIX}"


def _entries(path: Path) -> list[dict[str, Any]]:
    data = read_json_if_valid(path)
    sessions = data.get("sessions") if isinstance(data, dict) else None
    return [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []


def load_sessions(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every command recorded in ``paths``, once each (by id), oldest first."""
    seen: dict[str, dict[str, Any]] = {}
    for path in paths:
        for entry in _entries(path):
            seen.setdefault(str(entry.get("id")), entry)
    return sorted(seen.values(), key=lambda e: str(e.get("started", "")))


def compute_line(sessions: Sequence[dict[str, Any]]) -> str:
    """One sentence for a report: the commands, their wall and CPU time."""
    if not sessions:
        return "Compute: no held-out command recorded its time here."
    wall = sum(json_number(s.get("seconds")) or 0.0 for s in sessions)
    cpu = sum(json_number(s.get("cpu_seconds")) or 0.0 for s in sessions)
    lost = sum(1 for s in sessions if not s.get("ended"))
    first, last = str(sessions[0].get("started", "?")), str(sessions[-1].get("started", "?"))
    return (f"Compute: {len(sessions)} held-out command{'s' if len(sessions) > 1 else ''} "
            f"from {first[:16]} to {last[:16]} UTC, {wall / 3600:.2f} h of wall time, "
            f"{cpu / 3600:.2f} CPU-hours (user + system of each command's process tree)"
            + (f"; {lost} of them ended without a record of how (a lost machine, or one "
               "still running), counted to its last minute" if lost else "") + ".")


class HeldoutSession:
    """This command's entry in each arm's sessions file, kept current while
    it runs (``with`` block); ``winners``: how many it has assessed so far."""

    def __init__(self, outs: Sequence[Path], name: str, command: str,
                 machine: dict[str, Any], log: Any = print) -> None:
        self.paths = [sessions_path(out, name) for out in outs]
        self.entry: dict[str, Any] = {"id": f"{utc_now()}-{os.getpid()}",
                                      "started": utc_now(), "command": command,
                                      "machine": machine, "winners": 0}
        self.winners = 0
        self._others = [_entries(p) for p in self.paths]  # one writer per name: the lock's
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._heartbeat = Heartbeat(self.beat, log, what="heldout")

    def beat(self, ended: str | None = None) -> None:
        with self._lock:
            self.entry.update(session_times(self._start), winners=self.winners)
            if ended is not None:
                self.entry["ended"] = ended
            for path, others in zip(self.paths, self._others, strict=True):
                write_json_atomic(path, {"format": FORMAT, "sessions": [*others, self.entry]})

    def __enter__(self) -> HeldoutSession:
        self.beat()
        self._heartbeat.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._heartbeat.__exit__()
        ended = ("finished" if exc_type is None else "interrupted"
                 if issubclass(exc_type, KeyboardInterrupt) else "failed")
        try:
            self.beat(ended)
        except OSError as e:  # the record must not hide the command's own outcome
            print(f"[heldout] could not record this command's end ({e})", flush=True)
