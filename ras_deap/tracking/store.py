"""Where tracking data goes: the default store and how a URI is resolved.

MLflow 3 refuses the old file store unless told otherwise and defaults to a
``mlflow.db`` in whatever directory the process runs from. Everything this
project tracks should sit in one folder a user can find, copy or delete, so
the default is an SQLite database inside ``mlruns/`` with the artifacts next
to it (``mlruns/artifacts``).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import sqlite3
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ..errors import InfrastructureError
from ..locks import file_lock

__all__ = ["TrackingError", "HTTP_DEFAULTS", "bound_http_retries", "check_reachable",
           "check_mlflow_server", "check_uri", "prepare_store", "DEFAULT_TRACKING_URI", "UI_HOST",
           "SHARED_VIEW_PREFIX", "resolve_tracking",
           "sqlite_path", "ui_command", "is_remote", "enable_wal", "ui_host", "runs_url",
           "run_page_url", "individuals_view"]

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
UI_HOST = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
# MLflow 3 opens an experiment in its GenAI view (traces) unless the address
# asks for the model-training view; the experiment tag mlflow.experimentKind
# alone does not change that (checked with MLflow 3.17 in headless Chromium).
ML_VIEW = {"workflowType": "machine_learning"}
# A runs-table view (filter, sort, columns) stored as an experiment tag
# mlflow.sharedViewState.<key> opens with ?viewStateShareKey=<key>: the way
# MLflow's own "Share" button passes columns, which no other URL parameter sets.
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."
_FITNESS = "metrics.`fitness`"
INDIVIDUAL_COLUMNS = (
    "attributes.`Models`", _FITNESS, "metrics.`accuracy`", "metrics.`robustness`",
    "metrics.`parameters`", "metrics.`final/test_accuracy`", "params.`generation`",
    "params.`genetic_parent`", "params.`mutation_ops`", "tags.`ras_deap.best`",
)

_SQLITE_PREFIX = "sqlite:///"
_REMOTE_SCHEMES = ("http://", "https://", "databricks")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

# MLflow's HTTP client retries a dead server 7 times with exponential backoff
# and a 120 s timeout per request (minutes of silence). A search talks to the
# server after every individual, so it bounds both; an environment variable
# the user set wins (docs/guide/faults.md).
# MLflow prints two "View run ..." lines for every run it ends on an HTTP store: one
# pair per individual; the search prints its own links instead.
HTTP_DEFAULTS = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                 "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
PROBE_TIMEOUT = 5.0  # seconds to reach a tracking server before a search starts


class TrackingError(InfrastructureError, ValueError):
    """A tracking URI that cannot work: malformed, an uncreatable database
    folder, an unreachable server, a run missing from the store."""


def bound_http_retries() -> None:
    """Apply :data:`HTTP_DEFAULTS` to the environment where not already set."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def check_reachable(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise :class:`TrackingError` unless the tracking server of an http(s)
    ``uri`` answers within ``timeout`` seconds (any HTTP answer will do)."""
    if not uri.startswith(("http://", "https://")):
        return
    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise TrackingError(
            f"tracking_uri {uri!r}: the MLflow server does not answer ({exc}); start it "
            "(mlflow server --host ... --port ...), fix --tracking-uri, or leave it out to "
            "track in sqlite:///mlruns/mlflow.db") from exc


def check_mlflow_server(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise :class:`TrackingError` unless the http(s) server at ``uri``
    answers like an MLflow tracking server: one request of MLflow's REST API
    (no retry, ``timeout`` seconds) must come back as MLflow's JSON (an
    error such as a missing experiment counts; so does a refusal for want of
    credentials, which MLflow itself reports later). Any other web server
    (``python -m http.server``, a proxy's page) is named as such, before a
    run folder or an MLflow run is created."""
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    endpoint = "/api/2.0/mlflow/experiments/get-by-name"
    try:
        response = http_request(get_default_host_creds(uri), endpoint, "GET", max_retries=0,
                                backoff_factor=0, timeout=timeout, raise_on_status=False,
                                params={"experiment_name": "Default"})
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
    except Exception as exc:  # any failure of the probe: not usable
        detail = " ".join(str(exc).split())[:200]
        raise TrackingError(
            f"tracking_uri {uri!r} is not an MLflow tracking server: GET {endpoint} failed "
            f"({detail}); start one (mlflow server --host ... --port ...), fix "
            "--tracking-uri, or leave it out to track in sqlite:///mlruns/mlflow.db") from exc
    if status in (401, 403) or (isinstance(body, dict) and (
            "experiment" in body or "error_code" in body)):
        return
    kind = response.headers.get("Content-Type", "no content type").split(";")[0]
    raise TrackingError(
        f"tracking_uri {uri!r} is not an MLflow tracking server: GET {endpoint} answered "
        f"HTTP {status} ({kind}), not MLflow's JSON; point --tracking-uri at an MLflow server "
        "(mlflow server --host ... --port ...), or leave it out to track in "
        "sqlite:///mlruns/mlflow.db")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a local ``sqlite:///`` URI (relative URIs are
    relative to the working directory), or None for any other store."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    path = uri[len(_SQLITE_PREFIX):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def is_remote(uri: str) -> bool:
    """True for a tracking server (``http(s)://``, Databricks)."""
    return uri.startswith(_REMOTE_SCHEMES)


def resolve_tracking(uri: str | None) -> tuple[str, str | None]:
    """Return ``(tracking_uri, artifact_location)`` for ``uri`` (None means
    :data:`DEFAULT_TRACKING_URI`).

    For a local SQLite file the folder holding it is created, the URI is made
    absolute (so it still names the same store if the working directory
    changes, and can be pasted into ``mlflow ui``) and artifacts go to an
    ``artifacts`` folder beside the database: for the default that is
    ``<cwd>/mlruns/artifacts``. Any other store keeps its own artifact
    default (None), which is what a shared ``mlflow server`` expects.
    """
    if uri is not None and not isinstance(uri, str):
        raise TypeError(f"tracking_uri must be a string or None, got {type(uri).__name__}")
    uri = (uri or "").strip() or DEFAULT_TRACKING_URI
    check_uri(uri)
    path = sqlite_path(uri)
    if path is None:
        return uri, None
    path = path.expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(f"{path.parent} is not writable")
    except OSError as exc:
        raise TrackingError(
            f"tracking_uri {uri!r}: cannot create the folder {path.parent} for the database "
            f"({exc}); pass a --tracking-uri in a writable place"
        ) from exc
    query = uri.split("?", 1)[1] if "?" in uri else ""
    absolute = _SQLITE_PREFIX + path.as_posix()  # "sqlite:////abs/..." on POSIX
    if query:
        absolute = f"{absolute}?{query}"
    return absolute, str(path.parent / "artifacts")


def check_uri(uri: str) -> None:
    """Refuse a tracking URI MLflow would reject only later, with a traceback:
    a bare path such as ``mlruns`` or a file store (MLflow 3 refuses those
    unless ``MLFLOW_ALLOW_FILE_STORE=true``)."""
    if uri.startswith("databricks"):
        return
    if not _SCHEME.match(uri) or re.match(r"^[A-Za-z]:[\\/]", uri):
        raise TrackingError(
            f"tracking_uri {uri!r} is a path, not a URI: use sqlite:///{uri.rstrip('/')}"
            f"/mlflow.db for a local database (the default is {DEFAULT_TRACKING_URI}), or "
            "http://host:port for an MLflow server")
    if uri.startswith("file:") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() \
            not in ("true", "1"):
        raise TrackingError(
            f"tracking_uri {uri!r}: MLflow 3 no longer accepts file stores; use "
            f"{DEFAULT_TRACKING_URI} (or set MLFLOW_ALLOW_FILE_STORE=true)")


def prepare_store(tracking_uri: str, sqlite_wal: bool = True) -> None:
    """Make the store ready before a search uses it. A local SQLite database
    is created (MLflow's schema migrations) under a lock beside it, so
    several runs started at once on a fresh store do not migrate it at the
    same time; a server must answer within :data:`PROBE_TIMEOUT` seconds, and
    answer as MLflow does."""
    path = sqlite_path(tracking_uri)
    if path is None:
        check_reachable(tracking_uri)
        check_mlflow_server(tracking_uri)
        return
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with file_lock(path.with_name(path.name + ".init-lock"), what="the MLflow store set-up"):
        if sqlite_wal:
            enable_wal(tracking_uri)
        try:
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
        except MlflowException as exc:
            raise TrackingError(f"tracking_uri {tracking_uri!r}: cannot open the MLflow "
                                f"database ({str(exc).splitlines()[0]})") from exc


def enable_wal(tracking_uri: str) -> bool:
    """Switch a local SQLite store to write-ahead logging (a persistent property
    of the database file). Every MLflow call is its own transaction, and in
    WAL mode a commit costs one sequential write instead of several synced
    ones: logging an individual gets about 2.5 times faster, and ``mlflow ui``
    can read while a search writes. Returns False (with a warning) where the
    filesystem does not support it, e.g. some network mounts."""
    path = sqlite_path(tracking_uri)
    if path is None:
        return False
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.close()
    except sqlite3.Error as exc:
        warnings.warn(f"could not enable WAL mode on {path} ({exc}); tracking still works, "
                      "only slower", stacklevel=2)
        return False
    return str(mode).lower() == "wal"


def ui_command(tracking_uri: str) -> str:
    """The shell command that shows the runs of ``tracking_uri`` in a browser
    (for a remote server the server already is the UI: its address)."""
    if is_remote(tracking_uri):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}"


def ui_host(tracking_uri: str, host: str = UI_HOST) -> str:
    """The address of the MLflow UI for ``tracking_uri``: the server itself for
    a remote store, else ``host`` (where ``mlflow ui`` listens)."""
    return (tracking_uri if is_remote(tracking_uri) else host).rstrip("/")


def _children_filter(parent_run_id: str) -> str:
    return f"tags.`mlflow.parentRunId` = '{parent_run_id}'"


def individuals_view(parent_run_id: str) -> dict[str, Any]:
    """The runs-table view of a search's individuals (its child runs): best
    fitness first, with fitness, accuracy, robustness, size, lineage and the
    model in columns (the value of a ``mlflow.sharedViewState.`` tag)."""
    return {"searchFilter": _children_filter(parent_run_id), "orderByKey": _FITNESS,
            "orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active",
            "selectedColumns": list(INDIVIDUAL_COLUMNS),
            # "duration" is the grid's id of the always-shown Duration column
            "columnOrder": ["duration", *INDIVIDUAL_COLUMNS],
            "columnWidths": {c: 115 for c in INDIVIDUAL_COLUMNS}}


def runs_url(tracking_uri: str, experiment_id: str, *, parent_run_id: str | None = None,
             order_by: str | None = _FITNESS, ascending: bool = False,
             view_key: str | None = None, host: str = UI_HOST) -> str:
    """The experiment's runs table in the model-training view: only the runs
    nested under ``parent_run_id`` when given (a search's individuals),
    sorted by ``order_by`` (fitness, best first, by default). ``view_key``
    opens the shared view ``mlflow.sharedViewState.<view_key>`` instead (its
    own filter, sort and columns: MLflow ignores it when the address also
    carries a filter or sort)."""
    params = dict(ML_VIEW)
    if view_key:
        params["viewStateShareKey"] = view_key
        return (f"{ui_host(tracking_uri, host)}/#/experiments/{experiment_id}/runs?"
                f"{urlencode(params, quote_via=quote)}")
    if parent_run_id:
        params["searchFilter"] = _children_filter(parent_run_id)
    if order_by:
        params["orderByKey"] = order_by
        params["orderByAsc"] = "true" if ascending else "false"
    query = urlencode(params, quote_via=quote)
    return f"{ui_host(tracking_uri, host)}/#/experiments/{experiment_id}/runs?{query}"


def run_page_url(tracking_uri: str, experiment_id: str, run_id: str,
                 host: str = UI_HOST) -> str:
    """One run's page (description, metrics, charts, artifacts) in the
    model-training view."""
    return (f"{ui_host(tracking_uri, host)}/#/experiments/{experiment_id}/runs/{run_id}"
            f"?{urlencode(ML_VIEW)}")
