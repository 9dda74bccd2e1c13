"""Which fitness finds robust architectures? Assess comparison winners with
attacks that no fitness used, and compare the fitness choices seed by seed.

    python -m ras_deap.compare.heldout \\
        --arm bank=docs/results/table2-digits-cells \\
        --arm direct=docs/results/fitness-choice-digits-cells \\
        --methods random,regularized,ras \\
        --heldout-bank docs/results/heldout-bank-digits-seed1.npz \\
        --report docs/results/fitness-choice-digits.md

Each *arm* is a finished (or partly finished) ``python -m ras_deap.compare``
folder whose searches used one ``--robustness`` choice; apart from that the
arms must have the same settings, so seeds pair them. Every winner
(``best_model.pt`` of a finished cell) is attacked with:

* **SquareAttack** (ART, L-inf, gradient-free): no fitness runs it (the
  direct fitness runs PGD and JSMA, the bank fitness stored transfers);
* **AutoAttack** with ``--autoattack`` (APGD-CE, APGD-T and Square of its
  standard version, from ART's parts; FAB-T is missing in ART): the
  assessment the field reports, at the same eps grid;
* **PixelAttack** (ART, L0, differential evolution) on the model itself: the
  rows of the cell's own assessment (``assess.json``), which no fitness ran;
* a **held-out transfer bank**, crafted on source models none of the
  searches saw (``attacks build --seed 1``: other weights, other images).

A cell's held-out result is stored in ``heldout.json`` beside it (and logged
to its MLflow run under ``heldout/``), so a rerun only attacks new cells.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assess.config import AssessConfig
from .config import METHOD_ORDER

__all__ = ["HELDOUT_FORMAT", "Arm", "HeldoutError", "assess_cell", "cell_rows", "main",
           "parse_arm"]

HELDOUT_NAME = "heldout"
HELDOUT_FORMAT = "ras_deap.heldout/1"
# AutoAttack's own rows (not the ones after its first attacks); a grid step or a decimal
_AUTOATTACK_ROW = re.compile(r"^autoattack_eps(\d+(?:\.\d+)?)$")


class HeldoutError(ValueError):
    """Bad arms or files; the message names the option and the fix."""


@dataclass(frozen=True)
class Arm:
    """One fitness choice: its name (``bank``, ``direct``, ...) and the
    comparison folder whose searches used it."""

    name: str
    out: Path


def parse_arm(text: str) -> Arm:
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise HeldoutError(f"--arm {text!r}: write NAME=FOLDER, e.g. "
                           "bank=docs/results/table2-digits-cells")
    out = Path(folder.strip())
    if not (out / "comparison.json").is_file():
        raise HeldoutError(f"--arm {text!r}: {out} holds no comparison.json; pass the --out "
                           "folder of a python -m ras_deap.compare run")
    return Arm(name.strip(), out)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stored(folder: Path, config: AssessConfig, bank_sha: str) -> dict[str, Any] | None:
    from ..atomic import read_json_if_valid

    data = read_json_if_valid(folder / f"{HELDOUT_NAME}.json")
    if not isinstance(data, dict):
        return None
    same = (data.get("format") == HELDOUT_FORMAT and data.get("heldout_bank_sha256") == bank_sha
            and data.get("assessment", {}).get("config") == config.to_dict())
    return data if same else None


def assess_cell(folder: Path, config: AssessConfig, heldout_bank: Path, *,
                mlflow: bool = True) -> dict[str, Any]:
    """The held-out assessment of the winner stored in cell ``folder``
    (``heldout.json``, computed and stored if missing or made with other
    settings or another bank)."""
    from ..assess.attacks import assess_network
    from ..assess.result import format_table
    from ..assess.run import build_network, load_heldout_bank
    from ..assess.target import resolve_target
    from ..atomic import write_atomic
    from ..search import make_evaluator
    from ..seeding import derive_seed

    bank_sha = _sha256(heldout_bank)
    stored = _stored(folder, config, bank_sha)
    if stored is not None:
        return stored
    target = resolve_target(str(folder))
    if target.weights is None:
        raise HeldoutError(f"{folder} has no best_model.pt: the cell's final training did not "
                           "finish; rerun its comparison to finish it")
    evaluator = make_evaluator(target.config)
    data = evaluator.data()
    bank = load_heldout_bank(heldout_bank, data.dataset)
    net, _ = build_network(target, evaluator)
    source = {"target": str(folder), "genome_id": target.genome.id,
              "heldout_bank": str(heldout_bank)}
    assessment = assess_network(net, data.dataset, None, config,
                                seed=derive_seed(target.config.seed, HELDOUT_NAME,
                                                 target.genome.id),
                                heldout_bank=bank, source=source)
    record = {"format": HELDOUT_FORMAT, "heldout_bank": str(heldout_bank),
              "heldout_bank_sha256": bank_sha, "assessment": assessment.to_dict()}
    write_atomic(folder / f"{HELDOUT_NAME}.md", format_table(assessment))
    write_atomic(folder / f"{HELDOUT_NAME}.json", json.dumps(record, indent=2))
    if mlflow and target.run_id:
        from ..tracking import log_to_run

        log_to_run(target.tracking_uri, target.run_id,
                   metrics={f"{HELDOUT_NAME}/{k}": v for k, v in assessment.metrics().items()},
                   artifacts=[(folder / f"{HELDOUT_NAME}.md", HELDOUT_NAME),
                              (folder / f"{HELDOUT_NAME}.json", HELDOUT_NAME)])
    return record


def _accuracies(assessment: dict[str, Any]) -> dict[str, float]:
    return {r["key"]: float(r["accuracy"]) for r in assessment.get("rows", [])}


def cell_rows(result: dict[str, Any], heldout: dict[str, Any], arm: str) -> dict[str, Any]:
    """One flat row per (arm, method, seed): robust accuracies of the held-out
    attacks (``square_*``, ``autoattack_eps*`` if it ran, ``pixel_*``,
    ``heldout_bank*``), their means (``autoattack_mean`` over the eps grid,
    not the absolute budgets), the
    primary ``heldout_mean`` (mean of the Square, Pixel and held-out bank
    means), and the held-in measures (the fitness bank, PGD) for contrast."""
    import statistics

    own = _accuracies(result.get("assessment") or {})
    held = _accuracies(heldout["assessment"])
    row: dict[str, Any] = {"arm": arm, "method": result["method"], "seed": int(result["seed"]),
                           "test_accuracy": float(heldout["assessment"]["test_accuracy"])}
    for key, value in held.items():
        if key.startswith(("square_", "heldout_bank")) or _AUTOATTACK_ROW.match(key):
            row[key] = value
    for key, value in own.items():
        if key.startswith(("pixel_", "pgd_")) or key == "bank":
            row[key if key != "bank" else "fitness_bank"] = value

    def mean_of(prefix: str) -> float:
        values = [v for k, v in row.items() if k.startswith(prefix)]
        return statistics.fmean(values) if values else float("nan")

    row["square_mean"] = mean_of("square_eps")
    grid = [v for k, v in row.items() if (m := _AUTOATTACK_ROW.match(k)) and "." not in m[1]]
    if grid:
        row["autoattack_mean"] = statistics.fmean(grid)
    row["pixel_mean"] = mean_of("pixel_th")
    row["pgd_mean"] = mean_of("pgd_eps")
    parts = [row["square_mean"], row["pixel_mean"], row.get("heldout_bank", float("nan"))]
    row["heldout_mean"] = statistics.fmean(parts)
    return row


def _parser() -> argparse.ArgumentParser:
    d = AssessConfig()
    p = argparse.ArgumentParser(
        prog="python -m ras_deap.compare.heldout",
        description="Assess the winners of comparisons that differ only in --robustness with "
                    "attacks no fitness used (SquareAttack Linf, PixelAttack L0, a transfer "
                    "bank from unseen sources), pair them by seed and write the fitness-choice "
                    "report. Resumable: each winner's result is stored in its cell folder.")
    p.add_argument("--arm", action="append", required=True, metavar="NAME=FOLDER",
                   help="a fitness choice and its comparison folder (give two or more)")
    p.add_argument("--methods", default="random,regularized,ras",
                   help="comma-separated methods to assess (default random,regularized,ras)")
    p.add_argument("--heldout-bank", required=True, metavar="NPZ",
                   help="bank crafted on sources no search saw, e.g. from python -m "
                        "ras_deap.attacks build --dataset digits --seed 1 --out ...")
    p.add_argument("--images", type=int, default=d.images,
                   help=f"test images for SquareAttack (default {d.images})")
    p.add_argument("--square-iter", type=int, default=d.square_iter,
                   help=f"SquareAttack queries per image (default {d.square_iter})")
    p.add_argument("--autoattack", action="store_true",
                   help="also run AutoAttack (APGD-CE, APGD-T, Square; the field's reference "
                        "assessment; minutes per winner)")
    p.add_argument("--autoattack-images", type=int, default=d.autoattack_images,
                   help=f"test images for AutoAttack (default {d.autoattack_images})")
    p.add_argument("--reference", default="bank",
                   help="the arm the others are tested against (default bank)")
    p.add_argument("--report", metavar="MD", help="write the report (and its CSV beside it)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to the cells' runs")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    from tqdm.auto import tqdm

    from ..assess.config import AssessConfigError
    from .cells import cell_dir
    from .config import CompareConfig
    from .heldout_report import write_report
    from .runner import load_result

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        arms = [parse_arm(a) for a in args.arm]
        if len({a.name for a in arms}) != len(arms) or len(arms) < 2:
            raise HeldoutError("--arm: give at least two arms with distinct names")
        if args.reference not in {a.name for a in arms}:
            raise HeldoutError(f"--reference {args.reference!r} is not one of the arms "
                               f"{[a.name for a in arms]}")
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in METHOD_ORDER]
        if bad or not methods:
            raise HeldoutError(f"--methods {args.methods!r}: choose from {list(METHOD_ORDER)}")
        bank = Path(args.heldout_bank)
        if not bank.is_file():
            raise HeldoutError(f"--heldout-bank {bank}: no such file; build one with python -m "
                               "ras_deap.attacks build --seed 1 --out ...")
        config = AssessConfig(images=args.images, bank=False, square_iter=args.square_iter,
                              attacks=("square", "autoattack") if args.autoattack
                              else ("square",), autoattack_images=args.autoattack_images)
    except (HeldoutError, AssessConfigError) as exc:
        parser.error(str(exc))
    jobs, missing = [], []
    for arm in arms:
        settings = json.loads((arm.out / "comparison.json").read_text())["settings"]
        cfg = CompareConfig.from_dict({**settings, "out": str(arm.out)})
        seeds = sorted({int(d.name.rpartition("-seed")[2]) for d in (arm.out / "cells").glob(
            "*-seed*") if d.name.rpartition("-seed")[2].isdigit()})
        for seed in seeds:
            for method in methods:
                result = load_result(cfg, method, seed)
                (jobs if result is not None else missing).append((arm, method, seed, result))
    rows = []
    for arm, method, seed, result in tqdm(jobs, desc="held-out attacks", unit="winner",
                                          disable=args.no_progress):
        heldout = assess_cell(cell_dir(arm.out, method, seed), config, bank,
                              mlflow=not args.no_mlflow)
        rows.append(cell_rows(result, heldout, arm.name))
    log(f"[heldout] {len(rows)} winners assessed" +
        (f"; not finished yet: {', '.join(f'{a.name}/{m}-seed{s}' for a, m, s, _ in missing)}"
         if missing else ""))
    if args.report:
        command = "python -m ras_deap.compare.heldout " + " ".join(
            sys.argv[1:] if argv is None else list(argv))
        paths = write_report(Path(args.report), rows, reference=args.reference,
                             arms=[a.name for a in arms], methods=methods, command=command,
                             config=config, heldout_bank=bank,
                             missing=[f"{a.name}/{m}-seed{s}" for a, m, s, _ in missing])
        log(f"[heldout] wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
