"""Reading and annotating an existing MLflow run (e.g. by ``python -m ras_deap.assess``).

Small functions over :class:`mlflow.MlflowClient`, so modules outside this
package never import MLflow themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from . import store
from .entities import batches, to_metrics, to_tags

__all__ = ["RunInfo", "download_run_artifact", "evaluated_fitness", "get_run_info", "log_to_run",
           "run_exists"]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    tracking_uri: str


def _client(tracking_uri: str | None) -> tuple[MlflowClient, str]:
    uri, _ = store.resolve_tracking(tracking_uri)
    return MlflowClient(tracking_uri=uri), uri


def get_run_info(tracking_uri: str | None, run_id: str) -> RunInfo:
    """Params and tags of run ``run_id``; ValueError naming the store when
    there is no such (live) run."""
    client, uri = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ValueError(f"run {run_id!r} is not an MLflow run in {uri}; pass the run id of a "
                         "search (or the run folder runs/<name>) and the --tracking-uri it "
                         "was logged to") from exc
    if run.info.lifecycle_stage == "deleted":
        raise ValueError(f"MLflow run {run_id!r} was deleted; restore it or pass its run folder")
    return RunInfo(run_id=run.info.run_id, run_name=run.info.run_name or "",
                   status=run.info.status, params=dict(run.data.params),
                   tags=dict(run.data.tags), tracking_uri=uri)


def run_exists(tracking_uri: str | None, run_id: str) -> bool:
    """Whether ``run_id`` is a live run of the store, one a search can reopen:
    an id kept in a file may name a run of another store, or one deleted since."""
    client, _ = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:  # MLflow's only answer for a run it does not hold
        return False
    return run.info.lifecycle_stage != "deleted"


def download_run_artifact(tracking_uri: str | None, run_id: str, path: str,
                          dst: str | Path) -> Path | None:
    """Download artifact ``path`` of ``run_id`` into folder ``dst``; None if
    the run has no such artifact."""
    client, _ = _client(tracking_uri)
    folder = str(Path(path).parent) if "/" in path else ""
    try:
        names = {f.path for f in client.list_artifacts(run_id, folder or None)}
    except (MlflowException, OSError):
        return None
    if path not in names:
        return None
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst)))


def log_to_run(tracking_uri: str | None, run_id: str, *,
               metrics: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
               artifacts: Sequence[tuple[str | Path, str | None]] = (), step: int = 0,
               series: Mapping[str, Sequence[tuple[int, float]]] | None = None) -> None:
    """Add metrics (at ``step``), metric histories (``series``: name ->
    ``(step, value)`` pairs), tags and files (``(path, artifact folder)``
    pairs) to an existing run, finished or not, under exactly the given names."""
    client, _ = _client(tracking_uri)
    entries = to_metrics(dict(metrics or {}), step=step)
    for name, points in (series or {}).items():
        for s, value in points:
            entries += to_metrics({name: value}, step=s)
    for m, _, t in batches(metrics=entries, tags=to_tags(dict(tags or {}))):
        client.log_batch(run_id, metrics=m, tags=t)
    for path, folder in artifacts:
        client.log_artifact(run_id, str(path), folder)


def evaluated_fitness(tracking_uri: str | None, run_id: str) -> list[float]:
    """The fitness of every individual evaluated under run ``run_id`` (a search
    run, or a comparison cell's run holding one), in the order they were
    evaluated (generation, then index); re-evaluations of survivors are left
    out and a failed individual counts 0. Empty if the run holds none."""
    from .store import _children_filter

    client, _ = _client(tracking_uri)
    experiment = client.get_run(run_id).info.experiment_id

    def children(parent: str) -> list[Any]:
        runs, token = [], None
        while True:
            page = client.search_runs([experiment], _children_filter(parent),
                                      max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def individuals(runs: list[Any]) -> list[Any]:
        return [r for r in runs if r.data.tags.get("ras_deap.role") == "individual"
                and r.data.params.get("reevaluation", "false") != "true"]

    runs = children(run_id)
    found = individuals(runs)
    if not found and len(runs) == 1:  # a cell run: its one child is the search run
        found = individuals(children(runs[0].info.run_id))
    found.sort(key=lambda r: (int(r.data.params.get("generation", 0)),
                              int(r.data.params.get("index", 0))))
    return [float(r.data.metrics.get("fitness", 0.0)) for r in found]

