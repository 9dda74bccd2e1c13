"""Command-line flags made from the option schema (:mod:`ras_deap.options`).

``run``, ``tune`` and ``compare`` add their search options through
:func:`add_option`, so an option has one flag, one type and one help text
in every command; a command only adds a note (what the option means there)
and, where it starts from another value, its own default. Every flag
defaults to ``argparse.SUPPRESS``: the namespace holds only what the user
gave, and the command layers it over its presets (:func:`given`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .options import ABSENT, Option

__all__ = ["OLD_FLAGS", "OldFlag", "OptionParser", "add_option", "given", "old_names"]

# argparse's "argument --x: invalid int value: ..." and "... invalid choice: ..."
_BAD_VALUE = re.compile(r"argument \S+: invalid ")


@dataclass(frozen=True)
class OldFlag:
    """A renamed flag that is still accepted because a recorded command uses it."""

    command: str  # as in the CLI reference: "compare", "attacks build"
    old: str
    new: str
    recorded_in: str  # the file whose recorded command needs the old name


# The only old flag names before 1.0. No other renamed flag is accepted. Each command's
# help and the CLI reference derive their notes from this table.
OLD_FLAGS: tuple[OldFlag, ...] = (
    OldFlag("compare", "--workers", "--parallel-cells",
            "docs/results/README.md (the comparisons' recorded commands)"),
    OldFlag("attacks build", "--images-per-cell", "--images-per-setting",
            "ras_deap/bank/files/README.md (the mnist10k bank's build command)"),
    OldFlag("attacks build", "--linf-images-per-cell", "--linf-images-per-setting",
            "ras_deap/bank/files/README.md (the mnist10k bank's build command)"),
)


def old_names(command: str, new: str) -> tuple[list[str], str]:
    """The old names of ``command``'s flag ``new``, and a note for its help."""
    old = [f.old for f in OLD_FLAGS if f.command == command and f.new == new]
    note = (f" ({', '.join(old)}: its old name, accepted only for recorded commands; see "
            "the old flag names in the CLI reference)") if old else ""
    return old, note


class OptionParser(argparse.ArgumentParser):
    """An argument parser that prints its usage only for a malformed command
    line (an unknown flag, a missing argument); a bad value of a known flag is
    one line naming the flag and the value, like every other option error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # every CLI refuses abbreviated flags: with them a removed or mistyped name
        # silently becomes a longer one (--budget 275 was --budget-epochs 275)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        if _BAD_VALUE.match(message):
            self.exit(2, f"{self.prog}: error: {message}\n")
        super().error(message)


def add_option(group: Any, opt: Option, *, default: Any = ABSENT, note: str = "",
               prefix: str = "") -> argparse.Action:
    """Add ``opt`` to a parser or argument group: its flag, type, choices and
    help (with ``note`` and the command's ``default`` when it has its own).
    ``prefix`` names the flag and the destination for a command that sets
    another command's settings (compare's ``--assess-images`` -> ``assess_images``)."""
    if opt.kind is tuple:  # a comma list: each command parses it (and says so in its help)
        raise TypeError(f"{opt.name}: add_option takes single values, not {opt.kind.__name__}")
    kwargs: dict[str, Any] = {"dest": prefix.replace("-", "_") + opt.name,
                              "default": argparse.SUPPRESS, "help": opt.help_text(default, note)}
    if opt.kind is bool:
        kwargs["action"] = "store_true"
    else:
        kwargs["type"] = opt.kind
        if opt.choices is not None:
            kwargs["choices"] = opt.choices
        if opt.metavar is not None:
            kwargs["metavar"] = opt.metavar
    return group.add_argument("--" + prefix + opt.flag[2:], **kwargs)


def given(args: argparse.Namespace, names: Iterable[str], prefix: str = "") -> dict[str, Any]:
    """The options among ``names`` the user gave on the command line (added
    with ``prefix``: see :func:`add_option`)."""
    dest = prefix.replace("-", "_")
    return {name: getattr(args, dest + name) for name in names if dest + name in args}
