"""The Optuna objective: one trial = one RAS search under a fixed evaluation budget.

The value is **not** the best fitness the search saw: with a seed-to-seed
fitness spread of about 0.06, the maximum over a search's evaluations is
mostly its luckiest training run. The search picks its best architecture
(its hall of fame) as always, within ``config.max_evaluations`` evaluated
individuals, so settings that would spend more evaluations (more clusters,
more children) cannot win by spending more; then that architecture is
re-measured (:func:`ras_deap.evaluation.remeasure`): trained ``remeasure``
more times exactly as the search trained it (same evaluator, same
generation) on fresh evaluation seeds, and the trial's value is the mean
fitness of those trainings. Its spread and the search's maximum are kept as
user attributes. A trial therefore costs ``max_evaluations + remeasure``
trainings.

Intermediate values (best fitness so far, good enough for pruning) are
reported at fixed *evaluation* milestones rather than per generation: a
generation costs ``population * children`` evaluations, which differs between
trials, and Optuna's pruners compare trials at equal steps, so equal steps
must mean equal cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

import optuna

from ..checkpoint import CHECKPOINT_NAME
from ..config import SearchConfig
from ..errors import TuneError
from ..validate import check_int
from .space import SearchSpace

__all__ = ["Objective", "Milestones", "SearchFn", "EvaluatorFactory", "DEFAULT_REMEASURE"]

SearchFn = Callable[..., Any]  # run_search's signature: (config, *, on_generation, ...)
EvaluatorFactory = Callable[[SearchConfig], Any]  # make_evaluator's signature
DEFAULT_REMEASURE = 3  # fresh trainings of each trial's best architecture
log = logging.getLogger(__name__)


class Milestones:
    """Turns per-generation progress into reports at every ``every``-th
    evaluation: after a generation that brought the count to ``evaluations``
    every milestone not yet reported and <= ``evaluations`` is reported with
    the best fitness so far, so every trial has a value at every milestone it
    passed and the pruner always finds peers at the same step."""

    def __init__(self, every: int) -> None:
        check_int("report_every", every, error=TuneError)
        self.every = every
        self.next = every

    def passed(self, evaluations: int) -> list[int]:
        steps = []
        while self.next <= evaluations:
            steps.append(self.next)
            self.next += self.every
        return steps


@dataclass(eq=False)
class Objective:
    """Callable for ``study.optimize``: builds the trial's config from
    ``base`` and the space's suggestions, runs the search (``search_fn``,
    default :func:`ras_deap.search.run_search`), re-measures the search's best
    architecture with ``remeasure`` fresh trainings (through
    ``evaluator_factory(config)``, default :func:`ras_deap.search.make_evaluator`,
    the evaluator the search itself used) and returns their mean fitness.

    With a ``tracker`` (:class:`ras_deap.tracking.trials.StudyTracker`) each
    trial is an MLflow run nested under ``study_run_id`` with the search run
    nested under it. A failing search ends that run FAILED and re-raises, so
    Optuna marks the trial FAIL (``study.optimize(catch=(Exception,))`` keeps
    the study going); a pruned one ends it KILLED.
    """

    base: SearchConfig
    space: SearchSpace
    _: KW_ONLY
    study_name: str
    tracker: Any = None
    study_run_id: str | None = None
    search_fn: SearchFn | None = None
    report_every: int | None = None  # None: a tenth of the budget
    final_training: bool = False
    progress: bool = False
    remeasure: int = DEFAULT_REMEASURE
    evaluator_factory: EvaluatorFactory | None = None
    seeds: int = 1

    def __post_init__(self) -> None:
        if self.base.max_evaluations is None:
            raise TuneError("the base config needs max_evaluations (the per-trial budget): "
                            "without it trials that evaluate more individuals win by spending "
                            "more; pass --max-evaluations")
        self.report_every = self.report_every or max(1, self.base.max_evaluations // 10)
        check_int("remeasure", self.remeasure, error=TuneError,
                  hint=f"fresh trainings of each trial's best architecture; {DEFAULT_REMEASURE} "
                       "or more for values with a spread")
        check_int("seeds", self.seeds, error=TuneError,
                  hint="--tuning-seeds: searches per trial, on seeds seed, seed+1, ...")

    def config_for(self, trial: optuna.Trial) -> tuple[SearchConfig, dict[str, Any]]:
        """The trial's search config and the changes the space made to ``base``.
        Its run folder is named after the first trial of its retry series
        (:func:`series_number`), so a trial retried after a kill resumes the
        searches the killed one checkpointed instead of training them again."""
        changes = self.space.suggest(trial, self.base)
        config = self.base.replace(**changes, run_name=trial_run_name(trial, self.base.seed))
        return config, changes

    def _search(self) -> SearchFn:
        if self.search_fn is None:
            from ..search import run_search

            self.search_fn = run_search
        return self.search_fn

    def _remeasure(self, config: SearchConfig, best: Any) -> Any:
        """The search's best architecture trained ``self.remeasure`` more times
        as the generation it was selected in (only the seeds are new)."""
        from ..evaluation.remeasure import remeasure

        if self.evaluator_factory is None:
            from ..search import make_evaluator

            self.evaluator_factory = make_evaluator
        evaluator = self.evaluator_factory(config)
        generation = int(getattr(best, "generation", 0) or 0)
        return remeasure(evaluator, best.genome, repeats=self.remeasure, generation=generation,
                         salt="tune")

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        run_id: str | None = None
        progress: _PruningReporter | None = None
        try:
            config, _ = self.config_for(trial)  # a ConfigError here fails the trial
            settings = config.to_dict()
            trial.set_user_attr("config", settings)
            # its value is only comparable with trials on the same CPU kind (kernels round
            # differently: docs/design/other-cpus.md), so every trial says where it ran
            trial.set_user_attr("machine", _machine())
            if self.tracker is not None:
                run_id = self.tracker.start_trial(self.study_run_id, self.study_name,
                                                  trial.number, trial.params, settings)
                trial.set_user_attr("mlflow_run_id", run_id)
            progress = _PruningReporter(trial, config, Milestones(self.report_every),
                                        self.tracker, run_id)
            searches = self._searches(trial, config, run_id, progress)
            return self._complete(trial, config, run_id, searches, started)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("seconds", time.perf_counter() - started)
            if run_id is not None:
                best = progress.best if progress is not None else -math.inf
                self.tracker.stop_nested_searches(run_id, f"optuna pruner: {exc}")
                self.tracker.end_trial(run_id, "PRUNED",
                                       value=best if math.isfinite(best) else None,
                                       reason=str(exc))
            raise
        except BaseException as exc:
            self._failed(trial, run_id, exc, started)
            raise

    def _searches(self, trial: optuna.Trial, config: SearchConfig, run_id: str | None,
                  progress: _PruningReporter) -> _Searches:
        """One search per tuning seed, each winner re-measured; the first search
        reports to the pruner (``progress``)."""
        values, evaluations, first = [], 0, None
        for k in range(self.seeds):
            seeded = config if k == 0 else config.replace(
                seed=config.seed + k,
                run_name=trial_run_name(trial, config.seed + k))
            folder = Path(seeded.run_dir) / str(seeded.run_name)
            # a checkpoint committed with a study resumes in a checkout without the
            # MLflow store its search was logged to: the rest goes to a new run
            resume = ({"resume": folder, "new_run_if_lost": True}
                      if (folder / CHECKPOINT_NAME).is_file() else {})
            result = self._search()(seeded, on_generation=progress if k == 0 else _quiet,
                                    parent_run_id=run_id, progress=self.progress,
                                    final_training=self.final_training, **resume)
            search_best = float(result.summary.get("fitness", progress.best))
            if not math.isfinite(search_best):
                raise RuntimeError(f"the search returned a non-finite best fitness "
                                   f"({search_best})")
            measured = self._remeasure(seeded, result.best)
            values.append(float(measured.mean))
            evaluations += int(result.evaluations)
            if k == 0:
                first = (result, search_best, measured)
        result, search_best, measured = first
        return _Searches(result, search_best, measured, values, evaluations)

    def _complete(self, trial: optuna.Trial, config: SearchConfig, run_id: str | None,
                  searches: _Searches, started: float) -> float:
        """The trial's value (the mean over seeds of the re-measured winners),
        stored with its details as user attributes and, with a tracker, on the
        trial's MLflow run."""
        result, measured = searches.result, searches.measured
        value = float(sum(searches.values) / len(searches.values))
        if not math.isfinite(value):
            raise RuntimeError(f"the re-measured fitness is not finite ({value})")
        attrs = {"search_run_id": result.run_id, "evaluations": result.evaluations,
                 "best_id": result.summary.get("best_id"),
                 "accuracy": result.summary.get("accuracy"),
                 "robustness": result.summary.get("robustness"),
                 "search_best_fitness": searches.search_best,
                 "remeasured_mean": value,
                 "remeasured_sd": _finite_or_none(measured.sd),
                 "remeasured_ci95": _finite_or_none(measured.ci95),
                 "remeasure_repeats": measured.repeats,
                 "remeasured_fitness": list(measured.fitness),
                 "remeasured_accuracy": _finite_or_none(measured.accuracy_mean),
                 "remeasured_robustness": _finite_or_none(measured.robustness_mean),
                 "remeasure_failures": measured.failures,
                 "remeasure_generation": measured.generation,
                 "remeasure_seconds": measured.seconds,
                 "trainings": searches.evaluations + measured.repeats * self.seeds,
                 "seed_values": searches.values,
                 "seeds": [config.seed + k for k in range(self.seeds)],
                 "run_dir": str(result.run_dir),
                 "seconds": time.perf_counter() - started}
        if measured.failure_reasons:
            attrs["remeasure_failure"] = measured.failure_reasons[0][:2000]
        for key, item in attrs.items():
            trial.set_user_attr(key, item)
        if run_id is not None:
            self.tracker.report(run_id, result.evaluations, {
                "accuracy": result.summary.get("accuracy"),
                "robustness": result.summary.get("robustness"),
                "evaluations": result.evaluations, "seconds": attrs["seconds"],
                "search_best_fitness": searches.search_best,
                "remeasured_mean": value,
                "remeasured_sd": attrs["remeasured_sd"],
                "remeasured_ci95": attrs["remeasured_ci95"],
                "remeasure_repeats": measured.repeats,
                "remeasure_failures": measured.failures,
                "trainings": attrs["trainings"]})
            self.tracker.end_trial(
                run_id, "COMPLETE", value=value,
                tags={"search_run_id": result.run_id or "", "best_id": attrs["best_id"],
                      "value_kind": f"re-measured mean fitness over {measured.repeats} "
                                    "fresh trainings"},
                genome=result.best.genome.to_dict())
        return value

    def _failed(self, trial: optuna.Trial, run_id: str | None, exc: BaseException,
                started: float) -> None:
        """Record why a trial failed (an interrupted one is retried on the rerun)
        and end its MLflow run FAILED, never hiding the trial's own error."""
        reason = f"{type(exc).__name__}: {exc}"
        trial.set_user_attr("failure", reason[:2000])
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, SIGTERM: retried on the rerun
            trial.set_user_attr("interrupted", True)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        log.warning("trial %d failed: %s", trial.number, reason)
        if run_id is not None:
            try:
                self.tracker.end_trial(run_id, "FAIL", reason=reason)
            except Exception as track_exc:  # never hide the trial's own error
                log.warning("could not mark MLflow run %s FAILED: %s", run_id, track_exc)


def _machine() -> dict[str, str]:
    from ..evaluation.machine import machine_record

    return machine_record()


@dataclass
class _Searches:
    """What a trial's searches gave: the first search's result, best fitness and
    re-measurement, every seed's re-measured mean and the evaluations of all."""

    result: Any
    search_best: float
    measured: Any
    values: list[float]
    evaluations: int


class _PruningReporter:
    """``on_generation`` of a trial's first search: keeps the best fitness so
    far, reports it to MLflow and, at each evaluation milestone, to the pruner,
    and prunes the trial when the pruner says so."""

    def __init__(self, trial: optuna.Trial, config: SearchConfig, milestones: Milestones,
                 tracker: Any, run_id: str | None) -> None:
        self.trial, self.config, self.milestones = trial, config, milestones
        self.tracker, self.run_id = tracker, run_id
        self.best = -math.inf

    def __call__(self, generation: int, record: dict[str, Any]) -> None:
        value = float(record.get("max", math.nan))
        if math.isfinite(value):
            self.best = max(self.best, value)
        evaluations = int(record.get("evaluations", 0))
        if self.run_id is not None:
            self.tracker.report(self.run_id, evaluations, {
                "best_fitness": self.best if math.isfinite(self.best) else None,
                "generation": generation})
        if not math.isfinite(self.best):
            return
        steps = self.milestones.passed(evaluations)
        for step in steps:
            self.trial.report(self.best, step)
        # generation 0 is random models (nothing evolved yet to judge), and a
        # trial that has spent its budget is finished, not pruned
        if (steps and generation > 0 and evaluations < self.config.max_evaluations
                and self.trial.should_prune()):
            raise optuna.TrialPruned(
                f"pruned after {evaluations} evaluations (generation {generation}): "
                f"best fitness {self.best:.4f} is below the median of earlier trials")


def series_number(trial: optuna.Trial) -> int:
    """The number of the first trial of ``trial``'s retry series: the trial a
    killed trial was retried from (Optuna's ``RetryHeartbeatStaleTrialCallback``
    keeps the series in the system attribute ``retry_history``), or its own."""
    frozen = next((t for t in trial.study.get_trials(deepcopy=False)
                   if t.number == trial.number), None)
    history = frozen.system_attrs.get("retry_history") if frozen is not None else None
    return int(history[0]) if history else int(trial.number)


def trial_run_name(trial: optuna.Trial, seed: int) -> str:
    """``trial<series>-seed<seed>-<params hash>``: the same for a trial and its
    retries (same series, same params), never for another trial's search, even
    in an output folder left by an earlier study of the same name."""
    params = json.dumps(trial.params, sort_keys=True, default=str)
    digest = hashlib.sha256(params.encode()).hexdigest()[:8]
    return f"trial{series_number(trial):04d}-seed{seed}-{digest}"


def _quiet(generation: int, record: dict[str, Any]) -> None:
    """The progress hook of a trial's later seeds: only the first reports."""


def _finite_or_none(value: float) -> float | None:
    """JSON/MLflow-friendly: an unmeasured spread (one training) is None."""
    return float(value) if math.isfinite(value) else None
