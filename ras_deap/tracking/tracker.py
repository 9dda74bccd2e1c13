"""SearchTracker: one MLflow parent run per search, one child run per individual.

Children are written with :class:`mlflow.MlflowClient` calls (create_run with
all tags, one ``log_batch`` for params and metrics, ``log_dict`` for the
genome, ``set_terminated``) instead of the fluent ``mlflow.start_run`` stack:
no global state, and a handful of store round-trips per individual. Only the
main process should hold a tracker.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from .. import __version__
from . import store
from .entities import (
    MAX_TAG_LENGTH,
    IndividualRecord,
    batches,
    flatten_config,
    to_metrics,
    to_params,
    to_tags,
)

__all__ = ["SearchTracker", "KEY_TAG", "ROLE_TAG", "PARENT_TAG", "FAILURE_TAG"]

PARENT_TAG = "mlflow.parentRunId"
KEY_TAG = "ras_deap.key"
ROLE_TAG = "ras_deap.role"
FAILURE_TAG = "failure"
_TERMINAL = ("FINISHED", "FAILED", "KILLED")


class SearchTracker:
    """Logs one search to MLflow. Use as ``with SearchTracker(uri) as t:``;
    leaving the block ends the run FINISHED, FAILED on an exception, KILLED
    on Ctrl-C. ``sqlite_wal=False`` leaves a local SQLite store's journal mode
    alone (for filesystems without WAL support)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "ras_deap",
                 sqlite_wal: bool = True) -> None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise ValueError(f"experiment must be a non-empty name, got {experiment!r}")
        self.tracking_uri, self.artifact_location = store.resolve_tracking(tracking_uri)
        if sqlite_wal:
            store.enable_wal(self.tracking_uri)
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._experiment_id: str | None = None
        self._run_id: str | None = None
        self._ended = False
        self._keys: dict[str, str] = {}

    # -- properties ----------------------------------------------------------------
    @property
    def run_id(self) -> str:
        if self._run_id is None:
            raise RuntimeError("SearchTracker has no run yet: call start_search() first")
        return self._run_id

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self._get_or_create_experiment()
        return self._experiment_id

    def _get_or_create_experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return self.client.create_experiment(
                    self.experiment, artifact_location=self.artifact_location)
            except MlflowException:  # created meanwhile by another process
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            warnings.warn(f"MLflow experiment {self.experiment!r} was deleted; restoring it",
                          stacklevel=3)
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    # -- the search run ------------------------------------------------------------
    def start_search(self, config: Any, tags: dict[str, str],
                     run_name: str | None = None, resume_run_id: str | None = None,
                     parent_run_id: str | None = None) -> str:
        """Create the search's parent run (or reopen ``resume_run_id``), nested
        under ``parent_run_id`` when given; ``config`` (a dict or dataclass) is
        logged flattened as params. Returns the run id."""
        if self._run_id is not None:
            raise RuntimeError(f"this tracker already holds run {self._run_id}; use a new "
                               "SearchTracker for another search")
        params = flatten_config(config)
        all_tags = {**{str(k): v for k, v in (tags or {}).items()},
                    ROLE_TAG: "search", "ras_deap.version": __version__}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        if resume_run_id:
            self._reopen(resume_run_id, params, all_tags)
        else:
            run = self.client.create_run(
                self.experiment_id, tags={t.key: t.value for t in to_tags(all_tags)},
                run_name=run_name)
            self._run_id = run.info.run_id
            for _, p, _ in batches(params=to_params(params)):
                self.client.log_batch(self._run_id, params=p)
        self._ended = False
        return self._run_id  # type: ignore[return-value]

    def _reopen(self, run_id: str, params: dict[str, str], tags: dict[str, Any]) -> None:
        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            raise ValueError(f"resume_run_id {run_id!r} is not a run in {self.tracking_uri}; "
                             "pass the run id printed by the interrupted search (and the same "
                             "--tracking-uri)") from exc
        if run.info.lifecycle_stage == "deleted":
            raise ValueError(f"resume_run_id {run_id!r} was deleted in MLflow; restore it or "
                             "start a new search")
        self._experiment_id = run.info.experiment_id
        self._run_id = run_id
        logged = run.data.params
        changed = {k: {"logged": logged[k], "now": v} for k, v in params.items()
                   if k in logged and logged[k] != v}
        new = {k: v for k, v in params.items() if k not in logged}
        resumes = int(run.data.tags.get("ras_deap.resumes", "0")) + 1
        tags = {**tags, "ras_deap.resumes": str(resumes)}
        if PARENT_TAG in run.data.tags:
            tags.pop(PARENT_TAG, None)  # a run's parent never changes
        if changed:
            warnings.warn(f"resumed run {run_id}: config differs from the logged params for "
                          f"{sorted(changed)}; params cannot change in MLflow, the new values are "
                          f"kept in the tag ras_deap.resume{resumes}.config_changes", stacklevel=3)
            tags[f"ras_deap.resume{resumes}.config_changes"] = json.dumps(changed)
        for _, p, t in batches(params=to_params(new), tags=to_tags(tags)):
            self.client.log_batch(run_id, params=p, tags=t)
        self.client.update_run(run_id, status="RUNNING")
        self._keys = self._scan_children(drop_unfinished=True)

    def _children(self) -> list[Any]:
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{self.run_id}'",
                run_view_type=ViewType.ACTIVE_ONLY, max_results=5000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _scan_children(self, drop_unfinished: bool = False) -> dict[str, str]:
        keys: dict[str, str] = {}
        for run in self._children():
            key = run.data.tags.get(KEY_TAG)
            if key is None:
                continue  # a nested run of someone else's, not an individual
            if run.info.status not in ("FINISHED", "FAILED"):
                # written by a process that died mid-individual: incomplete, log it again
                if drop_unfinished:
                    self.client.delete_run(run.info.run_id)
                continue
            keys[key] = run.info.run_id
        return keys

    def logged_keys(self) -> dict[str, str]:
        """key -> child run id of every individual already logged (completely)
        under this search run, read from the store."""
        self._keys = self._scan_children()
        return dict(self._keys)

    # -- individuals and generations ---------------------------------------------------
    def log_individual(self, record: IndividualRecord) -> str:
        """Log ``record`` as a child run; returns its run id. Logging a key that is
        already logged returns the existing run id and writes nothing."""
        if not isinstance(record, IndividualRecord):
            raise TypeError(f"log_individual expects an IndividualRecord, got "
                            f"{type(record).__name__}")
        parent = self.run_id
        if record.key in self._keys:
            return self._keys[record.key]
        tags = {PARENT_TAG: parent, KEY_TAG: record.key, ROLE_TAG: "individual",
                "genome_id": record.genome_id}
        if record.failure is not None:
            tags[FAILURE_TAG] = record.failure or "unknown failure"
        params = {
            "key": record.key,
            "genome_id": record.genome_id,
            "generation": record.generation,
            "index": record.index,
            "cluster": record.cluster,
            "parent_id": record.parent_id,
            "mutations": ",".join(record.mutations) if record.mutations else "none",
            **record.extra_params,
        }
        metrics = {"fitness": record.fitness, **record.metrics,
                   **{f"spectrum_{k}": v for k, v in record.spectrum.items()}}
        run = self.client.create_run(
            self.experiment_id, tags={t.key: t.value for t in to_tags(tags)},
            run_name=f"g{record.generation:03d}-{record.genome_id}")
        run_id = run.info.run_id
        for m, p, _ in batches(metrics=to_metrics(metrics), params=to_params(params)):
            self.client.log_batch(run_id, metrics=m, params=p)
        self.client.log_dict(run_id, record.genome, "genome.json")
        self.client.set_terminated(run_id, "FAILED" if record.failure is not None else "FINISHED")
        self._keys[record.key] = run_id
        return run_id

    def log_generation(self, generation: int, metrics: dict[str, float]) -> None:
        """Per-generation metrics on the parent run, step = generation."""
        for m, _, _ in batches(metrics=to_metrics(metrics, step=generation)):
            self.client.log_batch(self.run_id, metrics=m)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for _, _, t in batches(tags=to_tags(tags)):
            self.client.log_batch(self.run_id, tags=t)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"log_artifact: {path} does not exist; write the file "
                                    "before logging it")
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        self.client.log_dict(self.run_id, data, name)

    # -- ending --------------------------------------------------------------------
    def end_search(self, status: str = "FINISHED") -> None:
        """Mark the search run terminated (FINISHED, FAILED or KILLED). A second
        call does nothing."""
        if status not in _TERMINAL:
            raise ValueError(f"status must be one of {list(_TERMINAL)}, got {status!r}")
        if self._run_id is None or self._ended:
            return
        self.client.set_terminated(self._run_id, status=status)
        self._ended = True

    def __enter__(self) -> SearchTracker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._run_id is None or self._ended:
            return
        if exc_type is None:
            self.end_search("FINISHED")
            return
        status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        try:
            self.set_tags({FAILURE_TAG: f"{exc_type.__name__}: {exc}"[:MAX_TAG_LENGTH]})
            self.end_search(status)
        except Exception as store_error:  # the search's own exception is the one to see
            warnings.warn(f"could not mark MLflow run {self._run_id} {status}: {store_error}",
                          stacklevel=2)

    # -- pointers for the user ---------------------------------------------------------
    def run_url(self, host: str = "http://127.0.0.1:5000") -> str:
        """Address of this search run in the MLflow UI served at ``host``."""
        if store.is_remote(self.tracking_uri):
            host = self.tracking_uri
        return f"{host.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def ui_command(self) -> str:
        """What to run (and open) to see this search in the MLflow UI."""
        command = store.ui_command(self.tracking_uri)
        if self._run_id is None:
            return command
        if store.is_remote(self.tracking_uri):
            return f"open {self.run_url()}"
        return (f"{command}   # then open {self.run_url()} "
                f"(experiment {self.experiment_id}, run {self.run_id})")
