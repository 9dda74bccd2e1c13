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

from collections.abc import Sequence
from typing import Any

from deap import base, tools

__all__ = ["ea_nsga2", "nsga2_plan"]


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
