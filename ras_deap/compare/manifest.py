"""A comparison folder's manifest and what resumes from it.

``<out>/comparison.json`` records the settings (everything that decides a
cell's result, :meth:`CompareConfig.settings`), the MLflow parent run and
every session. A cell is finished when ``<out>/cells/<method>-seed<seed>/
result.json`` exists and was made with the same settings. Started again
with the same settings a comparison resumes; with other settings it
refuses (:class:`CompareError`). Seeds, methods and ``--parallel-cells``
may change: they only choose the cells and how many run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import read_json_if_valid, write_json_atomic
from ..config import OPTIONS, ConfigError, is_multiobjective, stored_values
from .cells import RESULT_NAME, cell_dir
from .compare_config import CompareConfig

__all__ = ["MANIFEST_FORMAT", "MANIFEST_NAME", "CompareError", "load_result", "machine",
           "open_manifest", "stored_result", "write_json", "write_manifest"]

MANIFEST_NAME = "comparison.json"
MANIFEST_FORMAT = "ras_deap.compare/2"


class CompareError(ConfigError):
    """A comparison that cannot start: its output folder holds another one."""


def write_json(path: Path, data: Any) -> None:
    write_json_atomic(path, data, default=str)


def _normal(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def _upgraded(stored: Any, current: dict[str, Any], ras_mo: bool = False) -> Any:
    """``stored`` settings with each search option they lack and ``current``
    holds filled in with what it meant when they were stored
    (:func:`~ras_deap.config.stored_values`: an option a newer ras_deap added
    keeps the old behaviour at its default, and one whose default changed keeps
    the old default), so a comparison started before can resume with the
    settings it was started with, and only with them. A single-objective
    comparison stored no ``mo_selection``: where ``ras_mo`` cells ran (``ras_mo``)
    they truncated by the old default; where none did, it meant nothing."""
    if not (isinstance(stored, dict) and isinstance(stored.get("search"), dict)):
        return stored
    meant = _normal(stored_values(stored["search"]))
    if ras_mo:  # stored_values gives a single-objective search today's default instead
        meant["mo_selection"] = OPTIONS["mo_selection"].stored_default
    search = dict(stored["search"])
    for key in current.get("search", {}):
        if key not in search and key in meant:
            search[key] = meant[key]
    return {**stored, "search": search}


def _matches(stored: Any, current: dict[str, Any], ras_mo: bool = False) -> bool:
    return _upgraded(stored, current, ras_mo) == current


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} then, {new!r} now"]


def _checked(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The manifest stored at ``path``; :class:`CompareError` unless it is
    readable, of this format and records ``settings``."""
    out = path.parent
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path} is corrupt ({exc}); remove it (and the cells/ folder) "
                           "or pass another --out") from exc
    if data.get("format") != MANIFEST_FORMAT:
        raise CompareError(f"{path} was written by another version of ras_deap.compare "
                           f"(format {data.get('format')!r}); pass another --out")
    ras_mo = any((out / "cells").glob("ras_mo-*"))
    changed = _differences(_upgraded(data.get("settings"), settings, ras_mo), settings)
    if changed and ras_mo and not is_multiobjective(settings.get("search", {}).get("objectives")) \
            and any(c.startswith("search.mo_selection:") for c in changed):
        raise CompareError(
            f"--out {out} holds ras_mo cells that truncated their fronts by spectrum, the "
            "default before crowding (this ras_deap's); a single-objective comparison cannot "
            "choose, so new ras_mo cells would differ from them. Finish it with the ras_deap "
            "that started it, or pass another --out (with --objectives accuracy,robustness "
            "--mo-selection spectrum to truncate as they did)")
    if changed:
        raise CompareError(
            f"--out {out} holds a comparison with other settings ({'; '.join(changed)}). "
            "Rerun with the settings it was started with to resume it, or pass another "
            "--out for a new comparison (only --seeds, --methods and --parallel-cells may "
            "change on resume)")
    return data


def open_manifest(cfg: CompareConfig) -> tuple[dict[str, Any], bool]:
    """The manifest of ``cfg.out`` (created if new) and whether it existed;
    :class:`CompareError` if it records other settings."""
    out = Path(cfg.out)
    path = out / MANIFEST_NAME
    settings = _normal(cfg.settings())
    if path.is_file():
        return _checked(path, settings), True
    if (out / "cells").is_dir() and any((out / "cells").iterdir()):
        raise CompareError(f"--out {out} holds cells/ but no {MANIFEST_NAME}, so its settings "
                           "are unknown; remove the folder or pass another --out")
    data = {"format": MANIFEST_FORMAT, "version": __version__, "settings": settings,
            "created": datetime.now().isoformat(timespec="seconds"), "parent_run_id": None,
            "sessions": []}
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    return data, False


def write_manifest(cfg: CompareConfig, manifest: dict[str, Any]) -> None:
    write_json(Path(cfg.out) / MANIFEST_NAME, manifest)


def stored_result(path: Path, cfg: CompareConfig) -> dict[str, Any] | None:
    """The result stored in ``path`` if it is readable and made with ``cfg``'s
    settings, else None (the cell is run again)."""
    data = read_json_if_valid(path)
    if not isinstance(data, dict):
        return None
    return data if _matches(data.get("settings"), _normal(cfg.settings()),
                            data.get("method") == "ras_mo") else None


def load_result(cfg: CompareConfig, method: str, seed: int) -> dict[str, Any] | None:
    """The stored result of a finished cell, None if it has none (or an
    unreadable one, which is run again)."""
    return stored_result(cell_dir(cfg.out, method, seed) / RESULT_NAME, cfg)


def machine() -> dict[str, Any]:
    """The machine a session ran on, for the manifest's ``sessions``: the
    platform, and the CPU and kernels (:func:`~ras_deap.evaluation.machine.machine_record`)
    that make a result reproducible only next to them."""
    import platform

    from ..evaluation.machine import machine_record

    record = machine_record()
    # the core count under the key older sessions already use, once
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": int(record.pop("cores")), "ras_deap": __version__,
                            "cpu": record.pop("cpu"), **record}
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info
