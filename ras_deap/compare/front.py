"""What a comparison cell keeps of its method's final population and, for a
multi-objective method, of its front (issue #31).

Every method with a population (``mu_plus_lambda``, ``regularized``, the RAS
methods, ``nsga2``) hands its final population to the cell;
:func:`population_records` keeps each member's genome id, the generation it
was trained as and its accuracy and robustness *as the search measured them*
(result.json ``population``), so a later front comparison
(:mod:`.pareto`) needs no checkpoint. A multi-objective cell also keeps the
non-dominated members of that population (:func:`cell_front`), re-measured
on fresh seeds exactly as its winner is (``--remeasure`` trainings each, as
the search trained them; :func:`ras_deap.search.front.remeasure_front`):
result.json ``front``, and in the cell folder the ``front.json``,
``front/<genome id>.json`` and ``front.png`` a run folder has, so
``python -m ras_deap.assess CELL --member ID`` takes a member.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..evolution import front_records, hypervolume, pareto_front

__all__ = ["FRONT_OBJECTIVES", "REFERENCE_POINT", "cell_front", "population_records",
           "search_run_ids", "write_front_files", "write_front_json"]

# the objectives a front comparison reads (both in [0, 1], maximised)
FRONT_OBJECTIVES = ("accuracy", "robustness")
# the fixed hypervolume reference point: 0 on both, a failed network's objectives
REFERENCE_POINT = (0.0, 0.0)


def population_records(individuals: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The final population as plain data (search-time values): per member
    its genome id, generation, the search's fitness, failure, evaluation index
    (a baseline's journal index, else None) and accuracy/robustness (0 for a
    failed network). None when the evaluator reports no accuracy or
    robustness (nothing to put on a front)."""
    try:
        records = front_records(individuals, FRONT_OBJECTIVES, front_only=False)
    except ValueError:  # an evaluator without the metrics: no front to compare
        return None
    for record, ind in zip(records, individuals, strict=True):
        record["failure"] = getattr(ind, "failure", None)
        record["evaluation"] = getattr(ind, "evaluation", None)
    return records


def search_run_ids(front: dict[str, Any], run_dir: str | Path | None) -> None:
    """Give ``front``'s members the MLflow run ids a RAS search recorded for
    them in its own ``front.json`` (``run_dir``), where it has one."""
    path = Path(run_dir) / "front.json" if run_dir else None
    if path is None or not path.is_file():
        return
    try:
        ids = {m["genome_id"]: m.get("run_id") for m in json.loads(path.read_text())["front"]}
    except (OSError, ValueError, KeyError, TypeError):
        return  # damaged: the members keep no run id
    for member in front["front"]:
        if ids.get(member["genome_id"]):
            member["run_id"] = ids[member["genome_id"]]


def cell_front(individuals: Sequence[Any], objectives: Sequence[str], evaluator: Any,
               repeats: int) -> dict[str, Any]:
    """The front of a multi-objective cell's final population under its
    ``objectives``: the members (search-time objectives, genome, evaluation
    index), its hypervolume above :data:`REFERENCE_POINT` and, with an
    ``evaluator`` that can train, each member re-measured ``repeats`` times
    (``remeasured`` per member, ``remeasured_hypervolume``)."""
    from ..search.front import remeasure_front

    names = list(objectives)
    members = pareto_front(individuals, names)
    front: dict[str, Any] = {
        "objectives": names, "reference_point": [0.0] * len(names),
        "front": front_records(members, names),
        "hypervolume": hypervolume(individuals, names),  # search-time values
    }
    for record, ind in zip(front["front"], members, strict=True):
        record["genome"] = ind.genome.to_dict()
        record["evaluation"] = getattr(ind, "evaluation", None)
    if repeats and hasattr(evaluator, "evaluate"):
        remeasure_front(front, members, evaluator, repeats)
    return front


def write_front_json(folder: Path, front: dict[str, Any]) -> Path:
    """``folder/front.json``: ``front`` without the members' genomes (they are
    in ``front/<genome id>.json``)."""
    from ..atomic import write_atomic

    slim = {**front, "front": [{k: v for k, v in m.items() if k != "genome"}
                               for m in front["front"]]}
    return write_atomic(folder / "front.json", json.dumps(slim, indent=2) + "\n")


def write_front_files(folder: Path, front: dict[str, Any],
                      population: list[dict[str, Any]] | None, title: str) -> list[Path]:
    """``front.json`` (without the genomes), ``front/<genome id>.json`` and
    ``front.png`` in ``folder`` (what a run folder holds; returns the
    files)."""
    from ..atomic import write_atomic
    from ..report import plot_front

    genomes = folder / "front"
    genomes.mkdir(parents=True, exist_ok=True)
    written = []
    for member in front["front"]:
        written.append(write_atomic(genomes / f"{member['genome_id']}.json",
                                    json.dumps(member["genome"], indent=2)))
    written.append(write_front_json(folder, front))
    if front["front"] and len(front["objectives"]) >= 2:
        names = front["objectives"][:2]
        others = (population if population and all(n in population[0]["objectives"]
                                                    for n in names) else front["front"])
        written.append(plot_front(front["front"], others, folder / "front.png", title=title))
    return written
