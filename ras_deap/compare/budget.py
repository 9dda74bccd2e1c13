"""An exact evaluation budget shared by every compared method.

Every baseline scores architectures through one :class:`BudgetedEvaluator`:
it counts the trained models, refuses the one past the budget
(:class:`BudgetExhausted`), and records the best fitness after each
evaluation, which is the "best fitness against evaluations" curve of the
comparison. It also decides how each evaluation is trained: evaluation ``i``
gets the generation a RAS search with the same population would give its
``i``-th individual, so subset/full-training happens at the same evaluation
counts for every method and none gets more training per model than RAS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..evolution.algorithm import derive_seed
from ..genome.records import Model

__all__ = ["BudgetExhausted", "BudgetedEvaluator", "EvaluationRecord", "ras_generation"]


class BudgetExhausted(RuntimeError):
    """Raised by :meth:`BudgetedEvaluator.evaluate` once the budget is spent."""


def ras_generation(index: int, population: int, children: int) -> int:
    """The generation of a RAS search's ``index``-th evaluation (0-based):
    generation 0 evaluates ``population`` models, every later one
    ``population * children``."""
    if index < 0:
        raise ValueError(f"index={index} must be >= 0")
    if population < 1 or children < 1:
        raise ValueError(f"population={population} and children={children} must be >= 1")
    if index < population:
        return 0
    return 1 + (index - population) // (population * children)


@dataclass
class EvaluationRecord:
    """One trained model: what was evaluated and what it scored."""

    index: int
    genome: Model
    generation: int
    seed: int
    fitness: float
    metrics: dict[str, float]
    failure: str | None
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


class BudgetedEvaluator:
    """Counts and records the evaluations of one method run.

    ``evaluator`` has ``evaluate(model, generation, *, seed=...)`` returning
    an object with ``fitness``, ``metrics`` and ``failure`` (the torch
    :class:`ras_deap.evaluation.Evaluator`). ``schedule`` maps an evaluation
    index to the generation it is trained as; ``on_evaluated`` sees every
    record (e.g. to log it to MLflow).
    """

    def __init__(self, evaluator: Any, budget: int, *, seed: int, method: str,
                 schedule: Callable[[int], int] = lambda i: 0,
                 on_evaluated: Callable[[EvaluationRecord], None] | None = None) -> None:
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise ValueError(f"budget={budget!r} must be a positive integer (trained models "
                             "per method and seed)")
        self.evaluator = evaluator
        self.budget = budget
        self.seed = seed
        self.method = method
        self.schedule = schedule
        self.on_evaluated = on_evaluated
        self.records: list[EvaluationRecord] = []
        self.best_curve: list[float] = []  # best fitness after evaluation 1, 2, ...

    @property
    def calls(self) -> int:
        return len(self.records)

    @property
    def remaining(self) -> int:
        return self.budget - self.calls

    @property
    def best(self) -> EvaluationRecord | None:
        """The fittest record (the earliest on ties), None before any."""
        best = None
        for rec in self.records:
            if best is None or rec.fitness > best.fitness:
                best = rec
        return best

    def evaluate(self, model: Model, **info: Any) -> EvaluationRecord:
        """Train and score ``model`` as the next evaluation of the budget."""
        if self.remaining <= 0:
            raise BudgetExhausted(f"{self.method}: the budget of {self.budget} evaluations is "
                                  "spent")
        index = self.calls
        generation = self.schedule(index)
        seed = derive_seed(self.seed, self.method, index)
        start = time.perf_counter()
        result = self.evaluator.evaluate(model, generation, seed=seed)
        record = EvaluationRecord(
            index=index, genome=model, generation=generation, seed=seed,
            fitness=float(result.fitness), metrics=dict(result.metrics),
            failure=result.failure, seconds=time.perf_counter() - start, info=dict(info))
        self.records.append(record)
        previous = self.best_curve[-1] if self.best_curve else float("-inf")
        self.best_curve.append(max(previous, record.fitness))
        if self.on_evaluated is not None:
            self.on_evaluated(record)
        return record
