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
from collections import deque
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from deap import base, tools

from ..validate import check_int

__all__ = ["ea_regularized", "sel_sample_best"]


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
