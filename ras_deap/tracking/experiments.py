"""MLflow experiments (found, created or restored, and described) and the
links that show any run of a store in the UI."""

from __future__ import annotations

import json
import warnings

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from . import notes, store
from .tags import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, NOTE_TAG

__all__ = ["describe_experiment", "get_or_create_experiment", "run_links", "share_view"]


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



def share_view(client: MlflowClient, experiment_id: str, run_id: str) -> bool:
    """Store the runs-table view of search ``run_id``'s individuals (filter,
    sort by fitness, columns) as an experiment tag (MLflow's shared views);
    False when the server refuses it (links then filter and sort, without
    the columns)."""
    try:
        client.set_experiment_tag(experiment_id, store.SHARED_VIEW_PREFIX + run_id,
                                  json.dumps(store.individuals_view(run_id)))
        return True
    except MlflowException as exc:
        warnings.warn(f"could not store the MLflow runs view of {run_id}: {exc}", stacklevel=4)
        return False
