"""Atomic checkpoints of a search, so a killed run resumes where it stopped.

A checkpoint is a pickle of the search state (subpopulations, cluster
representatives, offspring with the fitness of those already evaluated,
logbook, hall of fame, RNG state, MLflow run id) together with the config
that produced it. It is written to a temporary file and renamed over the
old one, so a kill at any moment leaves either the old or the new checkpoint,
never half of one.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import write_bytes_atomic
from .evolution import SearchState

__all__ = ["CHECKPOINT_NAME", "CheckpointError", "Checkpoint", "save_checkpoint",
           "load_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pkl"
# 2: genome ids ignore node numbering, the limits count created instances and
# clusters breed in a seeded random order. A format-1 state holds ids of the
# old scheme (cached in its pickled records), so resuming it would mix both.
FORMAT = "ras_deap.checkpoint/2"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or from an incompatible version."""


@dataclass
class Checkpoint:
    config: dict[str, Any]
    state: SearchState
    history: list[dict[str, Any]]
    format: str = FORMAT
    version: str = __version__


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    write_bytes_atomic(path, lambda fh: pickle.dump(checkpoint, fh,
                                                    protocol=pickle.HIGHEST_PROTOCOL))


def load_checkpoint(path: Path) -> Checkpoint:
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: pass the folder of a run started with "
                              "`python -m ras_deap.run` (runs/<name>/)")
    try:
        with path.open("rb") as fh:
            checkpoint = pickle.load(fh)
    except Exception as exc:  # truncated, overwritten, not a pickle at all
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be read ({exc!r}); "
                              "start a new run, or restore the file from a backup") from exc
    fmt = getattr(checkpoint, "format", None)
    if isinstance(checkpoint, Checkpoint) and fmt == "ras_deap.checkpoint/1":
        raise CheckpointError(
            f"checkpoint {path} was written by ras_deap {getattr(checkpoint, 'version', '?')} "
            "(checkpoint format 1), whose genome ids depend on node numbering and whose limits "
            "and breeding order differ; resuming it here would mix two searches. Finish it with "
            "that version, or start a new run (without --resume, or with another --run-name)")
    if not isinstance(checkpoint, Checkpoint) or fmt != FORMAT:
        raise CheckpointError(f"{path} is not a ras_deap checkpoint of format {FORMAT}; it was "
                              f"written by another program or version")
    return checkpoint
