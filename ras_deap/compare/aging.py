"""Regularized (aging) evolution, Real et al. 2019 ("Regularized Evolution for
Image Classifier Architecture Search", Algorithm 1), as a DEAP loop.

A population of P models ages as a queue: each cycle samples S of them (with
replacement), mutates the fittest of the sample, evaluates the child, appends
it and removes the *oldest* model, however fit. Written like
``deap.algorithms.eaMuPlusLambda``: the toolbox provides ``evaluate``
(returning a fitness tuple), ``select(individuals, k)`` (returning
references), ``mutate`` (returning a 1-tuple holding a new individual) and
``map``; the function returns ``(population, logbook)``.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from deap import base, tools

from ..evolution import Individual, build_toolbox, initial_state
from ..seeding import derive_seed
from ..validate import check_int
from .method import MethodContext, MethodOutcome, budgeted_fitness, method_outcome

__all__ = ["ea_regularized", "regularized_plan", "run_regularized", "sel_sample_best"]


def sel_sample_best(individuals: Sequence[Any], k: int, sample: int,
                    rng: random.Random) -> list[Any]:
    """``k`` times: draw ``sample`` individuals uniformly with replacement
    (``rng``) and keep the fittest (a reference, as DEAP selections return).
    This is the tournament of regularized evolution."""
    check_int("sample", sample)
    if not individuals:
        raise ValueError("cannot select from an empty population")
    chosen = []
    for _ in range(k):
        aspirants = [individuals[rng.randrange(len(individuals))] for _ in range(sample)]
        chosen.append(max(aspirants, key=attrgetter("fitness")))
    return chosen


def ea_regularized(population: list[Any], toolbox: base.Toolbox, cycles: int, *,
                   stats: tools.Statistics | None = None,
                   halloffame: tools.HallOfFame | None = None,
                   verbose: bool = False) -> tuple[list[Any], tools.Logbook]:
    """Evaluate ``population`` (oldest first), then run ``cycles`` cycles of
    sample, mutate, evaluate, push the child, pop the oldest. Returns the
    final population (oldest first) and the logbook (one record per cycle,
    ``cycle`` 0 being the initial population)."""
    logbook = tools.Logbook()
    logbook.header = ["cycle", "nevals", *(stats.fields if stats else [])]

    invalid = [ind for ind in population if not ind.fitness.valid]
    for ind, fit in zip(invalid, toolbox.map(toolbox.evaluate, invalid), strict=True):
        ind.fitness.values = fit
    if halloffame is not None:
        halloffame.update(population)
    record = stats.compile(population) if stats else {}
    logbook.record(cycle=0, nevals=len(invalid), **record)
    if verbose:
        print(logbook.stream)

    queue = deque(population)
    for cycle in range(1, cycles + 1):
        parent, = toolbox.select(list(queue), 1)
        child, = toolbox.mutate(parent)
        child.fitness.values = toolbox.evaluate(child)
        queue.append(child)
        queue.popleft()  # the oldest dies, however fit (the "aging")
        if halloffame is not None:
            halloffame.update([child])
        record = stats.compile(queue) if stats else {}
        logbook.record(cycle=cycle, nevals=1, **record)
        if verbose:
            print(logbook.stream)
    return list(queue), logbook


def regularized_plan(budget: int, population: int, sample: int) -> tuple[int, int, int]:
    """``(P, S, cycles)`` of regularized evolution under ``budget``: the
    population P (capped at the budget), the sample S (capped at P) and the
    cycles (one child each) that spend the rest of the budget."""
    p = min(population, budget)
    return p, min(sample, p), budget - p


def run_regularized(ctx: MethodContext) -> MethodOutcome:
    """Regularized (aging) evolution on the RAS genome: the same random
    initial models as RAS (P of them, 25 by default, RAS's initial
    population), then one child per cycle: the fittest of S models sampled
    with replacement is mutated by the RAS mutation operator
    (``build_toolbox(...).mutate``: ``config.mutations`` random applicable
    mutations of the 13), the child joins and the oldest model leaves. Layers
    and blocks no living model uses are pruned from the gene pool before each
    mutation, as RAS prunes after each selection, so the subpopulation
    limits mean the same thing."""
    start = time.perf_counter()
    cfg = ctx.config
    p, s, cycles = regularized_plan(ctx.budget, ctx.aging_population or cfg.population,
                                    ctx.aging_sample)
    seed = derive_seed(ctx.seed, "regularized")
    state = initial_state(seed, p, cfg.initial)

    evaluate = budgeted_fitness(ctx)

    def select(individuals: list[Individual], k: int) -> list[Individual]:
        state.pool.prune(ind.genome for ind in individuals)  # the living models' genes only
        return sel_sample_best(individuals, k, s, state.rng)

    toolbox = build_toolbox(state, evaluate=evaluate, n_mutations=cfg.mutations,
                            layer_limit=cfg.layer_limit, block_limit=cfg.block_limit)
    toolbox.register("select", select)
    population, _ = ea_regularized(list(state.offspring), toolbox, cycles)
    return method_outcome(ctx, "regularized", start, members=population, population=p, sample=s,
                          cycles=cycles, final_population=len(population))
