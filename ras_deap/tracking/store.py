"""Where tracking data goes: the default store and how a URI is resolved.

MLflow 3 refuses the old file store unless told otherwise and defaults to a
``mlflow.db`` in whatever directory the process runs from. Everything this
project tracks should sit in one folder a user can find, copy or delete, so
the default is an SQLite database inside ``mlruns/`` with the artifacts next
to it (``mlruns/artifacts``).
"""

from __future__ import annotations

import shlex
import sqlite3
import warnings
from pathlib import Path

__all__ = ["DEFAULT_TRACKING_URI", "resolve_tracking", "sqlite_path", "ui_command", "is_remote",
           "enable_wal"]

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"

_SQLITE_PREFIX = "sqlite:///"
_REMOTE_SCHEMES = ("http://", "https://", "databricks")


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
    path = sqlite_path(uri)
    if path is None:
        return uri, None
    path = path.expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"tracking_uri {uri!r}: cannot create the folder {path.parent} for the database "
            f"({exc}); pass a --tracking-uri in a writable place"
        ) from exc
    query = uri.split("?", 1)[1] if "?" in uri else ""
    absolute = _SQLITE_PREFIX + path.as_posix()  # "sqlite:////abs/..." on POSIX
    if query:
        absolute = f"{absolute}?{query}"
    return absolute, str(path.parent / "artifacts")


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
