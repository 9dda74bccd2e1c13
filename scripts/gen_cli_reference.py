"""Write docs/reference/cli.md from the option schema and the commands' parsers.

The reference is generated, never written by hand, so it cannot drift from the
code: every option of :class:`ras_deap.config.SearchConfig` (name, flag, default,
the paper's value, help, group, what ``--resume`` may do), the presets, and the
``--help`` of every command as argparse prints it. ``tests/test_cli_reference.py``
fails when the committed page differs from what this script produces now.

    python scripts/gen_cli_reference.py            # rewrite docs/reference/cli.md
    python scripts/gen_cli_reference.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reference" / "cli.md"
# argparse wraps help to the terminal's width: fix it so the page does not
# depend on the terminal that generated it.
WIDTH = "100"
# (command, module, parser factory), in the order a user meets them.
COMMANDS = [
    ("run", "ras_deap.run", "build_parser"),
    ("compare", "ras_deap.compare.cli", "build_parser"),
    ("assess", "ras_deap.assess.cli", "build_parser"),
    ("tune", "ras_deap.tune.cli", "build_parser"),
    ("attacks", "ras_deap.attacks.cli", "_parser"),
    ("export", "ras_deap.export.cli", "build_parser"),
    ("report", "ras_deap.report.cli", "build_parser"),
    ("compare.heldout", "ras_deap.compare.heldout", "_parser"),
    ("compare.ablation", "ras_deap.compare.ablation", "_parser"),
    ("compare.pareto", "ras_deap.compare.pareto", "_parser"),
    ("compare.status", "ras_deap.compare.status", "_parser"),
]

__all__ = ["COMMANDS", "PAGE", "main", "render"]


def _cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    return f"`{value}`" if value != "" else ""


def _options_section() -> list[str]:
    from ras_deap.config import OPTIONS, PRESET_OPTION, PRESETS
    from ras_deap.options import ABSENT, GROUPS

    out = ["## Options of a search", "",
           "Every option is declared once, as a field of `SearchConfig` (`ras_deap/config.py`); "
           "the flags of `run`, `tune` and `compare`, the keys of a `--config` TOML file (the "
           "option's name, under `[search]` or at the top) and the resume check derive from it. "
           "Values come from the defaults, then `--preset`, then `--config`, then the flags.",
           ""]
    for group, title in GROUPS.items():
        out += [f"### {title}", "",
                "| name | flag | default | paper | on `--resume` | help |",
                "|---|---|---|---|---|---|"]
        for opt in OPTIONS.values():
            if opt.group != group:
                continue
            choices = f" (one of: {', '.join(opt.choices)})" if opt.choices else ""
            paper = "" if opt.paper is ABSENT else _code(opt.paper)
            if opt.kind is bool and opt.default is False:
                default = "off"
            elif opt.default is None:
                default = opt.default_phrase()  # what None means, in words
            else:
                default = _code(opt.default)
            out.append(f"| `{opt.name}` | `{opt.flag}` | {_cell(default)} | {_cell(paper)} | "
                       f"{opt.resume} | {_cell(opt.help + choices)} |")
        out.append("")
    out += ["### Presets", "",
            f"`{PRESET_OPTION.flag}` (default `{PRESET_OPTION.default}`): "
            f"{PRESET_OPTION.help}.", "",
            "| preset | values |", "|---|---|"]
    for name, values in PRESETS.items():
        shown = ", ".join(f"`{k} = {v!r}`" for k, v in values.items()) or "the defaults"
        out.append(f"| `{name}` | {_cell(shown)} |")
    return [*out, ""]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_block(parser: argparse.ArgumentParser) -> list[str]:
    return ["```text", parser.format_help().rstrip("\n"), "```", ""]


def _commands_section() -> list[str]:
    out = ["## Commands", "",
           "Each command's `--help`, as it prints it (`python -m ras_deap.<command> --help`).", ""]
    for name, module, factory in COMMANDS:
        parser = getattr(importlib.import_module(module), factory)()
        out += [f"### {name}", "", *_help_block(parser)]
        for sub, subparser in _subparsers(parser).items():
            out += [f"#### {name} {sub}", "", *_help_block(subparser)]
    return out


def _old_flags_section() -> list[str]:
    from ras_deap.flags import OLD_FLAGS

    out = ["## Old flag names", "",
           "Flags renamed before 1.0 are refused, with these exceptions only: each old name "
           "is still accepted because a recorded command uses it "
           "(from `ras_deap.flags.OLD_FLAGS`).",
           "", "| command | old name | current name | recorded in |", "|---|---|---|---|"]
    out += [f"| `{f.command}` | `{f.old}` | `{f.new}` | {f.recorded_in} |" for f in OLD_FLAGS]
    return [*out, ""]


def render() -> str:
    """The page, from the schema and the parsers as they are now."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        lines = ["# Command-line reference", "",
                 "<!-- generated by scripts/gen_cli_reference.py: do not edit; run "
                 "`python scripts/gen_cli_reference.py` after changing an option or a "
                 "command's flags -->", "",
                 "Generated from the option schema and the commands' parsers. How long things "
                 "take: [Costs](../guide/costs.md).", "",
                 *_options_section(), *_old_flags_section(), *_commands_section()]
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/gen_cli_reference.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="do not write: exit 1 if the committed page is out of date")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python "
                  "scripts/gen_cli_reference.py", file=sys.stderr)
            return 1
        print(f"{PAGE.relative_to(ROOT)} is up to date")
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
