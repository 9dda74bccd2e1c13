"""The one error type of the tuning module: bad input the user can fix."""

from __future__ import annotations

from ..errors import UsageError

__all__ = ["TuneError"]


class TuneError(UsageError, ValueError):
    """A bad study setting (storage URL, study name, flag value): the message
    names it and says how to fix it. The CLI turns it into exit code 2."""
