"""``python -m ras_deap.compare``: RAS against NAS baselines (the paper's
Table 2) on your data and budget, as one resumable command."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence

from ..assess.assess_config import ASSESS_OPTIONS, ATTACKS, AssessConfig
from ..config import OPTIONS, ConfigError, SearchConfig
from ..errors import EXIT_USAGE, RunLockedError
from ..flags import OptionParser, add_option, given, old_names
from .compare_config import (
    COMPARE_OPTIONS,
    COMPARE_PRESETS,
    DEFAULT_METHODS,
    EXTRA_METHODS,
    METHOD_ORDER,
    MO_METHODS,
    REFERENCE_BUDGET,
    CompareConfig,
)

__all__ = ["build_parser", "config_from_args", "main"]


# The search options a comparison lets the user set (the rest keep their
# defaults), and what some of them also mean here; flags, types and help
# come from the option schema, as in python -m ras_deap.run.
_SEARCH_OPTIONS = ("dataset", "data_dir", "bank", "robustness", "population", "children",
                   "mutations", "initial", "distance", "niche_children", "remeasure_every",
                   "niche_age", "objectives", "mo_selection",
                   "screen_epochs", "screen_keep", "budget_epochs", "subset_size",
                   "max_epochs", "patience", "full_every", "full_epochs", "batch_size", "lr",
                   "final_training", "threads", "device", "tracking_uri", "experiment")
_NOTES = {"population": "also mu of (mu+lambda), P of regularized evolution, and the "
                        "generation size of the training schedule",
          "children": "lambda = population x children",
          "initial": "of every method that starts as RAS does (random search, (mu+lambda), "
                     "regularized evolution, nsga2 and the RAS methods; not TPE or "
                     "random_chain, which sample chains anyway)",
          "budget_epochs": "replaces --max-evaluations as every method's budget: the "
                           "baselines train as many networks as fit in it, RAS stops when "
                           "it is spent (with --screen-epochs it screens more children)",
          "final_training": "of every cell's re-trained winner, before its direct attacks",
          "objectives": "of the ras cells (the single-objective baselines keep the fitness; "
                        "nsga2 and ras_mo take it when it names several, else "
                        "accuracy,robustness); a cell's winner is still its best fitness, "
                        "the front is in its cell folder",
          "mo_selection": "of the ras_mo cells (and ras) in a comparison over several "
                          "objectives: it needs --objectives with several names, e.g. "
                          "--methods ras_mo --objectives accuracy,robustness --mo-selection "
                          "spectrum (a single-objective comparison's ras_mo cells take the "
                          "default); nsga2 always truncates by crowding"}
# CompareConfig's own numbers, and the AssessConfig numbers set here as --assess-*: flag,
# type and help from their declarations
_COMPARE_OPTIONS = ("tournament_size", "aging_population", "aging_sample", "remeasure")
_ASSESS_OPTIONS = ("images", "l0_images", "pixel_iter", "autoattack_images")


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(
        prog="python -m ras_deap.compare",
        description="Compare RAS with NAS baselines (random search, TPE over chains, "
                    "(mu+lambda) without niching, regularized evolution) under one evaluation "
                    "budget (same fitness, data, adversarial bank and trainer per seed). Writes "
                    "the paper's Table 2 with mean ± 95% CI over seeds, direct attacks on every "
                    "re-trained winner, paired per-seed tests and a best-fitness figure. "
                    "Every (method, seed) cell is stored when it ends: rerun the same command "
                    "to resume. The default is the reference setting (--max-evaluations 275 "
                    "--seeds 5: the default search's budget).")
    p.add_argument("--preset", choices=sorted(COMPARE_PRESETS), default="reference",
                   help="'reference' (default): 275 evaluations x 5 seeds with the default "
                        "search's training; 'quick' and 'tiny' are checks, not results; "
                        "'paper': the paper's 100 generations")
    add_option(p, OPTIONS["max_evaluations"], default="the preset's",
               note=f"the budget of every method and seed (reference {REFERENCE_BUDGET} = 25 "
                    "initial + 5 generations x 50 children)")
    p.add_argument("--seeds", type=int, help="seeds per method (reference 5)")
    add_option(p, OPTIONS["seed"], note="the first seed: the seeds are seed, seed+1, ...")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated subset of {','.join(METHOD_ORDER)} (default: the "
                        f"paper's Table 2, {','.join(DEFAULT_METHODS)}; "
                        f"{','.join(EXTRA_METHODS)} is random search over TPE's chain space; "
                        f"{' and '.join(MO_METHODS)} are the multi-objective methods over "
                        "accuracy and robustness, whose cells also keep their final front, "
                        "re-measured like the winner: plain NSGA-II on the RAS genome and "
                        "multi-objective RAS)")
    # not the search option --workers (evaluation processes of one search): a cell searches
    # in one process, and cells run side by side
    old, note = old_names("compare", "--parallel-cells")
    p.add_argument("--parallel-cells", *old, dest="parallel_cells", type=int, default=1,
                   metavar="N",
                   help="run N (method, seed) cells at once, one process each (results are "
                        "identical to --parallel-cells 1; default 1)" + note)
    p.add_argument("--out", default="compare_out",
                   help="output folder (default compare_out); an interrupted comparison "
                        "resumes from it")
    p.add_argument("--report", metavar="MD",
                   help="also write a results page (tables, command, machine, wall time) and "
                        "its CSVs and figure beside it, e.g. docs/results/table2-digits.md")
    for name in _COMPARE_OPTIONS:
        add_option(p, COMPARE_OPTIONS[name])
    g = p.add_argument_group("direct attacks on each re-trained winner (ras_deap.assess)")
    for name in ("images", "l0_images", "pixel_iter"):
        add_option(g, ASSESS_OPTIONS[name], prefix="assess-")
    d = AssessConfig()
    g.add_argument("--assess-attacks", default=",".join(d.attacks),
                   help=f"subset of {','.join(ATTACKS)} (default {','.join(d.attacks)}: "
                        "square and autoattack are opt-in)")
    add_option(g, ASSESS_OPTIONS["autoattack_images"], prefix="assess-")
    g.add_argument("--no-assess", action="store_true", help="skip the direct attacks")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = p.add_argument_group("search and training settings shared by every method")
    for name in _SEARCH_OPTIONS:
        add_option(g, OPTIONS[name], note=_NOTES.get(name, ""))
    return p


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    preset = dict(COMPARE_PRESETS[args.preset])
    budget, seeds = preset.pop("budget"), preset.pop("seeds")
    budget = getattr(args, "max_evaluations", budget)  # the budget of every method and seed
    seeds = args.seeds if args.seeds is not None else seeds
    search = {**preset, **given(args, (*_SEARCH_OPTIONS, "seed"))}
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    assess = None if args.no_assess else AssessConfig(
        **given(args, _ASSESS_OPTIONS, prefix="assess-"),
        attacks=tuple(a.strip() for a in args.assess_attacks.split(",") if a.strip()))
    return CompareConfig(search=SearchConfig.from_dict(search, source="flags"), budget=budget,
                         seeds=seeds, methods=methods, out=args.out, assess=assess,
                         **given(args, _COMPARE_OPTIONS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = "python -m ras_deap.compare " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))

    def usage(message: str) -> int:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        return usage(str(exc))
    if args.parallel_cells < 1:
        return usage(f"--parallel-cells {args.parallel_cells}: must be >= 1")
    if args.report and not args.report.endswith(".md"):
        return usage(f"--report {args.report}: give a Markdown file name ending in .md")
    from ..bank import BankError
    from ..data import DatasetError
    from .runner import run_comparison

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def terminated(signum: int, frame: object) -> None:  # `kill PID`: stop as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        result = run_comparison(cfg, workers=args.parallel_cells, log=log,
                                progress=not args.no_progress, command=command)
    except (ConfigError, DatasetError, BankError) as exc:
        return usage(str(exc))
    except RunLockedError as exc:  # not a mistake in the flags: no usage line
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\ninterrupted: every finished (method, seed) cell is stored in {cfg.out}/cells; "
              f"run the same command again to resume:\n  {command}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not result.runs:
        print("no cell finished; see the errors above", file=sys.stderr)
        return 1
    print(result.files["markdown"].read_text())
    if args.report:
        from .report import write_report

        written = write_report(args.report, result, command=command)
        result.files.update({f"report_{k}": v for k, v in written.items()})
    print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    print(f"MLflow comparison run {result.run_id}; wall time {result.seconds:.0f} s this session, "
          f"{result.total_seconds:.0f} s in total ({args.parallel_cells} cell(s) at once)")
    if result.run_id:
        from ..tracking import run_links

        links = run_links(cfg.search.tracking_uri, result.run_id, order_by=None)
        print(f"see it in MLflow: {links['command']}   # then open {links['children']}")
    if result.failed:
        print(f"{len(result.failed)} cell(s) failed: {', '.join(result.failed)}; run the same "
              "command again to retry them", file=sys.stderr)
        return 1
    return 0
