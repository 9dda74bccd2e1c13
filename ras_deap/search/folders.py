"""Run folders: where a search keeps its checkpoint and outputs, and which
folder ``--resume`` continues."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

from ..checkpoint import CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAME, CheckpointError
from ..config import SearchConfig

__all__ = ["CONFIG_NAME", "create_run_dir", "resolve_run_dir"]

CONFIG_NAME = "config.json"  # the run's settings and MLflow run id, as plain JSON


def _default_name(config: SearchConfig) -> str:
    """``<dataset>-seed<seed>-<time>-<random suffix>``: two runs started in
    the same second still get two folders."""
    return (f"{config.dataset}-seed{config.seed}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-"
            f"{secrets.token_hex(3)}")


def resolve_run_dir(config: SearchConfig, resume: bool | str | Path = False) -> Path:
    """The folder of this run's checkpoint and outputs.

    ``resume=True`` picks ``runs/<run_name>`` or, without a name, the most
    recently modified run folder holding a checkpoint; a path resumes that
    folder (or checkpoint file). A new run without a name gets a fresh
    unique name (the folder is created by :func:`create_run_dir`)."""
    base = Path(config.run_dir)
    if isinstance(resume, (str, Path)):
        path = Path(resume)
        return path.parent if path.is_file() else path
    if resume:
        if config.run_name:
            return base / config.run_name
        candidates = sorted((p for name in (CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAME)
                             for p in base.glob(f"*/{name}")), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise CheckpointError(f"--resume: no run with a checkpoint under {base}/; start a "
                                  "new run without --resume")
        return candidates[-1].parent
    return base / (config.run_name or _default_name(config))


def create_run_dir(config: SearchConfig, planned: Path) -> Path:
    """Create a new run's folder. A default name is created exclusively (a
    collision draws another suffix); a name the user chose may exist already
    (without a checkpoint), since its lock, not the mkdir, decides who owns
    it."""
    planned.parent.mkdir(parents=True, exist_ok=True)
    if config.run_name:
        planned.mkdir(exist_ok=True)
        return planned
    for _ in range(100):
        try:
            planned.mkdir()
            return planned
        except FileExistsError:
            planned = planned.parent / _default_name(config)
    raise CheckpointError(f"could not create a fresh run folder under {planned.parent}")
