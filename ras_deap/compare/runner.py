"""Run every (method, seed) cell under the same budget, resumably and in
parallel, and write the tables, CSVs, figure and MLflow runs.

The parts, one job each: :mod:`.manifest` (the folder's settings, what
resumes), :mod:`.supervise` (running the cells, here or in processes),
:mod:`.runs` (MLflow), :mod:`.rows` and :mod:`.table` (results and
tables), :mod:`.stats` (paired tests). This module is the session that
ties them together: it says what is left, opens the runs, runs the cells,
and records the session and the outputs.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import SearchConfig
from ..locks import RunLock
from ..validate import check_int
from .cells import REMEASURE_JOURNAL, RESULT_NAME, CellSpec, cell_dir, cell_name, journal_length
from .compare_config import CompareConfig
from .heartbeat import Heartbeat, session_times
from .manifest import (
    CompareError,
    load_result,
    machine,
    open_manifest,
    write_json,
    write_manifest,
)
from .rows import ComparisonResult, RunResult, row_of
from .runs import end_failed_cell, log_cell, open_cell_run, open_parent_run
from .supervise import run_cells

__all__ = ["run_comparison"]

Cell = tuple[str, int]


def _announce(cfg: CompareConfig, cells: list[Cell], stored: dict[Cell, Any], existed: bool,
              workers: int, log: Callable[[str], None]) -> None:
    out = Path(cfg.out)
    done = [c for c in cells if stored[c] is not None]
    pending = [c for c in cells if stored[c] is None]
    if existed:
        partly = [cell_name(*c) for c in pending if journal_length(cell_dir(out, *c))]
        log(f"[compare] resuming {out}: {len(done)} of {len(cells)} cells done, "
            f"{len(pending)} left" + (f": {', '.join(cell_name(*c) for c in pending)}"
                                      if pending else "")
            + (f" ({', '.join(partly)} resume from their journals)" if partly else ""))
    else:
        log(f"[compare] {len(cells)} cells ({len(cfg.methods)} methods x {cfg.seeds} seeds), "
            f"budget {cfg.budget} evaluations each, {workers} at once; results in {out}")
    if pending:
        log(f"[compare] see where it stands from another shell: python -m "
            f"ras_deap.compare.status {out}")


def _done_line(spec: CellSpec, data: dict[str, Any], run: int, of: int) -> str:
    row = row_of(data)
    return (f"[compare] {spec.name} done in {data['cell_seconds']:.0f} s: test error "
            f"{row['test_error']:.3f}, bank error {row['adv_error']:.3f}, re-measured "
            f"fitness {row['remeasured_fitness']:.4f} (search max "
            f"{row['search_fitness']:.4f})"
            + (f", direct-attack error {row['er_direct_mean']:.3f}"
               if not math.isnan(row.get("er_direct_mean", math.nan)) else "")
            + (f"; {data['replayed']} evaluations replayed from its journal"
               if data.get("replayed") else "")
            + f" [{run}/{of} this session]")


@dataclass
class _Session:
    """One run of :func:`run_comparison`: what it stores, logs and counts."""

    cfg: CompareConfig
    manifest: dict[str, Any]
    stored: dict[Cell, Any]
    result: ComparisonResult
    log: Callable[[str], None]
    workers: int
    started: float = field(default_factory=time.perf_counter)
    stamp: str = field(default_factory=lambda: datetime.now().strftime("%Y%m%d-%H%M%S"))
    machine: dict[str, Any] = field(default_factory=machine)
    specs: list[CellSpec] = field(default_factory=list)
    trackers: dict[str, Any] = field(default_factory=dict)
    bar: Any = None
    entry: dict[str, Any] | None = None  # this session's record in the manifest, once it runs
    lock: threading.Lock = field(default_factory=threading.Lock)  # the beats' manifest writes

    def open_runs(self, parent: Any, evaluator_factory: Any, progress: bool) -> None:
        """The comparison's run, a run per pending cell, and the progress bar."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.result.run_id = open_parent_run(parent, cfg, self.manifest.get("parent_run_id"),
                                             self.stamp)
        self.manifest["parent_run_id"] = parent.run_id
        write_manifest(cfg, self.manifest)
        for method, seed in [c for c, data in self.stored.items() if data is None]:
            spec = CellSpec(cfg=cfg, method=method, seed=seed,
                            evaluator_factory=evaluator_factory)
            tracker = open_cell_run(cfg, spec, parent.run_id)
            self.trackers[spec.name] = tracker
            self.specs.append(CellSpec(cfg=cfg, method=method, seed=seed, run_id=tracker.run_id,
                                       evaluator_factory=evaluator_factory))
        self.bar = tqdm(total=len(self.specs) * cfg.budget, desc="compare evaluations",
                        unit="model", disable=not progress or not self.specs, smoothing=0.05)

    # -- the cells' ends (see supervise.CellSink) --------------------------------------
    def finish(self, spec: CellSpec, data: dict[str, Any]) -> None:
        data["run_id"] = spec.run_id
        log_cell(self.trackers[spec.name], data, spec.folder)
        write_json(spec.folder / RESULT_NAME, data)  # the cell is finished now
        (spec.folder / REMEASURE_JOURNAL).unlink(missing_ok=True)  # result.json holds it
        self.stored[(spec.method, spec.seed)] = data
        self.result.cells_run.append(spec.name)
        self.log(_done_line(spec, data, len(self.result.cells_run), len(self.specs)))

    def fail(self, spec: CellSpec, message: str) -> None:
        self.result.failed[spec.name] = message
        end_failed_cell(self.trackers[spec.name], message)
        self.log(f"[compare] {spec.name} FAILED:\n{message}")

    def evaluated(self) -> None:
        self.bar.update(1)

    def tick(self) -> None:
        self.bar.n = min(self.bar.total, sum(journal_length(s.folder) for s in self.specs))
        self.bar.refresh()

    # -- the session's record ----------------------------------------------------------
    def heartbeat(self) -> Heartbeat | contextlib.nullcontext[None]:
        """While the cells run: this session's record is in the manifest from
        its start and refreshed every minute, so a session whose machine is
        lost keeps its times up to its last beat (:mod:`.heartbeat`)."""
        if not self.specs:
            return contextlib.nullcontext()
        self._open_entry()
        self._beat()
        return Heartbeat(self._beat, self.log)

    def _open_entry(self) -> None:
        self.entry = {"started": self.stamp, "workers": self.workers, "interrupted": True,
                      "machine": self.machine}
        self.manifest["sessions"].append(self.entry)

    def _beat(self, ended: str | None = None) -> float:
        """Bring this session's record up to now (``ended``: how it ended,
        written once it has) and write the manifest; the wall seconds."""
        assert self.entry is not None
        with self.lock:
            times = session_times(self.started)
            self.entry.update(times, cells_run=list(self.result.cells_run))
            if ended is not None:
                self.entry.update({"ended": ended, "interrupted": ended == "interrupted"})
            write_manifest(self.cfg, self.manifest)
        return times["seconds"]

    def record(self, interrupted: bool) -> float:
        """End this session's record (a rerun that ran no cell, only rewrote
        the tables, adds none); its wall time."""
        if self.entry is None:
            if not (interrupted or self.result.cells_run or self.result.failed):
                return time.perf_counter() - self.started
            self._open_entry()
        return self._beat(ended="interrupted" if interrupted else "finished")

    def interrupted(self) -> None:
        """Stopped (an error, Ctrl-C, SIGTERM): record it, end the open cell runs KILLED."""
        self.record(interrupted=True)
        write_manifest(self.cfg, self.manifest)
        for name, tracker in self.trackers.items():
            if name not in self.result.cells_run and name not in self.result.failed:
                with contextlib.suppress(Exception):  # the interrupt is what to report
                    tracker.end_search("KILLED")


def _write_outputs(session: _Session, parent: Any, command: str | None) -> None:
    """Tables, CSVs, figure (logged on the comparison's run) and its metrics."""
    from ..tracking import log_to_run
    from .plot import plot_curves
    from .table import write_outputs

    cfg, result, manifest = session.cfg, session.result, session.manifest
    if result.runs:
        curves = {(r.data["method"], int(r.data["seed"])): r.data["outcome"]["curve"]
                  for r in result.runs}
        extra = {"wall_seconds_session": result.seconds,
                 "wall_seconds_total": result.total_seconds, "workers": session.workers,
                 "machine": session.machine, "command": command,
                 "sessions": manifest["sessions"], "failed": result.failed}
        out = Path(cfg.out)
        result.files = write_outputs(result.rows, curves, cfg, out, extra=extra)
        result.files["figure"] = plot_curves(curves, out / "best_fitness.png", budget=cfg.budget)
        for path in result.files.values():
            parent.log_artifact(path, "comparison")
    write_manifest(cfg, manifest)
    log_to_run(parent.tracking_uri, parent.run_id, step=len(manifest["sessions"]), metrics={
        "wall_seconds": result.seconds, "wall_seconds_total": result.total_seconds,
        "cells_done": float(len(result.runs)), "cells_failed": float(len(result.failed))})


def run_comparison(cfg: CompareConfig, *, workers: int = 1,
                   evaluator_factory: Callable[[SearchConfig], Any] | None = None,
                   log: Callable[[str], None] = print, progress: bool = False,
                   command: str | None = None) -> ComparisonResult:
    """Run (or resume) ``cfg.methods`` x ``cfg.seed_list``; write the tables,
    CSVs and the figure to ``cfg.out`` and return everything measured.

    Each cell builds its evaluator with ``evaluator_factory(search config
    with the cell's seed)`` (default :func:`ras_deap.search.make_evaluator`,
    which RAS's ``run_search`` also uses): the seed fixes the data split and
    the fallback bank, so within a seed every method sees the same data and
    bank. With ``workers > 1`` the factory must be picklable. A second
    command on the same ``cfg.out`` meanwhile gets
    :class:`~ras_deap.errors.RunLockedError`.
    """
    check_int("workers", workers, error=CompareError, hint="--parallel-cells")
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, a read-only place
        raise CompareError(f"--out {out}: cannot create the folder ({exc.strerror or exc}); "
                           "pass a folder in a writable place") from exc
    # one command writes a comparison at a time: two would train the same cells and
    # interleave their journals
    with RunLock(out, what="comparison folder", advice=_locked_advice(out)):
        return _run_locked(cfg, workers, evaluator_factory, log, progress, command)


def _locked_advice(out: Path) -> str:
    """What to do when another command writes ``out``."""
    return (f"one command writes a comparison at a time. Watch it with python -m "
            f"ras_deap.compare.status {out}, wait for it to end (or stop it), then run the "
            "same command again to resume; or pass another --out")


def _run_locked(cfg: CompareConfig, workers: int,
                evaluator_factory: Callable[[SearchConfig], Any] | None,
                log: Callable[[str], None], progress: bool,
                command: str | None) -> ComparisonResult:
    from ..tracking import SearchTracker

    started = time.perf_counter()
    manifest, existed = open_manifest(cfg)
    cells = [(m, s) for s in cfg.seed_list for m in cfg.methods]  # seed-major: full seeds first
    stored = {c: load_result(cfg, *c) for c in cells}
    _announce(cfg, cells, stored, existed, workers, log)
    result = ComparisonResult(cfg, [], Path(cfg.out), cells_reused=[
        cell_name(*c) for c in cells if stored[c] is not None])
    session = _Session(cfg, manifest, stored, result, log, workers, started=started)
    with SearchTracker(cfg.search.tracking_uri, cfg.search.experiment) as parent:
        session.open_runs(parent, evaluator_factory, progress)
        try:
            with session.heartbeat():
                run_cells(session.specs, workers, session, log, cfg.budget)
        except BaseException:
            session.interrupted()
            raise
        finally:
            session.bar.close()
        result.runs = [RunResult(stored[c]) for c in cells if stored[c] is not None]
        result.seconds = session.record(interrupted=False)
        result.total_seconds = sum(float(s["seconds"]) for s in manifest["sessions"])
        _write_outputs(session, parent, command)
    return result
