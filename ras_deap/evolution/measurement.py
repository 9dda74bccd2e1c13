"""What a representative's fitness is, and who breeds: training schedules,
re-measurements of representatives (noise-aware fitness, the mean of their
measurements), children per niche by rank or tournament, the breeding order, and the
screening of children with their promotions (see :mod:`.algorithm`)."""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from typing import Any

from deap import base

from ..constants import NICHE_CHILDREN
from ..seeding import derive_seed
from .individual import Individual
from .state import SearchState

__all__ = ["CONSTANT_SCHEDULE", "NICHE_TOURNAMENT", "breeding_order", "measured_schedule",
           "measurements_of", "niche_shares", "promotions", "ranked_fitness", "reevaluations",
           "schedule_of", "screened_schedule", "unevaluated_clone", "with_reevaluations"]

CONSTANT_SCHEDULE = "constant"  # every generation's schedule without toolbox.schedule
# representatives per tournament of niche_children="tournament": a fifth of the paper's 25,
# regularized evolution's S = 5 of P = 25 (Real et al. 2019), so the same pressure
NICHE_TOURNAMENT = 5


def schedule_of(toolbox: base.Toolbox, generation: int) -> str:
    """The training schedule of ``generation``: ``toolbox.schedule(generation)``
    when the toolbox has one, else :data:`CONSTANT_SCHEDULE`."""
    schedule = getattr(toolbox, "schedule", None)
    return CONSTANT_SCHEDULE if schedule is None else str(schedule(generation))


def measured_schedule(toolbox: base.Toolbox, individual: Individual) -> str:
    """The schedule ``individual``'s fitness was measured under: the one it
    records, or (never evaluated by the loop, e.g. an individual built by
    hand) the schedule of its generation."""
    schedule = individual.schedule
    return schedule_of(toolbox, individual.generation) if schedule is None else schedule


def screened_schedule(schedule: str, epochs: int) -> str:
    """The schedule name of a child screened with ``epochs`` epochs: never
    equal to a full schedule, so nothing compares the two fitnesses."""
    return f"{schedule}@{epochs}ep"


def unevaluated_clone(toolbox: base.Toolbox, ind: Individual, **attrs: Any) -> Individual:
    """A clone of ``ind`` to be evaluated again (no fitness, metrics or
    failure), with ``attrs`` set: a re-measurement or a promotion."""
    clone = toolbox.clone(ind)
    del clone.fitness.values
    clone.metrics = {}
    clone.failure = None
    for name, value in attrs.items():
        setattr(clone, name, value)
    return clone


def reevaluations(state: SearchState, toolbox: base.Toolbox, schedule: str,
                   pending: Collection[int] = (), remeasure_every: int = 0) -> list[Individual]:
    """Unevaluated clones of the representatives whose fitness was measured
    under another schedule than ``schedule`` (the current generation's), or,
    with ``remeasure_every`` > 0, last measured that many generations ago or
    more (a noise re-measurement), except those of the clusters in
    ``pending``."""
    clones = []
    for cluster, rep in enumerate(state.population):
        if cluster in pending:
            continue
        stale = measured_schedule(toolbox, rep) != schedule
        due = remeasure_every > 0 and state.generation - rep.generation >= remeasure_every
        if not (stale or due):
            continue
        clones.append(unevaluated_clone(
            toolbox, rep,
            generation=state.generation,  # the evaluator trains with this generation's schedule
            cluster=cluster, mutations=(), schedule=schedule, reevaluation_of=cluster,
            measurements=(),  # filled in when it replaces the representative
            eval_seed=derive_seed(state.seed, state.generation, "reeval", cluster)))
    return clones


def ranked_fitness(ind: Individual) -> float:
    """The fitness a rank is taken from; a missing or NaN fitness ranks last."""
    value = ind.fitness.values[0] if ind.fitness.valid else float("nan")
    return float("-inf") if math.isnan(value) else float(value)


def measurements_of(ind: Individual) -> tuple[float, ...]:
    """The fitness values behind ``ind``'s fitness under its schedule: its
    recorded ``measurements``, or its one fitness value."""
    recorded = ind.measurements
    return tuple(recorded) if recorded else (float(ind.fitness.values[0]),)


def niche_shares(population: Sequence[Individual], children: int, mode: str = "equal",
                 rng: random.Random | None = None,
                 objectives: Sequence[str] | None = None) -> list[int]:
    """Children per niche in a generation: ``children`` each (``"equal"``,
    the paper), or the same total ``children * len(population)`` shared by
    the representatives' fitness: in proportion to linear-ranking weights
    ``n - rank`` (``"rank"``; rank 0 the fittest, ties by cluster index),
    rounded by largest remainder; or one child per tournament
    (``"tournament"``): each parent is the fittest of
    :data:`NICHE_TOURNAMENT` representatives drawn without replacement from
    ``rng`` (ties by cluster index), as regularized evolution picks its
    parents, so the best niches breed most but every niche can be drawn; or
    one child per binary tournament on NSGA-II's crowded comparison over
    ``objectives`` (``"crowded"``: lower non-domination rank, then larger
    crowding distance; :func:`~.multiobjective.sel_tournament_crowded`)."""
    if mode not in NICHE_CHILDREN:
        raise ValueError(f"niche_children={mode!r}: choose one of {NICHE_CHILDREN}")
    n = len(population)
    if mode == "equal" or n == 0:
        return [children] * n
    if mode in ("tournament", "crowded") and rng is None:
        raise ValueError(f"niche_children={mode!r} draws its tournaments: pass rng")
    if mode == "crowded":
        from .multiobjective import sel_tournament_crowded

        if not objectives or len(objectives) < 2:
            raise ValueError("niche_children='crowded' ranks two or more objectives: pass them")
        index = {id(ind): i for i, ind in enumerate(population)}
        shares = [0] * n
        for parent in sel_tournament_crowded(population, children * n, objectives=objectives,
                                             rng=rng):
            shares[index[id(parent)]] += 1
        return shares
    if mode == "tournament":
        shares = [0] * n
        size = min(NICHE_TOURNAMENT, n)
        for _ in range(children * n):
            drawn = rng.sample(range(n), size)
            shares[max(drawn, key=lambda i: (ranked_fitness(population[i]), -i))] += 1
        return shares
    order = sorted(range(n), key=lambda i: (-ranked_fitness(population[i]), i))
    weight = {cluster: n - rank for rank, cluster in enumerate(order)}
    total, wsum = children * n, n * (n + 1) / 2
    exact = [total * weight[i] / wsum for i in range(n)]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(n), key=lambda i: (shares[i] - exact[i], -weight[i]))
    for i in by_remainder[:total - sum(shares)]:
        shares[i] += 1
    return shares


def breeding_order(state: SearchState) -> list[int]:
    """The clusters in the order they are bred this generation: a fresh
    permutation drawn from the search's seeded RNG. Within a generation the
    limit rule binds only once enough members were created, and niching
    meets the children in breeding order, so a fixed order would favour the
    first clusters every generation."""
    order = list(range(len(state.population)))
    state.rng.shuffle(order)
    return order


def with_reevaluations(state: SearchState, toolbox: base.Toolbox
                        ) -> tuple[list[Individual], list[Individual]]:
    """The representatives with their evaluated re-evaluations substituted,
    and the children (the rest of the offspring). A re-measurement under the
    representative's own schedule joins its earlier measurements: the
    substitute's fitness is their mean (``measurements`` keeps them all); one
    under a new schedule starts afresh."""
    reps = list(state.population)
    children = []
    for ind in state.offspring:
        cluster = ind.reevaluation_of
        if ind.epochs is not None:
            continue  # a screened child: its low-fidelity fitness never meets selection
        if cluster is None:
            children.append(ind)
        elif ind.fitness.valid:
            rep = reps[cluster]
            if measured_schedule(toolbox, rep) == ind.schedule:
                history = (*measurements_of(rep), float(ind.fitness.values[0]))
                ind.measurements = history
                ind.fitness.values = (sum(history) / len(history),)
            reps[cluster] = ind
    return reps, children


def promotions(state: SearchState, toolbox: base.Toolbox, keep: float) -> list[Individual]:
    """Full-schedule clones of the best ``keep`` fraction (rounded up, at
    least one) of the generation's screened children, ranked by their
    low-fidelity fitness (ties by offspring index); failed children are
    never promoted. Empty when the promotions were already made (a resumed
    generation), or nothing was screened."""
    offspring = state.offspring
    if any(ind.promoted_from is not None for ind in offspring):
        return []
    screened = [i for i, ind in enumerate(offspring)
                if ind.epochs is not None and ind.fitness.valid]
    if not screened:
        return []
    n_keep = max(1, math.ceil(keep * len(screened) - 1e-9))
    ranked = sorted((i for i in screened if offspring[i].failure is None),
                    key=lambda i: (-ranked_fitness(offspring[i]), i))
    return [unevaluated_clone(toolbox, offspring[index], epochs=None,
                               schedule=offspring[index].schedule.rsplit("@", 1)[0],
                               promoted_from=index,
                               eval_seed=derive_seed(state.seed, state.generation, "promote",
                                                     index))
            for index in ranked[:n_keep]]

