"""MLflow tracking of searches (the only package that imports mlflow).

A search is one parent run (config as params, per-generation metrics, final
artifacts); each evaluated individual is a nested child run holding its
metrics, spectrum and genome JSON, so any architecture can be found and
rebuilt from the tracking store alone.
"""

from .entities import IndividualRecord, flatten_config
from .experiments import run_links
from .models import LoggedModelInfo, log_pytorch_model
from .names import generation_metric_name, individual_metric_name
from .runs import RunInfo, download_run_artifact, get_run_info, log_to_run, run_exists
from .store import DEFAULT_TRACKING_URI, resolve_tracking, run_page_url, runs_url, ui_command
from .tags import BEST_TAG, FAILURE_TAG, FRONT_TAG, GENETIC_PARENT_RUN_TAG, KEY_TAG, PARENT_TAG
from .tracker import SearchTracker

__all__ = [
    "BEST_TAG",
    "DEFAULT_TRACKING_URI",
    "FAILURE_TAG",
    "FRONT_TAG",
    "GENETIC_PARENT_RUN_TAG",
    "KEY_TAG",
    "PARENT_TAG",
    "IndividualRecord",
    "LoggedModelInfo",
    "RunInfo",
    "SearchTracker",
    "download_run_artifact",
    "flatten_config",
    "generation_metric_name",
    "get_run_info",
    "individual_metric_name",
    "log_pytorch_model",
    "log_to_run",
    "resolve_tracking",
    "run_exists",
    "run_links",
    "run_page_url",
    "runs_url",
    "ui_command",
]
