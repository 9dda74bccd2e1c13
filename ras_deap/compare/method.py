"""What a compared method gets and gives back, shared by every method's runner.

A method run is handed a :class:`MethodContext` (the shared evaluator wrapped
in the budget, the search settings, where to nest its runs) and returns a
:class:`MethodOutcome` (its winner, curve and, for methods with one, its
final population). The runners: :mod:`.baselines` (random, TPE,
(mu+lambda)), :mod:`.aging` (regularized evolution), :mod:`.nsga2` and
:mod:`.ras` (RAS and multi-objective RAS).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import SearchConfig
from ..evolution import Individual
from ..genome import Model
from ..genome.chain import ChainSpace
from .budget import BudgetedEvaluator
from .compare_config import MO_OBJECTIVES, MULTIOBJECTIVE

__all__ = ["MethodContext", "MethodOutcome", "budgeted_fitness", "method_objectives",
           "method_outcome"]


@dataclass
class MethodContext:
    """What a method run gets: the shared evaluator (wrapped in the budget),
    the search settings (population, children, mutations, limits, training)
    and where to nest its MLflow runs (RAS only; the others log through
    ``budgeted.on_evaluated``).

    ``aging_population``/``aging_sample``: P (None: ``config.population``)
    and S of regularized evolution. ``cell_dir``: a folder of this method
    run's own files; with it RAS runs in ``config.run_dir/ras-seed<seed>``,
    resumes from that run's checkpoint and keeps its curve in
    ``cell_dir/ras_curve.jsonl``. ``on_evaluation`` is called after every
    RAS evaluation (progress)."""

    budgeted: BudgetedEvaluator
    config: SearchConfig
    seed: int
    tournament_size: int = 3
    chain_space: ChainSpace = field(default_factory=ChainSpace)
    parent_run_id: str | None = None
    aging_population: int | None = None
    aging_sample: int = 5
    cell_dir: Path | None = None
    on_evaluation: Callable[[], None] | None = None

    @property
    def budget(self) -> int:
        return self.budgeted.budget


@dataclass
class MethodOutcome:
    """The result of one method run, before the best model is re-trained.
    ``best_fitness`` is the best fitness the search saw (its own selection,
    biased upwards by lucky trainings); ``best_generation`` the generation
    (training schedule) that fitness was measured with."""

    method: str
    seed: int
    best_genome: Model
    best_fitness: float
    best_metrics: dict[str, float]
    evaluations: int
    curve: list[float]  # best fitness after each evaluation
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    best_generation: int = 0
    # the final population (individuals with metrics), for methods that keep one; not stored
    # as such: the cell keeps their objectives (and, multi-objective, the front)
    population: list[Any] = field(default_factory=list)
    objectives: tuple[str, ...] = ("fitness",)  # what the search maximised


def method_objectives(method: str, config: SearchConfig) -> tuple[str, ...]:
    """What ``method`` maximises under ``config``: the multi-objective methods
    take ``--objectives`` when it names several, else accuracy and
    robustness; ``ras`` follows ``--objectives``; the baselines the fitness."""
    names = tuple(config.objectives.split(","))
    if method in MULTIOBJECTIVE:
        return names if config.multiobjective else tuple(MO_OBJECTIVES.split(","))
    return names if method == "ras" else ("fitness",)


def method_outcome(ctx: MethodContext, method: str, start: float, *,
             members: list[Any] | None = None, objectives: tuple[str, ...] = ("fitness",),
             **info: Any) -> MethodOutcome:
    """The outcome of a baseline run: its budgeted evaluator's best and curve."""
    best = ctx.budgeted.best
    if best is None:
        raise RuntimeError(f"{method}: no model was evaluated (budget={ctx.budget})")
    return MethodOutcome(method=method, seed=ctx.seed, best_genome=best.genome,
                         best_fitness=best.fitness, best_metrics=dict(best.metrics),
                         evaluations=ctx.budgeted.calls, curve=list(ctx.budgeted.best_curve),
                         seconds=time.perf_counter() - start, info=info,
                         best_generation=int(best.generation),
                         population=list(members or []), objectives=objectives)


def budgeted_fitness(ctx: MethodContext) -> Callable[[Individual], tuple[float]]:
    """DEAP's ``toolbox.evaluate`` for a method on the RAS genome: one budgeted
    evaluation, its metrics and failure kept on the individual, and which
    evaluation it was (``evaluation``: the journal index, ``e<index>`` its
    MLflow key) and the generation it was trained as (``generation``: the
    schedule a re-measurement must repeat)."""
    def evaluate(ind: Individual) -> tuple[float]:
        record = ctx.budgeted.evaluate(ind.genome, parent_id=ind.parent_id,
                                       mutations=list(ind.mutations))
        ind.metrics = dict(record.metrics)
        ind.failure = record.failure
        ind.evaluation = record.index
        ind.generation = record.generation
        return (record.fitness,)
    return evaluate
