"""Plain NSGA-II (Deb et al. 2002) as a DEAP loop: the multi-objective
baseline of ``compare`` (issue #31) on the RAS genome and mutations.

A population of mu individuals; every generation ``lambda`` parents are
drawn by binary tournament on the crowded-comparison order
(``toolbox.select_parents``, :func:`ras_deap.evolution.sel_tournament_crowded`:
DEAP's ``selTournamentDCD`` needs a multiple of 4 and RAS's population is
25), each is mutated into one child (``toolbox.mutate``; no crossover, as
the RAS genome has none), the children are evaluated, and the next
population is ``toolbox.select(parents + children, mu)`` (DEAP's
``selNSGA2``: (mu+lambda) survival by non-dominated sorting and crowding
distance). No spectrum niching anywhere: that is what it is a baseline for.
Written like ``deap.algorithms.eaMuPlusLambda``, but with one child count
per generation so that a budget can cut the last generation exactly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from deap import base, tools

from ..evolution import (
    Individual,
    build_toolbox,
    initial_state,
    sel_nsga2,
    sel_tournament_crowded,
)
from ..seeding import derive_seed
from .method import (
    MethodContext,
    MethodOutcome,
    budgeted_fitness,
    method_objectives,
    method_outcome,
)

__all__ = ["ea_nsga2", "nsga2_plan", "run_nsga2"]


def nsga2_plan(budget: int, population: int, children: int) -> tuple[int, list[int]]:
    """``(mu, lambdas)`` under ``budget`` evaluations: mu = the RAS population
    (capped at the budget), then generations of ``population x children``
    children each (what RAS breeds per generation), the last one cut to what
    the budget leaves, so exactly ``budget`` networks are trained."""
    mu = min(population, budget)
    lam = population * children
    rest = budget - mu
    lambdas = [lam] * (rest // lam) + ([rest % lam] if rest % lam else [])
    return mu, lambdas


def _evaluate(toolbox: base.Toolbox, individuals: Sequence[Any]) -> int:
    invalid = [ind for ind in individuals if not ind.fitness.valid]
    for ind, fit in zip(invalid, toolbox.map(toolbox.evaluate, invalid), strict=True):
        ind.fitness.values = fit
    return len(invalid)


def ea_nsga2(population: list[Any], toolbox: base.Toolbox, lambdas: Sequence[int], *,
             stats: tools.Statistics | None = None,
             halloffame: tools.HallOfFame | None = None,
             verbose: bool = False) -> tuple[list[Any], tools.Logbook]:
    """Evaluate ``population`` (its size is mu), then one generation per entry
    of ``lambdas`` (its number of children). The toolbox provides
    ``evaluate`` (a fitness tuple), ``select(individuals, k)`` (survival),
    ``select_parents(individuals, k)`` (references, repeats allowed),
    ``mutate`` (a 1-tuple holding a new individual) and ``map``. Returns the
    final population and the logbook (``gen`` 0 is the initial population)."""
    mu = len(population)
    logbook = tools.Logbook()
    logbook.header = ["gen", "nevals", *(stats.fields if stats else [])]

    def record(gen: int, nevals: int) -> None:
        if halloffame is not None:
            halloffame.update(population)
        logbook.record(gen=gen, nevals=nevals, **(stats.compile(population) if stats else {}))
        if verbose:
            print(logbook.stream)

    nevals = _evaluate(toolbox, population)
    population = list(toolbox.select(population, mu))  # ranked: parents need no more
    record(0, nevals)
    for gen, lam in enumerate(lambdas, start=1):
        parents = toolbox.select_parents(population, lam)
        offspring = [toolbox.mutate(parent)[0] for parent in parents]
        nevals = _evaluate(toolbox, offspring)
        population = list(toolbox.select(population + offspring, mu))
        record(gen, nevals)
    return population, logbook


def run_nsga2(ctx: MethodContext) -> MethodOutcome:
    """Plain NSGA-II over accuracy and robustness (:func:`method_objectives`)
    on the RAS genome: the same random initial models as RAS (mu =
    ``config.population``), ``population x children`` children per
    generation (RAS's count), each one parent (binary tournament on rank and
    crowding distance, :func:`~ras_deap.evolution.sel_tournament_crowded`)
    mutated by the RAS mutation operator (``config.mutations`` of the 13),
    and DEAP's ``selNSGA2`` for survival (:func:`~ras_deap.evolution.sel_nsga2`);
    no spectrum niching. Unused genes are pruned after each survival, as RAS
    prunes after each selection. Parents and mutations draw from one RNG
    seeded by the cell's seed, so a journal replays the run exactly."""
    start = time.perf_counter()
    cfg = ctx.config
    objectives = method_objectives("nsga2", cfg)
    mu, lambdas = nsga2_plan(ctx.budget, cfg.population, cfg.children)
    state = initial_state(derive_seed(ctx.seed, "nsga2"), mu, cfg.initial)

    def survive(individuals: list[Individual], k: int) -> list[Individual]:
        chosen = sel_nsga2(individuals, k, objectives=objectives)
        state.pool.prune(ind.genome for ind in chosen)  # as RAS does after selection
        return chosen

    toolbox = build_toolbox(state, evaluate=budgeted_fitness(ctx), n_mutations=cfg.mutations,
                            layer_limit=cfg.layer_limit, block_limit=cfg.block_limit)
    toolbox.register("select", survive)
    toolbox.register("select_parents", sel_tournament_crowded, objectives=objectives,
                     rng=state.rng)
    population, _ = ea_nsga2(list(state.offspring), toolbox, lambdas)
    return method_outcome(ctx, "nsga2", start, members=population, objectives=objectives, mu=mu,
                          lambdas=lambdas, parents="binary tournament on (rank, crowding distance)",
                          survival="selNSGA2")
