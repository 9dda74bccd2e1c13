"""Opening (or continuing) a study in an Optuna RDB storage.

Any SQLAlchemy URL works unchanged: ``sqlite:///studies/ras.db`` for one
machine, ``postgresql://user:password@host/db`` (or MySQL) for several
machines that work on one study at the same time, each running the same
``python -m ras_deap.tune`` command. A study remembers what it measures (space,
budget, base config) in its user attributes, and refuses to be continued with
settings whose values would not be comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .errors import TuneError

__all__ = ["DEFAULT_STORAGE", "STUDY_ATTR", "open_storage", "open_study", "public_url"]

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


def open_storage(url: str) -> RDBStorage:
    """The RDB storage at ``url``; a local SQLite file gets its folder created.
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
    try:
        return RDBStorage(url)
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
    return {k: v for k, v in attrs.items() if k != "version"}


def open_study(name: str, storage: str, *, attrs: dict[str, Any],
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create study ``name`` (maximising) or load it to continue it.

    ``attrs`` says what a trial's value measures (space, budget, base
    config); a study created with other ``attrs`` or the opposite direction
    is refused with a message saying which setting differs."""
    if not isinstance(name, str) or not name.strip():
        raise TuneError(f"study_name={name!r}: give a non-empty study name")
    rdb = open_storage(storage)
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
