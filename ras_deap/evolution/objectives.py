"""What a search maximises: objectives as named extractors of an individual.

The paper's search maximises one number, the fitness (validation accuracy +
robustness). A multi-objective search maximises a tuple of named objectives
instead (``--objectives accuracy,robustness``); each is an
:class:`Objective`: a name, a DEAP weight (+1 maximise, -1 minimise) and a
function reading the value from an evaluated individual. The selection only
ever sees the tuple, so a third objective (parameters, latency: a metric the
evaluator already reports, weight -1) is one more entry in
:data:`OBJECTIVES`, not a change of the loop.

Why extractors and not a multi-valued DEAP fitness on every individual: the
individual's fitness stays the paper's sum in every mode (the logbook, the
hall of fame, the winner's final training and the checkpoint format are
unchanged), and the objectives are read from the evaluator's metrics, which a
checkpoint stores as exact JSON numbers; so a resumed search recomputes
exactly the same objective vectors. A failed individual (``failure`` set)
scores 0 on every objective, as it scores fitness 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["OBJECTIVES", "Objective", "is_multiobjective", "objective_names",
           "objective_values", "objectives_from"]


@dataclass(frozen=True)
class Objective:
    """One objective: ``name``, DEAP ``weight`` and ``extract(individual) -> float``."""

    name: str
    weight: float
    extract: Callable[[Any], float]


def _fitness(ind: Any) -> float:
    return float(ind.fitness.values[0])


def _metric(name: str) -> Callable[[Any], float]:
    def extract(ind: Any) -> float:
        metrics = getattr(ind, "metrics", None) or {}
        if name not in metrics:
            raise ValueError(f"individual {ind.genome.id} has no {name!r} metric: a "
                             f"multi-objective search needs an evaluator that reports "
                             f"{name!r} in its result's metrics (the torch evaluator does)")
        return float(metrics[name])
    extract.__name__ = f"metric_{name}"
    return extract


# Every objective by name. accuracy and robustness are the two halves of the
# paper's fitness as the evaluator reports them (robustness: the measure
# --robustness names).
OBJECTIVES: dict[str, Objective] = {
    "fitness": Objective("fitness", 1.0, _fitness),
    "accuracy": Objective("accuracy", 1.0, _metric("accuracy")),
    "robustness": Objective("robustness", 1.0, _metric("robustness")),
}


def objective_names(text: str) -> tuple[str, ...]:
    """``"accuracy, robustness"`` -> ``("accuracy", "robustness")``; a
    ``ValueError`` naming the fix for an unknown, repeated or missing name, or
    a single objective other than ``fitness`` (the single-objective search is
    the paper's, on its fitness)."""
    names = tuple(n.strip() for n in str(text).split(","))
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown or not names:
        raise ValueError(f"objectives={text!r}: unknown objective {unknown[0]!r}; give "
                         f"comma-separated names among {', '.join(OBJECTIVES)}, e.g. "
                         "accuracy,robustness (default fitness)")
    if len(set(names)) != len(names):
        raise ValueError(f"objectives={text!r}: an objective is named twice; give each once, "
                         "e.g. accuracy,robustness")
    if len(names) == 1 and names[0] != "fitness":
        raise ValueError(f"objectives={text!r}: a single objective must be fitness (the "
                         "paper's search); give two or more for a multi-objective search, "
                         "e.g. accuracy,robustness")
    return names


def objectives_from(names: str | Sequence[str]) -> tuple[Objective, ...]:
    """The objectives named (a comma-separated text or a sequence of names)."""
    text = names if isinstance(names, str) else ",".join(names)
    return tuple(OBJECTIVES[n] for n in objective_names(text))


def is_multiobjective(names: str | Sequence[str]) -> bool:
    return len(objectives_from(names)) > 1


def objective_values(ind: Any, objectives: Sequence[Objective]) -> tuple[float, ...]:
    """``ind``'s objective vector; 0 on every objective for a failed
    individual. A NaN is refused: dominance is undefined for it (the
    evaluator turns a non-finite result into a failure)."""
    if getattr(ind, "failure", None):
        return tuple(0.0 for _ in objectives)
    values = tuple(float(o.extract(ind)) for o in objectives)
    if any(math.isnan(v) for v in values):
        raise ValueError(f"individual {ind.genome.id} has a NaN objective {values}; a "
                         "multi-objective selection cannot rank it")
    return values
