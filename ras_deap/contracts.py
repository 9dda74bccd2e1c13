"""The contracts between the search and what it is handed, as types.

:func:`ras_deap.search.run_search` drives three pluggable parts: the fitness
function (an evaluator), the record of the search (a tracker) and the map
that runs evaluations (a backend). Each is a :class:`typing.Protocol`, in
the manner of Optuna's ``BaseSampler``: the docstring states what the search
relies on, the real implementations satisfy it (the tests check that with
``isinstance``), and a test or a user passes any object that does, without
inheriting from anything or monkeypatching the package. Pure Python: no
torch, no MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["FitnessEvaluator", "MapBackend", "RetrainingEvaluator", "Tracker"]


@runtime_checkable
class FitnessEvaluator(Protocol):
    """The fitness function of a search (``toolbox.evaluate``).

    ``evaluator(individual)`` trains the individual's ``genome`` as its
    ``generation`` prescribes, seeded by its ``eval_seed`` (the same result
    in any process, so it must be picklable for a process pool), and returns
    a DEAP fitness tuple or an object with ``fitness`` (float), ``metrics``
    (a dict of floats; ``eval_seconds`` among them is the evaluation's
    duration) and ``failure`` (None, or why the individual got fitness 0).
    It must not raise for a bad architecture: a failure is a result.

    ``data()`` loads what evaluations need, once, in the calling process;
    the search calls it before any work so that a missing data folder or a
    wrong bank stops the command at once. An evaluator may also carry a
    ``train_config`` (its training schedule: ``is_full_generation(g)``);
    without one the search's own options decide which generations train on
    the full set.
    """

    def __call__(self, individual: Any) -> Any: ...

    def data(self) -> Any: ...


@runtime_checkable
class RetrainingEvaluator(FitnessEvaluator, Protocol):
    """An evaluator that can also retrain the best architecture at the end
    (``run_search(final_training=True)``): ``evaluate(genome, generation,
    seed=..., with_test=True, return_module=True)`` returns the result
    object described in :class:`FitnessEvaluator` with ``state_dict`` and
    ``module`` (the trained network) and test metrics, and ``data()``
    returns the loaded dataset (``data().dataset.val.x`` is an input example)."""

    def evaluate(self, genome: Any, generation: int, *, seed: int | None = None,
                 with_test: bool = False, return_module: bool = False) -> Any: ...


@runtime_checkable
class MapBackend(Protocol):
    """``toolbox.map``: where evaluations run (serially, a process pool, Dask).

    ``backend(fn, items)`` returns an iterator of ``fn(item)`` in *input
    order*, lazily, so the search can record each result as soon as it and
    those before it are in; results must not depend on the backend.
    ``close(abort)`` releases the workers: ``abort=True`` (an error, Ctrl-C,
    SIGTERM) stops them at once instead of waiting for running evaluations.
    ``description`` names the backend for logs.
    """

    description: str

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]: ...

    def close(self, abort: bool = False) -> None: ...


@runtime_checkable
class Tracker(Protocol):
    """The record of one search (MLflow in :class:`ras_deap.tracking.SearchTracker`).

    Used as a context manager around the search: leaving it ends the search
    run FINISHED, FAILED on an exception, KILLED on Ctrl-C. The search calls,
    in this order: ``start_search`` once (a resumed search passes its run id
    and must get the same run back), then per evaluated individual
    ``log_individual`` (idempotent per ``record.key``: a resumed search may
    log a key again) and per generation ``log_generation``; ``after_writes``
    runs the checkpoint writer once the writes queued before it are done (so
    a checkpoint never names a record the store lacks); at the end
    ``mark_best``, optionally ``mark_front`` (a multi-objective search: tag
    its front's child runs; a tracker without it just does not tag them),
    ``log_final``/``log_artifact``, ``log_dict``,
    ``describe`` and ``end_search``. ``writer_seconds`` is the time spent
    writing in the background (0 without a background writer); the links
    (``ui_command``, ``runs_url``, ``run_url``) go into the summary, and the
    final description reads ``experiment_id`` and ``run_id`` (properties that
    may talk to the store, so the protocol's ``isinstance`` does not probe
    them).
    """

    tracking_uri: str
    writer_seconds: float

    def __enter__(self) -> Any: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any: ...

    def start_search(self, config: Any, tags: dict[str, str], run_name: str | None = None,
                     resume_run_id: str | None = None,
                     parent_run_id: str | None = None) -> str: ...

    def log_individual(self, record: Any) -> str | None: ...

    def log_generation(self, generation: int, metrics: dict[str, float]) -> None: ...

    def after_writes(self, fn: Any, *args: Any) -> None: ...

    def mark_best(self, key: str | None, genome_id: str) -> str | None: ...

    def log_final(self, best_run: str, metrics: dict[str, float], **kwargs: Any) -> Any: ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...

    def log_dict(self, data: dict[str, Any], name: str) -> None: ...

    def describe(self, markdown: str) -> None: ...

    def end_search(self, status: str = "FINISHED") -> None: ...

    def ui_command(self) -> str: ...

    def runs_url(self) -> str: ...

    def run_url(self) -> str: ...
