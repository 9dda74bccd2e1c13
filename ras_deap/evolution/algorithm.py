"""The RAS evolutionary loop, written like DEAP's ``algorithms.eaMuPlusLambda``.

Generation 0 evaluates the initial population; every later generation:
each cluster representative, in a fresh seeded order, spawns ``children``
children through ``toolbox.mutate``, invalid individuals are evaluated through
``toolbox.map(toolbox.evaluate, ...)``, ``toolbox.select`` (spectrum
niching) picks the new representatives, and layers/blocks no representative
uses are pruned from the gene pool.

Fitnesses are only compared when measured under the same training schedule
(the paper trains every 10th generation on the full training set, the others
on a subset): an optional ``toolbox.schedule(generation) -> str`` names each
generation's schedule, and a representative whose fitness was measured under
another schedule is re-evaluated under the current one before selection (see
:func:`step`). Without ``toolbox.schedule`` every generation has the one
schedule :data:`CONSTANT_SCHEDULE` and nothing is re-evaluated.

Two options go beyond the paper (both off by default and in ``--preset
paper``): ``remeasure_every=k`` re-measures a representative that has
survived k generations since its last measurement (a clone with a fresh
evaluation seed, like a schedule re-evaluation) and gives it the mean of all
its measurements under the current schedule, so a lucky single training
cannot hold a niche for ever; ``niche_children="rank"`` shares the
generation's children among the niches by the representatives' fitness rank
(linear ranking, best first) instead of ``children`` each, the same total.

Screening (multi-fidelity, also off by default): with ``screen_epochs=k``
every child is first trained for at most k epochs (``Individual.epochs``,
schedule ``"<schedule>@<k>ep"``); once all are measured, the best
``screen_keep`` fraction (by that low-fidelity fitness, failures never) are
promoted: clones trained from scratch under the generation's full schedule
(``promoted_from`` = the screened child's offspring index, a fresh seed).
Only full-fidelity individuals meet ``toolbox.select``, so a low-fidelity
fitness is never compared with a full one; one rung of successive halving
(Jamieson & Talwalkar 2016; Li et al.'s Hyperband) on epochs. A compute
budget (``cost_budget``, epoch-equivalents, see
:func:`_evaluate_pending`) lets a screened search be compared with an
unscreened one at equal training compute.

Multi-objective search (issue #31, off by default and in ``--preset paper``):
the loop does not change; with two or more objectives the toolbox's
``select`` is a non-dominated (mu+lambda) survival over representatives +
children with mu = the population (see :mod:`.multiobjective` for the design
and why), and everything else (breeding per representative, schedules,
budgets, the hall of fame of the paper's fitness) stays as it is.

The state of a search is a plain dataclass so a checkpoint can be written
after every evaluated individual and a killed search resumed without
re-evaluating anything (see :func:`step`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from deap import base, tools

from ..constants import NICHE_CHILDREN
from ..genome.pool import GenePool
from ..genome.random_init import random_model
from ..genome.spectrum import SPECTRUM_FEATURES
from ..seeding import derive_seed
from .hooks import CallbackObserver, LoopObserver, notify
from .individual import Individual, make_individual
from .niching import cached_spectrum

__all__ = [
    "CONSTANT_SCHEDULE",
    "measurements_of",
    "niche_shares",
    "promotions",
    "screened_schedule",
    "SearchState",
    "breeding_order",
    "derive_seed",
    "measured_schedule",
    "schedule_of",
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

CONSTANT_SCHEDULE = "constant"  # every generation's schedule without toolbox.schedule


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


def schedule_of(toolbox: base.Toolbox, generation: int) -> str:
    """The training schedule of ``generation``: ``toolbox.schedule(generation)``
    when the toolbox has one, else :data:`CONSTANT_SCHEDULE`."""
    schedule = getattr(toolbox, "schedule", None)
    return CONSTANT_SCHEDULE if schedule is None else str(schedule(generation))


def measured_schedule(toolbox: base.Toolbox, individual: Individual) -> str:
    """The schedule ``individual``'s fitness was measured under: the one it
    records, or (an individual from a checkpoint older than the attribute)
    the schedule of the generation it was evaluated in."""
    schedule = getattr(individual, "schedule", None)
    return schedule_of(toolbox, individual.generation) if schedule is None else schedule


def _reevaluations(state: SearchState, toolbox: base.Toolbox, schedule: str,
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
        clones.append(_unevaluated_clone(
            toolbox, rep,
            generation=state.generation,  # the evaluator trains with this generation's schedule
            cluster=cluster, mutations=(), schedule=schedule, reevaluation_of=cluster,
            measurements=(),  # filled in when it replaces the representative
            eval_seed=derive_seed(state.seed, state.generation, "reeval", cluster)))
    return clones


def _unevaluated_clone(toolbox: base.Toolbox, ind: Individual, **attrs: Any) -> Individual:
    """A clone of ``ind`` to be evaluated again (no fitness, metrics or
    failure), with ``attrs`` set: a re-measurement or a promotion."""
    clone = toolbox.clone(ind)
    del clone.fitness.values
    clone.metrics = {}
    clone.failure = None
    for name, value in attrs.items():
        setattr(clone, name, value)
    return clone


def niche_shares(population: Sequence[Individual], children: int, mode: str = "equal"
                 ) -> list[int]:
    """Children per niche in a generation: ``children`` each (``"equal"``,
    the paper), or (``"rank"``) the same total ``children * len(population)``
    shared in proportion to linear-ranking weights ``n - rank`` (rank 0 the
    fittest, ties by cluster index), rounded by largest remainder."""
    if mode not in NICHE_CHILDREN:
        raise ValueError(f"niche_children={mode!r}: choose one of {NICHE_CHILDREN}")
    n = len(population)
    if mode == "equal" or n == 0:
        return [children] * n
    order = sorted(range(n), key=lambda i: (-_ranked_fitness(population[i]), i))
    weight = {cluster: n - rank for rank, cluster in enumerate(order)}
    total, wsum = children * n, n * (n + 1) / 2
    exact = [total * weight[i] / wsum for i in range(n)]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(n), key=lambda i: (shares[i] - exact[i], -weight[i]))
    for i in by_remainder[:total - sum(shares)]:
        shares[i] += 1
    return shares


def _ranked_fitness(ind: Individual) -> float:
    """The fitness a rank is taken from; a missing or NaN fitness ranks last."""
    value = ind.fitness.values[0] if ind.fitness.valid else float("nan")
    return float("-inf") if math.isnan(value) else float(value)


def measurements_of(ind: Individual) -> tuple[float, ...]:
    """The fitness values behind ``ind``'s fitness under its schedule: its
    recorded ``measurements``, or its one fitness value."""
    recorded = getattr(ind, "measurements", None)
    return tuple(recorded) if recorded else (float(ind.fitness.values[0]),)


def breeding_order(state: SearchState) -> list[int]:
    """The clusters in the order they are bred this generation: a fresh
    permutation drawn from the search's seeded RNG. Within a generation the
    limit rule binds only once enough members were created, and niching
    meets the children in breeding order, so a fixed order would favour the
    first clusters every generation."""
    order = list(range(len(state.population)))
    state.rng.shuffle(order)
    return order


def screened_schedule(schedule: str, epochs: int) -> str:
    """The schedule name of a child screened with ``epochs`` epochs: never
    equal to a full schedule, so nothing compares the two fitnesses."""
    return f"{schedule}@{epochs}ep"


def _breed(state: SearchState, toolbox: base.Toolbox, children: int, *,
           remeasure_every: int = 0, niche_children: str = "equal",
           screen_epochs: int = 0) -> list[Individual]:
    """The pending individuals of a new generation: re-evaluations of
    representatives measured under another schedule or due for a
    re-measurement (first, so an evaluation budget never leaves a child to be
    compared with a stale fitness), then the children of each representative
    (:func:`niche_shares`), the clusters taken in :func:`breeding_order`."""
    schedule = schedule_of(toolbox, state.generation)
    shares = niche_shares(state.population, children, niche_children)
    offspring = []
    for cluster in breeding_order(state):
        rep = state.population[cluster]
        for _ in range(shares[cluster]):
            child, = toolbox.mutate(rep)
            child.generation = state.generation
            child.cluster = cluster
            child.eval_seed = derive_seed(state.seed, state.generation, len(offspring))
            child.schedule = schedule
            if screen_epochs:
                child.epochs = screen_epochs
                child.schedule = screened_schedule(schedule, screen_epochs)
            offspring.append(child)
    return _reevaluations(state, toolbox, schedule, (), remeasure_every) + offspring


def _with_reevaluations(state: SearchState, toolbox: base.Toolbox
                        ) -> tuple[list[Individual], list[Individual]]:
    """The representatives with their evaluated re-evaluations substituted,
    and the children (the rest of the offspring). A re-measurement under the
    representative's own schedule joins its earlier measurements: the
    substitute's fitness is their mean (``measurements`` keeps them all); one
    under a new schedule starts afresh."""
    reps = list(state.population)
    children = []
    for ind in state.offspring:
        cluster = getattr(ind, "reevaluation_of", None)
        if getattr(ind, "epochs", None) is not None:
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
    if any(getattr(ind, "promoted_from", None) is not None for ind in offspring):
        return []
    screened = [i for i, ind in enumerate(offspring)
                if getattr(ind, "epochs", None) is not None and ind.fitness.valid]
    if not screened:
        return []
    n_keep = max(1, math.ceil(keep * len(screened) - 1e-9))
    ranked = sorted((i for i in screened if offspring[i].failure is None),
                    key=lambda i: (-_ranked_fitness(offspring[i]), i))
    return [_unevaluated_clone(toolbox, offspring[index], epochs=None,
                               schedule=offspring[index].schedule.rsplit("@", 1)[0],
                               promoted_from=index,
                               eval_seed=derive_seed(state.seed, state.generation, "promote",
                                                     index))
            for index in ranked[:n_keep]]


def _evaluate_pending(state: SearchState, toolbox: base.Toolbox,
                      on_evaluated: OnEvaluated | None, budget: int | None,
                      cost_budget: float | None = None) -> None:
    """Evaluate the offspring that have no fitness yet, through ``toolbox.map``.

    ``budget`` (evaluations) drops the offspring beyond it. ``cost_budget``
    (epoch-equivalents; the metric ``cost_epochs`` of each result, summed in
    ``state.extra["cost_epochs"]``) evaluates in waves: each wave takes the
    longest prefix whose worst-case cost (``toolbox.cost(ind)``) still fits
    what is left, so the budget is never overspent; once the next individual
    cannot fit, the rest are dropped and ``state.extra["budget_spent"]`` is
    set to the budget, which ends the search (:func:`finished`) unless it
    is resumed with a larger one."""
    invalid = [ind for ind in state.offspring if not ind.fitness.valid]
    if budget is not None:
        remaining = max(budget - state.evaluations, 0)
        _drop(state, invalid[remaining:])
        invalid = invalid[:remaining]
    while invalid:
        wave = invalid
        if cost_budget is not None:
            left = cost_budget - float(state.extra.get("cost_epochs", 0.0))
            wave = []
            for ind in invalid:
                left -= float(toolbox.cost(ind))
                if left < -1e-9:
                    break
                wave.append(ind)
            if not wave:
                _drop(state, invalid)
                state.extra["budget_spent"] = float(cost_budget)  # spent at this budget
                return
        for ind, result in zip(wave, toolbox.map(toolbox.evaluate, wave), strict=True):
            assign_result(ind, result)
            state.evaluations += 1
            state.extra["cost_epochs"] = (float(state.extra.get("cost_epochs", 0.0))
                                          + float(ind.metrics.get("cost_epochs", 0.0)))
            if on_evaluated is not None:
                on_evaluated(state, ind)
        invalid = invalid[len(wave):]


def _drop(state: SearchState, dropped: Sequence[Individual]) -> None:
    gone = {id(ind) for ind in dropped}
    if gone:
        state.offspring = [ind for ind in state.offspring if id(ind) not in gone]


def step(state: SearchState, toolbox: base.Toolbox, *, children: int = 2,
         stats: tools.Statistics | None = None, on_bred: OnBred | None = None,
         on_evaluated: OnEvaluated | None = None, budget: int | None = None,
         remeasure_every: int = 0, niche_children: str = "equal", screen_epochs: int = 0,
         screen_keep: float = 0.5, cost_budget: float | None = None) -> dict[str, Any]:
    """Finish the current generation (breeding it first if needed) and return
    its logbook record. Safe to call again on a state restored from any
    checkpoint: evaluated individuals keep their fitness and are skipped.

    Comparable fitness across schedules: the generation's schedule is
    ``toolbox.schedule(generation)`` (:data:`CONSTANT_SCHEDULE` without one)
    and every individual records the schedule its fitness is measured under
    (``Individual.schedule``). Any representative whose measured schedule
    differs from the current generation's (not only at every 10th
    generation: the generation after a full one differs again) is
    re-evaluated under the current schedule before selection: a clone of it
    (``reevaluation_of`` = its cluster, no mutations, generation and
    schedule of this generation, evaluation seed
    ``derive_seed(seed, generation, "reeval", cluster)``) joins the pending
    offspring, ahead of the children, so it is evaluated through
    ``toolbox.map``, counted in ``state.evaluations`` and the budget,
    checkpointed and passed to ``on_evaluated`` like any offspring. Before
    ``toolbox.select`` the evaluated clones replace their representatives,
    so a child is only compared with a fitness measured under its own
    schedule; a re-evaluated representative stays the representative unless
    a child beats it. With a schedule that never changes nothing is
    re-evaluated and the search is exactly what it was without schedules.

    ``budget`` caps the total number of evaluations of the search: offspring
    beyond it are dropped unevaluated, so a fixed budget is spent exactly;
    ``cost_budget`` caps their training compute (see :func:`_evaluate_pending`).
    With ``screen_epochs`` the children are screened and the best
    ``screen_keep`` promoted before selection (see the module docstring)."""
    if state.phase == "done":
        state.generation += 1
        state.offspring = _breed(state, toolbox, children, remeasure_every=remeasure_every,
                                 niche_children=niche_children, screen_epochs=screen_epochs)
        state.phase = "evaluate"
        if on_bred is not None:  # lets the caller checkpoint the bred offspring
            on_bred(state)
    current = schedule_of(toolbox, state.generation)
    for ind in state.offspring:  # generation 0, and offspring of older checkpoints
        if getattr(ind, "schedule", None) is None:
            ind.schedule = current
    # a checkpoint older than re-evaluations, taken mid-generation: add them
    # now, at the end so the positions of the logged offspring do not move
    pending = {ind.reevaluation_of for ind in state.offspring
               if getattr(ind, "reevaluation_of", None) is not None}
    state.offspring.extend(_reevaluations(state, toolbox, current, pending, remeasure_every))
    _evaluate_pending(state, toolbox, on_evaluated, budget, cost_budget)
    if not _cost_spent(state, cost_budget):
        state.offspring.extend(promotions(state, toolbox, screen_keep))
        _evaluate_pending(state, toolbox, on_evaluated, budget, cost_budget)
    if not state.offspring and not state.population:
        raise ValueError("the evaluation budget ended before any individual was evaluated")
    if state.population:
        reps, offspring = _with_reevaluations(state, toolbox)
        state.population[:] = toolbox.select(reps + offspring, len(reps))
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


def finished(state: SearchState, ngen: int, budget: int | None = None,
             cost_budget: float | None = None) -> bool:
    """Whether the search is over: generation ``ngen`` is done, or the
    evaluation budget or the compute budget is spent (with the last
    generation selected)."""
    if state.phase != "done":
        return False
    return (state.generation >= ngen or (budget is not None and state.evaluations >= budget)
            or _cost_spent(state, cost_budget))


def _cost_spent(state: SearchState, cost_budget: float | None) -> bool:
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


def ea_spectrum_niching(state: SearchState, toolbox: base.Toolbox, ngen: int, *,
                        children: int = 2, stats: tools.Statistics | None = None,
                        verbose: bool = False, on_bred: OnBred | None = None,
                        on_evaluated: OnEvaluated | None = None,
                        on_generation: Callable[[SearchState, dict], None] | None = None,
                        budget: int | None = None, observers: Sequence[LoopObserver] = (),
                        remeasure_every: int = 0, niche_children: str = "equal",
                        screen_epochs: int = 0, screen_keep: float = 0.5,
                        cost_budget: float | None = None,
                        ) -> tuple[list[Individual], tools.Logbook]:
    """Run generations up to ``ngen`` and return ``(population, logbook)`` as
    DEAP's algorithms do. ``state`` is a new :func:`initial_state` or one
    restored from a checkpoint; the toolbox must be built on it
    (:func:`ras_deap.evolution.build_toolbox`). ``budget`` stops the search
    after exactly that many evaluations.

    What runs around the loop hangs on its three moments: the ``on_*``
    callbacks, or ``observers`` (:class:`~ras_deap.evolution.hooks.LoopObserver`,
    called in order before the callbacks); this is how
    :func:`ras_deap.search.run_search` adds progress, MLflow, checkpoints and
    timings without a loop of its own."""
    hooks = [*observers, CallbackObserver(on_bred, on_evaluated, on_generation)]
    while not finished(state, ngen, budget, cost_budget):
        record = step(state, toolbox, children=children, stats=stats,
                      on_bred=lambda st: notify(hooks, "bred", st),
                      on_evaluated=lambda st, ind: notify(hooks, "evaluated", st, ind),
                      budget=budget, remeasure_every=remeasure_every,
                      niche_children=niche_children, screen_epochs=screen_epochs,
                      screen_keep=screen_keep, cost_budget=cost_budget)
        if verbose:
            print(state.logbook.stream)
        notify(hooks, "generation", state, record)
    return state.population, state.logbook
