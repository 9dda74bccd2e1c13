"""The package's error types and the one place that maps them to exit codes.

A user mistake (a bad option, a checkpoint that cannot be resumed, an
unreachable tracking server, a run folder another process owns) is an
exception whose message names the option and the fix; the command-line
entry points wrap their work in :func:`run_cli`, which prints that message
on one line and returns the exit code of the error's type, so no user
mistake ends in a traceback. Anything not in :data:`EXIT_CODES` is a bug and
keeps its traceback (exit 1).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["UsageError", "ConfigError", "InfrastructureError", "RunLockedError", "Terminated",
           "GenomeError", "BankError", "TuneError", "BuildError", "TrainingError",
           "EXIT_USAGE", "EXIT_INTERRUPTED", "exit_code_for", "run_cli", "sigterm_as_interrupt"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Something the user can fix: the message names the option and the fix
    (exit code 2)."""


class ConfigError(UsageError, ValueError):
    """A bad option value; the message names the option and how to fix it.
    (A ``ValueError`` too, so code that validates numbers can catch it as one.)"""


class InfrastructureError(UsageError):
    """A service the command needs is unreachable or unusable: a tracking
    server, a Dask scheduler, a device, a database (exit code 2)."""


class RunLockedError(UsageError):
    """A run folder that another live process owns (exit code 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: MLflow runs end KILLED, the state is
    saved, and the message says how to resume."""


class GenomeError(UsageError, ValueError):
    """An invalid genome: a cycle, a dangling reference, an unreachable node or
    a parameter outside its choices. The message names the offending part."""


class BankError(UsageError, ValueError):
    """A bank that is malformed, corrupted (checksum mismatch) or built for
    another dataset / image shape. The message names the problem and the fix."""


class TuneError(UsageError, ValueError):
    """A bad study setting (storage URL, study name, flag value): the message
    names it and says how to fix it. The CLI turns it into exit code 2."""


class BuildError(RuntimeError):
    """A genome that cannot be turned into a network (e.g. too many
    parameters): not bad input but a failing individual, scored 0. Carries the
    genome id so the failing individual is named."""

    def __init__(self, genome_id: str, reason: str) -> None:
        super().__init__(f"cannot build model {genome_id}: {reason}")
        self.genome_id = genome_id
        self.reason = reason


class TrainingError(RuntimeError):
    """Training diverged (a non-finite loss): a failing individual, scored 0."""


# exception type -> exit code; the first matching entry wins (subclasses first). Every
# user-facing error of the package subclasses UsageError, so none is looked up by name.
EXIT_CODES: list[tuple[tuple[type[BaseException], ...], int]] = [
    ((KeyboardInterrupt,), EXIT_INTERRUPTED),
    ((UsageError,), EXIT_USAGE),
    ((BrokenPipeError,), 0),  # `... | head`: the reader left, nothing went wrong
]


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of ``exc``'s type, or None for an unexpected error."""
    for types, code in EXIT_CODES:
        if isinstance(exc, types):
            return code
    return None


def _quiet_broken_pipe() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final
    flush does not print another BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run_cli(prog: str, work: Callable[[], int], *,
            on_interrupt: Callable[[BaseException], str] | None = None,
            usage: Callable[[], None] | None = None) -> int:
    """Run ``work()`` and turn the package's errors into one line on stderr
    and their exit code: 2 for user mistakes (``usage()`` prints the usage
    line first), 130 for Ctrl-C and SIGTERM (``on_interrupt(exc)`` says how
    to continue), 0 for a closed pipe. Other exceptions propagate."""
    try:
        return work()
    except BaseException as exc:
        code = exit_code_for(exc)
        if code is None:
            raise
        if isinstance(exc, BrokenPipeError):
            _quiet_broken_pipe()
            return code
        if isinstance(exc, KeyboardInterrupt):
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            extra = on_interrupt(exc) if on_interrupt is not None else ""
            print(f"\n{what}{': ' + extra if extra else ''}", file=sys.stderr)
            return code
        if usage is not None:
            usage()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return code


def sigterm_as_interrupt() -> Callable[[], None]:
    """Make SIGTERM raise :class:`Terminated` in the main thread (as Ctrl-C
    raises KeyboardInterrupt) so ``kill PID`` ends MLflow runs KILLED and
    saves the state. Returns a function restoring the previous handler."""
    def handler(signum: int, frame: FrameType | None) -> Any:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup must not be cut
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)
