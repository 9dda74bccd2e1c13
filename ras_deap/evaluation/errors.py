"""Exceptions of the evaluation layer."""

from __future__ import annotations

__all__ = ["BuildError", "TrainingError"]


class BuildError(RuntimeError):
    """A genome that cannot be turned into a network (e.g. too many
    parameters). Carries the genome id so the failing individual is named."""

    def __init__(self, genome_id: str, reason: str) -> None:
        super().__init__(f"cannot build model {genome_id}: {reason}")
        self.genome_id = genome_id
        self.reason = reason


class TrainingError(RuntimeError):
    """Training diverged (a non-finite loss); the individual gets fitness 0."""
