"""Which fitness finds robust architectures? Assess comparison winners with
attacks that no fitness used, and compare the fitness choices seed by seed.

    python -m ras_deap.compare.heldout \\
        --arm bank=docs/results/table2-digits-cells \\
        --arm direct=docs/results/fitness-choice-digits-cells \\
        --methods random,regularized,ras \\
        --heldout-bank 'docs/results/heldout-test-digits-seed{seed}.npz' \\
        --name heldout-test --report docs/results/fitness-choice-digits-heldout-test.md

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
  rows of the cell's own assessment (``assess.json``); no fitness runs it on
  the model, but it is the algorithm that built the fitness bank's L0 half;
* a **held-out transfer bank** (``--heldout-bank``): best one built by
  ``python -m ras_deap.attacks heldout`` (base images, source families and
  attacks that built no fitness bank; with ``--split test`` one bank per
  seed, named by a path holding ``{seed}``). An older bank built with
  ``attacks build --seed 1`` has other weights and draws, but the fitness
  bank's sources, attacks and (largely) base images.

A cell's held-out result is stored in ``<name>.json`` beside it
(``--name``, default ``heldout``; logged to its MLflow run under
``<name>/``), so a rerun only attacks new cells and another held-out bank
can be stored beside the first without replacing it. A cell whose weights
(``best_model.pt``) are not kept is re-trained exactly as its comparison's
final training did (same generation's schedule, same seed), and the
record says whether that reproduced the stored final metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assess.config import AssessConfig
from ..errors import UsageError
from .config import METHOD_ORDER

__all__ = ["HELDOUT_FORMAT", "Arm", "HeldoutError", "assess_cell", "bank_for_seed",
           "cell_rows", "describe_bank", "main", "parse_arm"]

HELDOUT_NAME = "heldout"
HELDOUT_FORMAT = "ras_deap.heldout/1"
# AutoAttack's own rows (not the ones after its first attacks); a grid step or a decimal
_AUTOATTACK_ROW = re.compile(r"^autoattack_eps(\d+(?:\.\d+)?)$")


class HeldoutError(UsageError, ValueError):
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


def bank_for_seed(template: str, seed: int) -> Path:
    """The held-out bank of ``seed``: ``template`` with ``{seed}`` filled in
    (one bank for every seed when it holds none)."""
    return Path(template.replace("{seed}", str(seed)))


# final metrics that measure time, not the network
_TIMING = ("train_seconds", "eval_seconds", "direct_seconds")


def _reproduces(stored: dict[str, Any], metrics: dict[str, float]) -> list[str]:
    """The final metrics a re-training did not reproduce (empty: all did)."""
    differ = []
    for key, value in stored.items():
        if key in _TIMING or key.endswith("_seconds"):
            continue
        new = metrics.get(key)
        if new is None or not (math.isclose(float(new), float(value), rel_tol=0, abs_tol=1e-9)
                               or (math.isnan(float(new)) and math.isnan(float(value)))):
            differ.append(key)
    return differ


def _final_network(folder: Path, target: Any, evaluator: Any,
                   retrain_generation: int) -> tuple[Any, dict[str, Any]]:
    """The cell's winner re-trained as its comparison's final training did
    (:func:`ras_deap.compare.cells.run_cell`), and whether that reproduced
    the final metrics stored in ``result.json``."""
    from ..seeding import derive_seed

    final = evaluator.evaluate(target.genome, retrain_generation,
                               seed=derive_seed(target.config.seed, "final", target.genome.id),
                               with_test=True, return_module=True)
    if final.failure is not None or final.module is None:
        raise HeldoutError(f"{folder}: re-training the winner failed ({final.failure})")
    stored = json.loads((folder / "result.json").read_text()).get("final_metrics") or {}
    differ = _reproduces(stored, dict(final.metrics))
    return final.module.cpu().eval(), {
        "weights": "re-trained (best_model.pt not kept)", "generation": retrain_generation,
        "reproduces_final_metrics": not differ, "differing_metrics": differ,
        "test_accuracy": float(final.metrics.get("test_accuracy", float("nan"))),
        "stored_test_accuracy": float(stored.get("test_accuracy", float("nan"))),
        "final_metrics": {k: float(v) for k, v in final.metrics.items()}}


def _stored(folder: Path, config: AssessConfig, bank_sha: str,
            name: str = HELDOUT_NAME) -> dict[str, Any] | None:
    from ..atomic import read_json_if_valid

    data = read_json_if_valid(folder / f"{name}.json")
    if not isinstance(data, dict):
        return None
    same = (data.get("format") == HELDOUT_FORMAT and data.get("heldout_bank_sha256") == bank_sha
            and data.get("assessment", {}).get("config") == config.to_dict())
    return data if same else None


def assess_cell(folder: Path, config: AssessConfig, heldout_bank: Path, *,
                mlflow: bool = True, name: str = HELDOUT_NAME,
                retrain_generation: int | None = None) -> dict[str, Any]:
    """The held-out assessment of the winner stored in cell ``folder``
    (``<name>.json``, computed and stored if missing or made with other
    settings or another bank). Without ``best_model.pt`` the winner is
    re-trained as the final training of generation ``retrain_generation``
    was (an error when it is None)."""
    from ..assess.attacks import assess_network
    from ..assess.result import format_table
    from ..assess.run import build_network, load_heldout_bank
    from ..assess.target import resolve_target
    from ..atomic import write_atomic
    from ..search import make_evaluator
    from ..seeding import derive_seed

    bank_sha = _sha256(heldout_bank)
    stored = _stored(folder, config, bank_sha, name)
    if stored is not None:
        return stored
    target = resolve_target(str(folder))
    if target.weights is None and retrain_generation is None:
        raise HeldoutError(f"{folder} has no best_model.pt: the cell's final training did not "
                           "finish; rerun its comparison to finish it")
    evaluator = make_evaluator(target.config)
    data = evaluator.data()
    bank = load_heldout_bank(heldout_bank, data.dataset)
    if target.weights is not None:
        net, _ = build_network(target, evaluator)
        network = {"weights": "best_model.pt"}
    else:
        net, network = _final_network(folder, target, evaluator, retrain_generation)
    source = {"target": str(folder), "genome_id": target.genome.id,
              "heldout_bank": str(heldout_bank)}
    # the seed of the Square and Pixel draws: the same for every --name, so a
    # re-trained network that reproduces the original gives the same numbers
    assessment = assess_network(net, data.dataset, None, config,
                                seed=derive_seed(target.config.seed, HELDOUT_NAME,
                                                 target.genome.id),
                                heldout_bank=bank, source=source)
    record = {"format": HELDOUT_FORMAT, "heldout_bank": str(heldout_bank),
              "heldout_bank_sha256": bank_sha, "assessment": assessment.to_dict()}
    if network["weights"] != "best_model.pt":
        record["network"] = network
    write_atomic(folder / f"{name}.md", format_table(assessment))
    write_atomic(folder / f"{name}.json", json.dumps(record, indent=2))
    if mlflow and target.run_id:
        from ..tracking import log_to_run

        log_to_run(target.tracking_uri, target.run_id,
                   metrics={f"{name}/{k}": v for k, v in assessment.metrics().items()},
                   artifacts=[(folder / f"{name}.md", name), (folder / f"{name}.json", name)])
    return record


def describe_bank(path: Path) -> str:
    """One sentence saying what the held-out bank at ``path`` holds and what
    it shares with the fitness (from its manifest)."""
    from ..bank import default_bank_path, load_bank

    bank = load_bank(path)
    m = bank.manifest
    if "heldout" in m:
        return (f"`{path}`: {len(bank)} samples from {len(set(bank.base_index.tolist()))} base "
                f"images; {m['description']}")
    build = m.get("build") or {}
    text = (f"`{path}`: {len(bank)} samples from {len(set(bank.base_index.tolist()))} base "
            f"images, built by `python -m ras_deap.attacks build --seed {m.get('seed')}`: "
            f"the fitness bank's attacks (ART PixelAttack L0 and ThresholdAttack Linf, "
            f"{'/'.join(build.get('optimizers', []))}) and source families "
            f"({', '.join(build.get('sources', []))}) with other weights and other draws, "
            "from the same bank split")
    fitness = default_bank_path(bank.dataset)
    if fitness is not None:
        shared = set(bank.base_index.tolist()) & set(load_bank(fitness).base_index.tolist())
        text += (f"; {len(shared)} of its base images are base images of the fitness bank "
                 f"`{Path(fitness).name}`. Only its fresh weights are held out, not its images, "
                 "source families or attack algorithms")
    return text


def _accuracies(assessment: dict[str, Any]) -> dict[str, float]:
    return {r["key"]: float(r["accuracy"]) for r in assessment.get("rows", [])}


def cell_rows(result: dict[str, Any], heldout: dict[str, Any], arm: str) -> dict[str, Any]:
    """One flat row per (arm, method, seed): robust accuracies of the held-out
    attacks (``square_*``, ``autoattack_eps*`` if it ran, ``pixel_*``,
    ``heldout_bank*``), their means (``autoattack_mean`` over the eps grid,
    not the absolute budgets), the
    primary ``heldout_mean`` (mean of the Square, Pixel and held-out bank
    means), ``square_bank_mean`` (Square and the held-out bank only), and
    the held-in measures (the fitness bank, PGD) for contrast. For a
    re-trained network that did not reproduce the comparison's, the cell's
    own assessment (Pixel, PGD) is of another network and is left out; the
    fitness bank is then the re-training's own measure."""
    import statistics

    network = heldout.get("network")
    # the cell's own assessment measured the network its comparison trained; a
    # re-training that did not reproduce it is another network: leave it out
    other = network is not None and not network.get("reproduces_final_metrics")
    own = {} if other else _accuracies(result.get("assessment") or {})
    held = _accuracies(heldout["assessment"])
    row: dict[str, Any] = {"arm": arm, "method": result["method"], "seed": int(result["seed"]),
                           "test_accuracy": float(heldout["assessment"]["test_accuracy"])}
    for key, value in held.items():
        if key.startswith(("square_", "heldout_bank")) or _AUTOATTACK_ROW.match(key):
            row[key] = value
    for key, value in own.items():
        if key.startswith(("pixel_", "pgd_")) or key == "bank":
            row[key if key != "bank" else "fitness_bank"] = value
    if other and "robustness_bank" in network.get("final_metrics", {}):
        row["fitness_bank"] = float(network["final_metrics"]["robustness_bank"])

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
    # without PixelAttack, the algorithm family of the fitness bank's L0 half
    row["square_bank_mean"] = statistics.fmean(parts[::2])
    if network is not None:  # re-trained: did it reproduce the comparison's final training?
        row["reproduced"] = float(bool(network.get("reproduces_final_metrics")))
    return row


def _parser() -> argparse.ArgumentParser:
    d = AssessConfig()
    p = argparse.ArgumentParser(allow_abbrev=False,
        prog="python -m ras_deap.compare.heldout",
        description="Assess the winners of comparisons that differ only in --robustness with "
                    "attacks no fitness used (SquareAttack Linf, PixelAttack L0, a transfer "
                    "bank from unseen sources), pair them by seed and write the fitness-choice "
                    "report. Resumable: each winner's result is stored in its cell folder.")
    p.add_argument("--arm", action="append", required=True, metavar="NAME=FOLDER",
                   help="a fitness choice and its comparison folder: two or more compare the "
                        "fitness choices; one compares its methods against "
                        "--reference-method")
    p.add_argument("--methods", default="random,regularized,ras",
                   help="comma-separated methods to assess (default random,regularized,ras)")
    p.add_argument("--heldout-bank", required=True, metavar="NPZ",
                   help="held-out bank from python -m ras_deap.attacks heldout; a path holding "
                        "{seed} names one bank per seed (those built with --split test)")
    p.add_argument("--name", default=HELDOUT_NAME,
                   help=f"file name (NAME.json / NAME.md in each cell) and MLflow prefix of the "
                        f"stored results (default {HELDOUT_NAME}); another name keeps the results "
                        "of another held-out bank beside them")
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
    p.add_argument("--reference-method", default="ras",
                   help="with one --arm: the method the others are tested against (default "
                        "ras)")
    p.add_argument("--report", metavar="MD", help="write the report (and its CSV beside it)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to the cells' runs")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _methods_report(reference: str) -> Callable[..., list[Path]]:
    """One arm: its methods against ``reference`` (the fitness-choice
    report's keywords, less the arms)."""
    from .heldout_methods import write_methods_report

    def report(path: Path, rows: Sequence[dict[str, Any]], *, arms: Sequence[str],
               **kwargs: Any) -> list[Path]:
        kwargs.pop("reference")
        return write_methods_report(path, rows, reference=reference, **kwargs)

    return report


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    from tqdm.auto import tqdm

    from ..errors import ConfigError
    from .cells import cell_dir
    from .config import CompareConfig
    from .heldout_report import write_report
    from .runner import load_result

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        arms = [parse_arm(a) for a in args.arm]
        if len({a.name for a in arms}) != len(arms):
            raise HeldoutError("--arm: give arms distinct names")
        if len(arms) > 1 and args.reference not in {a.name for a in arms}:
            raise HeldoutError(f"--reference {args.reference!r} is not one of the arms "
                               f"{[a.name for a in arms]}")
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in METHOD_ORDER]
        if bad or not methods:
            raise HeldoutError(f"--methods {args.methods!r}: choose from {list(METHOD_ORDER)}")
        if len(arms) == 1 and args.reference_method not in methods:
            raise HeldoutError(f"--reference-method {args.reference_method!r} is not one of "
                               f"--methods {methods}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.name):
            raise HeldoutError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-', "
                               "e.g. heldout-test")
        config = AssessConfig(images=args.images, bank=False, square_iter=args.square_iter,
                              attacks=("square", "autoattack") if args.autoattack
                              else ("square",), autoattack_images=args.autoattack_images)
    except (HeldoutError, ConfigError) as exc:
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
                (jobs if result is not None else missing).append(
                    (arm, method, seed, result, cfg.retrain_generation))
    absent = sorted({str(bank_for_seed(args.heldout_bank, seed)) for _, _, seed, _, _ in jobs
                     if not bank_for_seed(args.heldout_bank, seed).is_file()})
    if absent or not Path(args.heldout_bank.replace("{seed}", "0")).parent.is_dir():
        parser.error(f"--heldout-bank {args.heldout_bank}: no such file {', '.join(absent)}; "
                     "build it with python -m ras_deap.attacks heldout --out ...")
    rows = []
    for arm, method, seed, result, retrain in tqdm(jobs, desc="held-out attacks",
                                                   unit="winner", disable=args.no_progress):
        heldout = assess_cell(cell_dir(arm.out, method, seed), config,
                              bank_for_seed(args.heldout_bank, seed),
                              mlflow=not args.no_mlflow, name=args.name,
                              retrain_generation=retrain)
        rows.append(cell_rows(result, heldout, arm.name))
    log(f"[heldout] {len(rows)} winners assessed" +
        (f"; not finished yet: {', '.join(f'{a.name}/{m}-seed{s}' for a, m, s, *_ in missing)}"
         if missing else ""))
    if args.report:
        command = "python -m ras_deap.compare.heldout " + " ".join(
            sys.argv[1:] if argv is None else list(argv))
        seeds = sorted({seed for _, _, seed, _, _ in jobs})
        report = write_report if len(arms) > 1 else _methods_report(args.reference_method)
        paths = report(Path(args.report), rows, reference=args.reference,
                             arms=[a.name for a in arms], methods=methods, command=command,
                             config=config, heldout_bank=Path(args.heldout_bank),
                             bank_notes=[describe_bank(bank_for_seed(args.heldout_bank, s))
                                         for s in (seeds if "{seed}" in args.heldout_bank
                                                   else seeds[:1])],
                             missing=[f"{a.name}/{m}-seed{s}" for a, m, s, *_ in missing])
        log(f"[heldout] wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
