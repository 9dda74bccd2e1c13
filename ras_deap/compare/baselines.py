"""The compared search methods, all under one exact evaluation budget.

* ``random``: random RAS models (:func:`ras_deap.genome.random_model`), no
  evolution: what the RAS search space gives for free.
* ``tpe``: Optuna's TPE over a chain space (:mod:`ras_deap.genome.chain`), the kind of
  space DeepArchitect's SMBO searches, converted to the robust fitness.
* ``random_chain``: Optuna's random sampler over the same chain space: what
  that space gives for free, so TPE's sampler and its space can be told apart.
* ``mu_plus_lambda``: DEAP's ``eaMuPlusLambda`` with the 13 RAS mutations,
  tournament selection and no crossover: RAS without spectrum niching.
* ``regularized``: regularized (aging) evolution (Real et al. 2019) on the
  RAS genome with the RAS mutation operator (:mod:`.aging`).
* ``ras``: RAS as in the paper (:func:`ras_deap.search.run_search`).
* ``nsga2``: plain NSGA-II (:mod:`.nsga2`) on the RAS genome and mutations,
  over accuracy and robustness: the multi-objective baseline (issue #31).
* ``ras_mo``: multi-objective RAS (``--objectives accuracy,robustness``,
  :mod:`ras_deap.evolution.multiobjective`).

Every method is handed the same evaluator; the single-objective ones
maximise the same fitness (accuracy + accuracy on the bank), the
multi-objective ones (:data:`.config.MULTIOBJECTIVE`) its two terms, and each still
names as its winner the best fitness it saw, so every cell is re-measured,
re-trained and attacked alike. A method with a population also returns its
final population (``MethodOutcome.population``), from which the cell keeps
the multi-objective methods' front. The baselines share a
:class:`~.budget.BudgetedEvaluator`; the RAS methods (:data:`.config.RAS_METHODS`)
enforce the budget themselves with ``max_evaluations``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from ..evolution import Individual, build_toolbox, initial_state
from ..genome import random_chain, random_model
from ..genome.chain import suggest_chain
from ..seeding import derive_seed
from .aging import run_regularized
from .budget import BudgetExhausted
from .method import MethodContext, MethodOutcome, budgeted_fitness, method_outcome
from .nsga2 import run_nsga2
from .ras import run_ras, run_ras_mo

__all__ = [
    "METHODS",
    "mu_plus_lambda_plan",
    "run_method",
    "run_mu_plus_lambda",
    "run_random",
    "run_random_chain",
    "run_tpe",
]


def run_random(ctx: MethodContext) -> MethodOutcome:
    """``budget`` random models drawn exactly as RAS draws its initial population
    (``--initial``: random RAS models, or chains)."""
    start = time.perf_counter()
    rng = random.Random(derive_seed(ctx.seed, "random"))
    draw = random_chain if ctx.config.initial == "chains" else random_model
    while ctx.budgeted.remaining > 0:
        ctx.budgeted.evaluate(draw(rng))
    return method_outcome(ctx, "random", start)


def _run_chains(ctx: MethodContext, name: str, sampler: object) -> MethodOutcome:
    """One Optuna trial per evaluation over chains (seeded sampler, in-memory
    storage)."""
    import optuna

    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                storage=optuna.storages.InMemoryStorage(),
                                study_name=f"{name}-seed{ctx.seed}")

    def objective(trial: optuna.Trial) -> float:
        model = suggest_chain(trial, ctx.chain_space)
        record = ctx.budgeted.evaluate(model, trial=trial.number)
        trial.set_user_attr("genome_id", model.id)
        return record.fitness

    study.optimize(objective, n_trials=ctx.budget, gc_after_trial=False)
    return method_outcome(ctx, name, start, best_params=study.best_params)


def run_tpe(ctx: MethodContext) -> MethodOutcome:
    """TPE over chains, one trial per evaluation."""
    import optuna

    return _run_chains(ctx, "tpe", optuna.samplers.TPESampler(seed=derive_seed(ctx.seed, "tpe")))


def run_random_chain(ctx: MethodContext) -> MethodOutcome:
    """Random chains (Optuna's random sampler over TPE's space), one trial per
    evaluation."""
    import optuna

    return _run_chains(ctx, "random_chain",
                       optuna.samplers.RandomSampler(seed=derive_seed(ctx.seed, "random_chain")))


def mu_plus_lambda_plan(budget: int, population: int, children: int) -> tuple[int, int, int]:
    """``(mu, lambda, ngen)`` for ``eaMuPlusLambda`` under ``budget``:
    mu = the RAS population (capped at the budget), lambda = population x
    children (what RAS breeds per generation), ngen = generations needed to
    reach the budget. mu + ngen * lambda may exceed the budget by less than
    one generation: the budgeted evaluator stops the last one short, as RAS's
    ``max_evaluations`` does."""
    mu = min(population, budget)
    lam = population * children
    ngen = math.ceil((budget - mu) / lam) if budget > mu else 0
    return mu, lam, ngen


def run_mu_plus_lambda(ctx: MethodContext) -> MethodOutcome:
    """RAS without niching: same initial population, gene pool, 13 mutations
    (``n_mutations`` each) and pruning, but DEAP's (mu + lambda) loop with
    tournament selection and no crossover.

    DEAP's ``varOr`` and ``selTournament`` draw parents and survivors from
    the global ``random``, which the torch evaluator reseeds with each
    evaluation's seed (``seed_everything``). A journal replay trains nothing,
    so the global ``random`` is reseeded here after every evaluation, trained
    or replayed, exactly as that evaluator leaves it: the parents then depend
    on the evaluations' seeds only, an interrupted cell replays its own
    journal, and the journals written before this (whose runs trained every
    evaluation in-process) replay too."""
    from deap import algorithms, tools

    start = time.perf_counter()
    cfg = ctx.config
    mu, lam, ngen = mu_plus_lambda_plan(ctx.budget, cfg.population, cfg.children)
    seed = derive_seed(ctx.seed, "mu_plus_lambda")
    state = initial_state(seed, mu, cfg.initial)

    fitness = budgeted_fitness(ctx)

    def evaluate(ind: Individual) -> tuple[float]:
        values = fitness(ind)
        random.seed(ctx.budgeted.records[ind.evaluation].seed)  # see the docstring
        return values

    def select(individuals: list[Individual], k: int) -> list[Individual]:
        chosen = tools.selTournament(individuals, k, tournsize=ctx.tournament_size)
        state.pool.prune(ind.genome for ind in chosen)  # as RAS does after selection
        return chosen

    toolbox = build_toolbox(state, evaluate=evaluate, n_mutations=cfg.mutations,
                            layer_limit=cfg.layer_limit, block_limit=cfg.block_limit)
    toolbox.register("select", select)
    population = list(state.offspring)  # the random initial models, as RAS starts
    # varOr and selTournament draw from the global `random`: seed it, restore it after.
    saved = random.getstate()
    random.seed(seed)
    stopped_early = False
    try:
        algorithms.eaMuPlusLambda(population, toolbox, mu=mu, lambda_=lam, cxpb=0.0,
                                  mutpb=1.0, ngen=ngen, verbose=False)
    except BudgetExhausted:
        stopped_early = True  # the last generation was cut to the budget
    finally:
        random.setstate(saved)
    return method_outcome(ctx, "mu_plus_lambda", start, members=population, mu=mu, lambda_=lam,
                          ngen=ngen, stopped_early=stopped_early)


Method = Callable[[MethodContext], MethodOutcome]
METHODS: dict[str, Method] = {
    "random": run_random,
    "tpe": run_tpe,
    "random_chain": run_random_chain,
    "mu_plus_lambda": run_mu_plus_lambda,
    "regularized": run_regularized,
    "ras": run_ras,
    "nsga2": run_nsga2,
    "ras_mo": run_ras_mo,
}


def run_method(name: str, ctx: MethodContext) -> MethodOutcome:
    if name not in METHODS:
        raise ValueError(f"method {name!r} is unknown; choose from {sorted(METHODS)}")
    return METHODS[name](ctx)
