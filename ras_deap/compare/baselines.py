"""The compared search methods, all under one exact evaluation budget.

* ``random``: random RAS models (:func:`ras_deap.genome.random_model`), no
  evolution: what the RAS search space gives for free.
* ``tpe``: Optuna's TPE over a chain space (:mod:`.chain`), the kind of
  space DeepArchitect's SMBO searches, converted to the robust fitness.
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

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import append_line
from ..config import SearchConfig
from ..evolution import Individual, build_toolbox, initial_state
from ..genome import Model, random_model
from ..seeding import derive_seed
from .budget import BudgetedEvaluator, BudgetExhausted
from .chain import ChainSpace, suggest_chain
from .config import MO_OBJECTIVES, MULTIOBJECTIVE

__all__ = [
    "METHODS",
    "MethodContext",
    "MethodOutcome",
    "mu_plus_lambda_plan",
    "run_method",
    "method_objectives",
    "run_mu_plus_lambda",
    "run_nsga2",
    "run_random",
    "run_ras_mo",
    "ras_generations",
    "run_ras",
    "run_regularized",
    "run_tpe",
]


@dataclass
class MethodContext:
    """What a method run gets: the shared evaluator (wrapped in the budget),
    the search settings (population, children, mutations, limits, training)
    and where to nest its MLflow runs (RAS only; the others log through
    ``budgeted.on_evaluated``).

    ``aging_population``/``aging_sample``: P (None: ``config.population``)
    and S of regularized evolution. ``cell_dir``: a folder of this method
    run's own files; with it RAS runs in ``config.run_dir/ras-seed<seed>``,
    resumes from that run's checkpoint and keeps its curve in
    ``cell_dir/ras_curve.jsonl``. ``on_evaluation`` is called after every
    RAS evaluation (progress)."""

    budgeted: BudgetedEvaluator
    config: SearchConfig
    seed: int
    tournament_size: int = 3
    chain_space: ChainSpace = field(default_factory=ChainSpace)
    parent_run_id: str | None = None
    aging_population: int | None = None
    aging_sample: int = 5
    cell_dir: Path | None = None
    on_evaluation: Callable[[], None] | None = None

    @property
    def budget(self) -> int:
        return self.budgeted.budget


@dataclass
class MethodOutcome:
    """The result of one method run, before the best model is re-trained.
    ``best_fitness`` is the best fitness the search saw (its own selection,
    biased upwards by lucky trainings); ``best_generation`` the generation
    (training schedule) that fitness was measured with."""

    method: str
    seed: int
    best_genome: Model
    best_fitness: float
    best_metrics: dict[str, float]
    evaluations: int
    curve: list[float]  # best fitness after each evaluation
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    best_generation: int = 0
    # the final population (individuals with metrics), for methods that keep one; not stored
    # as such: the cell keeps their objectives (and, multi-objective, the front)
    population: list[Any] = field(default_factory=list)
    objectives: tuple[str, ...] = ("fitness",)  # what the search maximised


def method_objectives(method: str, config: SearchConfig) -> tuple[str, ...]:
    """What ``method`` maximises under ``config``: the multi-objective methods
    take ``--objectives`` when it names several, else accuracy and
    robustness; ``ras`` follows ``--objectives``; the baselines the fitness."""
    names = tuple(config.objectives.split(","))
    if method in MULTIOBJECTIVE:
        return names if config.multiobjective else tuple(MO_OBJECTIVES.split(","))
    return names if method == "ras" else ("fitness",)


def _outcome(ctx: MethodContext, method: str, start: float, *,
             members: list[Any] | None = None, objectives: tuple[str, ...] = ("fitness",),
             **info: Any) -> MethodOutcome:
    best = ctx.budgeted.best
    if best is None:
        raise RuntimeError(f"{method}: no model was evaluated (budget={ctx.budget})")
    return MethodOutcome(method=method, seed=ctx.seed, best_genome=best.genome,
                         best_fitness=best.fitness, best_metrics=dict(best.metrics),
                         evaluations=ctx.budgeted.calls, curve=list(ctx.budgeted.best_curve),
                         seconds=time.perf_counter() - start, info=info,
                         best_generation=int(best.generation),
                         population=list(members or []), objectives=objectives)


def run_random(ctx: MethodContext) -> MethodOutcome:
    """``budget`` random models drawn exactly as RAS draws its initial population."""
    start = time.perf_counter()
    rng = random.Random(derive_seed(ctx.seed, "random"))
    while ctx.budgeted.remaining > 0:
        ctx.budgeted.evaluate(random_model(rng))
    return _outcome(ctx, "random", start)


def run_tpe(ctx: MethodContext) -> MethodOutcome:
    """TPE (seeded, in-memory storage) over chains, one trial per evaluation."""
    import optuna

    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=derive_seed(ctx.seed, "tpe"))
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                storage=optuna.storages.InMemoryStorage(),
                                study_name=f"tpe-seed{ctx.seed}")

    def objective(trial: optuna.Trial) -> float:
        model = suggest_chain(trial, ctx.chain_space)
        record = ctx.budgeted.evaluate(model, trial=trial.number)
        trial.set_user_attr("genome_id", model.id)
        return record.fitness

    study.optimize(objective, n_trials=ctx.budget, gc_after_trial=False)
    return _outcome(ctx, "tpe", start, best_params=study.best_params)


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


def _budgeted_fitness(ctx: MethodContext) -> Callable[[Individual], tuple[float]]:
    """DEAP's ``toolbox.evaluate`` for a method on the RAS genome: one budgeted
    evaluation, its metrics and failure kept on the individual, and which
    evaluation it was (``evaluation``: the journal index, ``e<index>`` its
    MLflow key) and the generation it was trained as (``generation``: the
    schedule a re-measurement must repeat)."""
    def evaluate(ind: Individual) -> tuple[float]:
        record = ctx.budgeted.evaluate(ind.genome, parent_id=ind.parent_id,
                                       mutations=list(ind.mutations))
        ind.metrics = dict(record.metrics)
        ind.failure = record.failure
        ind.evaluation = record.index
        ind.generation = record.generation
        return (record.fitness,)
    return evaluate


def run_mu_plus_lambda(ctx: MethodContext) -> MethodOutcome:
    """RAS without niching: same initial population, gene pool, 13 mutations
    (``n_mutations`` each) and pruning, but DEAP's (mu + lambda) loop with
    tournament selection and no crossover."""
    from deap import algorithms, tools

    start = time.perf_counter()
    cfg = ctx.config
    mu, lam, ngen = mu_plus_lambda_plan(ctx.budget, cfg.population, cfg.children)
    seed = derive_seed(ctx.seed, "mu_plus_lambda")
    state = initial_state(seed, mu)

    evaluate = _budgeted_fitness(ctx)

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
    return _outcome(ctx, "mu_plus_lambda", start, members=population, mu=mu, lambda_=lam,
                    ngen=ngen, stopped_early=stopped_early)


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
    from .aging import ea_regularized, sel_sample_best

    start = time.perf_counter()
    cfg = ctx.config
    p, s, cycles = regularized_plan(ctx.budget, ctx.aging_population or cfg.population,
                                    ctx.aging_sample)
    seed = derive_seed(ctx.seed, "regularized")
    state = initial_state(seed, p)

    evaluate = _budgeted_fitness(ctx)

    def select(individuals: list[Individual], k: int) -> list[Individual]:
        state.pool.prune(ind.genome for ind in individuals)  # the living models' genes only
        return sel_sample_best(individuals, k, s, state.rng)

    toolbox = build_toolbox(state, evaluate=evaluate, n_mutations=cfg.mutations,
                            layer_limit=cfg.layer_limit, block_limit=cfg.block_limit)
    toolbox.register("select", select)
    population, _ = ea_regularized(list(state.offspring), toolbox, cycles)
    return _outcome(ctx, "regularized", start, members=population, population=p, sample=s,
                    cycles=cycles, final_population=len(population))


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
    from ..evolution import sel_nsga2, sel_tournament_crowded
    from .nsga2 import ea_nsga2, nsga2_plan

    start = time.perf_counter()
    cfg = ctx.config
    objectives = method_objectives("nsga2", cfg)
    mu, lambdas = nsga2_plan(ctx.budget, cfg.population, cfg.children)
    state = initial_state(derive_seed(ctx.seed, "nsga2"), mu)

    def survive(individuals: list[Individual], k: int) -> list[Individual]:
        chosen = sel_nsga2(individuals, k, objectives=objectives)
        state.pool.prune(ind.genome for ind in chosen)  # as RAS does after selection
        return chosen

    toolbox = build_toolbox(state, evaluate=_budgeted_fitness(ctx), n_mutations=cfg.mutations,
                            layer_limit=cfg.layer_limit, block_limit=cfg.block_limit)
    toolbox.register("select", survive)
    toolbox.register("select_parents", sel_tournament_crowded, objectives=objectives,
                     rng=state.rng)
    population, _ = ea_nsga2(list(state.offspring), toolbox, lambdas)
    return _outcome(ctx, "nsga2", start, members=population, objectives=objectives, mu=mu,
                    lambdas=lambdas, parents="binary tournament on (rank, crowding distance)",
                    survival="selNSGA2")


def ras_generations(budget: int, population: int, children: int) -> int:
    """Generations a RAS search needs for ``budget`` evaluations."""
    if budget <= population:
        return 0
    return math.ceil((budget - population) / (population * children))


def curve_best(entry: Any) -> float:
    """The best-so-far fitness of one ``ras_curve.jsonl`` line: an object
    ``{"best", "fitness"}``, or a bare number (curves written before the
    evaluation's own fitness was kept)."""
    return float(entry["best"] if isinstance(entry, dict) else entry)


def _ras_attempt(ctx: MethodContext, config: SearchConfig, curve_file: Path | None,
                 resume: Path | None) -> tuple[Any, list[float]]:
    from ..search import run_search

    curve: list[float] = []
    if resume is not None and curve_file is not None and curve_file.is_file():
        for line in curve_file.read_text().splitlines():
            try:
                curve.append(curve_best(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError, KeyError):
                break
    elif curve_file is not None:
        curve_file.unlink(missing_ok=True)

    def record(ind: Any) -> None:  # best fitness so far after each evaluation
        fitness = float(ind.fitness.values[0])
        # a screened child's low-fidelity fitness is no candidate for the best
        screened = getattr(ind, "epochs", None) is not None
        best = fitness if not screened else float("-inf")
        curve.append(best if not curve else max(curve[-1], best))
        if curve_file is not None:
            # the evaluation's own fitness too: the ablation's drift table reads it
            # from a clone, without the MLflow store the search logged to
            line = {"best": curve[-1], "fitness": fitness, **({"screen": True} if screened
                                                                else {})}
            append_line(curve_file, json.dumps(line))
        if ctx.on_evaluation is not None:
            ctx.on_evaluation()

    # the cell's own evaluator (RAS enforces the budget itself, with max_evaluations)
    result = run_search(config, parent_run_id=ctx.parent_run_id, progress=False,
                        final_training=False, on_individual=record,
                        resume=resume if resume is not None else False,
                        evaluator=ctx.budgeted.evaluator,
                        # a cell's checkpoint committed with a comparison resumes in a
                        # checkout without the MLflow store it was logged to
                        new_run_if_lost=True)
    return result, curve


def run_ras(ctx: MethodContext) -> MethodOutcome:
    """RAS as in the paper, stopped at exactly ``budget`` evaluations.

    With ``ctx.cell_dir`` the search runs in ``<run_dir>/ras-seed<seed>``: a
    checkpoint left there by an interrupted attempt is resumed (RAS's own
    resume: nothing evaluated is trained again), with the best-fitness curve
    read back from ``cell_dir/ras_curve.jsonl``. If the curve and the
    checkpoint disagree (a kill between the two writes), the search starts
    over from scratch rather than report a wrong curve."""
    return _run_ras(ctx, "ras")


def run_ras_mo(ctx: MethodContext) -> MethodOutcome:
    """Multi-objective RAS: :func:`run_ras` with ``--objectives`` set to
    accuracy and robustness unless it already names several objectives (the
    survival selection is ``--mo-selection``'s, spectrum by default), in its
    own run folder ``<run_dir>/ras_mo-seed<seed>``; resumes the same way. Its
    winner is still the best fitness (sum) it saw; its front is the non-dominated
    set of its final representatives (``MethodOutcome.population``)."""
    return _run_ras(ctx, "ras_mo")


def _run_ras(ctx: MethodContext, method: str) -> MethodOutcome:
    from ..checkpoint import CHECKPOINT_NAME

    start = time.perf_counter()
    cfg = ctx.config
    objectives = method_objectives(method, cfg)
    if ",".join(objectives) != cfg.objectives:
        cfg = cfg.replace(objectives=",".join(objectives))
    if cfg.budget_epochs is not None:  # a compute budget ends the search, not a count
        config = cfg.replace(seed=ctx.seed, max_evaluations=None, generations=10**6)
    else:
        config = cfg.replace(seed=ctx.seed, max_evaluations=ctx.budget,
                             generations=ras_generations(ctx.budget, cfg.population,
                                                         cfg.children))
    curve_file = None
    resume = None
    if ctx.cell_dir is not None:
        config = config.replace(run_name=f"{method}-seed{ctx.seed}")
        ctx.cell_dir.mkdir(parents=True, exist_ok=True)
        curve_file = ctx.cell_dir / "ras_curve.jsonl"
        run_dir = Path(config.run_dir) / config.run_name
        if (run_dir / CHECKPOINT_NAME).is_file():
            resume = run_dir
    # final_training=False: the comparison re-trains every method's best itself,
    # with one trainer and seed rule for all.
    result, curve = _ras_attempt(ctx, config, curve_file, resume)
    resumed = resume is not None
    if len(curve) != result.evaluations and resume is not None:
        shutil.rmtree(resume)  # curve and checkpoint disagree: run it again from scratch
        result, curve = _ras_attempt(ctx, config, curve_file, None)
        resumed = False
    if len(curve) != result.evaluations:
        raise RuntimeError(f"RAS reported {result.evaluations} evaluations but "
                           f"{len(curve)} were seen")
    best = result.best
    return MethodOutcome(method=method, seed=ctx.seed, best_genome=best.genome,
                         best_fitness=float(best.fitness.values[0]),
                         best_metrics=dict(getattr(best, "metrics", {}) or {}),
                         evaluations=int(result.evaluations), curve=curve,
                         seconds=time.perf_counter() - start,
                         info={"run_id": result.run_id, "run_dir": str(result.run_dir),
                               "resumed": resumed},
                         best_generation=int(getattr(best, "generation", 0) or 0),
                         population=list(result.population), objectives=objectives)


Method = Callable[[MethodContext], MethodOutcome]
METHODS: dict[str, Method] = {
    "random": run_random,
    "tpe": run_tpe,
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
