"""Why a network got fitness 0: the one place that names a failed
evaluation's reason, so the logged reasons have stable kinds to filter on
(``build_error``, ``nan_loss``, ``out_of_memory``, else the exception's type)."""

from __future__ import annotations

import torch

from ..errors import BuildError, TrainingError

__all__ = ["EXPECTED_FAILURES", "failure_reason"]

# what a bad individual is expected to raise: logged as its reason only; anything else
# is also logged with its traceback, since it may be a bug rather than a bad architecture
EXPECTED_FAILURES = (BuildError, TrainingError, torch.OutOfMemoryError, MemoryError)


def failure_reason(exc: BaseException) -> str:
    """The logged reason a network got fitness 0: its kind (``build_error``,
    ``nan_loss``, ``out_of_memory``, else the exception's type) and message."""
    if isinstance(exc, BuildError):
        return f"build_error: {exc}"
    if isinstance(exc, TrainingError):
        return f"nan_loss: {exc}"
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return f"out_of_memory: {str(exc).splitlines()[0] if str(exc) else ''}"
    return f"{type(exc).__name__}: {exc}"
