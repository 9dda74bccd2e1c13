"""Running a comparison's cells: one after another in this process, or
``--parallel-cells N`` at once, each in a fresh process of the one
executor (:class:`ras_deap.executor.ProcessPool`, with its crash and
die-with-parent policies; one torch thread each).

A cell's result depends only on the settings, its method and its seed, so
it is identical whatever runs it. A worker hands its result over as a file
in its cell folder (``worker_result.json``): if the main process is stopped
before it logged and stored that result, the next run stores it without
running the cell again. A cell that raises, or whose process dies twice
(killed for memory, say), is reported failed and the other cells go on.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..executor import Crash, ProcessPool
from .cells import CellSpec, run_cell
from .manifest import stored_result, write_json

__all__ = ["WORKER_RESULT", "CellSink", "run_cells", "worker_result"]

WORKER_RESULT = "worker_result.json"
TICK_SECONDS = 1.0  # how often the progress bar is refreshed while cells run in processes


class CellSink(Protocol):
    """Where the cells' ends go (the main process's session)."""

    def finish(self, spec: CellSpec, data: dict[str, Any]) -> None: ...

    def fail(self, spec: CellSpec, message: str) -> None: ...

    def evaluated(self) -> None: ...  # one evaluation of a cell in this process

    def tick(self) -> None: ...  # refresh the progress of the cells in processes


def worker_result(spec: CellSpec) -> dict[str, Any] | None:
    """A result a worker left but the main process has not stored yet (it
    was stopped in between): it is logged and stored without running again."""
    return stored_result(spec.folder / WORKER_RESULT, spec.cfg)


def _cell_process(spec: CellSpec) -> str | None:
    """Body of a cell's process: run the cell and leave its result in the
    cell folder; the traceback when it raised."""
    try:
        data = run_cell(spec)
    except Exception:
        return traceback.format_exc()
    write_json(spec.folder / WORKER_RESULT, data)
    return None


def _store(spec: CellSpec, data: dict[str, Any], sink: CellSink) -> None:
    sink.finish(spec, data)
    (spec.folder / WORKER_RESULT).unlink(missing_ok=True)


def run_cells(specs: Sequence[CellSpec], workers: int, sink: CellSink,
              log: Callable[[str], None], budget: int) -> None:
    """Run ``specs`` (after storing what workers finished before a stop),
    ``workers`` at once."""
    rest = []
    for spec in specs:
        data = worker_result(spec)
        if data is None:
            rest.append(spec)
            continue
        log(f"[compare] {spec.name}: finished by a worker before the stop; storing it")
        _store(spec, data, sink)
    if workers == 1:
        _run_here(rest, sink, log, budget)
    else:
        log(f"[compare] running {len(rest)} cells on {min(workers, len(rest))} "
            "worker processes")
        _run_in_processes(rest, workers, sink)


def _run_here(specs: Sequence[CellSpec], sink: CellSink, log: Callable[[str], None],
              budget: int) -> None:
    for spec in specs:
        log(f"[compare] {spec.name}: searching ({budget} evaluations)")
        try:
            data = run_cell(spec, on_evaluation=sink.evaluated)
        except Exception:
            sink.fail(spec, traceback.format_exc())
            continue
        sink.finish(spec, data)


def _run_in_processes(specs: Sequence[CellSpec], workers: int, sink: CellSink) -> None:
    for spec in specs:
        (spec.folder / WORKER_RESULT).unlink(missing_ok=True)
    with ProcessPool(workers, fresh=True, name="compare") as pool:
        for index, outcome in pool.as_completed(_cell_process, specs, every=TICK_SECONDS,
                                                idle=sink.tick):
            spec = specs[index]
            data = worker_result(spec)
            if data is not None:
                _store(spec, data, sink)
            elif isinstance(outcome, Crash):
                sink.fail(spec, f"the cell's process died twice ({outcome.reason}; killed for "
                                "memory?) without a result")
            else:
                sink.fail(spec, outcome or "the cell's process ended without a result")
            sink.tick()
