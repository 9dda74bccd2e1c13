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

The other settings classes (the evaluator's ``TrainConfig``, ``CompareConfig``,
``AssessConfig``, ``BuildConfig``, ``HeldoutConfig``, the source models'
configs, tune's ``TuneSettings``) declare their
fields the same way and validate them with :meth:`Option.check`, so a bad
value of any command is one :class:`~ras_deap.errors.ConfigError` naming it;
only what one declaration cannot say (a rule across fields) is written out.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .validate import is_int

__all__ = ["ABSENT", "FIXED", "FROM_FOLDER", "GROUPS", "MAY_CHANGE", "SETTINGS_GROUPS",
           "Option", "check_options", "option", "option_from", "options_of", "paper_values"]

# The groups, with the titles the parsers print. "execution" options change
# where and how fast a search runs, never its result.
GROUPS = {
    "search": "search (data, evolution, seed)",
    "training": "training schedule (paper section 5.3)",
    "final": "final training of the winner (after the search; never the search's result)",
    "execution": "execution and tracking (where and how fast it runs; never the result)",
}
# The groups of the other commands' settings (they are no search options, so the
# parsers and the reference's option tables, which walk GROUPS, leave them out).
SETTINGS_GROUPS = {
    "evaluator": "the evaluator's own training settings (no flags: a search leaves them)",
    "comparison": "a comparison's budget, seeds, methods and baselines (compare)",
    "assessment": "the direct attacks on a trained network (assess, compare --assess-*)",
    "bank": "how an adversarial bank is built (attacks build)",
    "study": "an Optuna study (tune)",
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
    """One option. ``kind`` is int, float, str, bool or tuple (then ``item``
    is the type of its elements, each checked as an option of that kind would
    be; ``nonempty`` and ``unique`` constrain the whole); ``optional``: None
    is allowed (and then described by ``none_means``). Numbers must be at
    least ``minimum`` (above it when not ``closed``) and below ``below``.
    ``omit_default``: a config's dict leaves the option out while it has its
    default, so settings stored before the option existed (checkpoints,
    comparisons, studies) still compare equal to a default config's.
    ``absent``: what settings stored *without* the option meant, where that is
    not today's default (the option's default changed after such settings were
    written: a stored run, comparison or study keeps what it was made with);
    :attr:`stored_default` reads it.
    ``hint`` ends every error message (e.g. the flags that set it, where a
    command names it otherwise)."""

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
    item: type | None = None
    nonempty: bool = False
    unique: bool = False
    hint: str | None = None
    absent: Any = ABSENT

    @property
    def stored_default(self) -> Any:
        """The value of settings stored without this option: ``absent`` where
        declared, else the default."""
        return self.default if self.absent is ABSENT else self.absent

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
        problem = self._problem(value)
        if problem is not None:
            shown = list(value) if isinstance(value, tuple | list) else value
            raise ConfigError(f"{self.name}={shown!r}: {problem}"
                              + (f" ({self.hint})" if self.hint else ""))

    def _problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None: nothing)."""
        if value is None:
            return None if self.optional else f"give a value (default {self.default!r})"
        if self.kind is not tuple:
            return None if self._valid(value, self.kind) else self._scalar_problem(value)
        noun = {int: "integers", float: "numbers"}.get(self.item, "names")
        if not isinstance(value, tuple | list):
            return f"must be a sequence of {noun}"
        if self.nonempty and not value:
            return f"give one or more {noun}"
        bad = [v for v in value if not self._valid(v, self.item)]
        if bad and self.choices is not None and isinstance(bad[0], str):
            return f"unknown {bad}; choose from {', '.join(self.choices)}"
        if bad:
            return f"{bad[0]!r} is not valid: each must be {self._expected(self.item)}"
        if self.unique and len(set(value)) != len(value):
            return "lists a value twice; give each once"
        return None

    def _valid(self, value: Any, kind: Any) -> bool:
        """Whether one value of ``kind`` (the option's, or a tuple's item) is valid."""
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is str:
            ok = isinstance(value, str)
        elif kind is int:
            ok = is_int(value) and (self.minimum is None or value >= self.minimum)
        elif kind is float:
            ok = self._in_range(value)
        else:
            ok = isinstance(value, kind)
        return ok and (self.choices is None or value in self.choices)

    def _expected(self, kind: Any) -> str:
        """What one value of ``kind`` must be, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if kind is int:
            return "an integer" + ("" if self.minimum is None else f" >= {self.minimum:g}")
        if kind is float:
            return "a number" + self._range()
        return {bool: "true or false", str: "text"}.get(kind, getattr(kind, "__name__", "?"))

    def _scalar_problem(self, value: Any) -> str:
        if self.kind is bool and not isinstance(value, bool):
            return (f"must be true or false (unquoted in TOML; the text {value!r} is not a "
                    "boolean)")
        if self.kind is str and not isinstance(value, str):
            return f"must be text (a quoted string in TOML), not {type(value).__name__}"
        if self.choices is not None and self.kind is str:
            return f"unknown {self.name}; choose one of {', '.join(self.choices)}"
        return f"must be {self._expected(self.kind)}"

    def _range(self) -> str:
        """`` in [0, 1)``, `` > 0``, ... (the bounds, as text)."""
        low, high = self.minimum, self.below
        if low is not None and high is not None:
            return f" in {'[' if self.closed else '('}{low:g}, {high:g})"
        if low is not None:
            return f" {'>=' if self.closed else '>'} {low:g}"
        return "" if high is None else f" < {high:g}"

    def _in_range(self, value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        low = self.minimum
        above = low is None or (value >= low if self.closed else value > low)
        return above and (self.below is None or value < self.below)


def option(default: Any, help: str, group: str, **details: Any) -> Any:
    """A dataclass field that declares an option (see :class:`Option` for the
    ``details``); :func:`options_of` reads them back with name and type."""
    if group not in GROUPS and group not in SETTINGS_GROUPS:
        raise ValueError(f"group={group!r}: choose one of {', '.join([*GROUPS, *SETTINGS_GROUPS])}")
    return dataclasses.field(default=default, metadata={"option": (help, group, details)})


def option_from(cls: type, name: str, **changes: Any) -> Any:
    """The option ``name`` that ``cls`` declares, declared again for another
    settings class: the same default, help, group and paper value, with
    ``changes`` to its details (e.g. a bound the other class may widen)."""
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    help, group, details = found.metadata["option"]
    return option(found.default, help, group, **{**details, **changes})


def _kind(hint: Any) -> tuple[Any, Any, bool]:
    """(kind, item, optional) of a field's annotation: ``int | None`` is an
    optional int, ``tuple[str, ...]`` a tuple of str."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        optional = type(None) in args
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return tuple, typing.get_args(hint)[0], optional
    return hint, None, optional


def options_of(cls: type) -> dict[str, Option]:
    """The options a dataclass declares with :func:`option`, in field order."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Option] = {}
    for f in dataclasses.fields(cls):
        if "option" not in f.metadata:
            continue
        help, group, details = f.metadata["option"]
        kind, item, optional = _kind(hints[f.name])
        out[f.name] = Option(name=f.name, kind=kind, default=f.default, help=help, group=group,
                             optional=optional, item=item, **details)
    return out


def check_options(config: Any, options: dict[str, Option]) -> None:
    """Each option of ``config`` against its declaration (the one validator of
    every settings class; a rule across options is the class's own)."""
    for name, opt in options.items():
        opt.check(getattr(config, name))


def paper_values(options: dict[str, Option]) -> dict[str, Any]:
    """The paper's value of every option that has one, in declaration order:
    the paper presets derive from the ``paper=`` of each declaration."""
    return {name: opt.paper for name, opt in options.items() if opt.paper is not ABSENT}
