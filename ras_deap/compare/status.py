"""``python -m ras_deap.compare.status OUT``: where a comparison stands,
while it runs or after, without touching it.

A reference comparison runs for days across sessions, and ``compare``
writes its page only when a command ends; a second command on the same
``--out`` is refused while one runs. This reads what the running command
keeps current on disk (the manifest's session entries, refreshed every
minute, and each cell's journal, fsynced per evaluation) and prints, per
cell, how far it is and its best fitness so far; per session, its wall and
CPU time. It takes no lock and writes nothing, so it is safe beside the
running command, from another shell or a cron job.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..assess.journal import PARTS_NAME
from ..atomic import read_json_if_valid, read_json_lines
from ..checkpoint import checkpoint_evaluations
from ..errors import UsageError
from ..flags import OptionParser
from ..validate import json_number
from .cells import JOURNAL_NAME, RAS_CURVE_NAME, RESULT_NAME, parse_cell_name, ras_run_dir
from .compare_config import METHOD_ORDER
from .heartbeat import HEARTBEAT_SECONDS
from .manifest import MANIFEST_NAME

__all__ = ["CellStatus", "ComparisonStatus", "SessionStatus", "StatusError",
           "comparison_status", "format_status", "main"]

# a session whose last heartbeat is older than three beats is no longer running
STALE_SECONDS = 3 * HEARTBEAT_SECONDS
# the pace of a searching cell: its last evaluations (networks grow as a search learns)
RECENT = 10


class StatusError(UsageError, ValueError):
    """OUT is not a comparison folder; the message names the fix."""


@dataclass(frozen=True)
class CellStatus:
    """One (method, seed) cell: ``state`` is ``done``, ``searching`` (its
    evaluations so far), ``post-search`` (every evaluation done; re-measuring,
    re-training or assessing its winner) or ``not started``."""

    name: str
    method: str
    seed: int
    state: str
    evaluations: int
    budget: int | None               # None: a compute budget, whose evaluations vary by method
    best_fitness: float | None       # the search's best so far (one training each)
    remeasured: float | None         # done cells: the winner's re-measured mean fitness
    test_accuracy: float | None      # done cells: the re-trained winner's
    last_change: float | None        # seconds since its journal (or result) last changed
    heldout: bool                    # a held-out assessment is stored beside it
    recent_seconds: float | None = None  # mean time of its last RECENT journalled evaluations
    heldout_attacks: int = 0         # attacks a running held-out assessment has finished
    heldout_parts: int = 0           # and parts (image chunks) of AutoAttack it has stored


@dataclass(frozen=True)
class SessionStatus:
    started: str
    state: str                       # finished, interrupted, running, lost
    seconds: float
    cpu_seconds: float | None
    last_seen: str | None
    cells_run: int


@dataclass(frozen=True)
class ComparisonStatus:
    out: str
    budget: int
    cells: list[CellStatus]
    sessions: list[SessionStatus]
    budget_epochs: float | None = None  # --budget-epochs: it, not ``budget``, ends a search

    def count(self, state: str) -> int:
        return sum(c.state == state for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # the cells and sessions too


def _age(path: Path, now: float) -> float | None:
    try:
        return max(0.0, now - path.stat().st_mtime)
    except OSError:
        return None


def _field(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _best(values: list[Any]) -> float | None:
    numbers = [v for v in map(json_number, values) if v is not None and math.isfinite(v)]
    return max(numbers) if numbers else None


def _cell(out: Path, folder: Path, budget: int | None, now: float) -> CellStatus | None:
    parsed = parse_cell_name(folder.name)
    if parsed is None:
        return None
    method, seed = parsed
    heldout = any(folder.glob("heldout*.json"))
    entries = [e for path in [*folder.glob("heldout*.partial.jsonl"), folder / PARTS_NAME]
               for e in read_json_lines(path, ordered=False) if isinstance(e, dict)]
    heldout_attacks = len({e["attack"] for e in entries if isinstance(e.get("attack"), str)})
    heldout_parts = len({e["part_key"] for e in entries if isinstance(e.get("part_key"), str)})
    result = read_json_if_valid(folder / RESULT_NAME)
    if isinstance(_field(result, "outcome"), dict):
        fitness = _field(result, "remeasured", "fitness")
        fitness = [v for v in map(json_number, fitness if isinstance(fitness, list) else [])
                   if v is not None]
        evaluations = json_number(_field(result, "outcome", "evaluations"))
        return CellStatus(folder.name, method, seed, "done",
                          0 if evaluations is None else int(evaluations), budget,
                          json_number(_field(result, "outcome", "best_fitness")),
                          statistics.fmean(fitness) if fitness else None,
                          json_number(_field(result, "final_metrics", "test_accuracy")),
                          _age(folder / RESULT_NAME, now), heldout,
                          heldout_attacks=heldout_attacks, heldout_parts=heldout_parts)
    journal, curve = folder / JOURNAL_NAME, folder / RAS_CURVE_NAME
    if journal.is_file():
        entries = [e for e in read_json_lines(journal) if isinstance(e, dict)]
        count = len(entries)
        best = _best([e.get("fitness") for e in entries if not e.get("failure")])
        changed = _age(journal, now)
        seconds = [v for e in entries[-RECENT:]
                   if (v := json_number(e.get("seconds"))) is not None]
        recent = statistics.fmean(seconds) if seconds else None
    else:
        lines = [e for e in read_json_lines(curve) if isinstance(e, dict)]
        # the curve is appended as each evaluation ends, the checkpoint written after
        # MLflow's queued writes: either may be ahead, and both count finished work
        count = max(len(lines), checkpoint_evaluations(ras_run_dir(out, folder.name)) or 0)
        best = _best([e.get("best") for e in lines])
        changed = _age(curve, now) if curve.is_file() else None
        recent = None  # a RAS curve keeps no times
    if count == 0:
        return CellStatus(folder.name, method, seed, "not started", 0, budget, None, None, None,
                          None, heldout, heldout_attacks=heldout_attacks,
                          heldout_parts=heldout_parts)
    state = "post-search" if budget is not None and count >= budget else "searching"
    return CellStatus(folder.name, method, seed, state, count, budget, best, None, None,
                      changed, heldout, recent, heldout_attacks, heldout_parts)


def _session(entry: dict[str, Any], now: datetime) -> SessionStatus:
    last_seen = entry.get("last_seen")
    last_seen = last_seen if isinstance(last_seen, str) else None
    if entry.get("ended"):
        state = str(entry["ended"])
    elif last_seen is None:  # written when it ended, before sessions had heartbeats
        state = "interrupted" if entry.get("interrupted") else "finished"
    else:
        try:
            age = (now - datetime.fromisoformat(last_seen)).total_seconds()
        except (TypeError, ValueError):  # not a date, or one without a time zone
            age = float("inf")
        state = "running" if age <= STALE_SECONDS else "lost"
    cells_run = entry.get("cells_run")
    return SessionStatus(str(entry.get("started", "?")), state,
                         json_number(entry.get("seconds")) or 0.0,
                         json_number(entry.get("cpu_seconds")), last_seen,
                         len(cells_run) if isinstance(cells_run, list) else 0)


def comparison_status(out: str | Path, *, now: float | None = None) -> ComparisonStatus:
    """What ``out`` (a ``python -m ras_deap.compare --out`` folder) holds
    now. Cells are those with a folder (a command creates every cell it
    plans when it starts; a clone of a committed comparison lacks the
    cells never started), seed by seed in the comparison's method order."""
    out = Path(out)
    manifest = read_json_if_valid(out / MANIFEST_NAME)
    budget = json_number(_field(manifest, "settings", "budget"))
    if budget is None or budget < 1 or budget != int(budget):
        raise StatusError(f"{out} holds no readable {MANIFEST_NAME} (one recording the settings "
                          "and budget): give the --out folder of python -m ras_deap.compare (it "
                          "is written when the comparison starts)")
    budget = int(budget)
    # with a compute budget a cell trains as many networks as fit: its count is not known here
    epochs = json_number(_field(manifest, "settings", "search", "budget_epochs"))
    cell_budget = None if epochs is not None else budget
    now = time.time() if now is None else now
    folders = sorted((out / "cells").glob("*-seed*")) if (out / "cells").is_dir() else []
    cells = [c for f in folders
             if f.is_dir() and (c := _cell(out, f, cell_budget, now)) is not None]
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    cells.sort(key=lambda c: (c.seed, order.get(c.method, len(order)), c.method))
    wall_now = datetime.fromtimestamp(now, UTC)
    entries = manifest.get("sessions")
    sessions = [_session(e, wall_now) for e in (entries if isinstance(entries, list) else [])
                if isinstance(e, dict)]
    return ComparisonStatus(str(out), budget, cells, sessions, epochs)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _shown(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _heldout(cell: CellStatus) -> str:
    if cell.heldout:
        return "yes"
    n, parts = cell.heldout_attacks, cell.heldout_parts
    said = [f"{n} attack{'s' if n > 1 else ''}"] if n else []
    said += [f"{parts} AutoAttack part{'s' if parts > 1 else ''}"] if parts else []
    return f"{' and '.join(said)} so far" if said else "-"


def format_status(status: ComparisonStatus) -> str:
    """The status as Markdown tables (readable in a terminal)."""
    done, total = status.count("done"), len(status.cells)
    evaluations = sum(c.evaluations for c in status.cells)
    if status.budget_epochs is None:
        spent = (f"{evaluations} of {total * status.budget} evaluations "
                 f"({status.budget} per cell)")
    else:
        spent = (f"{evaluations} evaluations, a budget of {status.budget_epochs:g} training "
                 "epochs per cell")
    running = [s for s in status.sessions if s.state == "running"]
    lines = [f"# {status.out}", "",
             f"{done} of {total} cells done, {status.count('searching')} searching, "
             f"{status.count('post-search')} after their search, "
             f"{status.count('not started')} not started; {spent}.",
             "running now: " + (", ".join(f"session {s.started} (last seen {s.last_seen})"
                                          for s in running) or "nothing"), "",
             "| cell | state | evaluations | best search fitness | re-measured | test acc. "
             f"| held-out | last change | s per evaluation (last {RECENT}) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in status.cells:
        ago = "-" if c.last_change is None else f"{_duration(c.last_change)} ago"
        of = "" if c.budget is None else f"/{c.budget}"
        lines.append(f"| {c.name} | {c.state} | {c.evaluations}{of} "
                     f"| {_shown(c.best_fitness)} | {_shown(c.remeasured)} "
                     f"| {_shown(c.test_accuracy)} | {_heldout(c)} | {ago} "
                     f"| {_shown(c.recent_seconds, 0)} |")
    if status.sessions:
        wall = sum(s.seconds for s in status.sessions)
        cpu = [s.cpu_seconds for s in status.sessions if s.cpu_seconds is not None]
        count = len(status.sessions)
        lines += ["", f"{count} session{'s' if count > 1 else ''}, {_duration(wall)} wall"
                  + (f", {sum(cpu):.0f} CPU-s in the {len(cpu)} that record CPU" if cpu else "")
                  + ":", "",
                  "| session | state | wall | CPU-s | cells finished |", "|---|---|---|---|---|"]
        for s in status.sessions:
            lines.append(f"| {s.started} | {s.state} | {_duration(s.seconds)} "
                         f"| {_shown(s.cpu_seconds, 0)} | {s.cells_run} |")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = OptionParser(
        prog="python -m ras_deap.compare.status",
        description="Where a comparison stands, while it runs or after: each cell's state, "
                    "evaluations and best fitness so far, and each session's wall and CPU "
                    "time. Reads the folder only (no lock, no writes), so it is safe beside "
                    "the running python -m ras_deap.compare.")
    p.add_argument("out", metavar="OUT", help="the comparison's --out folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import run_cli

    parser = _parser()
    args = parser.parse_args(argv)

    def work() -> int:
        status = comparison_status(args.out)
        if args.json:
            print(json.dumps(status.to_dict(), indent=2))
        else:
            print(format_status(status), end="")
        return 0

    return run_cli(parser.prog, work)


if __name__ == "__main__":
    sys.exit(main())
