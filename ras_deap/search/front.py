"""The result of a multi-objective search: its final non-dominated set.

The front is the non-dominated members of the final representatives (the
population the multi-objective selection keeps, :mod:`ras_deap.evolution.multiobjective`),
with their objectives as the search measured them. It is computed from the
search state alone, so a checkpoint (also of a run that has ended) gives the
same front as the search that wrote it. At the end of a search it is written
as ``front.json`` (and ``front.png``, and each member's genome as
``front/<genome id>.json``, which ``python -m ras_deap.assess RUN --member ID``
takes) in the run folder, logged as artifacts of the search run, and the
members' child runs are tagged ``ras_deap.front=true``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..config import SearchConfig
from ..evolution import (
    SearchState,
    front_records,
    hypervolume,
    pareto_front,
    points_hypervolume,
)

__all__ = ["FRONT_GENOMES", "FRONT_NAME", "FRONT_PLOT", "front_metrics", "front_of", "read_front",
           "record_front", "remeasure_front"]

FRONT_NAME = "front.json"
FRONT_PLOT = "front.png"
FRONT_GENOMES = "front"  # folder of the members' genome JSONs, <genome id>.json


def read_front(config: SearchConfig, state: SearchState, run_dir: Path) -> dict[str, Any]:
    """The front a finished run wrote (``front.json``, with its
    re-measurements), else the one its state gives."""
    path = run_dir / FRONT_NAME
    if config.multiobjective and path.is_file():
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            pass  # damaged: the state's front is still exact
    return front_of(config, state)


def front_metrics(config: SearchConfig, state: SearchState) -> dict[str, float]:
    """Per-generation numbers of a multi-objective search's front (history
    and MLflow ``front/size``, ``front/hypervolume``); none for the paper's."""
    if not config.multiobjective or not state.population:
        return {}
    names = config.objectives.split(",")
    return {"front_size": float(len(pareto_front(state.population, names))),
            "front_hypervolume": hypervolume(state.population, names)}


def front_of(config: SearchConfig, state: SearchState) -> dict[str, Any]:
    """The front of ``state`` under ``config``'s objectives (empty for the
    paper's single-objective search)."""
    if not config.multiobjective or not state.population:
        return {}
    names = config.objectives.split(",")
    return {"objectives": names, "mo_selection": config.mo_selection,
            "robustness": config.robustness, "generation": state.generation,
            "evaluations": state.evaluations,
            "front": front_records(state.population, names),
            # reference point: 0 on every objective (a failed network); search's values
            "hypervolume": hypervolume(state.population, names),
            "population": front_records(state.population, names, front_only=False)}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def remeasure_front(front: dict[str, Any], members: list[Any], evaluator: Any,
                    repeats: int) -> None:
    """Train each front member ``repeats`` more times on fresh seeds (as the
    search trained it: the generation it was measured in, hence its
    schedule) and add the means to its record (``remeasured``) and their
    hypervolume to ``front`` (``remeasured_hypervolume``, same reference)."""
    from ..evaluation.remeasure import remeasure

    names = front["objectives"]
    for record, ind in zip(front["front"], members, strict=True):
        r = remeasure(evaluator, ind.genome, repeats=repeats, generation=ind.generation,
                      salt="front")
        means = {"fitness": r.mean, "accuracy": r.accuracy_mean,
                 "robustness": r.robustness_mean}
        record["remeasured"] = {"objectives": {n: means[n] for n in names},
                                "trainings": r.repeats, "failures": r.failures,
                                # None, not NaN, for one training: JSON has no NaN
                                "fitness_sd": _finite(r.sd), "fitness_ci95": _finite(r.ci95),
                                "seeds": list(r.seeds), "accuracy": list(r.accuracy),
                                "robustness": list(r.robustness), "fitness": list(r.fitness)}
    front["remeasured_hypervolume"] = points_hypervolume(
        [[m["remeasured"]["objectives"][n] for n in names] for m in front["front"]])
    front["remeasure_repeats"] = repeats


def record_front(config: SearchConfig, state: SearchState, run_dir: Path,
                 tracker: Any, evaluator: Any = None) -> dict[str, Any]:
    """Write ``front.json`` and ``front.png`` into ``run_dir``, log them on
    the search run and tag the members' child runs (returns the front).
    With ``config.front_remeasure`` and an ``evaluator`` that can retrain
    (``evaluate``), the members are re-measured first (:func:`remeasure_front`)."""
    front = front_of(config, state)
    if not front:
        return front
    members = pareto_front(state.population, front["objectives"])
    if config.front_remeasure and hasattr(evaluator, "evaluate"):
        remeasure_front(front, members, evaluator, config.front_remeasure)
    mark = getattr(tracker, "mark_front", None)  # optional in the Tracker protocol
    runs = (mark([ind.tracking_key for ind in members]) if mark
            else [None] * len(members))
    for record, run_id in zip(front["front"], runs, strict=True):
        record["run_id"] = run_id
    genomes = run_dir / FRONT_GENOMES
    genomes.mkdir(exist_ok=True)
    for ind in members:  # what assess --member (and any genome reader) takes
        write_atomic(genomes / f"{ind.genome.id}.json", ind.genome.to_json())
    tracker.log_artifact(genomes, "front/genomes")
    path = run_dir / FRONT_NAME
    write_atomic(path, json.dumps(front, indent=2) + "\n")
    tracker.log_artifact(path, "front")
    from ..report import plot_front

    plot = plot_front(front["front"], front["population"], run_dir / FRONT_PLOT,
                      title=f"{run_dir.name}: final front ({front['evaluations']} evaluations)")
    tracker.log_artifact(plot, "front")
    return front
