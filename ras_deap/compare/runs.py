"""A comparison's MLflow runs, written by the main process only.

One parent run per comparison (config, tables, figure), one child run per
cell (curve, final and ``assess/`` metrics, best genome) and under that the
evaluated individuals (RAS: its own search run, which holds them; its cell
process writes it, and SQLite in WAL mode takes both writers). A run id
kept in the manifest or a cell folder is reopened when the store still
holds that run, else a new run takes its place (another store, deleted).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..atomic import read_json_lines, write_atomic
from ..genome import SPECTRUM_FEATURES, Model, spectrum
from .cells import JOURNAL_NAME, CellSpec, search_config_for
from .compare_config import RAS_METHODS, CompareConfig
from .rows import row_of

__all__ = ["end_failed_cell", "log_cell", "open_cell_run", "open_parent_run"]


def _start(tracker: Any, params: dict[str, Any], tags: dict[str, str], *, run_name: str,
           previous: str | None, parent_run_id: str | None = None) -> None:
    """Start ``tracker``'s run: reopen ``previous`` if the store holds it."""
    from ..tracking import run_exists

    resume = previous if previous and run_exists(tracker.tracking_uri, previous) else None
    tracker.start_search(params, tags, run_name=run_name, parent_run_id=parent_run_id,
                         resume_run_id=resume)


def open_parent_run(tracker: Any, cfg: CompareConfig, previous: str | None, stamp: str) -> str:
    """Start (or reopen) the comparison's own run on ``tracker``; its id."""
    search = cfg.search
    tags = {"ras_deap.compare": "comparison", "dataset": search.dataset,
            "out": str(Path(cfg.out).resolve())}
    _start(tracker, cfg.to_dict(), tags, run_name=f"compare-{search.dataset}-{stamp}",
           previous=previous)
    return tracker.run_id


def open_cell_run(cfg: CompareConfig, spec: CellSpec, parent_id: str) -> Any:
    """The cell's child run (reopened from ``mlflow_run_id`` in its folder)."""
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
    _start(tracker, params, tags, run_name=spec.name, previous=previous,
           parent_run_id=parent_id)
    write_atomic(id_file, tracker.run_id)
    return tracker


def end_failed_cell(tracker: Any, message: str) -> None:
    tracker.set_tags({"failure": message.strip().splitlines()[-1][:500]})
    tracker.end_search("FAILED")


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


def log_cell(tracker: Any, result: dict[str, Any], folder: Path) -> None:
    """Log a finished cell on its run and end it FINISHED."""
    from ..tracking import log_to_run

    if result["method"] not in RAS_METHODS and (folder / JOURNAL_NAME).is_file():
        for entry in read_json_lines(folder / JOURNAL_NAME):
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
        _log_assessment(tracker, result["assessment"], folder)
    tracker.log_dict(result["outcome"]["best_genome"], "best_genome.json")
    tracker.log_dict(result["remeasured"], "remeasured.json")
    if result.get("front"):
        _log_front(tracker, result["front"], folder)
    tracker.set_tags({"best_id": row["best_id"],
                      **({"final_failure": result["final_failure"]}
                         if result.get("final_failure") else {})})
    tracker.end_search("FINISHED")


def _log_assessment(tracker: Any, assessment: dict[str, Any], folder: Path) -> None:
    from ..assess.result import METRIC_PREFIX, Assessment
    from ..tracking import log_to_run

    metrics = Assessment.from_dict(assessment).metrics()
    log_to_run(tracker.tracking_uri, tracker.run_id,
               metrics={f"{METRIC_PREFIX}{k}": v for k, v in metrics.items()})
    for name in ("assess.md", "assess.json"):
        if (folder / name).is_file():
            tracker.log_artifact(folder / name, "assess")


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

