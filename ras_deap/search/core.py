"""``run_search``: one search, from a config (and optionally an evaluator) to
its result, in a run folder it owns."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deap import tools

from .. import __version__
from ..atomic import write_atomic
from ..checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, save_checkpoint
from ..config import ConfigError, SearchConfig, check_resumable, stored_values, training_values
from ..contracts import FitnessEvaluator, MapBackend, RetrainingEvaluator, Tracker
from ..evolution import (
    Individual,
    SearchState,
    build_toolbox,
    ea_spectrum_niching,
    initial_state,
)
from ..locks import RunLock
from ..parallel import make_map
from .final import already_finished, child_artifacts, finalise, search_description, summarise
from .folders import CONFIG_NAME, create_run_dir, resolve_run_dir
from .front import read_front, record_front
from .observers import Callbacks, Progress, Recorder, Stopwatch
from .records import Timed, training_cost, training_schedule

__all__ = ["SIZE_LIMITS", "SearchResult", "check_sizes", "make_evaluator", "run_search"]


@dataclass
class SearchResult:
    best: Individual
    population: list[Individual]
    logbook: tools.Logbook
    history: list[dict[str, Any]]
    evaluations: int
    run_id: str | None
    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    already_finished: bool = False  # resumed a run that had ended: nothing was done
    # a multi-objective search's final non-dominated set (search.front.front_of); {} otherwise
    front: dict[str, Any] = field(default_factory=dict)


# Sizes beyond these are almost certainly typos (--population 1000000000 would
# build a billion models before the first evaluation); --force allows them.
SIZE_LIMITS = {"population": 10_000, "children": 1_000, "mutations": 1_000,
               "subset_size": 10_000_000, "batch_size": 1_000_000, "max_epochs": 100_000,
               "full_epochs": 100_000, "threads": 1_024, "generations": 1_000_000}
MAX_EVALUATIONS = 1_000_000  # trainings in one search


def check_sizes(config: SearchConfig) -> None:
    """Refuse sizes that cannot fit in memory or time (see :data:`SIZE_LIMITS`)
    with a message naming the option and ``--force``."""
    for name, limit in SIZE_LIMITS.items():
        value = getattr(config, name)
        if value > limit:
            raise ConfigError(f"{name}={value}: more than {limit:,}, which cannot fit in memory "
                              f"or time; use a smaller --{name.replace('_', '-')} (or pass "
                              "--force if you really mean it)")
    total = config.population * (1 + config.generations * config.children)
    if config.max_evaluations is not None:
        total = min(total, config.max_evaluations)
    if total > MAX_EVALUATIONS and config.budget_epochs is None:  # a compute budget bounds it
        raise ConfigError(f"this search would train {total:,} networks (population x (1 + "
                          f"generations x children)), more than {MAX_EVALUATIONS:,}; lower "
                          "--generations, --population or --children, cap it with "
                          "--max-evaluations, or pass --force")
    cores = os.cpu_count() or 1
    if config.workers > max(64, 4 * cores):
        raise ConfigError(f"workers={config.workers}: far more worker processes than the "
                          f"{cores} cores (each holds the dataset and torch, about 1 GB); use "
                          "at most a few per core, or pass --force")


def make_evaluator(config: SearchConfig) -> RetrainingEvaluator:
    """The torch evaluator for a config (imported lazily: torch is heavy)."""
    from ..bank import default_bank_path
    from ..evaluation import Evaluator, TrainConfig

    bank = config.bank or default_bank_path(config.dataset)
    return Evaluator(dataset_name=config.dataset, data_dir=config.data_dir,
                     bank_path=str(bank) if bank else None,
                     train_config=TrainConfig(**training_values(config)),
                     seed=config.seed, num_threads=config.threads, device=config.device,
                     download=config.download, robustness=config.robustness)


def _check_evaluator(evaluator: Any, final_training: bool) -> None:
    needed = RetrainingEvaluator if final_training else FitnessEvaluator
    if not isinstance(evaluator, needed):
        raise TypeError(f"evaluator={evaluator!r} does not satisfy "
                        f"ras_deap.contracts.{needed.__name__} (see its docstring)"
                        + ("; pass final_training=False for an evaluator without evaluate()"
                           if final_training else ""))


def run_search(config: SearchConfig, *,
               on_generation: Callable[[int, dict[str, Any]], None] | None = None,
               parent_run_id: str | None = None, resume: bool | str | Path = False,
               progress: bool = True, final_training: bool = True,
               on_individual: Callable[[Individual], None] | None = None,
               register_model: str | None = None, force: bool = False,
               evaluator: FitnessEvaluator | None = None,
               new_run_if_lost: bool = False) -> SearchResult:
    """Run (or resume) a RAS search and return its result.

    The search is :func:`~ras_deap.evolution.ea_spectrum_niching`, the same
    loop a DEAP user calls; progress bars, MLflow, checkpoints and timings
    are observers on its hooks (:mod:`ras_deap.search.observers`).

    ``evaluator`` is the fitness function (any
    :class:`~ras_deap.contracts.FitnessEvaluator`; with ``final_training`` a
    :class:`~ras_deap.contracts.RetrainingEvaluator`); None builds the torch
    evaluator of ``config`` (:func:`make_evaluator`).

    The run folder is owned by this call: a second process resuming it
    meanwhile gets :class:`~ras_deap.errors.RunLockedError`. Resuming a run
    that has ended returns its stored result (``already_finished``) and
    changes nothing. Sizes beyond :data:`SIZE_LIMITS` are refused unless
    ``force``.

    ``new_run_if_lost``: a resumed checkpoint whose MLflow run is not in the
    store (a run folder carried to another checkout, as a committed
    comparison's) logs the rest of the search to a new run, with a warning,
    instead of refusing; the individuals evaluated before stay in the
    checkpoint only.

    ``on_individual(individual)`` is called after each evaluation (once it is
    logged and checkpointed), in evaluation order.
    After every generation ``on_generation(generation, record)`` is called;
    an exception it raises (e.g. ``optuna.TrialPruned``) stops the search,
    ends its MLflow run as KILLED and propagates. With ``final_training`` the
    best architecture is retrained on the full training set and its test
    accuracy, weights, drawing and the figures are logged, and the retrained
    network is logged as an MLflow model on the best individual's run
    (``register_model``: also registered under that name).
    """
    from ..tracking import SearchTracker

    if not force:
        check_sizes(config)
    if evaluator is not None:
        _check_evaluator(evaluator, final_training)
    run_dir = resolve_run_dir(config, resume)
    settings = config.to_dict()  # made once: checked, logged, written with each checkpoint
    state: SearchState | None = None
    created: Path | None = None  # the folder this call made for a new run
    try:
        with contextlib.ExitStack() as owned:  # the run folder's lock, the worker pool
            state, history, finished = _load_state(config, settings, run_dir, owned,
                                                   resume=bool(resume),
                                                   final_training=final_training)
            if finished is not None:
                return finished
            if evaluator is None:
                evaluator = make_evaluator(config)
            evaluator.data()  # a missing data folder or a wrong bank fails here, before any work
            tracker = SearchTracker(config.tracking_uri, config.experiment,  # the store answers
                                    background=True, child_artifacts=child_artifacts())
            # ends the search run KILLED/FAILED whatever stops the search once it has started
            owned.enter_context(tracker)
            # the scheduler answers
            mapper = make_map(config.workers, config.scheduler, config.isolate)
            aborted = [True]  # until the search ends normally: then the pool may finish politely
            owned.callback(lambda: mapper.close(abort=aborted[0]))
            if not resume:
                fresh = not run_dir.exists()
                run_dir = create_run_dir(config, run_dir)
                created = run_dir if fresh or not config.run_name else None
                owned.enter_context(RunLock(run_dir))
                _refuse_a_checkpoint(run_dir)  # another process got there first
            result = _search(config, settings, state, history, run_dir, evaluator, tracker, mapper,
                             on_generation=on_generation, parent_run_id=parent_run_id,
                             progress=progress, final_training=final_training,
                             on_individual=on_individual, register_model=register_model,
                             new_run_if_lost=new_run_if_lost)
            aborted[0] = False
            return result
    except BaseException as exc:
        evaluated = state.evaluations if state is not None else 0
        if created is not None and not evaluated:  # nothing to resume: leave no folder
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C or SIGTERM: where to resume, if anywhere
            exc.evaluations = evaluated  # type: ignore[attr-defined]
            exc.run_dir = run_dir if resume or evaluated else None  # type: ignore[attr-defined]
        raise


def _refuse_a_checkpoint(run_dir: Path) -> None:
    """A new search never writes over a run folder that holds a checkpoint."""
    if (run_dir / CHECKPOINT_NAME).exists():
        raise ConfigError(f"run folder {run_dir} already holds a checkpoint: pass "
                          "--resume to continue it, or choose another --run-name")


def _load_state(config: SearchConfig, settings: dict[str, Any], run_dir: Path,
                owned: contextlib.ExitStack, *, resume: bool, final_training: bool
                ) -> tuple[SearchState, list[dict[str, Any]], SearchResult | None]:
    """The state a search starts from: a resumed checkpoint's (its folder
    locked in ``owned`` before it is read, so no one else writes it) or a
    fresh one; and the stored result when the resumed run has already ended."""
    if not resume:
        _refuse_a_checkpoint(run_dir)
        return initial_state(config.seed, config.population, config.initial), [], None
    if run_dir.is_dir():
        owned.enter_context(RunLock(run_dir))
    checkpoint = load_checkpoint(run_dir)
    check_resumable(checkpoint.config, stored_values(settings))  # every option, left-out ones too
    finished = (_finished_result(checkpoint, config, run_dir)
                if already_finished(checkpoint, config, final_training) else None)
    return checkpoint.state, checkpoint.history, finished


def _finished_result(checkpoint: Checkpoint, config: SearchConfig, run_dir: Path
                     ) -> SearchResult:
    """The result of a run that had already ended, read from its checkpoint
    (nothing is trained or logged again)."""
    state = checkpoint.state
    summary = dict((checkpoint.completed or {}).get("summary") or {})
    return SearchResult(best=state.halloffame[0], population=list(state.population),
                        logbook=state.logbook, history=checkpoint.history,
                        evaluations=state.evaluations, run_id=state.extra.get("mlflow_run_id"),
                        run_dir=run_dir, summary=summary, already_finished=True,
                        front=read_front(config, state, run_dir))


def _search(config: SearchConfig, settings: dict[str, Any], state: SearchState,
            history: list[dict[str, Any]], run_dir: Path, evaluator: Any, tracker: Tracker,
            mapper: MapBackend, *,
            on_generation: Callable[[int, dict[str, Any]], None] | None,
            parent_run_id: str | None, progress: bool, final_training: bool,
            on_individual: Callable[[Individual], None] | None,
            register_model: str | None, new_run_if_lost: bool = False) -> SearchResult:
    """The search proper, in a run folder this process owns."""
    ckpt_path = run_dir / CHECKPOINT_NAME
    # cumulative over the sessions of a resumed search, for the timing/ charts
    watch = Stopwatch({k: float(v) for k, v in state.extra.get("timings", {}).items()})
    toolbox = build_toolbox(state, evaluate=Timed(evaluator), map_fn=mapper,
                            n_mutations=config.mutations, layer_limit=config.layer_limit,
                            block_limit=config.block_limit, distance=config.distance,
                            schedule=training_schedule(config, evaluator),
                            objectives=config.objectives.split(","),
                            mo_selection=config.mo_selection, niche_age=config.niche_age)
    toolbox.register("cost", training_cost(config, evaluator))
    run_id = _start_run(config, settings, state, run_dir, tracker, parent_run_id=parent_run_id,
                        new_run_if_lost=new_run_if_lost)
    bars = Progress(config, history, enabled=progress)
    recorder = Recorder(config, settings, state, history, tracker, ckpt_path, watch)
    observers = [watch.opening, recorder, bars,
                 Callbacks(tracker, history, on_individual, on_generation), watch.closing]
    try:
        with tracker:
            watch.restart()
            ea_spectrum_niching(state, toolbox, config.generations, children=config.children,
                                budget=config.max_evaluations, observers=observers,
                                remeasure_every=config.remeasure_every,
                                niche_children=config.niche_children,
                                screen_epochs=config.screen_epochs,
                                screen_keep=config.screen_keep,
                                cost_budget=config.budget_epochs)
            best = state.halloffame[0]
            summary = summarise(best, state)
            best_run = tracker.mark_best(best.tracking_key, best.genome.id)
            summary["best_run_id"] = best_run
            front = record_front(config, state, run_dir, tracker, evaluator)
            summary.update(_front_summary(front))
            figures: list[str] = []
            if final_training:
                summary.update(finalise(config, evaluator, best, history, tracker, run_dir,
                                        best_run, register_model))
                figures = ["figures/fig3_accuracy.png", "figures/fig4_architecture.png",
                           "best_model/best_architecture.png"]
            summary["wall_seconds"] = watch.elapsed()
            summary["run_dir"] = str(run_dir)
            summary["mlflow_run_id"] = run_id
            summary["mlflow_ui"] = tracker.ui_command()
            summary["mlflow_runs_url"] = tracker.runs_url()
            summary["mlflow_run_url"] = tracker.run_url()
            tracker.log_dict(summary, "summary.json")
            tracker.describe(search_description(summary, tracker, figures))
            watch.timings["total"] = watch.elapsed()
            tracker.end_search("FINISHED")
            watch.timings["writer"] = tracker.writer_seconds
            # the run has ended: a later --resume says so and changes nothing
            with watch.timing("checkpoint"):
                save_checkpoint(ckpt_path, Checkpoint(
                    config=settings, state=state, history=history,
                    completed={"final_training": final_training, "summary": summary}))
    finally:
        bars.close()
    return SearchResult(best=best, population=list(state.population), logbook=state.logbook,
                        history=history, evaluations=state.evaluations, run_id=run_id,
                        run_dir=run_dir, summary=summary, timings=watch.timings, front=front)


def _start_run(config: SearchConfig, settings: dict[str, Any], state: SearchState,
               run_dir: Path, tracker: Tracker, *, parent_run_id: str | None,
               new_run_if_lost: bool) -> str:
    """Start (or resume) the search's MLflow run, tagged with what decides its
    numbers (the CPU's kernels included), and write the settings beside the
    checkpoint; returns the run's id."""
    from ..evaluation.machine import machine_tags
    from ..tracking.store import TrackingError

    tags = {"dataset": config.dataset, "seed": str(config.seed), "ras_deap.version": __version__,
            "run_dir": str(run_dir.resolve()), "final_training": config.final_training}
    tags.update(machine_tags())  # results depend on the CPU's kernels: record which ran
    # the folder as it is, not as it was spelled: a resume through another path (or a
    # default name drawn at the start) is no change of the logged params
    params = {**settings, "run_dir": str(run_dir.parent.resolve()),
              "run_name": run_dir.name}
    try:
        run_id = tracker.start_search(params, tags, run_name=run_dir.name,
                                      resume_run_id=state.extra.get("mlflow_run_id"),
                                      parent_run_id=parent_run_id)
    except TrackingError as exc:
        if not (new_run_if_lost and state.extra.get("mlflow_run_id")):
            raise
        warnings.warn(f"{exc}; logging the rest of the search to a new MLflow run (the "
                      f"{state.evaluations} individuals evaluated before are in the checkpoint "
                      "only)", stacklevel=3)
        run_id = tracker.start_search(params, tags, run_name=run_dir.name,
                                      parent_run_id=parent_run_id)
    state.extra["mlflow_run_id"] = run_id
    # the settings as plain JSON beside the checkpoint (python -m ras_deap.assess reads it)
    write_atomic(run_dir / CONFIG_NAME, json.dumps({"search": settings,
                                                    "mlflow_run_id": run_id}, indent=2) + "\n")
    return run_id


def _front_summary(front: dict[str, Any] | None) -> dict[str, Any]:
    """The summary's lines on the final front (none for a single objective)."""
    if not front:
        return {}
    out = {"front_size": len(front["front"]), "front_hypervolume": front["hypervolume"]}
    if "remeasured_hypervolume" in front:
        out["front_remeasured_hypervolume"] = front["remeasured_hypervolume"]
    out["front_genome_ids"] = [m["genome_id"] for m in front["front"]]
    return out
