"""MLflow runs for Optuna studies: one run per study, one nested run per trial.

The tree in the MLflow UI is ``study -> trial -> search -> individuals``: a
trial run holds the evolution settings Optuna chose (params), the value it
reached (metric ``value`` plus the intermediate ``best_fitness`` per
evaluation step) and the Optuna state (tag ``optuna.state``); the search that
trial ran is nested under it by ``run_search(parent_run_id=...)``, so every
architecture can be traced back to the settings that produced it. Logged with
:class:`mlflow.MlflowClient` directly (optuna-integration's ``MLflowCallback``
is deprecated and cannot nest the search run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType

from .. import __version__
from . import store
from .entities import MAX_TAG_LENGTH, batches, to_metrics, to_params, to_tags
from .experiments import describe_experiment, get_or_create_experiment
from .tags import PARENT_TAG, ROLE_TAG

__all__ = ["StudyTracker", "OPTUNA_TO_MLFLOW", "STUDY_TAG", "TRIAL_TAG", "STATE_TAG"]

STUDY_TAG = "optuna.study_name"
STORAGE_TAG = "optuna.storage"
TRIAL_TAG = "optuna.trial_number"
STATE_TAG = "optuna.state"
REASON_TAG = "failure"

# Optuna trial state -> MLflow run status
OPTUNA_TO_MLFLOW = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


class StudyTracker:
    """Logs an Optuna study to MLflow (``tracking_uri`` None: the project's
    default store). The study run is found again by its name and storage, so
    resuming a study adds its new trials under the same study run."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "ras_deap") -> None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise ValueError(f"experiment must be a non-empty name, got {experiment!r}")
        self.tracking_uri, self.artifact_location = store.resolve_tracking(tracking_uri)
        store.prepare_store(self.tracking_uri)
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._experiment_id: str | None = None

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = get_or_create_experiment(self.client, self.experiment,
                                                           self.artifact_location)
            describe_experiment(self.client, self._experiment_id)  # type: ignore[arg-type]
        return self._experiment_id  # type: ignore[return-value]

    # -- the study run -------------------------------------------------------------
    def start_study(self, study_name: str, storage: str, attrs: Mapping[str, Any]) -> str:
        """The study's run (created, or found again and set RUNNING); ``attrs``
        (space, budget, base config) become its params the first time."""
        flt = (f"tags.`{ROLE_TAG}` = 'study' and tags.`{STUDY_TAG}` = '{_quote(study_name)}' "
               f"and tags.`{STORAGE_TAG}` = '{_quote(storage)}'")
        found = self.client.search_runs([self.experiment_id], filter_string=flt,
                                        run_view_type=ViewType.ACTIVE_ONLY, max_results=1,
                                        order_by=["attributes.start_time ASC"])
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        tags = {ROLE_TAG: "study", STUDY_TAG: study_name, STORAGE_TAG: storage,
                "ras_deap.version": __version__}
        run = self.client.create_run(self.experiment_id, run_name=f"study-{study_name}",
                                     tags={t.key: t.value for t in to_tags(tags)})
        for _, p, _ in batches(params=to_params(dict(attrs))):
            self.client.log_batch(run.info.run_id, params=p)
        return run.info.run_id

    def end_study(self, run_id: str, metrics: Mapping[str, Any], tags: Mapping[str, Any],
                  artifacts: Sequence[Path] = (), status: str = "FINISHED") -> None:
        """Summary metrics/tags (best value, trial counts, best params) and the
        plots as artifacts; the run then ends with ``status``."""
        for m, _, t in batches(metrics=to_metrics(dict(metrics)), tags=to_tags(dict(tags))):
            self.client.log_batch(run_id, metrics=m, tags=t)
        for path in artifacts:
            self.client.log_artifact(run_id, str(path), "study")
        self.client.set_terminated(run_id, status=status)

    # -- trial runs ----------------------------------------------------------------
    def start_trial(self, study_run_id: str | None, study_name: str, number: int,
                    params: Mapping[str, Any], config: Mapping[str, Any]) -> str:
        """A run for trial ``number`` nested under the study run: Optuna's
        params under their own names, the full search config as ``config.<field>``."""
        tags = {ROLE_TAG: "trial", STUDY_TAG: study_name, TRIAL_TAG: str(number),
                STATE_TAG: "RUNNING"}
        if study_run_id:
            tags[PARENT_TAG] = study_run_id
        run = self.client.create_run(self.experiment_id, run_name=f"{study_name}-trial{number}",
                                     tags={t.key: t.value for t in to_tags(tags)})
        values = {**{f"config.{k}": v for k, v in config.items()}, **params}
        for _, p, _ in batches(params=to_params(values)):
            self.client.log_batch(run.info.run_id, params=p)
        return run.info.run_id

    def report(self, run_id: str, step: int, metrics: Mapping[str, Any]) -> None:
        """Intermediate values at ``step`` (the evaluations spent so far)."""
        for m, _, _ in batches(metrics=to_metrics(dict(metrics), step=step)):
            self.client.log_batch(run_id, metrics=m)

    def end_trial(self, run_id: str, state: str, value: float | None = None,
                  reason: str | None = None, tags: Mapping[str, Any] | None = None,
                  genome: dict[str, Any] | None = None) -> None:
        """End a trial run: ``state`` is Optuna's (COMPLETE, PRUNED, FAIL), kept
        as a tag and mapped to the MLflow status; ``reason`` says why it
        failed or was pruned."""
        if state not in OPTUNA_TO_MLFLOW:
            raise ValueError(f"state must be one of {sorted(OPTUNA_TO_MLFLOW)}, got {state!r}")
        all_tags: dict[str, Any] = {STATE_TAG: state, **(tags or {})}
        if reason:
            all_tags[REASON_TAG] = reason[:MAX_TAG_LENGTH]
        metrics = {"value": value} if value is not None else {}
        for m, _, t in batches(metrics=to_metrics(metrics), tags=to_tags(all_tags)):
            self.client.log_batch(run_id, metrics=m, tags=t)
        if genome is not None:
            self.client.log_dict(run_id, genome, "best_genome.json")
        self.client.set_terminated(run_id, status=OPTUNA_TO_MLFLOW[state])

    def stop_nested_searches(self, trial_run_id: str, reason: str) -> list[str]:
        """Mark the search run(s) nested under a pruned trial KILLED (a search
        stopped by the pruner did not fail); returns the run ids changed.
        Runs already KILLED or FINISHED are left alone."""
        flt = f"tags.`{PARENT_TAG}` = '{trial_run_id}' and tags.`{ROLE_TAG}` = 'search'"
        changed = []
        for run in self.client.search_runs([self.experiment_id], filter_string=flt,
                                           run_view_type=ViewType.ACTIVE_ONLY):
            if run.info.status in ("FAILED", "RUNNING"):
                self.client.set_tag(run.info.run_id, "ras_deap.stopped_by", reason[:500])
                self.client.set_terminated(run.info.run_id, status="KILLED")
                changed.append(run.info.run_id)
        return changed

    def close_dead_trial(self, trial_run_id: str, reason: str) -> None:
        """Close the runs of a trial whose process died: its searches and
        their unfinished individuals, then the trial run, all KILLED (the
        trial's Optuna state is FAIL)."""
        for search_id in self.stop_nested_searches(trial_run_id, reason):
            flt = f"tags.`{PARENT_TAG}` = '{search_id}'"
            for run in self.client.search_runs([self.experiment_id], filter_string=flt,
                                               run_view_type=ViewType.ACTIVE_ONLY,
                                               max_results=5000):
                if run.info.status == "RUNNING":
                    self.client.set_terminated(run.info.run_id, status="KILLED")
        tags = {STATE_TAG: "FAIL", REASON_TAG: reason[:MAX_TAG_LENGTH]}
        for _, _, t in batches(tags=to_tags(tags)):
            self.client.log_batch(trial_run_id, tags=t)
        self.client.set_terminated(trial_run_id, status="KILLED")

    def trial_runs(self, study_run_id: str) -> list[Any]:
        """The trial runs nested under a study run (for checks and reports)."""
        flt = f"tags.`{PARENT_TAG}` = '{study_run_id}' and tags.`{ROLE_TAG}` = 'trial'"
        return self.client.search_runs([self.experiment_id], filter_string=flt,
                                       run_view_type=ViewType.ACTIVE_ONLY, max_results=5000)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
