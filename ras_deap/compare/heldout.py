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
can be stored beside the first without replacing it (:mod:`.heldout_cell`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assess.assess_config import ASSESS_OPTIONS, AssessConfig
from ..assess.cli import add_eps_arguments, eps_settings
from ..config import OPTIONS
from ..flags import OptionParser, add_option, given
from .cells import cell_seeds
from .compare_config import METHOD_ORDER
from .heldout_cell import HELDOUT_NAME, HeldoutError, assess_cell, cell_rows, is_assessed

__all__ = ["Arm", "bank_for_seed", "describe_bank", "main", "parse_arm"]


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


def bank_for_seed(template: str, seed: int) -> Path:
    """The held-out bank of ``seed``: ``template`` with ``{seed}`` filled in
    (one bank for every seed when it holds none)."""
    return Path(template.replace("{seed}", str(seed)))


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


# the assessment's own options this command sets (flags and help from their declarations)
_ASSESS_COUNTS = ("images", "square_iter", "autoattack_images")


def _parser() -> argparse.ArgumentParser:
    p = OptionParser(
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
    add_option(p, ASSESS_OPTIONS["images"])
    add_option(p, ASSESS_OPTIONS["square_iter"])
    p.add_argument("--autoattack", action="store_true",
                   help="also run AutoAttack (APGD-CE, APGD-T, Square; the field's reference "
                        "assessment; up to a CPU-hour per eps on an 8-bit winner)")
    add_option(p, ASSESS_OPTIONS["autoattack_images"])
    add_eps_arguments(p)
    add_option(p, OPTIONS["threads"], default="each cell's setting",
               note="here: for re-trainings and the attacks")
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


Job = tuple[Arm, str, int, Any, int]  # arm, method, seed, stored result, retrain generation


def _checked(parser: argparse.ArgumentParser, args: argparse.Namespace
             ) -> tuple[list[Arm], list[str], AssessConfig]:
    """The arms, methods and assessment settings; a usage error naming the option."""
    from ..errors import ConfigError

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
        config = AssessConfig(**given(args, _ASSESS_COUNTS), bank=False,
                              attacks=("square", "autoattack") if args.autoattack
                              else ("square",), **eps_settings(args))
    except (HeldoutError, ConfigError) as exc:
        parser.error(str(exc))
    return arms, methods, config


def _needs_training(folder: Path) -> bool:
    """Whether assessing this cell's winner must re-train it first."""
    from ..assess.target import WEIGHT_NAMES
    from .heldout_cell import RETRAINED_NAME

    return not any((folder / name).is_file() for name in (*WEIGHT_NAMES, RETRAINED_NAME))


def _jobs(arms: Sequence[Arm], methods: Sequence[str]) -> tuple[list[Job], list[Job]]:
    """The finished cells of every arm's seeds (to assess) and the unfinished ones."""
    from .compare_config import CompareConfig
    from .manifest import load_result

    jobs: list[Job] = []
    missing: list[Job] = []
    for arm in arms:
        settings = json.loads((arm.out / "comparison.json").read_text())["settings"]
        cfg = CompareConfig.from_dict({**settings, "out": str(arm.out)})
        for seed in cell_seeds(arm.out):
            for method in methods:
                result = load_result(cfg, method, seed)
                (jobs if result is not None else missing).append(
                    (arm, method, seed, result, cfg.retrain_generation))
    return jobs, missing


def _command(argv: Sequence[str] | None) -> str:
    return "python -m ras_deap.compare.heldout " + " ".join(
        sys.argv[1:] if argv is None else list(argv))


def _report(args: argparse.Namespace, argv: Sequence[str] | None, arms: Sequence[Arm],
            methods: Sequence[str], config: AssessConfig, rows: list[dict[str, Any]],
            jobs: Sequence[Job], missing: Sequence[Job]) -> list[Path]:
    from .heldout_report import write_report
    from .heldout_sessions import compute_line, load_sessions, sessions_path

    seeds = sorted({seed for _, _, seed, _, _ in jobs})
    report = write_report if len(arms) > 1 else _methods_report(args.reference_method)
    compute = compute_line(load_sessions([sessions_path(a.out, args.name) for a in arms]))
    return report(Path(args.report), rows, reference=args.reference,
                  arms=[a.name for a in arms], methods=methods, command=_command(argv),
                  compute=compute,
                  config=config, heldout_bank=Path(args.heldout_bank),
                  bank_notes=[describe_bank(bank_for_seed(args.heldout_bank, s))
                              for s in (seeds if "{seed}" in args.heldout_bank
                                        else seeds[:1])],
                  missing=[f"{a.name}/{m}-seed{s}" for a, m, s, *_ in missing])


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    from tqdm.auto import tqdm

    from ..errors import run_cli, sigterm_as_interrupt
    from ..locks import RunLock
    from .cells import cell_dir
    from .heldout_sessions import HeldoutSession
    from .manifest import machine

    parser = _parser()
    args = parser.parse_args(argv)
    arms, methods, config = _checked(parser, args)
    jobs, missing = _jobs(arms, methods)
    absent = sorted({str(bank_for_seed(args.heldout_bank, seed)) for _, _, seed, _, _ in jobs
                     if not bank_for_seed(args.heldout_bank, seed).is_file()})
    if absent or not Path(args.heldout_bank.replace("{seed}", "0")).parent.is_dir():
        parser.error(f"--heldout-bank {args.heldout_bank}: no such file {', '.join(absent)}; "
                     "build it with python -m ras_deap.attacks heldout --out ...")
    done: dict[int, dict[str, Any]] = {}  # by job index
    # winners with weights first: one to re-train takes up to an hour more, and an
    # interrupted session should have finished as many winners as it could
    order = sorted(range(len(jobs)), key=lambda i: _needs_training(
        cell_dir(jobs[i][0].out, jobs[i][1], jobs[i][2])))

    def assess_all() -> int:
        with contextlib.ExitStack() as locks:
            for arm in arms:  # one command per --name writes a comparison's held-out results
                locks.enter_context(RunLock(
                    arm.out, name=f".{args.name}.lock",
                    what=f"the held-out assessment (--name {args.name}) of",
                    advice="one command assesses a comparison's winners under one --name at a "
                           "time. Wait for it to end (or stop it), then run the same command "
                           "again to resume; or pass another --name"))
            # the winners to attack (under the lock: another command may have stored some);
            # a command with none only rewrites the report and records no session
            pending = {i for i in order if not is_assessed(
                cell_dir(jobs[i][0].out, jobs[i][1], jobs[i][2]), config,
                bank_for_seed(args.heldout_bank, jobs[i][2]), args.name)}
            session = locks.enter_context(HeldoutSession(
                [a.out for a in arms], args.name, _command(argv), machine(), log)
                if pending else contextlib.nullcontext())
            assess_locked(session, pending)
        return 0

    def assess_locked(session: HeldoutSession | None, pending: set[int]) -> None:
        for i in tqdm(order, desc="held-out attacks", unit="winner",
                      disable=args.no_progress):
            arm, method, seed, result, retrain = jobs[i]
            heldout = assess_cell(cell_dir(arm.out, method, seed), config,
                                  bank_for_seed(args.heldout_bank, seed),
                                  mlflow=not args.no_mlflow, name=args.name,
                                  retrain_generation=retrain,
                                  threads=getattr(args, "threads", None))
            done[i] = cell_rows(result, heldout, arm.name)
            if session is not None and i in pending:
                session.winners += 1

    restore = sigterm_as_interrupt()  # `kill PID` stops as Ctrl-C does
    try:
        code = run_cli(parser.prog, assess_all, on_interrupt=lambda exc: (
            f"{len(done)} winner(s) assessed and stored in their cells, the running one's "
            f"finished attacks in its {args.name}.partial.jsonl; run the same command again "
            "to go on"))
    finally:
        restore()
    if code:
        return code
    rows = [done[i] for i in sorted(done)]  # the report's order: seed by seed
    log(f"[heldout] {len(rows)} winners assessed" +
        (f"; not finished yet: {', '.join(f'{a.name}/{m}-seed{s}' for a, m, s, *_ in missing)}"
         if missing else ""))
    if args.report:
        paths = _report(args, argv, arms, methods, config, rows, jobs, missing)
        log(f"[heldout] wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
