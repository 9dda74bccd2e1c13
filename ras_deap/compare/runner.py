"""Run every (method, seed) cell under the same budget, resumably and in
parallel, and write the tables, CSVs, figure and MLflow runs.

Each method picks its winner (per seed) itself: the best fitness its search
saw. That maximum is mostly the luckiest training run, so it is reported only
as ``search_fitness``; the number compared is the winner's fitness
re-measured on fresh seeds, then its errors after re-training on the full
training set, on the test split, on the bank and under direct attacks
(:mod:`.cells`).

Resuming. ``<out>/comparison.json`` records the settings (everything that
decides a cell's result, :meth:`CompareConfig.settings`) and the MLflow
parent run. A cell is finished when ``<out>/cells/<method>-seed<seed>/
result.json`` exists; it is written atomically once the cell's result is
logged. Started again with the same settings, a comparison skips finished
cells, says what is left and resumes unfinished ones from their journals
(no search evaluation is trained twice); with other settings it refuses.
Seeds and methods may change: they only choose the cells.

Parallel. ``workers=N`` runs up to N cells at once, each in its own
``spawn`` process (one torch thread each). A cell's result depends only on
the settings, its method and its seed, so it is identical to the serial
run's. Only the main process logs to MLflow, except RAS's own search run,
which its worker writes (SQLite in WAL mode takes both).

MLflow layout: one parent run per comparison (config, tables, figure), one
child run per cell (curve, final and ``assess/`` metrics, best genome) and
under that the evaluated individuals (RAS: its own search run, which holds
them).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..assess.config import AUTOATTACK_PARTIAL
from ..atomic import write_atomic, write_json_atomic
from ..config import ConfigError, SearchConfig
from ..genome import SPECTRUM_FEATURES, Model, spectrum
from ..validate import check_int
from .baselines import MethodOutcome
from .cells import (
    JOURNAL_NAME,
    RESULT_NAME,
    CellSpec,
    cell_dir,
    cell_name,
    final_metrics,
    journal_length,
    run_cell,
    search_config_for,
)
from .config import RAS_METHODS, CompareConfig

__all__ = ["MANIFEST_NAME", "CompareError", "ComparisonResult", "RunResult", "final_metrics",
           "remeasured_columns", "row_of", "run_comparison"]

MANIFEST_NAME = "comparison.json"
MANIFEST_FORMAT = "ras_deap.compare/2"


class CompareError(ConfigError):
    """A comparison that cannot start: its output folder holds another one."""


def remeasured_columns(measured: Any) -> dict[str, float]:
    """The re-measured fitness of a winner as result columns:
    ``remeasured_fitness`` (mean over the fresh trainings), ``remeasured_sd``,
    ``remeasured_ci95`` (half-width of the 95 % t-interval; both NaN for one
    training), the accuracy/robustness means, ``remeasure_repeats`` and
    ``remeasure_failures`` (failed trainings, counted as fitness 0). All NaN
    when nothing was re-measured. ``measured``: a Remeasurement or its dict."""
    keys = ("remeasured_fitness", "remeasured_sd", "remeasured_ci95", "remeasured_accuracy",
            "remeasured_robustness", "remeasure_repeats", "remeasure_failures")
    if measured is None:
        return dict.fromkeys(keys, math.nan)
    if isinstance(measured, dict):
        def mean(values: list[float]) -> float:
            return float(sum(values) / len(values)) if values else math.nan

        return {"remeasured_fitness": float(measured["mean"]),
                "remeasured_sd": float(measured["sd"]),
                "remeasured_ci95": float(measured["ci95"]),
                "remeasured_accuracy": mean(measured["accuracy"]),
                "remeasured_robustness": mean(measured["robustness"]),
                "remeasure_repeats": float(len(measured["fitness"])),
                "remeasure_failures": float(measured["failures"])}
    return {"remeasured_fitness": float(measured.mean), "remeasured_sd": float(measured.sd),
            "remeasured_ci95": float(measured.ci95),
            "remeasured_accuracy": float(measured.accuracy_mean),
            "remeasured_robustness": float(measured.robustness_mean),
            "remeasure_repeats": float(measured.repeats),
            "remeasure_failures": float(measured.failures)}


def _direct_columns(assessment: dict[str, Any] | None) -> dict[str, float]:
    if not assessment:
        return {}
    out: dict[str, float] = {}
    attacks = []
    for row in assessment["rows"]:
        if row["key"].startswith("bank"):
            continue  # the same network on the same bank: adv_error already
        error = 1.0 - float(row["accuracy"])
        out[f"er_{row['key']}"] = error
        # AutoAttack's rows after its first attacks alone are parts of its own row
        if row["key"] != "clean" and not row["key"].endswith(AUTOATTACK_PARTIAL):
            attacks.append(error)
    out["er_direct_mean"] = float(sum(attacks) / len(attacks)) if attacks else math.nan
    out["assess_levels"] = float(assessment["levels"])
    out["assess_seconds"] = float(assessment.get("seconds", math.nan))
    return out


def row_of(result: dict[str, Any]) -> dict[str, Any]:
    """One results.csv row from a cell's stored result."""
    o = result["outcome"]
    measured = result.get("remeasured")
    assessment = result.get("assessment")
    return {"method": result["method"], "seed": int(result["seed"]),
            "evaluations": int(o["evaluations"]), "search_fitness": float(o["best_fitness"]),
            **remeasured_columns(measured), **result["final"], **_direct_columns(assessment),
            "search_seconds": float(o["seconds"]),
            "remeasure_seconds": float(measured["seconds"]) if measured else 0.0,
            "retrain_seconds": float(result["retrain_seconds"]),
            "wall_seconds": float(result["cell_seconds"]),
            "cpu_seconds": float(result.get("cpu_seconds", math.nan)),
            "replayed": int(result.get("replayed", 0)),
            "best_id": o["best_genome"].get("id") or Model.from_dict(o["best_genome"]).id,
            "failure": result.get("final_failure") or "", "run_id": result.get("run_id") or ""}


@dataclass
class RunResult:
    """One finished cell, as stored in its ``result.json``."""

    data: dict[str, Any]

    @property
    def row(self) -> dict[str, Any]:
        return row_of(self.data)

    @property
    def outcome(self) -> MethodOutcome:
        o = self.data["outcome"]
        return MethodOutcome(method=self.data["method"], seed=int(self.data["seed"]),
                             best_genome=Model.from_dict(o["best_genome"]),
                             best_fitness=float(o["best_fitness"]),
                             best_metrics=dict(o["best_metrics"]),
                             evaluations=int(o["evaluations"]), curve=list(o["curve"]),
                             seconds=float(o["seconds"]), info=dict(o["info"]),
                             best_generation=int(o["best_generation"]))

    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")


@dataclass
class ComparisonResult:
    config: CompareConfig
    runs: list[RunResult]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float = 0.0  # wall time of this session
    total_seconds: float = 0.0  # over every session of this comparison
    cells_run: list[str] = field(default_factory=list)
    cells_reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r.row for r in self.runs]


# -- the manifest --------------------------------------------------------------------
def _normal(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def _upgraded(stored: Any, current: dict[str, Any]) -> Any:
    """``stored`` settings with the search options a newer ras_deap added (absent
    when they were stored) filled in where the current value is the option's
    default: such an option keeps the old behaviour, so a comparison started
    before it existed can resume."""
    if not (isinstance(stored, dict) and isinstance(stored.get("search"), dict)):
        return stored
    defaults = _normal(SearchConfig().to_dict())
    search = dict(stored["search"])
    for key, value in current.get("search", {}).items():
        if key not in search and key in defaults and value == defaults[key]:
            search[key] = value
    return {**stored, "search": search}


def _matches(stored: Any, current: dict[str, Any]) -> bool:
    return _upgraded(stored, current) == current


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} then, {new!r} now"]


def _write_json(path: Path, data: Any) -> None:
    write_json_atomic(path, data, default=str)


def open_manifest(cfg: CompareConfig) -> tuple[dict[str, Any], bool]:
    """The manifest of ``cfg.out`` (created if new) and whether it existed;
    :class:`CompareError` if it records other settings."""
    out = Path(cfg.out)
    path = out / MANIFEST_NAME
    settings = _normal(cfg.settings())
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CompareError(f"{path} is corrupt ({exc}); remove it (and the cells/ folder) "
                               "or pass another --out") from exc
        if data.get("format") != MANIFEST_FORMAT:
            raise CompareError(f"{path} was written by another version of ras_deap.compare "
                               f"(format {data.get('format')!r}); pass another --out")
        changed = _differences(_upgraded(data.get("settings"), settings), settings)
        if changed:
            raise CompareError(
                f"--out {out} holds a comparison with other settings ({'; '.join(changed)}). "
                "Rerun with the settings it was started with to resume it, or pass another "
                "--out for a new comparison (only --seeds, --methods and --parallel-cells may "
                "change on resume)")
        return data, True
    if (out / "cells").is_dir() and any((out / "cells").iterdir()):
        raise CompareError(f"--out {out} holds cells/ but no {MANIFEST_NAME}, so its settings "
                           "are unknown; remove the folder or pass another --out")
    data = {"format": MANIFEST_FORMAT, "version": __version__, "settings": settings,
            "created": datetime.now().isoformat(timespec="seconds"), "parent_run_id": None,
            "sessions": []}
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, data)
    return data, False


def _stored_result(path: Path, cfg: CompareConfig) -> dict[str, Any] | None:
    """The result stored in ``path`` if it is readable and made with ``cfg``'s
    settings, else None (the cell is run again)."""
    from ..atomic import read_json_if_valid

    data = read_json_if_valid(path)
    if not isinstance(data, dict):
        return None
    return data if _matches(data.get("settings"), _normal(cfg.settings())) else None


def load_result(cfg: CompareConfig, method: str, seed: int) -> dict[str, Any] | None:
    """The stored result of a finished cell, None if it has none (or an
    unreadable one, which is run again)."""
    return _stored_result(cell_dir(cfg.out, method, seed) / RESULT_NAME, cfg)


# -- MLflow (main process only) --------------------------------------------------------
def _individual_record(entry: dict[str, Any]) -> Any:
    from ..tracking import IndividualRecord

    genome = Model.from_dict(entry["genome"])
    info = dict(entry.get("info") or {})
    return IndividualRecord(
        key=f"e{entry['index']}", genome_id=genome.id, generation=int(entry["generation"]),
        index=int(entry["index"]), cluster=None, parent_id=info.get("parent_id"),
        mutations=list(info.get("mutations", [])), fitness=float(entry["fitness"]),
        metrics={k: float(v) for k, v in entry["metrics"].items()},
        spectrum=dict(zip(SPECTRUM_FEATURES, map(float, spectrum(genome)), strict=True)),
        genome=entry["genome"], failure=entry.get("failure"),
        extra_params={k: v for k, v in info.items()
                      if k not in ("parent_id", "mutations", "replayed")})


def _open_cell_run(cfg: CompareConfig, spec: CellSpec, parent_id: str) -> Any:
    from ..tracking import SearchTracker

    search = search_config_for(cfg, spec.seed)
    folder = spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    id_file = folder / "mlflow_run_id"
    previous = id_file.read_text().strip() if id_file.is_file() else None
    params = {**search.to_dict(), "method": spec.method, "budget": cfg.budget}
    tags = {"ras_deap.compare": "method", "method": spec.method, "seed": str(spec.seed),
            "run_dir": str(folder.resolve())}
    tracker = SearchTracker(search.tracking_uri, search.experiment)
    try:
        tracker.start_search(params, tags, run_name=spec.name, parent_run_id=parent_id,
                             resume_run_id=previous)
    except ValueError:  # the stored run is gone (another store, deleted): a new one
        tracker = SearchTracker(search.tracking_uri, search.experiment)
        tracker.start_search(params, tags, run_name=spec.name, parent_run_id=parent_id)
    write_atomic(id_file, tracker.run_id)
    return tracker


def _log_cell(tracker: Any, result: dict[str, Any], folder: Path) -> None:
    from ..assess.result import METRIC_PREFIX
    from ..tracking import log_to_run

    if result["method"] not in RAS_METHODS and (folder / JOURNAL_NAME).is_file():
        for line in (folder / JOURNAL_NAME).read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break
            tracker.log_individual(_individual_record(entry))
    # metrics under the comparison's own names (not a search's per-generation names)
    uri, run_id = tracker.tracking_uri, tracker.run_id
    curve = [(i, v) for i, v in enumerate(result["outcome"]["curve"], start=1)
             if not math.isnan(v)]  # best fitness after each evaluation, step = evaluation
    log_to_run(uri, run_id, series={"best_fitness": curve})
    row = row_of(result)
    log_to_run(uri, run_id, step=int(result["outcome"]["evaluations"]), metrics={
        k: v for k, v in row.items() if isinstance(v, float | int) and k != "seed"})
    if result.get("assessment"):
        from ..assess.result import Assessment

        assessment = Assessment.from_dict(result["assessment"])
        log_to_run(uri, run_id, metrics={f"{METRIC_PREFIX}{k}": v
                                         for k, v in assessment.metrics().items()})
        for name in ("assess.md", "assess.json"):
            if (folder / name).is_file():
                tracker.log_artifact(folder / name, "assess")
    tracker.log_dict(result["outcome"]["best_genome"], "best_genome.json")
    tracker.log_dict(result["remeasured"], "remeasured.json")
    if result.get("front"):
        _log_front(tracker, result["front"], folder)
    tracker.set_tags({"best_id": row["best_id"],
                      **({"final_failure": result["final_failure"]}
                         if result.get("final_failure") else {})})
    tracker.end_search("FINISHED")


def _log_front(tracker: Any, front: dict[str, Any], folder: Path) -> None:
    """A multi-objective cell's front on its run: the files (``front/``),
    its size and hypervolumes (search-time and re-measured) as metrics, and
    the members' child runs tagged ``ras_deap.front=true`` (a baseline's
    individuals are child runs of the cell; RAS tags its own search run's)."""
    from ..tracking import log_to_run

    for name in ("front.json", "front.png"):
        if (folder / name).is_file():
            tracker.log_artifact(folder / name, "front")
    if (folder / "front").is_dir():
        tracker.log_artifact(folder / "front", "front/genomes")
    metrics = {"front_size": float(len(front["front"])),
               "front_hypervolume": float(front["hypervolume"])}
    if "remeasured_hypervolume" in front:
        metrics["front_remeasured_hypervolume"] = float(front["remeasured_hypervolume"])
    log_to_run(tracker.tracking_uri, tracker.run_id, metrics=metrics)
    members = [m for m in front["front"] if m.get("evaluation") is not None]
    if members:  # a baseline's: its individuals are this run's children, e<index>
        runs = tracker.mark_front([f"e{m['evaluation']}" for m in members])
        for member, run_id in zip(members, runs, strict=True):
            member["run_id"] = run_id  # assess --member logs on it
        if (folder / "front.json").is_file():
            from .front import write_front_json

            write_front_json(folder, front)


# -- execution -----------------------------------------------------------------------
def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the comparison process dies
    (even by SIGKILL), so no orphan keeps writing a cell's journal that a
    resumed comparison is about to replay. Elsewhere a no-op."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


WORKER_RESULT = "worker_result.json"
WORKER_ERROR = "worker_error.txt"


def _cell_process(spec: CellSpec) -> None:
    """Body of a worker process: run one cell and leave its result (or the
    traceback) in the cell folder for the main process, which logs it."""
    _die_with_parent()
    folder = spec.folder
    (folder / WORKER_ERROR).unlink(missing_ok=True)
    try:
        data = run_cell(spec)
    except BaseException:  # report anything, even an interrupt, to the parent
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / WORKER_ERROR, traceback.format_exc())
        raise
    _write_json(folder / WORKER_RESULT, data)


def worker_result(spec: CellSpec) -> dict[str, Any] | None:
    """A result a worker left but the main process has not stored yet (it
    was stopped in between): it is logged and stored without running again."""
    return _stored_result(spec.folder / WORKER_RESULT, spec.cfg)


def _run_parallel(specs: list[CellSpec], workers: int,
                  finish: Callable[[CellSpec, dict[str, Any]], None],
                  fail: Callable[[CellSpec, str], None],
                  tick: Callable[[], None]) -> None:
    """Up to ``workers`` cells at once, one ``spawn`` process each; a worker
    hands its result over as a file in its cell folder (nothing to lose in a
    pipe when it exits)."""
    ctx = multiprocessing.get_context("spawn")
    todo = list(specs)
    running: dict[str, tuple[CellSpec, Any]] = {}
    try:
        while todo or running:
            while todo and len(running) < workers:
                spec = todo.pop(0)
                (spec.folder / WORKER_RESULT).unlink(missing_ok=True)
                proc = ctx.Process(target=_cell_process, args=(spec,),
                                   name=f"compare-{spec.name}", daemon=True)
                proc.start()
                running[spec.name] = (spec, proc)
            for proc in [p for _, p in running.values()]:
                proc.join(timeout=1.0 / max(len(running), 1))
            for name, (spec, proc) in list(running.items()):
                if proc.is_alive():
                    continue
                running.pop(name)
                data = worker_result(spec)
                if data is not None:
                    finish(spec, data)
                    (spec.folder / WORKER_RESULT).unlink(missing_ok=True)
                else:
                    error = spec.folder / WORKER_ERROR
                    fail(spec, error.read_text() if error.is_file() else
                         f"worker process ended (exit code {proc.exitcode}; killed for "
                         "memory?) without a result")
            tick()
    finally:
        for _, proc in running.values():
            if proc.is_alive():
                proc.terminate()
        for _, proc in running.values():
            proc.join(timeout=30)


def _machine() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "ras_deap": __version__}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


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
    bank. With ``workers > 1`` the factory must be picklable.
    """
    from tqdm.auto import tqdm

    from ..tracking import SearchTracker, log_to_run
    from .plot import plot_curves
    from .table import write_outputs

    check_int("workers", workers, error=CompareError, hint="--parallel-cells")
    started = time.perf_counter()
    out = Path(cfg.out)
    manifest, existed = open_manifest(cfg)
    cells = [(m, s) for s in cfg.seed_list for m in cfg.methods]  # seed-major: full seeds first
    stored = {c: load_result(cfg, *c) for c in cells}
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
    search = cfg.search
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    result = ComparisonResult(cfg, [], out, cells_reused=[cell_name(*c) for c in done])
    machine = _machine()
    with SearchTracker(search.tracking_uri, search.experiment) as parent:
        tags = {"ras_deap.compare": "comparison", "dataset": search.dataset,
                "out": str(out.resolve())}
        try:
            parent.start_search(cfg.to_dict(), tags, run_name=f"compare-{search.dataset}-{stamp}",
                                resume_run_id=manifest.get("parent_run_id"))
        except ValueError:
            parent = SearchTracker(search.tracking_uri, search.experiment)
            parent.start_search(cfg.to_dict(), tags,
                                run_name=f"compare-{search.dataset}-{stamp}")
        manifest["parent_run_id"] = parent.run_id
        _write_json(out / "comparison.json", manifest)
        result.run_id = parent.run_id

        specs = [CellSpec(cfg=cfg, method=m, seed=s, evaluator_factory=evaluator_factory)
                 for m, s in pending]
        trackers: dict[str, Any] = {}
        for i, spec in enumerate(specs):
            tracker = _open_cell_run(cfg, spec, parent.run_id)
            trackers[spec.name] = tracker
            specs[i] = CellSpec(cfg=cfg, method=spec.method, seed=spec.seed,
                                run_id=tracker.run_id, evaluator_factory=evaluator_factory)
        n_pending = len(specs)
        bar = tqdm(total=len(specs) * cfg.budget, desc="compare evaluations", unit="model",
                   disable=not progress or not specs, smoothing=0.05)

        def finish(spec: CellSpec, data: dict[str, Any]) -> None:
            data["run_id"] = spec.run_id
            _log_cell(trackers[spec.name], data, spec.folder)
            _write_json(spec.folder / RESULT_NAME, data)  # the cell is finished now
            stored[(spec.method, spec.seed)] = data
            result.cells_run.append(spec.name)
            row = row_of(data)
            log(f"[compare] {spec.name} done in {data['cell_seconds']:.0f} s: test error "
                f"{row['test_error']:.3f}, bank error {row['adv_error']:.3f}, re-measured "
                f"fitness {row['remeasured_fitness']:.4f} (search max "
                f"{row['search_fitness']:.4f})"
                + (f", direct-attack error {row['er_direct_mean']:.3f}"
                   if not math.isnan(row.get("er_direct_mean", math.nan)) else "")
                + (f"; {data['replayed']} evaluations replayed from its journal"
                   if data.get("replayed") else "")
                + f" [{len(result.cells_run)}/{n_pending} this session]")

        def fail(spec: CellSpec, message: str) -> None:
            result.failed[spec.name] = message
            tracker = trackers[spec.name]
            tracker.set_tags({"failure": message.strip().splitlines()[-1][:500]})
            tracker.end_search("FAILED")
            log(f"[compare] {spec.name} FAILED:\n{message}")

        def tick() -> None:
            bar.n = min(bar.total, sum(journal_length(s.folder) for s in specs))
            bar.refresh()

        try:
            for spec in [s for s in specs if worker_result(s) is not None]:
                log(f"[compare] {spec.name}: finished by a worker before the stop; storing it")
                finish(spec, worker_result(spec))
                (spec.folder / WORKER_RESULT).unlink(missing_ok=True)
            specs = [s for s in specs if s.name not in result.cells_run]
            if workers == 1:
                for spec in specs:
                    log(f"[compare] {spec.name}: searching ({cfg.budget} evaluations)")
                    try:
                        data = run_cell(spec, on_evaluation=lambda: bar.update(1))
                    except Exception:
                        fail(spec, traceback.format_exc())
                        continue
                    finish(spec, data)
            else:
                log(f"[compare] running {len(specs)} cells on {min(workers, len(specs))} "
                    "worker processes")
                _run_parallel(specs, workers, finish, fail, tick)
        except BaseException:
            session = time.perf_counter() - started
            manifest["sessions"].append({"started": stamp, "seconds": session, "workers": workers,
                                         "cells_run": result.cells_run, "interrupted": True,
                                         "machine": machine})
            _write_json(out / "comparison.json", manifest)
            for name, tracker in trackers.items():
                if name not in result.cells_run and name not in result.failed:
                    with contextlib.suppress(Exception):  # the interrupt is what to report
                        tracker.end_search("KILLED")
            raise
        finally:
            bar.close()

        result.runs = [RunResult(stored[c]) for c in cells if stored[c] is not None]
        session = time.perf_counter() - started
        if result.cells_run or result.failed:  # a rerun that only rewrites the tables is no session
            manifest["sessions"].append({"started": stamp, "seconds": session,
                                         "workers": workers, "cells_run": result.cells_run,
                                         "interrupted": False, "machine": machine})
        result.total_seconds = sum(float(s["seconds"]) for s in manifest["sessions"])
        result.seconds = session
        if result.runs:
            curves = {(r.data["method"], int(r.data["seed"])): r.data["outcome"]["curve"]
                      for r in result.runs}
            extra = {"wall_seconds_session": session, "wall_seconds_total": result.total_seconds,
                     "workers": workers, "machine": machine, "command": command,
                     "sessions": manifest["sessions"], "failed": result.failed}
            result.files = write_outputs(result.rows, curves, cfg, out, extra=extra)
            result.files["figure"] = plot_curves(curves, out / "best_fitness.png",
                                                 budget=cfg.budget)
            for path in result.files.values():
                parent.log_artifact(path, "comparison")
        _write_json(out / "comparison.json", manifest)
        log_to_run(parent.tracking_uri, parent.run_id, step=len(manifest["sessions"]), metrics={
            "wall_seconds": session, "wall_seconds_total": result.total_seconds,
            "cells_done": float(len(result.runs)), "cells_failed": float(len(result.failed))})
    return result
