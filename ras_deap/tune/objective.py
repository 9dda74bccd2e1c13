"""The Optuna objective: one trial = one RAS search under a fixed evaluation budget.

The value is the best fitness (validation accuracy + robustness) the search
reached within ``config.max_evaluations`` evaluated individuals, so settings
that would spend more evaluations (more clusters, more children) cannot win
by spending more. Intermediate values are reported at fixed *evaluation*
milestones rather than per generation: a generation costs ``population *
children`` evaluations, which differs between trials, and Optuna's pruners
compare trials at equal steps, so equal steps must mean equal cost.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import optuna

from ..config import SearchConfig
from .errors import TuneError
from .space import SearchSpace

__all__ = ["Objective", "Milestones", "SearchFn"]

SearchFn = Callable[..., Any]  # run_search's signature: (config, *, on_generation, ...)
log = logging.getLogger(__name__)


class Milestones:
    """Turns per-generation progress into reports at every ``every``-th
    evaluation: after a generation that brought the count to ``evaluations``
    every milestone not yet reported and <= ``evaluations`` is reported with
    the best fitness so far, so every trial has a value at every milestone it
    passed and the pruner always finds peers at the same step."""

    def __init__(self, every: int) -> None:
        if not isinstance(every, int) or every < 1:
            raise TuneError(f"report_every={every!r}: must be an integer >= 1")
        self.every = every
        self.next = every

    def passed(self, evaluations: int) -> list[int]:
        steps = []
        while self.next <= evaluations:
            steps.append(self.next)
            self.next += self.every
        return steps


class Objective:
    """Callable for ``study.optimize``: builds the trial's config from
    ``base`` and the space's suggestions, runs the search (``search_fn``,
    default :func:`ras_deap.search.run_search`) and returns the best fitness.

    With a ``tracker`` (:class:`ras_deap.tracking.trials.StudyTracker`) each
    trial is an MLflow run nested under ``study_run_id`` with the search run
    nested under it. A failing search ends that run FAILED and re-raises, so
    Optuna marks the trial FAIL (``study.optimize(catch=(Exception,))`` keeps
    the study going); a pruned one ends it KILLED.
    """

    def __init__(self, base: SearchConfig, space: SearchSpace, *, study_name: str,
                 tracker: Any = None, study_run_id: str | None = None,
                 search_fn: SearchFn | None = None, report_every: int | None = None,
                 final_training: bool = False, progress: bool = False) -> None:
        if base.max_evaluations is None:
            raise TuneError("the base config needs max_evaluations (the per-trial budget): "
                            "without it trials that evaluate more individuals win by spending "
                            "more; pass --budget")
        self.base = base
        self.space = space
        self.study_name = study_name
        self.tracker = tracker
        self.study_run_id = study_run_id
        self.search_fn = search_fn
        self.report_every = report_every or max(1, base.max_evaluations // 10)
        self.final_training = final_training
        self.progress = progress

    def config_for(self, trial: optuna.Trial) -> tuple[SearchConfig, dict[str, Any]]:
        """The trial's search config and the changes the space made to ``base``."""
        changes = self.space.suggest(trial, self.base)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        config = self.base.replace(**changes, run_name=f"trial{trial.number:04d}-{stamp}")
        return config, changes

    def _search(self) -> SearchFn:
        if self.search_fn is None:
            from ..search import run_search

            self.search_fn = run_search
        return self.search_fn

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        run_id: str | None = None
        best = -math.inf
        milestones = Milestones(self.report_every)
        try:
            config, _ = self.config_for(trial)  # a ConfigError here fails the trial
            trial.set_user_attr("config", config.to_dict())
            if self.tracker is not None:
                run_id = self.tracker.start_trial(self.study_run_id, self.study_name,
                                                  trial.number, trial.params, config.to_dict())
                trial.set_user_attr("mlflow_run_id", run_id)

            def on_generation(generation: int, record: dict[str, Any]) -> None:
                nonlocal best
                value = float(record.get("max", math.nan))
                if math.isfinite(value):
                    best = max(best, value)
                evaluations = int(record.get("evaluations", 0))
                if run_id is not None:
                    self.tracker.report(run_id, evaluations, {
                        "best_fitness": best if math.isfinite(best) else None,
                        "generation": generation})
                if not math.isfinite(best):
                    return
                steps = milestones.passed(evaluations)
                for step in steps:
                    trial.report(best, step)
                # generation 0 is random models (nothing evolved yet to judge), and a
                # trial that has spent its budget is finished, not pruned
                if (steps and generation > 0 and evaluations < config.max_evaluations
                        and trial.should_prune()):
                    raise optuna.TrialPruned(
                        f"pruned after {evaluations} evaluations (generation {generation}): "
                        f"best fitness {best:.4f} is below the median of earlier trials")

            result = self._search()(config, on_generation=on_generation, parent_run_id=run_id,
                                    progress=self.progress, final_training=self.final_training)
            value = float(result.summary.get("fitness", best))
            if not math.isfinite(value):
                raise RuntimeError(f"the search returned a non-finite best fitness ({value})")
            attrs = {"search_run_id": result.run_id, "evaluations": result.evaluations,
                     "best_id": result.summary.get("best_id"),
                     "accuracy": result.summary.get("accuracy"),
                     "robustness": result.summary.get("robustness"),
                     "run_dir": str(result.run_dir),
                     "seconds": time.perf_counter() - started}
            for key, item in attrs.items():
                trial.set_user_attr(key, item)
            if run_id is not None:
                self.tracker.report(run_id, result.evaluations, {
                    "accuracy": result.summary.get("accuracy"),
                    "robustness": result.summary.get("robustness"),
                    "evaluations": result.evaluations, "seconds": attrs["seconds"]})
                self.tracker.end_trial(
                    run_id, "COMPLETE", value=value,
                    tags={"search_run_id": result.run_id or "", "best_id": attrs["best_id"]},
                    genome=result.best.genome.to_dict())
            return value
        except optuna.TrialPruned as exc:
            trial.set_user_attr("seconds", time.perf_counter() - started)
            if run_id is not None:
                self.tracker.stop_nested_searches(run_id, f"optuna pruner: {exc}")
                self.tracker.end_trial(run_id, "PRUNED",
                                       value=best if math.isfinite(best) else None,
                                       reason=str(exc))
            raise
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("failure", reason[:2000])
            trial.set_user_attr("seconds", time.perf_counter() - started)
            log.warning("trial %d failed: %s", trial.number, reason)
            if run_id is not None:
                try:
                    self.tracker.end_trial(run_id, "FAIL", reason=reason)
                except Exception as track_exc:  # never hide the trial's own error
                    log.warning("could not mark MLflow run %s FAILED: %s", run_id, track_exc)
            raise
