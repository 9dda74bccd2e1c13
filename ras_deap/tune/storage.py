"""Opening (or continuing) a study in an Optuna RDB storage.

Any SQLAlchemy URL works unchanged: ``sqlite:///studies/ras.db`` for one
machine, ``postgresql://user:password@host/db`` (or MySQL) for several
machines that work on one study at the same time, each running the same
``python -m ras_deap.tune`` command. A study remembers what it measures (space,
budget, base config) in its user attributes, and refuses to be continued with
settings whose values would not be comparable.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..config import EXECUTION_FIELDS, stored_values
from ..errors import TuneError

__all__ = ["DEFAULT_STORAGE", "STUDY_ATTR", "open_storage", "open_study", "public_url",
           "heartbeat_settings", "HEARTBEAT_ENV", "GRACE_ENV"]

FailedTrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]
# A running trial writes a heartbeat every HEARTBEAT seconds; one silent for GRACE
# seconds (its process was killed) is marked FAIL and retried the next time the
# study runs. Both can be changed with these environment variables.
HEARTBEAT_ENV = "RAS_DEAP_TUNE_HEARTBEAT_SECONDS"
GRACE_ENV = "RAS_DEAP_TUNE_GRACE_SECONDS"
DEFAULT_HEARTBEAT = 30
DEFAULT_GRACE = 120

DEFAULT_STORAGE = "sqlite:///studies/ras.db"
STUDY_ATTR = "ras_deap"  # user attribute holding what the study measures
_HINT = ("give an SQLAlchemy URL such as sqlite:///studies/ras.db or "
         "postgresql://user:password@host/dbname")


def public_url(url: str) -> str:
    """``url`` with any password masked (for logs, MLflow tags and messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def heartbeat_settings() -> tuple[int, int]:
    """``(heartbeat_interval, grace_period)`` in seconds, from the environment."""
    values = []
    for name, default in ((HEARTBEAT_ENV, DEFAULT_HEARTBEAT), (GRACE_ENV, DEFAULT_GRACE)):
        text = os.environ.get(name, "").strip()
        try:
            value = int(text) if text else default
        except ValueError:
            value = 0
        if value < 1:
            raise TuneError(f"{name}={text!r}: must be a whole number of seconds >= 1")
        values.append(value)
    if values[1] <= values[0]:
        raise TuneError(f"{GRACE_ENV} ({values[1]}) must be longer than {HEARTBEAT_ENV} "
                        f"({values[0]}), or live trials would be failed")
    return values[0], values[1]


def open_storage(url: str, failed_trial_callback: FailedTrialCallback | None = None
                 ) -> RDBStorage:
    """The RDB storage at ``url``, with trial heartbeats (see
    :func:`heartbeat_settings`; ``failed_trial_callback`` runs for each
    trial found dead); a local SQLite file gets its folder created.
    Every failure becomes a :class:`TuneError` that names the URL."""
    if not isinstance(url, str) or not url.strip():
        raise TuneError(f"storage={url!r}: empty storage URL; {_HINT}")
    shown = public_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise TuneError(f"storage={shown!r} is not a database URL ({exc}); {_HINT}") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TuneError(f"storage={shown!r}: cannot create the folder {folder} ({exc}); "
                            "put the database in a writable place") from exc
    heartbeat, grace = heartbeat_settings()
    try:
        with warnings.catch_warnings():  # heartbeats are Optuna's way to find dead trials
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                              heartbeat_stale_trial_callback=failed_trial_callback)
    except ImportError as exc:
        raise TuneError(f"storage={shown!r}: the database driver for "
                        f"{parsed.drivername!r} is not installed (e.g. psycopg2 for PostgreSQL, "
                        f"pymysql for mysql+pymysql://); install it or use sqlite:///...") from exc
    except SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0]
        raise TuneError(f"storage={shown!r}: cannot open the database ({reason}); check the "
                        f"URL, that the server is reachable and the file writable; {_HINT}"
                        ) from exc


def _comparable(attrs: dict[str, Any]) -> dict[str, Any]:
    """What must agree to continue a study: its attrs but the version, with
    the base config's missing options filled in with what they meant when it
    was stored (:func:`~ras_deap.config.stored_values`)."""
    out = {k: v for k, v in attrs.items() if k != "version"}
    if isinstance(out.get("config"), dict):
        out["config"] = {k: v for k, v in stored_values(out["config"]).items()
                         if k not in EXECUTION_FIELDS}
    return out


def open_study(name: str, storage: str, *, attrs: dict[str, Any],
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None,
               failed_trial_callback: FailedTrialCallback | None = None) -> optuna.Study:
    """Create study ``name`` (maximising) or load it to continue it.

    ``attrs`` says what a trial's value measures (space, budget, base
    config); a study created with other ``attrs`` or the opposite direction
    is refused with a message saying which setting differs."""
    if not isinstance(name, str) or not name.strip():
        raise TuneError(f"study_name={name!r}: give a non-empty study name")
    rdb = open_storage(storage, failed_trial_callback)
    study = optuna.create_study(storage=rdb, study_name=name, direction="maximize",
                                load_if_exists=True, sampler=sampler, pruner=pruner)
    shown = public_url(storage)
    if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE]:
        directions = [d.name.lower() for d in study.directions]
        raise TuneError(f"study {name!r} in {shown} was created with direction(s) "
                        f"{directions}, but RAS tuning maximises fitness; choose another "
                        f"--study-name or delete it: optuna delete-study --study-name {name} "
                        f"--storage {shown}")
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None:
        if study.trials:
            raise TuneError(f"study {name!r} in {shown} already has {len(study.trials)} trials "
                            "that were not made by ras_deap.tune; choose another --study-name")
        study.set_user_attr(STUDY_ATTR, attrs)
        return study
    old, new = _comparable(stored), _comparable(attrs)
    if old != new:
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        details = "; ".join(f"{k}: study has {_diff(old.get(k), new.get(k))}" for k in keys)
        raise TuneError(f"study {name!r} in {shown} measures something else: {details}. Values "
                        "of its trials would not be comparable with new ones: use the study's "
                        "settings to continue it, or another --study-name")
    return study


def _diff(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return ", ".join(f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in keys)
    return f"{old!r} (now {new!r})"
