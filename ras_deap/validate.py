"""The checks every settings class shares, in one place.

Settings are validated before any work starts, and a bad value must stop
the command with a message that names the parameter, says what it must be
and, where there is one, which flag sets it. Each settings class raises its
own error type (``ConfigError``, ``TuneError``, ``ValueError``, ...), so
the type is a parameter; the wording is the same everywhere.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_int", "check_choice", "is_int"]


def is_int(value: Any) -> bool:
    """An int that is not a bool (``True`` is an int to Python, never to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int = 1, allow_none: bool = False,
              error: type[Exception] = ValueError, hint: str = "") -> None:
    """Raise ``error`` unless ``value`` is an integer >= ``minimum`` (or None
    when ``allow_none``); ``hint`` (e.g. the flag) ends the message."""
    if allow_none and value is None:
        return
    if not is_int(value) or value < minimum:
        raise error(f"{name}={value!r}: must be an integer >= {minimum}"
                    + (f" ({hint})" if hint else ""))


def check_choice(name: str, value: Any, choices: tuple[Any, ...] | list[Any], *,
                 error: type[Exception] = ValueError, hint: str = "") -> None:
    """Raise ``error`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise error(f"{name}={value!r}: choose one of {', '.join(map(str, choices))}"
                    + (f" ({hint})" if hint else ""))
