"""A complete RAS search as one function: :func:`run_search`.

This is the integration layer: it wires the genome/evolution code (pure
Python), the torch evaluator, the map backend, MLflow tracking and the
checkpoints together. ``python -m ras_deap.run``, the Optuna studies and the
baseline comparison all call it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from deap import tools
from tqdm.auto import tqdm

from . import __version__
from .atomic import write_atomic
from .checkpoint import (
    CHECKPOINT_NAME,
    LEGACY_CHECKPOINT_NAME,
    Checkpoint,
    CheckpointError,
    checkpoint_text,
    load_checkpoint,
    save_checkpoint,
)
from .config import ConfigError, SearchConfig
from .evolution import (
    Individual,
    SearchState,
    build_toolbox,
    cached_spectrum,
    finished,
    initial_state,
    step,
)
from .genome import SPECTRUM_FEATURES
from .locks import RunLock
from .parallel import make_map

__all__ = ["SearchResult", "run_search", "resolve_run_dir", "create_run_dir", "make_evaluator",
           "check_sizes", "RESUMABLE_OVERRIDES", "SIZE_LIMITS", "CONFIG_NAME"]

CONFIG_NAME = "config.json"  # the run's settings and MLflow run id, as plain JSON

# Options that may change when a run is resumed; everything else must match
# the checkpoint, or the resumed search would not be the same search.
RESUMABLE_OVERRIDES = ("generations", "max_evaluations", "workers", "scheduler", "threads",
                       "device", "tracking_uri", "experiment")

# wall-clock end (epoch seconds) of an evaluation, added to its metrics by the
# worker and taken out again as soon as the main process receives the result
_ENDED_AT = "_ras_deap_evaluation_ended_at"


class _Timed:
    """The evaluator as ``toolbox.evaluate``, noting when each evaluation
    ended (in the worker, where it ran), so the individual's MLflow run
    spans the real evaluation and not the moment it was logged."""

    def __init__(self, evaluate: Callable[[Any], Any]) -> None:
        self.evaluate = evaluate

    def __call__(self, individual: Any) -> Any:
        result = self.evaluate(individual)
        metrics = getattr(result, "metrics", None)
        if isinstance(metrics, dict):
            metrics[_ENDED_AT] = time.time()
        return result


def _evaluation_window(ind: Individual) -> tuple[float | None, float | None]:
    """``(start, end)`` of ``ind``'s evaluation in epoch seconds (the start is
    the end minus the evaluator's ``eval_seconds``), removing the end mark
    from its metrics."""
    end = ind.metrics.pop(_ENDED_AT, None)
    if end is None:
        return None, None
    seconds = ind.metrics.get("eval_seconds")
    return (float(end) - float(seconds) if seconds is not None else None), float(end)


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


def _default_name(config: SearchConfig) -> str:
    """``<dataset>-seed<seed>-<time>-<random suffix>``: two runs started in
    the same second still get two folders."""
    return (f"{config.dataset}-seed{config.seed}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-"
            f"{secrets.token_hex(3)}")


def resolve_run_dir(config: SearchConfig, resume: bool | str | Path = False) -> Path:
    """The folder of this run's checkpoint and outputs.

    ``resume=True`` picks ``runs/<run_name>`` or, without a name, the most
    recently modified run folder holding a checkpoint; a path resumes that
    folder (or checkpoint file). A new run without a name gets a fresh
    unique name (the folder is created by :func:`create_run_dir`)."""
    base = Path(config.run_dir)
    if isinstance(resume, (str, Path)) and not isinstance(resume, bool):
        path = Path(resume)
        return path.parent if path.is_file() else path
    if resume:
        if config.run_name:
            return base / config.run_name
        candidates = sorted((p for name in (CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAME)
                             for p in base.glob(f"*/{name}")), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise CheckpointError(f"--resume: no run with a checkpoint under {base}/; start a "
                                  "new run without --resume")
        return candidates[-1].parent
    return base / (config.run_name or _default_name(config))


def create_run_dir(config: SearchConfig, planned: Path) -> Path:
    """Create a new run's folder. A default name is created exclusively (a
    collision draws another suffix); a name the user chose may exist already
    (without a checkpoint), since its lock, not the mkdir, decides who owns
    it."""
    planned.parent.mkdir(parents=True, exist_ok=True)
    if config.run_name:
        planned.mkdir(exist_ok=True)
        return planned
    for _ in range(100):
        try:
            planned.mkdir()
            return planned
        except FileExistsError:
            planned = planned.parent / _default_name(config)
    raise CheckpointError(f"could not create a fresh run folder under {planned.parent}")


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
    if total > MAX_EVALUATIONS:
        raise ConfigError(f"this search would train {total:,} networks (population x (1 + "
                          f"generations x children)), more than {MAX_EVALUATIONS:,}; lower "
                          "--generations, --population or --children, cap it with "
                          "--max-evaluations, or pass --force")
    cores = os.cpu_count() or 1
    if config.workers > max(64, 4 * cores):
        raise ConfigError(f"workers={config.workers}: far more worker processes than the "
                          f"{cores} cores (each holds the dataset and torch, about 1 GB); use "
                          "at most a few per core, or pass --force")


def make_evaluator(config: SearchConfig) -> Any:
    """The torch evaluator for a config (imported lazily: torch is heavy)."""
    from .bank import default_bank_path
    from .evaluation import Evaluator, TrainConfig

    bank = config.bank or default_bank_path(config.dataset)
    shared = set(TrainConfig.__dataclass_fields__) & set(SearchConfig.__dataclass_fields__)
    train = TrainConfig(**{name: getattr(config, name) for name in sorted(shared)})
    return Evaluator(dataset_name=config.dataset, data_dir=config.data_dir,
                     bank_path=str(bank) if bank else None, train_config=train,
                     seed=config.seed, num_threads=config.threads, device=config.device,
                     download=config.download, robustness=config.robustness)


def _check_resumable(stored: dict[str, Any], config: SearchConfig) -> SearchConfig:
    """``config`` if it describes the same search as the checkpoint: only the
    options in ``RESUMABLE_OVERRIDES`` (and the run folder) may differ."""
    current = config.to_dict()
    changed = sorted(k for k, v in stored.items()
                     if k not in (*RESUMABLE_OVERRIDES, "run_dir", "run_name")
                     and current.get(k) != v)
    if changed:
        raise ConfigError(f"cannot resume with different {', '.join(changed)}: the checkpoint "
                          f"was made with {', '.join(f'{k}={stored[k]!r}' for k in changed)}")
    return config


def _population_metrics(state: SearchState) -> dict[str, float]:
    """Per-generation metrics of the cluster representatives, for MLflow and
    the figures (the logbook has the fitness statistics)."""
    from .report import architecture_ranges, architecture_statistics

    pop = state.population
    fitness = np.array([ind.fitness.values[0] for ind in pop])
    best = pop[int(np.argmax(fitness))]
    out: dict[str, float] = {
        "best_fitness": float(fitness.max()),
        "mean_fitness": float(fitness.mean()),
        "min_fitness": float(fitness.min()),
        "evaluations": float(state.evaluations),
        "models": float(len(pop)),
        "layer_subpopulation": float(len(state.pool.layers)),
        "block_subpopulation": float(len(state.pool.blocks)),
    }
    for key in ("accuracy", "robustness"):
        values = [ind.metrics.get(key, 0.0) for ind in pop]
        # the fittest's accuracy, not the highest accuracy (that is max_accuracy)
        out[f"fittest_{key}"] = float(best.metrics.get(key, 0.0))
        out[f"mean_{key}"] = float(np.mean(values))
        out[f"max_{key}"] = float(np.max(values))
        out[f"min_{key}"] = float(np.min(values))
    spectra = np.array([cached_spectrum(ind.genome) for ind in pop], dtype=float).mean(axis=0)
    out.update({f"spectrum_{n}": float(v) for n, v in zip(SPECTRUM_FEATURES, spectra,
                                                        strict=True)})
    out.update(architecture_statistics([ind.genome for ind in pop]))
    out.update(architecture_ranges([ind.genome for ind in pop]))
    return out


def _training_schedule(config: SearchConfig, evaluator: Any) -> Callable[[int], str]:
    """``generation -> "full" | "subset"``: the schedule the evaluator trains
    with (its TrainConfig; one built from ``config`` as make_evaluator does
    when the evaluator has none), registered as ``toolbox.schedule``."""
    train = getattr(evaluator, "train_config", None)
    if train is None:
        from .evaluation import TrainConfig

        shared = set(TrainConfig.__dataclass_fields__) & set(SearchConfig.__dataclass_fields__)
        train = TrainConfig(**{name: getattr(config, name) for name in sorted(shared)})
    return lambda generation: "full" if train.is_full_generation(generation) else "subset"


def _genetic_parent_key(state: SearchState, ind: Individual) -> str | None:
    """The tracking key of the representative ``ind`` was mutated from (the
    one of its cluster, still in the population while its generation is
    evaluated), or None (generation 0, a re-evaluation, an old checkpoint)."""
    if ind.parent_id is None or getattr(ind, "reevaluation_of", None) is not None:
        return None
    cluster = ind.cluster
    if cluster is None or not 0 <= cluster < len(state.population):
        return None
    rep = state.population[cluster]
    return getattr(rep, "tracking_key", None) if rep.genome.id == ind.parent_id else None


def _individual_record(state: SearchState, ind: Individual, *,
                       parent_key: str | None = None,
                       window: tuple[float | None, float | None] = (None, None)) -> Any:
    from .tracking import IndividualRecord

    index = next(i for i, o in enumerate(state.offspring) if o is ind)
    # a representative re-evaluated under a new schedule is not a child: mark it
    reevaluation = getattr(ind, "reevaluation_of", None) is not None
    return IndividualRecord(
        key=f"g{ind.generation}-i{index}",
        genome_id=ind.genome.id,
        generation=ind.generation,
        index=index,
        cluster=ind.cluster,
        parent_id=ind.parent_id,
        mutations=list(ind.mutations),
        fitness=float(ind.fitness.values[0]),
        metrics={k: float(v) for k, v in ind.metrics.items()},
        spectrum=dict(zip(SPECTRUM_FEATURES, map(float, cached_spectrum(ind.genome)),
                          strict=True)),
        genome=ind.genome.to_dict(),
        failure=ind.failure,
        extra_params={"schedule": getattr(ind, "schedule", None),
                      "reevaluation": "true" if reevaluation else "false"},
        parent_key=parent_key,
        started_at=window[0],
        ended_at=window[1],
    )


def run_search(config: SearchConfig, *,
               on_generation: Callable[[int, dict[str, Any]], None] | None = None,
               parent_run_id: str | None = None, resume: bool | str | Path = False,
               progress: bool = True, final_training: bool = True,
               on_individual: Callable[[Individual], None] | None = None,
               register_model: str | None = None, force: bool = False) -> SearchResult:
    """Run (or resume) a RAS search and return its result.

    The run folder is owned by this call: a second process resuming it
    meanwhile gets :class:`~ras_deap.errors.RunLockedError`. Resuming a run
    that has ended returns its stored result (``already_finished``) and
    changes nothing. Sizes beyond :data:`SIZE_LIMITS` are refused unless
    ``force``.

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
    from .tracking import SearchTracker

    if not force:
        check_sizes(config)
    run_dir = resolve_run_dir(config, resume)
    with contextlib.ExitStack() as owned:  # the run folder's lock, the worker pool
        if resume:
            if run_dir.is_dir():
                owned.enter_context(RunLock(run_dir))  # before reading: no one else writes it
            checkpoint = load_checkpoint(run_dir if run_dir.is_dir() else
                                         run_dir / CHECKPOINT_NAME)
            config = _check_resumable(checkpoint.config, config)
            state, history = checkpoint.state, checkpoint.history
            if _already_finished(checkpoint, config, final_training):
                return _finished_result(checkpoint, run_dir)
        else:
            if (run_dir / CHECKPOINT_NAME).exists():
                raise ConfigError(f"run folder {run_dir} already holds a checkpoint: pass "
                                  "--resume to continue it, or choose another --run-name")
            state, history = initial_state(config.seed, config.population), []
        evaluator = make_evaluator(config)
        evaluator.data()  # a missing data folder or a wrong bank fails here, before any work
        tracker = SearchTracker(config.tracking_uri, config.experiment,  # the store answers
                                background=True)
        # ends the search run KILLED/FAILED whatever stops the search once it has started
        owned.enter_context(tracker)
        mapper = make_map(config.workers, config.scheduler)  # the scheduler answers
        aborted = [True]  # until the search ends normally: then the pool may finish politely
        owned.callback(lambda: mapper.close(abort=aborted[0]))
        if not resume:
            run_dir = create_run_dir(config, run_dir)
            owned.enter_context(RunLock(run_dir))
            if (run_dir / CHECKPOINT_NAME).exists():  # another process got there first
                raise ConfigError(f"run folder {run_dir} already holds a checkpoint: pass "
                                  "--resume to continue it, or choose another --run-name")
        try:
            result = _search(config, state, history, run_dir, evaluator, tracker, mapper,
                             on_generation=on_generation, parent_run_id=parent_run_id,
                             progress=progress, final_training=final_training,
                             on_individual=on_individual, register_model=register_model)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say where to resume
            exc.run_dir = run_dir  # type: ignore[attr-defined]
            raise
        aborted[0] = False
        return result


def _already_finished(checkpoint: Checkpoint, config: SearchConfig,
                      final_training: bool) -> bool:
    """Whether a resumed run has nothing left to do: it ended (and was
    finalised as asked) and the resumed config adds no generations."""
    done = checkpoint.completed
    return (done is not None
            and finished(checkpoint.state, config.generations, config.max_evaluations)
            and (bool(done.get("final_training")) or not final_training))


def _finished_result(checkpoint: Checkpoint, run_dir: Path) -> SearchResult:
    """The result of a run that had already ended, read from its checkpoint
    (nothing is trained or logged again)."""
    state = checkpoint.state
    summary = dict((checkpoint.completed or {}).get("summary") or {})
    return SearchResult(best=state.halloffame[0], population=list(state.population),
                        logbook=state.logbook, history=checkpoint.history,
                        evaluations=state.evaluations, run_id=state.extra.get("mlflow_run_id"),
                        run_dir=run_dir, summary=summary, already_finished=True)


def _search(config: SearchConfig, state: SearchState, history: list[dict[str, Any]],
            run_dir: Path, evaluator: Any, tracker: Any, mapper: Any, *,
            on_generation: Callable[[int, dict[str, Any]], None] | None,
            parent_run_id: str | None, progress: bool, final_training: bool,
            on_individual: Callable[[Individual], None] | None,
            register_model: str | None) -> SearchResult:
    """The search proper, in a run folder this process owns."""
    ckpt_path = run_dir / CHECKPOINT_NAME
    timings = {"evaluation": 0.0, "tracking": 0.0, "checkpoint": 0.0, "evolution": 0.0}
    started = time.perf_counter()
    # cumulative over the sessions of a resumed search, for the timing/ charts
    earlier = {k: float(v) for k, v in state.extra.get("timings", {}).items()}
    toolbox = build_toolbox(state, evaluate=_Timed(evaluator), map_fn=mapper,
                            n_mutations=config.mutations, layer_limit=config.layer_limit,
                            block_limit=config.block_limit, distance=config.distance,
                            schedule=_training_schedule(config, evaluator))
    tags = {"dataset": config.dataset, "seed": str(config.seed), "ras_deap.version": __version__,
            "run_dir": str(run_dir.resolve())}
    run_id = tracker.start_search(config.to_dict(), tags, run_name=run_dir.name,
                                  resume_run_id=state.extra.get("mlflow_run_id"),
                                  parent_run_id=parent_run_id)
    state.extra["mlflow_run_id"] = run_id
    # the settings as plain JSON beside the checkpoint (python -m ras_deap.assess reads it)
    write_atomic(run_dir / CONFIG_NAME, json.dumps({"search": config.to_dict(),
                                                    "mlflow_run_id": run_id}, indent=2) + "\n")

    def save() -> None:
        # the state as it is now, written once the MLflow writes queued before it are done
        t = time.perf_counter()
        text = checkpoint_text(Checkpoint(config=config.to_dict(), state=state,
                                          history=history))
        tracker.after_writes(write_atomic, ckpt_path, text)
        timings["checkpoint"] += time.perf_counter() - t

    total_gens = config.generations + 1
    gen_bar = tqdm(total=total_gens, desc="generations", unit="gen", disable=not progress,
                   initial=len(history), position=0)
    eval_bar: Any = None
    last_mark = [time.perf_counter()]

    def on_evaluated(st: SearchState, ind: Individual) -> None:
        nonlocal eval_bar
        now = time.perf_counter()
        timings["evaluation"] += now - last_mark[0]
        if eval_bar is None:
            done = sum(o.fitness.valid for o in st.offspring) - 1
            eval_bar = tqdm(total=len(st.offspring), initial=done, leave=False, position=1,
                            desc=f"gen {st.generation} evaluations", unit="model",
                            disable=not progress)
        window = _evaluation_window(ind)
        # the parent's run id is looked up when the writer writes this record (in order)
        record = _individual_record(st, ind, parent_key=_genetic_parent_key(st, ind),
                                    window=window)
        tracker.log_individual(record)
        ind.tracking_key = record.key  # kept in checkpoints and the hall of fame
        t = time.perf_counter()
        timings["tracking"] += t - now
        save()
        fits = [o.fitness.values[0] for o in st.offspring if o.fitness.valid]
        eval_bar.set_postfix(best=f"{max(fits):.3f}", mean=f"{np.mean(fits):.3f}")
        eval_bar.update(1)
        if on_individual is not None:
            on_individual(ind)
        last_mark[0] = time.perf_counter()

    def on_bred(st: SearchState) -> None:
        timings["evolution"] += time.perf_counter() - last_mark[0]  # breeding
        save()
        last_mark[0] = time.perf_counter()

    try:
        with tracker:
            while not finished(state, config.generations, config.max_evaluations):
                last_mark[0] = time.perf_counter()
                record = step(state, toolbox, children=config.children, on_bred=on_bred,
                              on_evaluated=on_evaluated, budget=config.max_evaluations)
                if eval_bar is not None:
                    eval_bar.close()
                    eval_bar = None
                timings["evolution"] += time.perf_counter() - last_mark[0]  # selection
                metrics = _population_metrics(state)
                history_record = {"gen": state.generation, "nevals": record["nevals"],
                                  "max": record["max"], "mean": record["mean"],
                                  "min": record["min"], **metrics}
                history.append(history_record)
                t = time.perf_counter()
                so_far = {k: earlier.get(k, 0.0) + v for k, v in
                          {**timings, "total": t - started}.items()}
                timings["writer"] = tracker.writer_seconds
                state.extra["timings"] = so_far
                tracker.log_generation(state.generation, {
                    **metrics, **{f"seconds_{k}": v for k, v in so_far.items()}})
                timings["tracking"] += time.perf_counter() - t
                save()
                gen_bar.set_postfix(best=f"{metrics['best_fitness']:.3f}",
                                    mean=f"{metrics['mean_fitness']:.3f}",
                                    evals=state.evaluations)
                gen_bar.update(1)
                if on_generation is not None:
                    try:
                        on_generation(state.generation, history_record)
                    except BaseException:
                        # stopped by the caller (e.g. optuna.TrialPruned): not a failure
                        tracker.end_search("KILLED")
                        raise
            best = state.halloffame[0]
            summary = _summarise(best, state)
            best_run = tracker.mark_best(getattr(best, "tracking_key", None), best.genome.id)
            summary["best_run_id"] = best_run
            figures: list[str] = []
            if final_training:
                summary.update(_finalise(config, evaluator, best, history, state, tracker,
                                         run_dir, best_run, register_model))
                figures = ["figures/fig3_accuracy.png", "figures/fig4_architecture.png",
                           "best_model/best_architecture.png"]
            summary["wall_seconds"] = time.perf_counter() - started
            summary["run_dir"] = str(run_dir)
            summary["mlflow_run_id"] = run_id
            summary["mlflow_ui"] = tracker.ui_command()
            summary["mlflow_runs_url"] = tracker.runs_url()
            summary["mlflow_run_url"] = tracker.run_url()
            tracker.log_dict(summary, "summary.json")
            tracker.describe(_search_description(summary, tracker, figures))
            timings["total"] = time.perf_counter() - started
            tracker.end_search("FINISHED")
            timings["writer"] = tracker.writer_seconds
            # the run has ended: a later --resume says so and changes nothing
            t = time.perf_counter()
            save_checkpoint(ckpt_path, Checkpoint(
                config=config.to_dict(), state=state, history=history,
                completed={"final_training": final_training, "summary": summary}))
            timings["checkpoint"] += time.perf_counter() - t
    finally:
        if eval_bar is not None:
            eval_bar.close()
        gen_bar.close()
    return SearchResult(best=best, population=list(state.population), logbook=state.logbook,
                        history=history, evaluations=state.evaluations, run_id=run_id,
                        run_dir=run_dir, summary=summary, timings=timings)


def _summarise(best: Individual, state: SearchState) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "best_id": best.genome.id,
        "generation_found": best.generation,
        "generations": state.generation,
        "evaluations": state.evaluations,
    }
    summary.update({k: float(v) for k, v in best.metrics.items()})
    summary["fitness"] = float(best.fitness.values[0])  # DEAP's value wins over the metric
    return summary


def _search_description(summary: dict[str, Any], tracker: Any, figures: list[str]) -> str:
    """The search run's Markdown description (the best, figures, the model)."""
    from .tracking.notes import search_description
    from .tracking.store import is_remote

    return search_description(summary, experiment_id=tracker.experiment_id,
                              run_id=tracker.run_id, best_run_id=summary.get("best_run_id"),
                              model_uri=summary.get("model_uri"),
                              tracking_uri=None if is_remote(tracker.tracking_uri)
                              else tracker.tracking_uri,
                              figures=figures, registered=summary.get("registered_model"))


def _finalise(config: SearchConfig, evaluator: Any, best: Individual,
              history: list[dict[str, Any]], state: SearchState, tracker: Any,
              run_dir: Path, best_run: str | None = None,
              register_model: str | None = None) -> dict[str, Any]:
    """Retrain the best architecture on the full training set, measure its
    test accuracy and robustness, and log weights, drawing and figures (on
    the search run) and the retrained network as an MLflow model with its
    ``final/`` metrics (on the best individual's run ``best_run``)."""
    from .report import (
        draw_model,
        model_to_dot,
        plot_accuracy_over_generations,
        plot_architecture_statistics,
    )

    out: dict[str, Any] = {}
    full_generation = config.full_every if config.full_every > 0 else 0
    result = evaluator.evaluate(best.genome, full_generation, seed=best.eval_seed,
                                with_test=True, return_module=True)
    final = {f"final_{k}": float(v) for k, v in result.metrics.items()}
    out.update(final)
    if result.failure:
        out["final_failure"] = result.failure
    else:
        import torch  # the evaluator already imported it

        weights = run_dir / "best_model.pt"
        torch.save(result.state_dict, weights)
        tracker.log_artifact(weights, "best_model")
    genome = run_dir / "best_genome.json"
    genome.write_text(best.genome.to_json())
    tracker.log_artifact(genome, "best_model")
    dot = run_dir / "best_architecture.dot"
    dot.write_text(model_to_dot(best.genome))
    tracker.log_artifact(dot, "best_model")
    drawing = draw_model(best.genome, run_dir / "best_architecture.png")
    tracker.log_artifact(drawing, "best_model")
    tracker.log_artifact(plot_accuracy_over_generations(history, run_dir / "fig3_accuracy.png"),
                         "figures")
    tracker.log_artifact(plot_architecture_statistics(history, run_dir / "fig4_architecture.png"),
                         "figures")
    if best_run is None:
        return out
    module = getattr(result, "module", None) if not result.failure else None
    example = output = None
    if module is not None:
        import torch

        example = np.ascontiguousarray(evaluator.data().dataset.val.x[:4], dtype=np.float32)
        with torch.no_grad():
            output = module(torch.from_numpy(example)).numpy()
    from .tracking.notes import run_link

    note = (f"**The best individual of search "
            f"{run_link(tracker.experiment_id, tracker.run_id, tracker.run_id[:8])}.** "
            "Its `final/` metrics are the architecture retrained on the full training set"
            + (", and `model` is that network: "
               f"`mlflow.pytorch.load_model(\"runs:/{best_run}/model\")`." if module is not None
               else "."))
    try:
        info = tracker.log_final(best_run, result.metrics, module=module,
                                 input_example=example, output_example=output,
                                 extra_files=(genome, drawing), register_name=register_model,
                                 description=note)
    except Exception as exc:  # the search is done and saved: report, do not lose it
        warnings.warn(f"could not log the retrained network to MLflow ({exc}); its weights "
                      f"are in {run_dir / 'best_model.pt'}", stacklevel=2)
        out["model_failure"] = f"{type(exc).__name__}: {exc}"
        return out
    if info is not None:
        out["model_uri"] = info.run_uri
        out["logged_model_uri"] = info.model_uri
        out["model_format"] = info.serialization
        if info.registered:
            out["registered_model"] = info.registered
    return out
