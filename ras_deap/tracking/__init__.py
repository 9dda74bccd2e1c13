"""MLflow tracking of searches (the only package that imports mlflow).

A search is one parent run (config as params, per-generation metrics, final
artifacts); each evaluated individual is a nested child run holding its
metrics, spectrum and genome JSON, so any architecture can be found and
rebuilt from the tracking store alone.
"""

from .entities import IndividualRecord, flatten_config
from .runs import RunInfo, download_run_artifact, get_run_info, log_to_run
from .store import DEFAULT_TRACKING_URI, resolve_tracking
from .tracker import FAILURE_TAG, KEY_TAG, PARENT_TAG, SearchTracker

__all__ = [
    "DEFAULT_TRACKING_URI",
    "FAILURE_TAG",
    "KEY_TAG",
    "PARENT_TAG",
    "IndividualRecord",
    "RunInfo",
    "SearchTracker",
    "download_run_artifact",
    "flatten_config",
    "get_run_info",
    "log_to_run",
    "resolve_tracking",
]
