"""Logging a trained network as an MLflow model (``mlflow.pytorch.log_model``).

The model is logged on an existing run of this project's store, without the
fluent ``mlflow.start_run`` stack: a LoggedModel is created in the run's
experiment (``source_run_id`` = the run), ``log_model`` fills it, so
``mlflow.pytorch.load_model(f"runs:/{run_id}/model")`` and
``models:/<model_id>`` both load it, and it appears on the experiment's
*Models* page and, with a registered name, in the model registry.

``mlflow.pytorch`` imports torch: it is imported inside the function, so
importing :mod:`ras_deap.tracking` stays torch-free.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

__all__ = ["LoggedModelInfo", "MODEL_NAME", "log_pytorch_model"]

MODEL_NAME = "model"  # runs:/<run id>/model
_FORMAT_TAG = "ras_deap.serialization"
_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")


@dataclass(frozen=True)
class LoggedModelInfo:
    run_uri: str        # runs:/<run id>/model
    model_uri: str      # models:/<model id>
    model_id: str
    serialization: str  # "pt2" (torch.export, needs only torch) or "pickle"
    registered: str | None = None  # "<name>/<version>" when registered


@contextmanager
def _store(tracking_uri: str) -> Iterator[None]:
    """``log_model`` and ``register_model`` resolve the store globally:
    point them at ``tracking_uri`` for the block, then restore what was set."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {k: os.environ.get(k) for k in _ENV}
    saved = (getattr(tracking_utils, "_tracking_uri", None),
             getattr(registry_utils, "_registry_uri", None))
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no bars in the summary
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        registry_utils._registry_uri = saved[1]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _requirements() -> list[str]:
    """Pinned requirements (inferring them loads the model in a subprocess:
    slow, and it would miss nothing here)."""
    reqs = []
    for name in ("torch", "numpy"):
        try:
            reqs.append(f"{name}=={package_metadata.version(name).split('+')[0]}")
        except package_metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


def _earlier(client: MlflowClient, experiment_id: str, run_id: str) -> Any:
    """The ``model`` this run already logged completely (a resumed search that
    was killed after logging it retrains the same network: it is kept, so
    ``runs:/<run>/model`` and registered versions keep one meaning), or
    None; unfinished ones are deleted."""
    found, token = None, None
    while True:
        page = client.search_logged_models([experiment_id],
                                           filter_string=f"name = '{MODEL_NAME}'",
                                           page_token=token)
        for model in page:
            if model.source_run_id != run_id:
                continue
            if str(model.status).endswith("READY") and found is None:
                found = model
            else:
                client.delete_logged_model(model.model_id)
        token = page.token
        if not token:
            return found


def log_pytorch_model(tracking_uri: str, run_id: str, module: Any, *,
                      input_example: Any, output_example: Any,
                      extra_files: Sequence[str | Path] = (),
                      register_name: str | None = None,
                      metadata: dict[str, Any] | None = None) -> LoggedModelInfo:
    """Log ``module`` (a ``torch.nn.Module`` in eval mode) as the model
    ``model`` of run ``run_id``, with the signature inferred from
    ``input_example`` -> ``output_example`` (numpy arrays) and the input
    example stored. Saved with ``torch.export`` (pt2: loads without this
    package) when the network exports, else pickled (loading then needs
    ``ras_deap`` installed). ``register_name`` also registers it."""
    import mlflow.pytorch
    from mlflow.models import infer_signature

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    signature = infer_signature(input_example, output_example)
    common = {"signature": signature, "input_example": input_example,
              "pip_requirements": _requirements(),
              "extra_files": [str(p) for p in extra_files] or None,
              "metadata": metadata or None}
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    with _store(tracking_uri):
        earlier = _earlier(client, run.info.experiment_id, run_id)
        info = None
        if earlier is not None:
            info = (earlier.model_id, earlier.tags.get(_FORMAT_TAG, "pt2"))
        for serialization in ("pt2", "pickle") if info is None else ():
            logged = client.create_logged_model(run.info.experiment_id, name=MODEL_NAME,
                                                source_run_id=run_id,
                                                params=dict(run.data.params) or None,
                                                tags={_FORMAT_TAG: serialization},
                                                model_type="pytorch")
            try:
                quiet.setLevel(logging.ERROR)  # the pickle-format caution and upload bars
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # run_id: the run lists the model as its output (and the model
                    # gets the run's metrics), as log_model does inside a started run
                    mlflow.pytorch.log_model(module, name=MODEL_NAME, model_id=logged.model_id,
                                             run_id=run_id, serialization_format=serialization,
                                             **common)
                info = (logged.model_id, serialization)
                break
            except Exception as exc:  # torch.export refuses some graphs: pickle instead
                client.delete_logged_model(logged.model_id)
                if serialization == "pickle":
                    raise
                warnings.warn(f"the network does not export with torch.export ({exc}); "
                              "logging it pickled (loading it needs ras_deap installed)",
                              stacklevel=2)
            finally:
                quiet.setLevel(level)
        model_id, serialization = info  # type: ignore[misc]
        registered = None
        if register_name and earlier is not None:  # registered by the earlier session?
            versions = client.search_model_versions(f"name = '{register_name}'")
            registered = next((f"{v.name}/{v.version}" for v in versions
                               if v.source == f"models:/{model_id}"), None)
        if register_name and registered is None:
            version = mlflow.register_model(f"models:/{model_id}", register_name)
            registered = f"{version.name}/{version.version}"
    return LoggedModelInfo(run_uri=f"runs:/{run_id}/{MODEL_NAME}",
                           model_uri=f"models:/{model_id}", model_id=model_id,
                           serialization=serialization, registered=registered)
