"""Every ``python -m ras_deap.<tool> --option`` written in the README or the
docs names an option that tool accepts. Users copy these commands; a flag
renamed or removed in the code would otherwise fail only for them, which
neither the link check nor the strict site build can see."""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# each documented tool and the function that builds its parser
PARSERS = {
    "ras_deap.run": "ras_deap.run:build_parser",
    "ras_deap.compare": "ras_deap.compare.cli:build_parser",
    "ras_deap.compare.heldout": "ras_deap.compare.heldout:_parser",
    "ras_deap.compare.pareto": "ras_deap.compare.pareto:_parser",
    "ras_deap.compare.status": "ras_deap.compare.status:_parser",
    "ras_deap.compare.ablation": "ras_deap.compare.ablation:_parser",
    "ras_deap.assess": "ras_deap.assess.cli:build_parser",
    "ras_deap.attacks": "ras_deap.attacks.cli:_parser",
    "ras_deap.tune": "ras_deap.tune.cli:build_parser",
    "ras_deap.export": "ras_deap.export.cli:build_parser",
    "ras_deap.report": "ras_deap.report.cli:build_parser",
    "ras_deap.evaluation.gradcheck": "ras_deap.evaluation.gradcheck:build_parser",
}

# commands recorded as they were run, with the flag names of their time; the
# page itself gives today's name next to them
AS_RUN = {("docs/results/quick-check-b40-digits.md", "--budget")}

# "python -m ras_deap.<tool> words --flags", continued over "\" line breaks,
# up to the end of the command (inline code, a comment or a shell operator)
COMMAND = re.compile(r"python -m (ras_deap(?:\.[a-z_]+)*)((?:\\\n|[^`\n])*)")


def commands() -> Iterator[tuple[str, str, list[str]]]:
    """(page, tool, words after the tool) of every command on every page."""
    for page in PAGES:
        name = page.relative_to(ROOT).as_posix()
        for match in COMMAND.finditer(page.read_text(encoding="utf-8")):
            rest = re.split(r"\s#|&&|\|\||[|;>]", match.group(2).replace("\\\n", " "))[0]
            yield name, match.group(1), rest.split()


def options(parser: argparse.ArgumentParser, words: list[str]) -> set[str]:
    """The option strings ``parser`` accepts, those of the subcommand named
    first in ``words`` included."""
    accepted = {s for action in parser._actions for s in action.option_strings}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and words and words[0] in action.choices:
            accepted |= options(action.choices[words[0]], [])
    return accepted


def parser_of(tool: str) -> argparse.ArgumentParser:
    module, function = PARSERS[tool].split(":")
    return getattr(importlib.import_module(module), function)()


def test_every_documented_tool_has_its_parser_here() -> None:
    tools = {tool for _, tool, _ in commands()} - {"ras_deap"}  # "ras_deap.<tool>" in prose
    assert tools <= set(PARSERS), f"add {sorted(tools - set(PARSERS))} to PARSERS"


def test_the_scan_reads_whole_commands() -> None:
    readme = [(tool, words) for page, tool, words in commands() if page == "README.md"]
    assert ("ras_deap.run", []) in readme  # "&& python -m ras_deap.run" ends at the line's end
    # continued over "\" line breaks: the mnist10k comparison's --out is on its second line
    mnist = [words for page, tool, words in commands() if page == "docs/results/README.md"
             and tool == "ras_deap.compare" and "mnist10k" in words]
    assert mnist and "--out" in mnist[0] and "--report" in mnist[0]


@pytest.mark.parametrize("tool", sorted(PARSERS))
def test_documented_options_exist(tool: str) -> None:
    parser = parser_of(tool)
    unknown = sorted({(page, word.split("=")[0]) for page, t, words in commands() if t == tool
                      for word in words if word.startswith("--")
                      and word.split("=")[0] not in options(parser, words)} - AS_RUN)
    assert not unknown, f"documented options {tool} does not accept: {unknown}"


def test_an_unknown_option_is_found() -> None:
    parser = parser_of("ras_deap.attacks")
    assert "--images" in options(parser, ["heldout"])
    assert "--no-such-flag" not in options(parser, ["heldout"])
    assert "--images" not in options(parser, [])
