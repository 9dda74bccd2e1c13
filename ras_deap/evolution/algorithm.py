"""The RAS evolutionary loop, written like DEAP's ``algorithms.eaMuPlusLambda``.

Generation 0 evaluates the initial population; every later generation:
each cluster representative spawns ``children`` children through
``toolbox.mutate``, invalid individuals are evaluated through
``toolbox.map(toolbox.evaluate, ...)``, ``toolbox.select`` (spectrum
niching) picks the new representatives, and layers/blocks no representative
uses are pruned from the gene pool.

The state of a search is a plain dataclass so a checkpoint can be written
after every evaluated individual and a killed search resumed without
re-evaluating anything (see :func:`step`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from deap import base, tools

from ..genome.pool import GenePool
from ..genome.random_init import random_model
from ..genome.spectrum import SPECTRUM_FEATURES
from .individual import Individual, make_individual
from .niching import cached_spectrum

__all__ = [
    "SearchState",
    "derive_seed",
    "initial_state",
    "assign_result",
    "default_stats",
    "step",
    "ea_spectrum_niching",
    "finished",
    "generation_summary",
]

OnEvaluated = Callable[["SearchState", Individual], None]
OnBred = Callable[["SearchState"], None]


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any parts (not Python's salted ``hash``), so
    an individual's evaluation seed does not depend on which worker runs it."""
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


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
        default_factory=lambda: tools.HallOfFame(5, similar=_same_genome))
    evaluations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. MLflow run ids


def _same_genome(a: Individual, b: Individual) -> bool:
    return a.genome.id == b.genome.id


def initial_state(seed: int, population: int, **model_kwargs: int) -> SearchState:
    """Generation 0: ``population`` random models (each a cluster)."""
    if population < 1:
        raise ValueError(f"population must be >= 1, got {population}")
    rng = random.Random(seed)
    models = [random_model(rng, **model_kwargs) for _ in range(population)]
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


def _breed(state: SearchState, toolbox: base.Toolbox, children: int) -> list[Individual]:
    offspring = []
    for cluster, rep in enumerate(state.population):
        for _ in range(children):
            child, = toolbox.mutate(rep)
            child.generation = state.generation
            child.cluster = cluster
            child.eval_seed = derive_seed(state.seed, state.generation, len(offspring))
            offspring.append(child)
    return offspring


def _evaluate_pending(state: SearchState, toolbox: base.Toolbox,
                      on_evaluated: OnEvaluated | None, budget: int | None) -> None:
    invalid = [ind for ind in state.offspring if not ind.fitness.valid]
    if budget is not None:
        remaining = max(budget - state.evaluations, 0)
        dropped = {id(ind) for ind in invalid[remaining:]}
        state.offspring = [ind for ind in state.offspring if id(ind) not in dropped]
        invalid = invalid[:remaining]
    for ind, result in zip(invalid, toolbox.map(toolbox.evaluate, invalid), strict=True):
        assign_result(ind, result)
        state.evaluations += 1
        if on_evaluated is not None:
            on_evaluated(state, ind)


def step(state: SearchState, toolbox: base.Toolbox, *, children: int = 2,
         stats: tools.Statistics | None = None, on_bred: OnBred | None = None,
         on_evaluated: OnEvaluated | None = None, budget: int | None = None) -> dict[str, Any]:
    """Finish the current generation (breeding it first if needed) and return
    its logbook record. Safe to call again on a state restored from any
    checkpoint: evaluated individuals keep their fitness and are skipped.

    ``budget`` caps the total number of evaluations of the search: offspring
    beyond it are dropped unevaluated, so a fixed budget is spent exactly."""
    if state.phase == "done":
        state.generation += 1
        state.offspring = _breed(state, toolbox, children)
        state.phase = "evaluate"
        if on_bred is not None:  # lets the caller checkpoint the bred offspring
            on_bred(state)
    _evaluate_pending(state, toolbox, on_evaluated, budget)
    if not state.offspring and not state.population:
        raise ValueError("the evaluation budget ended before any individual was evaluated")
    if state.population:
        state.population[:] = toolbox.select(state.population + state.offspring,
                                             len(state.population))
    else:  # generation 0: every initial individual is a cluster representative
        state.population[:] = state.offspring
    for cluster, rep in enumerate(state.population):
        rep.cluster = cluster
    state.pool.prune(ind.genome for ind in state.population)
    state.halloffame.update(state.population)
    record = generation_summary(state, stats or default_stats())
    state.logbook.record(**record)
    state.offspring = []
    state.phase = "done"
    return record


def finished(state: SearchState, ngen: int, budget: int | None = None) -> bool:
    """Whether the search is over: generation ``ngen`` is done, or the
    evaluation budget is spent (with the last generation selected)."""
    if state.phase != "done":
        return False
    return state.generation >= ngen or (budget is not None and state.evaluations >= budget)


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


def ea_spectrum_niching(state: SearchState, toolbox: base.Toolbox, ngen: int, *,
                        children: int = 2, stats: tools.Statistics | None = None,
                        verbose: bool = False, on_bred: OnBred | None = None,
                        on_evaluated: OnEvaluated | None = None,
                        on_generation: Callable[[SearchState, dict], None] | None = None,
                        budget: int | None = None,
                        ) -> tuple[list[Individual], tools.Logbook]:
    """Run generations up to ``ngen`` and return ``(population, logbook)`` as
    DEAP's algorithms do. ``state`` is a new :func:`initial_state` or one
    restored from a checkpoint; the toolbox must be built on it
    (:func:`ras_deap.evolution.build_toolbox`). ``budget`` stops the search
    after exactly that many evaluations."""
    while not finished(state, ngen, budget):
        record = step(state, toolbox, children=children, stats=stats, on_bred=on_bred,
                      on_evaluated=on_evaluated, budget=budget)
        if verbose:
            print(state.logbook.stream)
        if on_generation is not None:
            on_generation(state, record)
    return state.population, state.logbook
