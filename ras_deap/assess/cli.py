"""``python -m ras_deap.assess RUN``: attack a search's best model directly."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..config import DATASET_NAMES, OPTIONS, ConfigError
from ..errors import EXIT_USAGE, run_cli, sigterm_as_interrupt
from ..flags import OptionParser, add_option, given
from .assess_config import ASSESS_OPTIONS, ATTACKS, DEFAULT_ATTACKS, AssessConfig

__all__ = ["add_eps_arguments", "build_parser", "eps_settings", "main"]

# AssessConfig's numbers: flag, type and help from their declarations
COUNTS = ("images", "l0_images", "pgd_steps", "pixel_iter", "square_iter", "autoattack_images",
          "autoattack_iter", "autoattack_queries")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers, e.g. "
                                         "1,2,3") from exc
    if not values:
        raise argparse.ArgumentTypeError("give at least one integer")
    return values


def _eps_values(text: str | None) -> tuple[float, ...] | None:
    """``--autoattack-eps``: comma-separated budgets, or ``none``; a value
    that is no number is a :class:`ConfigError` (one line)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--autoattack-eps {text!r}: give comma-separated L-inf budgets "
                                "between 0 and 1, e.g. 0.1,0.3, or none") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_eps_arguments(group: Any, *, grid: bool = True, autoattack: bool = True) -> None:
    """``--eps-steps`` (the L-inf grid) and ``--autoattack-eps`` (AutoAttack's
    absolute budgets), as ``assess`` and ``compare.heldout`` take them; read
    back with :func:`eps_settings`."""
    if grid:
        group.add_argument("--eps-steps", type=_ints, metavar="K,K",
                           help="Linf budgets in intensity steps of the data (default 1,2,3 on "
                                "digits = 1/16, 2/16, 3/16; 1,3,5,10 on 8-bit data = x/255)")
    if autoattack:
        group.add_argument("--autoattack-eps", metavar="E,E",
                           help="absolute L-inf budgets for AutoAttack beside the eps grid "
                                "(default 0.1,0.3 on 28x28 8-bit data such as mnist10k, the "
                                "field's MNIST budgets; none elsewhere; 'none' for none)")


def eps_settings(args: argparse.Namespace) -> dict[str, Any]:
    """AssessConfig's ``eps_steps`` and ``autoattack_eps`` from
    :func:`add_eps_arguments`' flags (a bad budget: one ConfigError)."""
    return {"eps_steps": args.eps_steps, "autoattack_eps": _eps_values(args.autoattack_eps)}


def build_parser() -> argparse.ArgumentParser:
    d = AssessConfig()
    p = OptionParser(
        prog="python -m ras_deap.assess",
        description="Attack a trained best model directly with IBM ART on the dataset's "
                    "quarantined test images: Linf FGSM and PGD over an eps grid in steps of "
                    "the data's intensity grid, L0 PixelAttack (differential evolution) at "
                    "th 1/3/5/10 pixels, plus the transfer bank; on request SquareAttack and "
                    "AutoAttack (--attacks). Prints a table, writes "
                    "assess.md/assess.json and logs them (metrics assess/...) to the run's "
                    "MLflow run.")
    p.add_argument("target", metavar="RUN",
                   help="a run folder (runs/<name> from python -m ras_deap.run, or a cell "
                        "folder of python -m ras_deap.compare), an MLflow run id, or a genome "
                        "JSON (best_genome.json; add --weights for its state dict)")
    p.add_argument("--member", metavar="GENOME_ID",
                   help="with a run folder of a multi-objective search (--objectives "
                        "accuracy,robustness): assess this member of its front (front.json) "
                        "instead of the best, re-trained as the final training does; written "
                        "to RUN/front/GENOME_ID/ and logged on the member's child run")
    p.add_argument("--weights", metavar="PT", help="state dict (best_model.pt) of the genome "
                   "file; without it the genome is re-trained on the full training set")
    g = p.add_argument_group("attacks")
    for name in ("images", "l0_images"):
        add_option(g, ASSESS_OPTIONS[name])
    add_eps_arguments(g, autoattack=False)
    add_option(g, ASSESS_OPTIONS["pgd_steps"])
    g.add_argument("--pixel-th", type=_ints, default=d.pixel_th, metavar="T,T",
                   help="PixelAttack budgets in changed pixels (default 1,3,5,10)")
    for name in ("pixel_iter", "square_iter"):
        add_option(g, ASSESS_OPTIONS[name])
    g.add_argument("--attacks", type=_names, default=DEFAULT_ATTACKS,
                   help=f"subset of {','.join(ATTACKS)} (default "
                        f"{','.join(DEFAULT_ATTACKS)}; square is the gradient-free Linf check, "
                        "autoattack the field's reference assessment, minutes per eps on "
                        "digits, up to a CPU-hour per eps on an 8-bit winner)")
    for name in ("autoattack_images", "autoattack_iter", "autoattack_queries"):
        add_option(g, ASSESS_OPTIONS[name])
    add_eps_arguments(g, grid=False)
    g.add_argument("--no-bank", action="store_true", help="skip the transfer bank")
    add_option(g, OPTIONS["final_training"],
               note="here: also fine-tune a copy of the network (its weights, or its standard "
                    "re-training) so and attack both alike, side by side in "
                    "assess-<kind>.md/.json (weights best_model-<kind>.pt)")
    g.add_argument("--heldout-bank", metavar="NPZ",
                   help="also measure a held-out bank (python -m ras_deap.attacks heldout: "
                        "base images, source families and attacks no fitness bank used); it "
                        "must be held out from the run's split (checked)")
    g = p.add_argument_group("settings (taken from the run; needed for a genome file)")
    g.add_argument("--dataset", choices=DATASET_NAMES)
    g.add_argument("--seed", type=int, help="the run's seed: fixes the split, hence the "
                   "quarantined test images")
    g.add_argument("--data-dir")
    g.add_argument("--bank", help="adversarial bank .npz (default: the run's, or the shipped)")
    g.add_argument("--full-epochs", type=int, help="epochs of the re-training (no weights)")
    g.add_argument("--device", help="torch device of a re-training (attacks run on the CPU)")
    add_option(g, OPTIONS["threads"], default="the run's setting",
               note="here: for a re-training and the attacks")
    g = p.add_argument_group("output")
    g.add_argument("--out", help="folder of assess.md/assess.json (default: the run folder)")
    g.add_argument("--tracking-uri", help="MLflow store of the run (default: the run's, else "
                   "sqlite:///mlruns/mlflow.db)")
    g.add_argument("--log-run", metavar="RUN_ID", help="log under this MLflow run instead")
    g.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def usage(message: str) -> int:  # one line: argparse prints the usage for a bad command
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        config = AssessConfig(**given(args, COUNTS), pixel_th=args.pixel_th,
                              attacks=args.attacks, bank=not args.no_bank,
                              **eps_settings(args))
    except ConfigError as exc:
        return usage(str(exc))
    from ..bank import BankError
    from ..data import DatasetError
    from .run import assess_target, partial_path
    from .target import TargetError, resolve_target

    try:
        target = resolve_target(args.target, weights=args.weights,
                                tracking_uri=args.tracking_uri, out=args.out,
                                log_run=args.log_run, member=args.member,
                                dataset=args.dataset, seed=args.seed,
                                data_dir=args.data_dir, bank=args.bank,
                                full_epochs=args.full_epochs, device=args.device,
                                threads=getattr(args, "threads", None))
        common = {"mlflow": not args.no_mlflow, "progress": not args.no_progress,
                  "heldout_bank": args.heldout_bank,
                  "log": lambda m: print(m, file=sys.stderr, flush=True)}
    except (TargetError, ConfigError, DatasetError, BankError) as exc:
        return usage(str(exc))
    kind = getattr(args, "final_training", "standard")
    name = "assess" if kind == "standard" else f"assess-{kind}"
    outcomes = []

    def work() -> int:
        if kind == "standard":
            outcomes.append(assess_target(target, config, **common))
        else:  # the network before and after adversarial fine-tuning, side by side
            from .harden import assess_hardened

            outcomes.append(assess_hardened(target, kind, config, **common))
        return 0

    restore = sigterm_as_interrupt()  # `kill PID` stops as Ctrl-C does
    try:
        code = run_cli(parser.prog, work, on_interrupt=lambda exc: (
            f"the finished attacks are kept in {partial_path(target, name)}; run the same "
            "command again to go on"))
    finally:
        restore()
    if code:
        return code
    outcome = outcomes[0]
    print(outcome.table)
    print(f"wrote {', '.join(str(p) for p in outcome.files.values())}")
    if outcome.logged_run_id:
        print(f"logged assess/* metrics and the table to MLflow run {outcome.logged_run_id}")
    elif not args.no_mlflow:
        print("no MLflow run to log to (pass --log-run RUN_ID to log one)")
    return 0
