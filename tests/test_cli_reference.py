"""The committed command-line reference (docs/reference/cli.md) is what
scripts/gen_cli_reference.py makes from the option schema and the parsers now:
an option or flag added, renamed or re-documented without regenerating the page
fails here, so the docs cannot drift from the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_cli_reference", ROOT / "scripts" / "gen_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_cli_reference_is_what_the_generator_makes_now() -> None:
    gen = _generator()
    committed = gen.PAGE.read_text()
    assert committed == gen.render(), (
        "docs/reference/cli.md is out of date: run python scripts/gen_cli_reference.py")


def test_the_reference_names_every_option_and_every_command() -> None:
    from ras_deap.config import OPTIONS

    gen = _generator()
    page = gen.PAGE.read_text()
    for opt in OPTIONS.values():
        assert f"| `{opt.name}` | `{opt.flag}` |" in page, opt.name
    for name, _, _ in gen.COMMANDS:
        assert f"\n### {name}\n" in page, name
    assert "usage: python -m ras_deap.run" in page
    assert "#### attacks build" in page
