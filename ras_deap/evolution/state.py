"""The state of a RAS search (what a checkpoint holds) and its per-generation
bookkeeping: the initial population, results on individuals, the logbook
record, and when the loop ends."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from deap import tools

from ..constants import INITIAL_POPULATIONS
from ..genome.chain import random_chain
from ..genome.pool import GenePool
from ..genome.random_init import random_model
from ..genome.spectrum import SPECTRUM_FEATURES
from ..seeding import derive_seed
from .individual import Individual, make_individual
from .niching import cached_spectrum

__all__ = ["SearchState", "assign_result", "cost_spent", "default_stats", "finished",
           "generation_summary", "initial_state", "same_genome"]


@dataclass
class SearchState:
    """Everything needed to continue a search: picklable as a whole."""

    seed: int
    rng: random.Random
    pool: GenePool
    population: list[Individual]
    generation: int = 0  # generation being (or last) processed
    offspring: list[Individual] = field(default_factory=list)  # of `generation`, pending selection
    phase: str = "evaluate"  # "evaluate": offspring being evaluated; "done": generation finished
    logbook: tools.Logbook = field(default_factory=tools.Logbook)
    halloffame: tools.HallOfFame = field(
        default_factory=lambda: tools.HallOfFame(5, similar=same_genome))
    evaluations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. MLflow run ids


def same_genome(a: Individual, b: Individual) -> bool:
    return a.genome.id == b.genome.id


def initial_state(seed: int, population: int, initial: str = "random",
                  **model_kwargs: int) -> SearchState:
    """Generation 0: ``population`` random models (each a cluster), drawn as
    ``initial`` says: ``"random"`` RAS models (the paper;
    :func:`~ras_deap.genome.random_model` with ``model_kwargs``) or
    ``"chains"`` from TPE's chain space (:func:`~ras_deap.genome.random_chain`),
    where random search alone finds better networks on digits."""
    if population < 1:
        raise ValueError(f"population must be >= 1, got {population}")
    if initial not in INITIAL_POPULATIONS:
        raise ValueError(f"initial={initial!r}: choose one of {', '.join(INITIAL_POPULATIONS)}")
    if initial == "chains" and model_kwargs:
        raise ValueError(f"initial='chains' draws from the chain space; {sorted(model_kwargs)} "
                         "apply to random RAS models only")
    rng = random.Random(seed)
    draw = (lambda: random_chain(rng)) if initial == "chains" else (
        lambda: random_model(rng, **model_kwargs))
    models = [draw() for _ in range(population)]
    pool = GenePool.from_models(models)
    pop = [make_individual(m, generation=0, cluster=i, eval_seed=derive_seed(seed, 0, i))
           for i, m in enumerate(models)]
    state = SearchState(seed=seed, rng=rng, pool=pool, population=[], offspring=pop)
    state.logbook.header = ["gen", "nevals", "max", "mean", "min", "models", "blocks", "layers"]
    return state


def assign_result(individual: Individual, result: Any) -> None:
    """Store an evaluation result on an individual. ``result`` is a DEAP
    fitness tuple or an object with ``fitness``, ``metrics`` and ``failure``
    (the torch evaluator's result)."""
    if isinstance(result, tuple):
        individual.fitness.values = result
        return
    individual.fitness.values = (float(result.fitness),)
    individual.metrics = dict(result.metrics)
    individual.failure = result.failure


def default_stats() -> tools.Statistics:
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", np.max)
    stats.register("mean", np.mean)
    stats.register("min", np.min)
    return stats


def finished(state: SearchState, ngen: int, budget: int | None = None,
             cost_budget: float | None = None) -> bool:
    """Whether the search is over: generation ``ngen`` is done, or the
    evaluation budget or the compute budget is spent (with the last
    generation selected)."""
    if state.phase != "done":
        return False
    return (state.generation >= ngen or (budget is not None and state.evaluations >= budget)
            or cost_spent(state, cost_budget))


def cost_spent(state: SearchState, cost_budget: float | None) -> bool:
    """Whether the compute budget ran out (at this budget or a larger one)."""
    spent = state.extra.get("budget_spent")
    return cost_budget is not None and spent is not None and spent >= cost_budget


def generation_summary(state: SearchState, stats: tools.Statistics) -> dict[str, Any]:
    """The logbook record of a finished generation: fitness statistics of the
    representatives, how many were evaluated, subpopulation sizes and the
    mean spectrum."""
    record: dict[str, Any] = {"gen": state.generation,
                              "nevals": len(state.offspring),
                              "models": len(state.population), **state.pool.sizes()}
    record.update(stats.compile(state.population))
    spectra = np.array([cached_spectrum(ind.genome) for ind in state.population], dtype=float)
    for name, value in zip(SPECTRUM_FEATURES, spectra.mean(axis=0), strict=True):
        record[f"spectrum_{name}"] = float(value)
    return record

