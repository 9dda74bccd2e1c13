"""Integer and choice checks for arguments that are no settings class field.

Settings classes declare their fields with :func:`ras_deap.options.option`
and are checked by :meth:`~ras_deap.options.Option.check` (one
``ConfigError``). What remains here checks plain function arguments (a
pool's worker count, a milestone period, a number of repeats): the caller
passes the error type its callers expect, and the wording is the same as
the schema's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_int", "is_int", "json_number"]


def is_int(value: Any) -> bool:
    """An int that is not a bool (``True`` is an int to Python, never to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_number(value: Any) -> float | None:
    """A number read from a JSON file as a float; None for a bool, NaN or
    anything else, so a planted or hand-edited record reads as unknown and
    is never trusted or crashed on."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def check_int(name: str, value: Any, *, minimum: int = 1, allow_none: bool = False,
              error: type[Exception] = ValueError, hint: str = "") -> None:
    """Raise ``error`` unless ``value`` is an integer >= ``minimum`` (or None
    when ``allow_none``); ``hint`` (e.g. the flag) ends the message."""
    if allow_none and value is None:
        return
    if not is_int(value) or value < minimum:
        raise error(f"{name}={value!r}: must be an integer >= {minimum}"
                    + (f" ({hint})" if hint else ""))
