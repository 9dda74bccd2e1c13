"""The option schema: how an option is declared, once, and checked.

Every setting of a search is a field of :class:`ras_deap.config.SearchConfig`
declared with :func:`option`: its type (the annotation), default and the
paper's value, its help text, its group and what ``--resume`` may do with
it. Everything else reads that declaration instead of repeating it: the
parsers of ``run``, ``tune`` and ``compare`` (:mod:`ras_deap.flags`; the
same option has the same flag everywhere), the validation of TOML files and
stored configs, the resume check, the training options the evaluator gets,
tune's reserved keys and the command that reproduces a study's best trial.
Copies drift (``tune --help`` once stated one epoch default while the code
used another); a derivation cannot.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .validate import is_int

__all__ = ["ABSENT", "FIXED", "FROM_FOLDER", "GROUPS", "MAY_CHANGE", "Option", "option",
           "options_of"]

# The groups, with the titles the parsers print. "execution" options change
# where and how fast a search runs, never its result.
GROUPS = {
    "search": "search (data, evolution, seed)",
    "training": "training schedule (paper section 5.3)",
    "final": "final training of the winner (after the search; never the search's result)",
    "execution": "execution and tracking (where and how fast it runs; never the result)",
}
# What --resume may do with an option: it must match the checkpoint (FIXED),
# it may be given anew (MAY_CHANGE), or it is the resumed folder (FROM_FOLDER).
FIXED, MAY_CHANGE, FROM_FOLDER = "fixed", "may change", "from the run folder"


class _Absent:
    """No value (the paper gives none, or no command-specific default)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Option:
    """One option. ``kind`` is int, float, str or bool; ``optional``: None
    is allowed (and then described by ``none_means``). Numbers must be at
    least ``minimum`` (above it when not ``closed``) and below ``below``.
    ``omit_default``: a config's dict leaves the option out while it has its
    default, so settings stored before the option existed (checkpoints,
    comparisons, studies) still compare equal to a default config's."""

    name: str
    kind: type
    default: Any
    help: str
    group: str
    paper: Any = ABSENT
    resume: str = FIXED
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    minimum: float | None = None
    closed: bool = True
    below: float | None = None
    optional: bool = False
    none_means: str | None = None
    omit_default: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag, the same in every command."""
        return "--" + self.name.replace("_", "-")

    def default_phrase(self, default: Any = ABSENT) -> str:
        """How the help states the default (``default`` overrides the schema's,
        for a command that starts from another value)."""
        value = self.default if default is ABSENT else default
        if value is None:
            return self.none_means or "none"
        return str(value)

    def help_text(self, default: Any = ABSENT, note: str = "") -> str:
        """The help line: what it does, the command's note, the paper's value and
        the default (a switch is off unless given: no default is stated)."""
        text = self.help + (f"; {note}" if note else "")
        if self.kind is bool:
            return text
        paper = "" if self.paper is ABSENT else f"paper {self.paper}; "
        return f"{text} ({paper}default {self.default_phrase(default)})"

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigError` naming the option unless ``value`` is valid."""
        name = self.name
        if value is None:
            if self.optional:
                return
            raise ConfigError(f"{name}=None: give a value (default {self.default!r})")
        if self.kind is bool and not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r}: must be true or false (unquoted in TOML; the "
                              f"text {value!r} is not a boolean)")
        if self.kind is str and not isinstance(value, str):
            raise ConfigError(f"{name}={value!r}: must be text (a quoted string in TOML), not "
                              f"{type(value).__name__}")
        if self.kind is int and (not is_int(value) or (self.minimum is not None
                                                       and value < self.minimum)):
            raise ConfigError(f"{name}={value!r}: must be an integer >= {self.minimum:g}")
        if self.kind is float and not self._in_range(value):
            low = "[" if self.closed else "("
            raise ConfigError(f"{name}={value!r}: must be a number in {low}{self.minimum:g}, "
                              f"{self.below:g})")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{name}={value!r}: unknown {name}; choose one of "
                              f"{', '.join(self.choices)}")

    def _in_range(self, value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        low = self.minimum
        above = low is None or (value >= low if self.closed else value > low)
        return above and (self.below is None or value < self.below)


def option(default: Any, help: str, group: str, **details: Any) -> Any:
    """A dataclass field that declares an option (see :class:`Option` for the
    ``details``); :func:`options_of` reads them back with name and type."""
    if group not in GROUPS:
        raise ValueError(f"group={group!r}: choose one of {', '.join(GROUPS)}")
    return dataclasses.field(default=default, metadata={"option": (help, group, details)})


def options_of(cls: type) -> dict[str, Option]:
    """The options a dataclass declares with :func:`option`, in field order."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Option] = {}
    for f in dataclasses.fields(cls):
        if "option" not in f.metadata:
            continue
        help, group, details = f.metadata["option"]
        kinds = [k for k in typing.get_args(hints[f.name]) if k is not type(None)]
        kind = kinds[0] if kinds else hints[f.name]
        out[f.name] = Option(name=f.name, kind=kind, default=f.default, help=help, group=group,
                             optional=type(None) in typing.get_args(hints[f.name]), **details)
    return out
