"""An exact evaluation budget shared by every compared method.

Every baseline scores architectures through one :class:`BudgetedEvaluator`:
it counts the trained models, refuses the one past the budget
(:class:`BudgetExhausted`), and records the best fitness after each
evaluation, which is the "best fitness against evaluations" curve of the
comparison. It also decides how each evaluation is trained: evaluation ``i``
gets the generation a RAS search with the same population would give its
``i``-th individual, so subset/full-training happens at the same evaluation
counts for every method and none gets more training per model than RAS.

With a :class:`EvaluationJournal` every evaluation is also appended to a
JSON-lines file as soon as it ends. A method run started again on the same
journal replays the recorded evaluations instead of training them again:
the methods are deterministic for a seed, so they ask for the same models in
the same order and receive the same results, up to where the journal ends.
That is how an interrupted comparison resumes inside a (method, seed) cell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import append_line, read_json_lines, write_atomic
from ..genome import Model
from ..seeding import derive_seed
from ..validate import check_int

__all__ = ["BudgetExhausted", "BudgetedEvaluator", "EvaluationJournal", "EvaluationRecord",
           "evaluations_within", "ras_generation"]


class BudgetExhausted(RuntimeError):
    """Raised by :meth:`BudgetedEvaluator.evaluate` once the budget is spent."""


def ras_generation(index: int, population: int, children: int) -> int:
    """The generation of a RAS search's ``index``-th evaluation (0-based):
    generation 0 evaluates ``population`` models, every later one
    ``population * children``."""
    if index < 0:
        raise ValueError(f"index={index} must be >= 0")
    check_int("population", population)
    check_int("children", children)
    if index < population:
        return 0
    return 1 + (index - population) // (population * children)


def evaluations_within(budget_epochs: float, population: int, children: int, train: Any,
                       train_size: int) -> int:
    """How many evaluations of an unscreened method fit in ``budget_epochs``
    epoch-equivalents (the unit of ``--budget-epochs``): evaluation ``i`` is
    trained as :func:`ras_generation` says, at its worst-case cost
    (``train.worst_case_cost``), so the baselines of an equal-compute
    comparison never spend more than a RAS search with ``budget_epochs`` may
    (early stopping only saves)."""
    spent, count = 0.0, 0
    while True:
        spent += train.worst_case_cost(ras_generation(count, population, children), train_size)
        if spent > budget_epochs + 1e-9:
            return count
        count += 1


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


class EvaluationJournal:
    """An append-only JSON-lines record of one method run's evaluations.

    Each line holds the index, genome (``Model.to_dict``), generation,
    evaluation seed, fitness, metrics, failure, seconds and the caller's
    info, written and fsynced when the evaluation ends. A truncated last
    line (a kill mid-write) is ignored. :meth:`replay` returns the recorded
    result of evaluation ``index`` if it was for the same genome, generation
    and seed; at the first mismatch the journal is cut there, so a replay
    never mixes two different runs.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: list[dict[str, Any]] = []
        if self.path.is_file():
            for entry in read_json_lines(self.path):  # up to a line cut by a kill
                if not isinstance(entry, dict) or entry.get("index") != len(self.entries):
                    break
                self.entries.append(entry)
            self._rewrite()  # drop a torn tail so appends start on a clean line

    def __len__(self) -> int:
        return len(self.entries)

    def _rewrite(self) -> None:
        write_atomic(self.path, "".join(json.dumps(entry) + "\n" for entry in self.entries))

    def replay(self, index: int, genome_id: str, generation: int, seed: int
               ) -> dict[str, Any] | None:
        if index >= len(self.entries):
            return None
        entry = self.entries[index]
        if (entry["genome_id"], entry["generation"], entry["seed"]) == (genome_id, generation,
                                                                         seed):
            return entry
        del self.entries[index:]  # the run went another way: forget the rest
        self._rewrite()
        return None

    def append(self, record: EvaluationRecord) -> None:
        entry = {"index": record.index, "genome_id": record.genome.id,
                 "genome": record.genome.to_dict(), "generation": record.generation,
                 "seed": record.seed, "fitness": record.fitness, "metrics": record.metrics,
                 "failure": record.failure, "seconds": record.seconds,
                 "info": {k: v for k, v in record.info.items() if k != "replayed"}}
        self.entries.append(entry)
        append_line(self.path, json.dumps(entry, default=str))


@dataclass(eq=False)
class BudgetedEvaluator:
    """Counts and records the evaluations of one method run.

    ``evaluator`` has ``evaluate(model, generation, *, seed=...)`` returning
    an object with ``fitness``, ``metrics`` and ``failure`` (the torch
    :class:`ras_deap.evaluation.Evaluator`). ``schedule`` maps an evaluation
    index to the generation it is trained as; ``on_evaluated`` sees every
    record (e.g. to log it to MLflow); ``journal`` (an
    :class:`EvaluationJournal`) records every evaluation and replays the
    recorded ones (``replayed`` counts them).
    """

    evaluator: Any
    budget: int
    _: KW_ONLY
    seed: int
    method: str
    schedule: Callable[[int], int] = lambda i: 0
    on_evaluated: Callable[[EvaluationRecord], None] | None = None
    journal: EvaluationJournal | None = None
    replayed: int = field(default=0, init=False)
    records: list[EvaluationRecord] = field(default_factory=list, init=False, repr=False)
    # best fitness after evaluation 1, 2, ...
    best_curve: list[float] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("budget", self.budget, hint="trained models per method and seed")

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
        stored = (self.journal.replay(index, model.id, generation, seed)
                  if self.journal is not None else None)
        if stored is not None:
            self.replayed += 1
            record = EvaluationRecord(
                index=index, genome=model, generation=generation, seed=seed,
                fitness=float(stored["fitness"]), metrics=dict(stored["metrics"]),
                failure=stored["failure"], seconds=float(stored["seconds"]),
                info={**info, "replayed": True})
        else:
            start = time.perf_counter()
            result = self.evaluator.evaluate(model, generation, seed=seed)
            record = EvaluationRecord(
                index=index, genome=model, generation=generation, seed=seed,
                fitness=float(result.fitness), metrics=dict(result.metrics),
                failure=result.failure, seconds=time.perf_counter() - start, info=dict(info))
            if self.journal is not None:
                self.journal.append(record)
        self.records.append(record)
        previous = self.best_curve[-1] if self.best_curve else float("-inf")
        self.best_curve.append(max(previous, record.fitness))
        if self.on_evaluated is not None:
            self.on_evaluated(record)
        return record
