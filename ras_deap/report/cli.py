"""``python -m ras_deap.report GENOME --out FILE``: draw one architecture.

GENOME is a genome JSON (a run's ``best_genome.json``, a child run's
``genome.json``, an export's ``genome.json``) or a folder holding
``best_genome.json`` (a run folder, a comparison cell). The drawing is an
SVG or a PNG, by ``FILE``'s suffix (see :mod:`ras_deap.report.drawing`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError, run_cli
from ..flags import OptionParser

__all__ = ["build_parser", "main"]

PROG = "python -m ras_deap.report"
FORMATS = (".svg", ".png")


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(
        prog=PROG, description="Draw an architecture: its blocks, and each block's layers "
                               "(kind, filters/units, kernel, stride), as SVG or PNG.")
    p.add_argument("genome", metavar="GENOME",
                   help="a genome JSON (best_genome.json, genome.json) or a run folder "
                        "holding best_genome.json")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the drawing to write: FILE.svg (deterministic) or FILE.png")
    p.add_argument("--title", help="title above the drawing (default: the genome id, "
                                   "blocks and layers)")
    return p


def _genome_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        path = path / "best_genome.json"
    if not path.is_file():
        raise UsageError(f"GENOME {text} is neither a genome JSON file nor a folder holding "
                         "best_genome.json")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def draw() -> int:
        from ..genome import GenomeError, Model
        from .drawing import draw_model

        out = Path(args.out)
        if out.suffix.lower() not in FORMATS:
            raise UsageError(f"--out {args.out}: the file name must end in .svg or .png")
        path = _genome_file(args.genome)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"GENOME {path} cannot be read: {exc}") from exc
        try:
            model = Model.from_json(text)
        except GenomeError as exc:
            raise UsageError(f"GENOME {path} is not a ras_deap genome: {exc}") from exc
        try:
            written = draw_model(model, out, title=args.title)
        except OSError as exc:
            raise UsageError(f"--out {args.out} cannot be written: {exc}") from exc
        print(f"drew {model.id} ({len(model.blocks)} blocks, {len(model.layers())} layers) "
              f"into {written}")
        return 0

    return run_cli(PROG, draw)
