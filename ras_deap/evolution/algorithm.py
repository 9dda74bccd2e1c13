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
(linear ranking, best first) instead of ``children`` each, the same total;
``niche_children="tournament"`` draws each child's parent by a tournament
among the representatives (regularized evolution's parent selection),
from the search's seeded RNG; with several objectives
``niche_children="crowded"`` draws them by NSGA-II's binary tournament on
non-domination rank and crowding distance.

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

from collections.abc import Callable, Sequence
from typing import Any

from deap import base, tools

from ..seeding import derive_seed
from .hooks import CallbackObserver, LoopObserver, notify
from .individual import Individual
from .measurement import (
    breeding_order,
    niche_shares,
    promotions,
    reevaluations,
    schedule_of,
    screened_schedule,
    with_reevaluations,
)
from .state import (
    SearchState,
    assign_result,
    cost_spent,
    default_stats,
    finished,
    generation_summary,
)

__all__ = ["ea_spectrum_niching", "step"]

OnEvaluated = Callable[["SearchState", Individual], None]
OnBred = Callable[["SearchState"], None]


def _breed(state: SearchState, toolbox: base.Toolbox, children: int, *,
           remeasure_every: int = 0, niche_children: str = "equal",
           screen_epochs: int = 0) -> list[Individual]:
    """The pending individuals of a new generation: re-evaluations of
    representatives measured under another schedule or due for a
    re-measurement (first, so an evaluation budget never leaves a child to be
    compared with a stale fitness), then the children of each representative
    (:func:`niche_shares`), the clusters taken in :func:`breeding_order`."""
    schedule = schedule_of(toolbox, state.generation)
    # the objectives the toolbox ranks by (what "crowded" parents are drawn on)
    objectives = getattr(toolbox, "objectives", None)
    shares = niche_shares(state.population, children, niche_children, state.rng, objectives)
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
    return reevaluations(state, toolbox, schedule, (), remeasure_every) + offspring


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
    for ind in state.offspring:  # generation 0: created before the loop knew its schedule
        if ind.schedule is None:
            ind.schedule = current
    _evaluate_pending(state, toolbox, on_evaluated, budget, cost_budget)
    if not cost_spent(state, cost_budget):
        state.offspring.extend(promotions(state, toolbox, screen_keep))
        _evaluate_pending(state, toolbox, on_evaluated, budget, cost_budget)
    if not state.offspring and not state.population:
        raise ValueError("the evaluation budget ended before any individual was evaluated")
    if state.population:
        reps, offspring = with_reevaluations(state, toolbox)
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
