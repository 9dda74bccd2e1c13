"""One child run per evaluated individual, written with a handful of
:class:`mlflow.MlflowClient` calls (create_run with all tags, one
``log_batch``, ``log_dict`` for the genome, ``set_terminated``), and the
scan of a search run's children that a resumed search starts from."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType

from . import notes
from .entities import IndividualRecord, batches, to_metrics, to_params, to_tags
from .names import individual_metric_names
from .tags import FAILURE_TAG, GENETIC_PARENT_RUN_TAG, KEY_TAG, NOTE_TAG, PARENT_TAG, ROLE_TAG

__all__ = ["child_runs", "individual_keys", "write_individual"]


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def child_runs(client: MlflowClient, experiment_id: str, run_id: str) -> list[Any]:
    """The active runs nested under ``run_id``, every page of them."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run_id}'",
            run_view_type=ViewType.ACTIVE_ONLY, max_results=5000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def individual_keys(client: MlflowClient, runs: list[Any], *,
                    drop_unfinished: bool = False) -> dict[str, str]:
    """key -> run id of the individuals among ``runs`` logged completely; an
    unfinished one (its process died mid-individual) is skipped, and deleted
    with ``drop_unfinished`` so that it is logged again."""
    keys: dict[str, str] = {}
    for run in runs:
        key = run.data.tags.get(KEY_TAG)
        if key is None:
            continue  # a nested run of someone else's, not an individual
        if run.info.status not in ("FINISHED", "FAILED"):
            if drop_unfinished:
                client.delete_run(run.info.run_id)
            continue
        keys[key] = run.info.run_id
    return keys


def write_individual(client: MlflowClient, experiment_id: str, parent: str,
                     record: IndividualRecord,
                     child_artifacts: Mapping[str, Callable[[dict[str, Any]], str]]) -> str:
    """Log ``record`` as a child run of ``parent``; returns its run id (see
    :meth:`ras_deap.tracking.SearchTracker.log_individual`). A run cut
    half-way (Ctrl-C, a store error) is deleted, never left RUNNING."""
    reevaluation = str(record.extra_params.get("reevaluation", "false")) == "true"
    tags = {PARENT_TAG: parent, KEY_TAG: record.key, ROLE_TAG: "individual",
            "genome_id": record.genome_id,
            NOTE_TAG: notes.individual_description(
                generation=record.generation, index=record.index, cluster=record.cluster,
                genetic_parent=record.parent_id, mutation_ops=record.mutations,
                experiment_id=experiment_id, parent_run_id=record.parent_run_id,
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
    run = client.create_run(
        experiment_id, start_time=_millis(record.started_at),
        tags={t.key: t.value for t in to_tags(tags)},
        run_name=f"g{record.generation:03d}-i{record.index:02d}-{record.genome_id}")
    run_id = run.info.run_id
    try:
        for m, p, _ in batches(metrics=to_metrics(metrics, timestamp=ended),
                               params=to_params(params)):
            client.log_batch(run_id, metrics=m, params=p)
        client.log_dict(run_id, record.genome, "genome.json")
        _log_child_artifacts(client, run_id, record, child_artifacts)
        client.set_terminated(run_id, "FAILED" if record.failure is not None else "FINISHED",
                              end_time=ended)
    except BaseException:
        # Ctrl-C, SIGTERM or a store error mid-way: a half-logged child would stay
        # RUNNING; remove it (the resumed search logs the individual again)
        _discard(client, run_id)
        raise
    return run_id


def _log_child_artifacts(client: MlflowClient, run_id: str, record: IndividualRecord,
                         child_artifacts: Mapping[str, Callable[[dict[str, Any]], str]]
                         ) -> None:
    for name, render in child_artifacts.items():
        try:
            text = render(record.genome)
        except Exception as exc:  # a drawing must never stop the search
            warnings.warn(f"could not make {name} of {record.genome_id}: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)
            continue
        client.log_text(run_id, text, name)


def _discard(client: MlflowClient, run_id: str) -> None:
    """Delete an incompletely logged child run (or, failing that, end it KILLED)."""
    try:
        client.delete_run(run_id)
    except Exception:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, status="KILLED")
