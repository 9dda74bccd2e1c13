"""Running a study end to end: settings -> study -> trials -> report.

:func:`tune` is what ``python -m ras_deap.tune`` and the files in
``studies/`` call. Running it again with the same study name and storage
continues the study (new trials are added; the sampler is re-seeded from the
seed and the number of trials so far, so a continued study does not repeat
the first run's suggestions).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from .. import __version__
from ..config import EXECUTION_FIELDS, PRESETS, ConfigError, SearchConfig
from ..errors import TuneError
from .objective import DEFAULT_REMEASURE, EvaluatorFactory, Objective, SearchFn
from .report import StudyReport, format_report, summarise_study, write_outputs
from .settings import TuneSettings
from .space import SearchSpace, get_space
from .storage import open_study, public_url

__all__ = ["TuneOutcome", "TrialRecovery", "tune", "base_config", "study_attrs",
           "EXECUTION_FIELDS", "OBJECTIVE", "retry_interrupted"]

log = logging.getLogger(__name__)
MAX_RETRY = 2  # times a trial whose process died is run again
# What a trial's value is (kept in the study's attributes, see study_attrs).
OBJECTIVE = "remeasured_mean_fitness"


@dataclass
class TuneOutcome:
    study: optuna.Study
    report: StudyReport
    study_run_id: str | None
    new_trials: list[int]


def base_config(settings: TuneSettings) -> SearchConfig:
    """The config every trial starts from: the preset, the overrides, the
    budget (``max_evaluations``; ``generations`` is set so high that the
    budget is always what ends a search) and where outputs go. A full-set
    generation trains no longer than an ordinary one may, unless
    ``full_epochs`` is given: otherwise the smoke preset's 3-epoch searches
    would spend 50 epochs whenever a trial picks a short full-training
    period."""
    values: dict[str, Any] = {**PRESETS[settings.preset], **settings.overrides}
    if "full_epochs" not in values:
        values["full_epochs"] = min(SearchConfig.full_epochs,
                                    values.get("max_epochs", SearchConfig.max_epochs))
    values.update(max_evaluations=settings.budget, generations=settings.budget,
                  seed=settings.seed, tracking_uri=settings.tracking_uri,
                  experiment=settings.experiment,
                  run_dir=str(Path(settings.out_dir) / str(settings.study_name) / "runs"))
    try:
        return SearchConfig.from_dict(values, source="study settings")
    except ConfigError as exc:
        raise TuneError(str(exc)) from exc


def study_attrs(settings: TuneSettings, base: SearchConfig) -> dict[str, Any]:
    """What a trial value of this study measures; a study continued with
    different attrs would mix incomparable values (see :func:`open_study`)."""
    config = {k: v for k, v in base.to_dict().items() if k not in EXECUTION_FIELDS}
    # "objective": studies made when the value was the search's maximum fitness hold
    # other numbers (upward-biased by luck) and must not be continued with these
    return {"space": settings.space, "budget": settings.budget, "preset": settings.preset,
            "objective": OBJECTIVE, "config": config, "version": __version__}


def _sampler(settings: TuneSettings, space: SearchSpace, n_done: int
             ) -> optuna.samplers.BaseSampler:
    kind = settings.sampler or space.default_sampler
    if kind == "grid":
        if space.grid is None:
            raise TuneError(f"sampler='grid': the {space.name!r} space is continuous; use "
                            "--sampler tpe or random, or --space spectrum")
        return optuna.samplers.GridSampler(space.grid(settings.replicates), seed=settings.seed)
    seed = settings.seed * 1_000_003 + n_done  # a continued study draws new suggestions
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.startup_trials)


def _pruner(settings: TuneSettings, space: SearchSpace, report_every: int
            ) -> optuna.pruners.BasePruner:
    kind = settings.pruner or space.default_pruner
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=report_every,
                                              max_resource=settings.budget, reduction_factor=3)
    # no pruning in the first quarter of the budget: it is mostly random initial models
    return optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials,
                                       n_warmup_steps=settings.budget // 4)


def _remaining_grid(study: optuna.Study, grid: dict[str, list[Any]]) -> int:
    done = {tuple(t.params.get(k) for k in sorted(grid)) for t in study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                optuna.trial.TrialState.PRUNED))}
    total = math.prod(len(v) for v in grid.values())
    return total - len(done & set(_product(grid)))


def _product(grid: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    import itertools

    return list(itertools.product(*(grid[k] for k in sorted(grid))))


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    seconds = trial.user_attrs.get("seconds")
    took = f" in {seconds:.1f} s" if isinstance(seconds, float) else ""
    value = f" value {trial.value:.4f}" if trial.value is not None else ""
    extra = ""
    attrs = trial.user_attrs
    if trial.state == optuna.trial.TrialState.COMPLETE and "remeasure_repeats" in attrs:
        sd = attrs.get("remeasured_sd")
        spread = f" ± {sd:.4f}" if isinstance(sd, float) else ""
        search_best = attrs.get("search_best_fitness")
        maximum = f"; search maximum {search_best:.4f}" if isinstance(search_best, float) else ""
        value = (f" value {trial.value:.4f}{spread} (re-measured over "
                 f"{attrs['remeasure_repeats']} trainings{maximum})")
    elif trial.state == optuna.trial.TrialState.PRUNED and trial.value is not None:
        value = f" best so far {trial.value:.4f} (search maximum, not re-measured)"
    if trial.state == optuna.trial.TrialState.FAIL:
        extra = f" ({trial.user_attrs.get('failure', 'see the error above')})"
    elif trial.state == optuna.trial.TrialState.PRUNED:
        last = max(trial.intermediate_values) if trial.intermediate_values else 0
        extra = f" (after {last} evaluations)"
    print(f"trial {trial.number} {trial.state.name}{value}{took}{extra}  "
          f"{json.dumps(trial.params, default=str)}", flush=True)


def _trials_to_run(settings: TuneSettings, space: SearchSpace, study: optuna.Study, kind: str,
                   verbose: bool) -> int:
    """How many trials this command runs: ``--n-trials`` (default 8), and with
    a grid at most the grid points not done yet."""
    n_trials = settings.n_trials
    if kind == "grid" and space.grid is not None:
        remaining = _remaining_grid(study, space.grid(settings.replicates))
        n_trials = remaining if n_trials is None else min(n_trials, remaining)
        if remaining == 0 and verbose:
            print(f"study {str(settings.study_name)!r}: every grid point is done; nothing to run")
    elif n_trials is None:
        n_trials = 8
    return n_trials


def _cost_line(settings: TuneSettings, base: SearchConfig, space: SearchSpace, kind: str,
               trials_so_far: int, n_trials: int) -> str:
    """What this command will do and what each trial costs, said before it starts."""
    final = int(settings.final_training)
    searches, over = "a search", ""
    if settings.tuning_seeds > 1:
        searches = f"{settings.tuning_seeds} searches (seeds {settings.seed}-" \
                   f"{settings.seed + settings.tuning_seeds - 1}), each"
        over = ", averaged over the seeds"
    cost = f"{(settings.budget + settings.remeasure) * settings.tuning_seeds + final} trainings"
    size = f"{settings.budget} evaluations"
    if base.budget_epochs is not None:  # the compute budget ends a search, not the count
        cost = "a fixed training compute"
        size = f"{base.budget_epochs} epoch-equivalents (at most {settings.budget} evaluations)"
    return (f"study {str(settings.study_name)!r} in {public_url(settings.storage)}: "
            f"{trials_so_far} trials so far, running {n_trials} more ({space.name} space, "
            f"{kind} sampler); each trial costs {cost}: {searches} of {size} + "
            f"{settings.remeasure} trainings re-measuring its best architecture on fresh "
            f"seeds (the value is their mean fitness{over})"
            f"{' + 1 final training (not part of the value)' if final else ''}")


def _start_tracking(settings: TuneSettings, space: SearchSpace, kind: str,
                    recovery: TrialRecovery) -> tuple[Any, str | None]:
    """The study's MLflow tracker and parent run (None, None without ``--track``)."""
    if not settings.track:
        return None, None
    from ..tracking.trials import StudyTracker

    tracker = StudyTracker(settings.tracking_uri, settings.experiment)
    recovery.tracker = tracker
    run_id = tracker.start_study(str(settings.study_name), public_url(settings.storage),
                                 {"space": space.name, "budget": settings.budget,
                                  "preset": settings.preset, "sampler": kind,
                                  "pruner": settings.pruner or space.default_pruner})
    return tracker, run_id


def tune(settings: TuneSettings, *, search_fn: SearchFn | None = None,
         evaluator_factory: EvaluatorFactory | None = None,
         verbose: bool = True) -> TuneOutcome:
    """Create or continue the study, run its trials (failures are recorded as
    FAIL and the study goes on), then write and print the report.
    ``search_fn`` / ``evaluator_factory`` replace ``run_search`` /
    ``make_evaluator`` (the latter re-measures each trial's best architecture)."""
    space = get_space(settings.space)
    base = base_config(settings)
    name = str(settings.study_name)
    report_every = settings.report_every or max(1, settings.budget // 10)
    recovery = TrialRecovery()
    study = open_study(name, settings.storage, attrs=study_attrs(settings, base),
                       pruner=_pruner(settings, space, report_every),
                       failed_trial_callback=recovery)
    study.sampler = _sampler(settings, space, len(study.trials))
    retried = retry_interrupted(study)
    for params in settings.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    if retried and verbose:
        print(f"retrying interrupted trial(s) {', '.join(map(str, retried))} with the same "
              "parameters: their searches resume from their checkpoints", flush=True)
    kind = settings.sampler or space.default_sampler
    n_trials = _trials_to_run(settings, space, study, kind, verbose)
    tracker, study_run_id = _start_tracking(settings, space, kind, recovery)
    objective = Objective(base, space, study_name=name, tracker=tracker,
                          study_run_id=study_run_id, search_fn=search_fn,
                          report_every=report_every, final_training=settings.final_training,
                          progress=settings.progress, remeasure=settings.remeasure,
                          evaluator_factory=evaluator_factory, seeds=settings.tuning_seeds)
    before = {t.number for t in study.trials}
    if verbose:
        print(_cost_line(settings, base, space, kind, len(before), n_trials), flush=True)
        if settings.remeasure < DEFAULT_REMEASURE:
            print(f"note: --remeasure {settings.remeasure} < {DEFAULT_REMEASURE}: the values "
                  "have little or no usable spread; use 3 or more for numbers you report",
                  flush=True)
    status = "FINISHED"
    try:
        if n_trials:
            study.optimize(objective, n_trials=n_trials, timeout=settings.timeout,
                           catch=(Exception,), callbacks=[_print_trial] if verbose else None)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        report = summarise_study(study)
        files = write_outputs(study, report, Path(settings.out_dir) / name)
        if tracker is not None and study_run_id is not None:
            tracker.end_study(study_run_id, _study_metrics(report),
                              {"best_params": json.dumps(report.best_params, default=str),
                               "best_trial": str(report.best_trial),
                               "reproduce_command": report.command or ""},
                              artifacts=files, status=status)
        if verbose:
            print(format_report(report), flush=True)
    new = sorted({t.number for t in study.trials} - before)
    return TuneOutcome(study=study, report=report, study_run_id=study_run_id, new_trials=new)


def _interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial ended FAIL by Ctrl-C or SIGTERM (not by its own error)."""
    if trial.state != optuna.trial.TrialState.FAIL:
        return False
    if trial.user_attrs.get("interrupted"):
        return True
    # studies written before the attribute existed: the failure names the signal
    return str(trial.user_attrs.get("failure", "")).startswith(("KeyboardInterrupt", "Terminated"))


def retry_interrupted(study: optuna.Study) -> list[int]:
    """Queue each interrupted trial again with its parameters, once.

    A trial cut by the end of a session is not a bad setting: without a retry
    the continued study would sample anew and waste the searches the cut trial
    checkpointed. The retry joins the cut trial's series (``retry_history``, as
    Optuna's ``RetryHeartbeatStaleTrialCallback`` does), so its searches reuse the same
    run folders and resume. Returns the numbers of the trials queued again."""
    trials = study.get_trials(deepcopy=False)
    done = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    queued = []
    for trial in trials:
        if not _interrupted(trial) or trial.number in done:
            continue
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        study.add_trial(optuna.create_trial(
            state=optuna.trial.TrialState.WAITING, params=trial.params,
            distributions=trial.distributions,
            system_attrs={"failed_trial": trial.number, "retry_history": history}))
        queued.append(trial.number)
    return queued


class TrialRecovery:
    """Optuna's ``failed_trial_callback`` for trials whose process died (their
    heartbeat stopped): the trial is retried with the same parameters
    (:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`) and its MLflow runs
    (trial, nested search) are closed KILLED instead of staying RUNNING."""

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        with warnings.catch_warnings():  # experimental in Optuna 5, the deprecated one's heir
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.tracker: Any = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if self.tracker is None or not run_id:
            return
        try:
            self.tracker.close_dead_trial(run_id, f"trial {trial.number}'s process died "
                                                  "(no heartbeat); retried as a new trial")
        except Exception as exc:  # the study goes on; the runs can be closed by hand
            log.warning("could not close the MLflow runs of dead trial %d: %s",
                        trial.number, exc)


def _study_metrics(report: StudyReport) -> dict[str, Any]:
    metrics: dict[str, Any] = {f"trials_{k.lower()}": v for k, v in report.counts.items()}
    metrics["best_value"] = report.best_value
    for key in ("remeasured_sd", "remeasured_ci95", "search_best_fitness"):
        if isinstance(report.best_attrs.get(key), int | float):
            metrics[f"best_{key}"] = report.best_attrs[key]
    metrics["importances_reliable"] = float(report.importances_reliable)
    metrics.update({f"importance_{k}": v for k, v in report.importances.items()})
    return metrics
