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
from typing import Any

from .options import ABSENT, Option

__all__ = ["OptionParser", "add_option", "given"]

# argparse's "argument --x: invalid int value: ..." and "... invalid choice: ..."
_BAD_VALUE = re.compile(r"argument \S+: invalid ")


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
