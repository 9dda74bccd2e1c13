"""Reopening a search's MLflow run to resume it: the run must be there (not
deleted), params that cannot change are kept beside it in a tag, and the
run counts its resumes."""

from __future__ import annotations

import json
import warnings
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from . import store
from .entities import batches, to_params, to_tags
from .experiments import describe_experiment
from .tags import PARENT_TAG

__all__ = ["reopen_run"]


def reopen_run(client: MlflowClient, run_id: str, tracking_uri: str, params: dict[str, str],
               tags: dict[str, Any]) -> str:
    """Reopen run ``run_id`` (RUNNING again) with the new ``params`` and
    ``tags`` of the resumed search; returns its experiment id. A missing or
    deleted run is a :class:`~ras_deap.tracking.store.TrackingError` with the fix."""
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise store.TrackingError(
            f"the checkpoint's MLflow run {run_id} is not in {tracking_uri}: resume "
            "with the --tracking-uri the run was started with (the search run's params "
            "list it), or start a new run") from exc
    if run.info.lifecycle_stage == "deleted":
        raise store.TrackingError(
            f"the checkpoint's MLflow run {run_id} was deleted in {tracking_uri}: "
            f"restore it (mlflow runs restore --run-id {run_id}) or start a new run")
    describe_experiment(client, run.info.experiment_id)
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
                      f"kept in the tag ras_deap.resume{resumes}.config_changes", stacklevel=4)
        tags[f"ras_deap.resume{resumes}.config_changes"] = json.dumps(changed)
    for _, p, t in batches(params=to_params(new), tags=to_tags(tags)):
        client.log_batch(run_id, params=p, tags=t)
    client.update_run(run_id, status="RUNNING")
    return str(run.info.experiment_id)
