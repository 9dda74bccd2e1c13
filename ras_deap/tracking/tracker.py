"""SearchTracker: one MLflow parent run per search, one child run per individual.

Children are written with :class:`mlflow.MlflowClient` calls (create_run with
all tags, one ``log_batch`` for params and metrics, ``log_dict`` for the
genome, ``set_terminated``) instead of the fluent ``mlflow.start_run`` stack:
no global state, and a handful of store round-trips per individual. Only the
main process should hold a tracker.

A child's start and end times are those of its evaluation (which ran in a
worker, before the child was logged), its metrics are grouped in sections
(:mod:`.names`) and its description says where it came from (:mod:`.notes`).
When the search ends, :meth:`SearchTracker.mark_best` tags the best child,
:meth:`SearchTracker.log_final` adds the retrained network (metrics and a
loadable MLflow model) to it, and the search run gets a description.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from .. import __version__
from . import notes, store
from .entities import (
    MAX_TAG_LENGTH,
    IndividualRecord,
    batches,
    flatten_config,
    to_metrics,
    to_params,
    to_tags,
)
from .models import LoggedModelInfo, log_pytorch_model
from .names import final_metric_names, generation_metric_name, individual_metric_names
from .writer import BackgroundWriter

__all__ = ["SearchTracker", "KEY_TAG", "ROLE_TAG", "PARENT_TAG", "FAILURE_TAG", "BEST_TAG",
           "FRONT_TAG",
           "GENETIC_PARENT_RUN_TAG", "NOTE_TAG", "EXPERIMENT_KIND_TAG", "describe_experiment",
           "get_or_create_experiment", "run_links"]

PARENT_TAG = "mlflow.parentRunId"
KEY_TAG = "ras_deap.key"
ROLE_TAG = "ras_deap.role"
FAILURE_TAG = "failure"
BEST_TAG = "ras_deap.best"
FRONT_TAG = "ras_deap.front"  # a member of a multi-objective search's final front
GENETIC_PARENT_RUN_TAG = "ras_deap.genetic_parent_run"
NOTE_TAG = "mlflow.note.content"  # a run's or experiment's description in the UI
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"  # shown as "Machine learning"
_TERMINAL = ("FINISHED", "FAILED", "KILLED")
_NOTE_RULE = "\n\n---\n\n"  # between the best's note and the child's own description


def describe_experiment(client: MlflowClient, experiment_id: str) -> None:
    """Mark the experiment as a model-training one and give it a description
    (what a search and an individual are, where the best is), unless the
    user already set them."""
    try:
        tags = client.get_experiment(experiment_id).tags
        if EXPERIMENT_KIND_TAG not in tags:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
        if not tags.get(NOTE_TAG):
            client.set_experiment_tag(experiment_id, NOTE_TAG, notes.EXPERIMENT_DESCRIPTION)
    except MlflowException as exc:  # e.g. a server that refuses experiment tags
        warnings.warn(f"could not describe MLflow experiment {experiment_id}: {exc}",
                      stacklevel=2)


def get_or_create_experiment(client: MlflowClient, name: str,
                             artifact_location: str | None) -> str:
    """The id of experiment ``name``: created (with ``artifact_location``) if
    missing, restored (with a warning) if deleted. Another process may create
    it at the same moment: then its experiment is the one."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # created meanwhile by another process
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        warnings.warn(f"MLflow experiment {name!r} was deleted; restoring it", stacklevel=3)
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def run_links(tracking_uri: str | None, run_id: str, *,
              order_by: str | None = "metrics.`fitness`",
              host: str = store.UI_HOST) -> dict[str, str]:
    """How to see any run of the store in the MLflow UI (for the commands
    that print where their results are): ``command`` (``mlflow ui ...``, or
    the server's address), ``run`` (the run's page) and ``children`` (the
    runs nested under it in the runs table, sorted by ``order_by``, e.g.
    ``metrics.`value``` for the trials of a study), all in the
    model-training view."""
    uri, _ = store.resolve_tracking(tracking_uri)
    experiment_id = MlflowClient(tracking_uri=uri).get_run(run_id).info.experiment_id
    return {"command": store.ui_command(uri),
            "run": store.run_page_url(uri, experiment_id, run_id, host),
            "children": store.runs_url(uri, experiment_id, parent_run_id=run_id,
                                       order_by=order_by, host=host)}


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


class SearchTracker:
    """Logs one search to MLflow. Use as ``with SearchTracker(uri) as t:``;
    leaving the block ends the run FINISHED, FAILED on an exception, KILLED
    on Ctrl-C. ``sqlite_wal=False`` leaves a local SQLite store's journal mode
    alone (for filesystems without WAL support).

    ``background=True`` hands :meth:`log_individual` and :meth:`after_writes`
    to one writer thread (:class:`~.writer.BackgroundWriter`), so the search
    goes on while individuals are logged; every other method first waits for
    those writes (:meth:`flush`), so the store sees everything in the order
    the search did it.

    ``child_artifacts`` maps an artifact name to a function of the genome
    (``Model.to_dict()``) returning its text: each child run gets one file
    per entry (the search passes the architecture's SVG drawing). It runs
    where the child is written (the writer thread in background mode); a
    function that raises costs that child its file and a warning, never the
    search."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "ras_deap",
                 sqlite_wal: bool = True, *, background: bool = False,
                 child_artifacts: Mapping[str, Callable[[dict[str, Any]], str]] | None = None
                 ) -> None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise ValueError(f"experiment must be a non-empty name, got {experiment!r}")
        self.tracking_uri, self.artifact_location = store.resolve_tracking(tracking_uri)
        store.prepare_store(self.tracking_uri, sqlite_wal=sqlite_wal)
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._experiment_id: str | None = None
        self._run_id: str | None = None
        self._ended = False
        self._keys: dict[str, str] = {}
        self._view_key: str | None = None
        self._writer = BackgroundWriter() if background else None
        self.child_artifacts = dict(child_artifacts or {})

    # -- the background writer ---------------------------------------------------------
    def flush(self, *, message_after: float | None = 1.0) -> None:
        """Wait until every queued write is done (saying so on stderr if that
        takes longer than ``message_after`` seconds); re-raise a failed one."""
        if self._writer is not None:
            self._writer.flush(message_after=message_after)

    def after_writes(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` once every write queued so far is done (in the
        writer thread; at once without one). The search writes its checkpoint
        this way, so a checkpoint never names a run the store does not have."""
        if self._writer is not None:
            self._writer.submit(fn, *args)
        else:
            fn(*args)

    @property
    def writer_seconds(self) -> float:
        """Time the writer thread spent writing (0 without one)."""
        return self._writer.busy_seconds if self._writer is not None else 0.0

    # -- properties ----------------------------------------------------------------
    @property
    def run_id(self) -> str:
        if self._run_id is None:
            raise RuntimeError("SearchTracker has no run yet: call start_search() first")
        return self._run_id

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = get_or_create_experiment(self.client, self.experiment,
                                                           self.artifact_location)
        return self._experiment_id

    def _experiment_ready(self) -> str:
        experiment_id = self.experiment_id
        describe_experiment(self.client, experiment_id)
        return experiment_id

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
                self._experiment_ready(), tags={t.key: t.value for t in to_tags(all_tags)},
                run_name=run_name)
            self._run_id = run.info.run_id
            for _, p, _ in batches(params=to_params(params)):
                self.client.log_batch(self._run_id, params=p)
        self._share_view()
        self._ended = False
        return self._run_id  # type: ignore[return-value]

    def _share_view(self) -> None:
        """Store the runs-table view of this search's individuals (filter,
        sort by fitness, columns) as an experiment tag, so :meth:`runs_url`
        opens it (MLflow's shared views)."""
        try:
            self.client.set_experiment_tag(self.experiment_id,
                                           store.SHARED_VIEW_PREFIX + self.run_id,
                                           json.dumps(store.individuals_view(self.run_id)))
            self._view_key = self.run_id
        except MlflowException as exc:  # the link still filters and sorts, without columns
            warnings.warn(f"could not store the MLflow runs view of {self.run_id}: {exc}",
                          stacklevel=3)
            self._view_key = None

    def _reopen(self, run_id: str, params: dict[str, str], tags: dict[str, Any]) -> None:
        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            raise store.TrackingError(
                f"the checkpoint's MLflow run {run_id} is not in {self.tracking_uri}: resume "
                "with the --tracking-uri the run was started with (the search run's params "
                "list it), or start a new run") from exc
        if run.info.lifecycle_stage == "deleted":
            raise store.TrackingError(
                f"the checkpoint's MLflow run {run_id} was deleted in {self.tracking_uri}: "
                f"restore it (mlflow runs restore --run-id {run_id}) or start a new run")
        self._experiment_id = run.info.experiment_id
        self._run_id = run_id
        describe_experiment(self.client, self._experiment_id)
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
        self.flush()
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
    def log_individual(self, record: IndividualRecord) -> str | None:
        """Log ``record`` as a child run; returns its run id (None in
        background mode: the run is written later, in order). Logging a key
        that is already logged returns the existing run id and writes nothing.

        The run is named ``g<generation>-i<index>-<genome id>`` (unique in the
        search), starts and ends when the evaluation did (``record.started_at``
        and ``record.ended_at``, epoch seconds, when known), holds the
        genetic parent's genome id (param ``genetic_parent``; tag
        ``ras_deap.genetic_parent_run`` with its run when known) and the
        mutations applied (param ``mutation_ops``)."""
        if not isinstance(record, IndividualRecord):
            raise TypeError(f"log_individual expects an IndividualRecord, got "
                            f"{type(record).__name__}")
        if self._writer is not None:
            _ = self.run_id  # no run yet: fail now, in the caller
            self._writer.submit(self._write_individual, record)
            return None
        return self._write_individual(record)

    def _write_individual(self, record: IndividualRecord) -> str:
        parent = self.run_id
        if record.parent_run_id is None and record.parent_key is not None:
            record = dataclasses.replace(record, parent_run_id=self.run_of(record.parent_key))
        if record.key in self._keys:
            return self._keys[record.key]
        reevaluation = str(record.extra_params.get("reevaluation", "false")) == "true"
        tags = {PARENT_TAG: parent, KEY_TAG: record.key, ROLE_TAG: "individual",
                "genome_id": record.genome_id,
                NOTE_TAG: notes.individual_description(
                    generation=record.generation, index=record.index, cluster=record.cluster,
                    genetic_parent=record.parent_id, mutation_ops=record.mutations,
                    experiment_id=self.experiment_id, parent_run_id=record.parent_run_id,
                    reevaluation=reevaluation, failure=record.failure)}
        if record.parent_run_id:
            tags[GENETIC_PARENT_RUN_TAG] = record.parent_run_id
        if record.failure is not None:
            tags[FAILURE_TAG] = record.failure or "unknown failure"
        params = {
            "key": record.key,
            "genome_id": record.genome_id,
            "generation": record.generation,
            "index": record.index,
            "cluster": record.cluster,
            "genetic_parent": record.parent_id or "none",
            "mutation_ops": ",".join(record.mutations) if record.mutations else "none",
            **record.extra_params,
        }
        metrics = individual_metric_names({"fitness": record.fitness, **record.metrics},
                                          record.spectrum)
        ended = _millis(record.ended_at)
        run = self.client.create_run(
            self.experiment_id, start_time=_millis(record.started_at),
            tags={t.key: t.value for t in to_tags(tags)},
            run_name=f"g{record.generation:03d}-i{record.index:02d}-{record.genome_id}")
        run_id = run.info.run_id
        try:
            for m, p, _ in batches(metrics=to_metrics(metrics, timestamp=ended),
                                   params=to_params(params)):
                self.client.log_batch(run_id, metrics=m, params=p)
            self.client.log_dict(run_id, record.genome, "genome.json")
            self._log_child_artifacts(run_id, record)
            self.client.set_terminated(run_id, "FAILED" if record.failure is not None
                                       else "FINISHED", end_time=ended)
        except BaseException:
            # Ctrl-C, SIGTERM or a store error mid-way: a half-logged child would stay
            # RUNNING; remove it (the resumed search logs the individual again)
            self._discard(run_id)
            raise
        self._keys[record.key] = run_id
        return run_id

    def _log_child_artifacts(self, run_id: str, record: IndividualRecord) -> None:
        for name, render in self.child_artifacts.items():
            try:
                text = render(record.genome)
            except Exception as exc:  # a drawing must never stop the search
                warnings.warn(f"could not make {name} of {record.genome_id}: "
                              f"{type(exc).__name__}: {exc}", stacklevel=2)
                continue
            self.client.log_text(run_id, text, name)

    def _discard(self, run_id: str) -> None:
        """Delete an incompletely logged child run (or, failing that, end it KILLED)."""
        try:
            self.client.delete_run(run_id)
        except Exception:
            with contextlib.suppress(Exception):
                self.client.set_terminated(run_id, status="KILLED")

    def run_of(self, key: str | None) -> str | None:
        """The child run id of individual ``key`` (None if it was not logged)."""
        if key is None:
            return None
        if key not in self._keys:
            self._keys = self._scan_children()
        return self._keys.get(key)

    def log_generation(self, generation: int, metrics: dict[str, float]) -> None:
        """Per-generation metrics on the parent run, step = generation, under
        their MLflow names (``best_fitness`` -> ``population/fitness_max``,
        ``spectrum_blocks`` -> ``spectrum/blocks``, ...: see :mod:`.names`).
        Queued like the individuals in background mode."""
        named = {generation_metric_name(k): v for k, v in metrics.items()}
        for m, _, _ in batches(metrics=to_metrics(named, step=generation)):
            self.after_writes(self.client.log_batch, self.run_id, m)

    # -- the result ------------------------------------------------------------------
    def mark_best(self, key: str | None, genome_id: str) -> str | None:
        """Tag the child run of individual ``key`` ``ras_deap.best=true`` (and
        untag a best marked earlier, e.g. before a resume) and the search run
        with ``best_run_id`` and ``best_genome_id``. Returns the best's run id
        (None when it was never logged)."""
        self.flush()
        best_run = self.run_of(key)
        previous = self.client.get_run(self.run_id).data.tags.get("best_run_id")
        if previous and previous != best_run:
            with contextlib.suppress(MlflowException):  # deleted meanwhile
                self.client.delete_tag(previous, BEST_TAG)
        tags: dict[str, Any] = {"best_genome_id": genome_id}
        if best_run is not None:
            self.client.set_tag(best_run, BEST_TAG, "true")
            tags["best_run_id"] = best_run
        self.set_tags(tags)
        return best_run

    def mark_front(self, keys: list[str | None]) -> list[str | None]:
        """Tag the child runs of the individuals ``keys`` (a multi-objective
        search's final non-dominated set) ``ras_deap.front=true`` and untag
        any other child tagged so (by an earlier session of a resumed run).
        Returns their run ids, in order (None for one never logged)."""
        self.flush()
        runs = [self.run_of(k) for k in keys]
        for run in self._children():
            if run.data.tags.get(FRONT_TAG) == "true" and run.info.run_id not in runs:
                self.client.delete_tag(run.info.run_id, FRONT_TAG)
        for run_id in runs:
            if run_id is not None:
                self.client.set_tag(run_id, FRONT_TAG, "true")
        self.set_tags({"front_size": str(len(keys))})
        return runs

    def log_final(self, best_run: str, metrics: dict[str, float], *, module: Any = None,
                  input_example: Any = None, output_example: Any = None,
                  extra_files: tuple[str | Path, ...] = (), register_name: str | None = None,
                  description: str | None = None,
                  artifacts: Mapping[str, str | Path] | None = None) -> LoggedModelInfo | None:
        """The final retraining of the best architecture on its child run
        ``best_run``: metrics as ``final/<name>``, ``artifacts`` (artifact
        name -> local file, e.g. the architecture's drawing) as files of the
        run, and the retrained ``module`` as the MLflow model ``model``
        (signature and input example from the numpy ``input_example`` ->
        ``output_example``; registered as ``register_name`` when given).
        Returns where the model is."""
        self.flush()
        named = final_metric_names(metrics)
        for m, _, _ in batches(metrics=to_metrics(named)):
            self.client.log_batch(best_run, metrics=m)
        for name, path in (artifacts or {}).items():
            self.log_run_artifact(best_run, path, name)
        if description:  # above the child's own description, once
            own = self.client.get_run(best_run).data.tags.get(NOTE_TAG, "")
            if own.startswith(description[:24]) and _NOTE_RULE in own:
                own = own.split(_NOTE_RULE, 1)[1]  # noted by an earlier session: replace
            note = f"{description}{_NOTE_RULE}{own}" if own else description
            self.client.set_tag(best_run, NOTE_TAG, note[:MAX_TAG_LENGTH])
        if module is None:
            return None
        return log_pytorch_model(self.tracking_uri, best_run, module,
                                 input_example=input_example, output_example=output_example,
                                 extra_files=extra_files, register_name=register_name,
                                 metadata={"ras_deap_version": __version__})

    def describe(self, markdown: str) -> None:
        """The search run's description (Markdown, shown on its page)."""
        self.flush()
        self.set_tags({NOTE_TAG: markdown})

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.flush()
        for _, _, t in batches(tags=to_tags(tags)):
            self.client.log_batch(self.run_id, tags=t)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.flush()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"log_artifact: {path} does not exist; write the file "
                                    "before logging it")
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_run_artifact(self, run_id: str, path: str | Path, name: str | None = None) -> None:
        """The file ``path`` as the artifact ``name`` (default: its own
        name; may contain folders) of run ``run_id`` of this store (a child
        run, say)."""
        self.flush()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"log_run_artifact: {path} is not a file; write the file "
                                    "before logging it")
        name = name or path.name
        folder, _, base = name.rpartition("/")
        if base == path.name:
            self.client.log_artifact(run_id, str(path), folder or None)
            return
        with tempfile.TemporaryDirectory(prefix="ras_deap_artifact_") as tmp:
            copy = Path(tmp) / base
            shutil.copyfile(path, copy)
            self.client.log_artifact(run_id, str(copy), folder or None)

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        self.flush()
        self.client.log_dict(self.run_id, data, name)

    # -- ending --------------------------------------------------------------------
    def end_search(self, status: str = "FINISHED") -> None:
        """Mark the search run terminated (FINISHED, FAILED or KILLED). A second
        call does nothing."""
        self.flush()
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
        try:
            self._exit(exc_type, exc)
        finally:
            if self._writer is not None:  # drained by now; stop its thread
                with contextlib.suppress(Exception):
                    self._writer.close(message_after=1.0)

    def _exit(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        if self._run_id is None or self._ended:
            return
        if exc_type is None:
            self.end_search("FINISHED")
            return
        status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        try:
            # an individual cut off mid-logging (even inside create_run, before its id was
            # known) would stay RUNNING: remove it, the resumed search logs it again
            self._scan_children(drop_unfinished=True)
            self.set_tags({FAILURE_TAG: f"{exc_type.__name__}: {exc}"[:MAX_TAG_LENGTH]})
            self.end_search(status)
        except Exception as store_error:  # the search's own exception is the one to see
            warnings.warn(f"could not mark MLflow run {self._run_id} {status}: {store_error}",
                          stacklevel=2)

    # -- pointers for the user ---------------------------------------------------------
    def run_url(self, host: str = store.UI_HOST) -> str:
        """Address of this search run's page in the MLflow UI served at
        ``host`` (model-training view: description, charts, artifacts)."""
        return store.run_page_url(self.tracking_uri, self.experiment_id, self.run_id, host)

    def runs_url(self, host: str = store.UI_HOST) -> str:
        """Address of this search's individuals in the runs table, best
        fitness first."""
        return store.runs_url(self.tracking_uri, self.experiment_id, parent_run_id=self.run_id,
                              view_key=self._view_key, host=host)

    def ui_command(self) -> str:
        """What to run (and open) to see this search in the MLflow UI."""
        command = store.ui_command(self.tracking_uri)
        if self._run_id is None:
            return command
        if store.is_remote(self.tracking_uri):
            return f"open {self.runs_url()}"
        return f"{command}   # then open {self.runs_url()}"
