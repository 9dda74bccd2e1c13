"""SearchTracker: one MLflow parent run per search, one child run per individual.

The children are written by :mod:`.individuals` (no fluent ``mlflow.start_run``
stack, no global state); only the main process should hold a tracker. When the
search ends, :meth:`SearchTracker.mark_best` tags the best child,
:meth:`SearchTracker.log_final` adds the retrained network (metrics and a
loadable MLflow model) to it, and the search run gets a description.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from mlflow import MlflowClient
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
from .experiments import describe_experiment, get_or_create_experiment, share_view
from .individuals import child_runs, individual_keys, write_individual
from .models import LoggedModelInfo, log_pytorch_model
from .names import final_metric_names, generation_metric_name
from .resume import reopen_run
from .tags import (
    BEST_TAG,
    FAILURE_TAG,
    FRONT_TAG,
    NOTE_TAG,
    PARENT_TAG,
    ROLE_TAG,
)
from .writer import BackgroundWriter

__all__ = ["SearchTracker"]

_TERMINAL = ("FINISHED", "FAILED", "KILLED")


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
        """So that :meth:`runs_url` opens this search's individuals' view."""
        self._view_key = self.run_id if share_view(self.client, self.experiment_id,
                                                   self.run_id) else None

    def _reopen(self, run_id: str, params: dict[str, str], tags: dict[str, Any]) -> None:
        self._experiment_id = reopen_run(self.client, run_id, self.tracking_uri, params, tags)
        self._run_id = run_id
        self._keys = self._scan_children(drop_unfinished=True)

    def _children(self) -> list[Any]:
        self.flush()
        return child_runs(self.client, self.experiment_id, self.run_id)

    def _scan_children(self, drop_unfinished: bool = False) -> dict[str, str]:
        return individual_keys(self.client, self._children(), drop_unfinished=drop_unfinished)

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
        run_id = write_individual(self.client, self.experiment_id, parent, record,
                                  self.child_artifacts)
        self._keys[record.key] = run_id
        return run_id

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
            self.client.set_tag(best_run, NOTE_TAG,
                                notes.prepend(description, own)[:MAX_TAG_LENGTH])
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
