"""``python -m ras_deap.tune``: tune RAS's own evolution hyperparameters with Optuna.

The bare command runs 8 small trials (smoke-sized searches of 24 evaluated
individuals each on the embedded digits data, then 3 trainings that
re-measure each search's best architecture on fresh seeds: 27 trainings a
trial) in ``sqlite:///studies/ras.db``;
running it again continues the same study. Exit codes: 0 done, 1 no trial of
the study has completed, 2 bad input (flags, storage URL, incompatible
study), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..config import OPTIONS, PRESET_OPTION, PRESETS
from ..errors import EXIT_USAGE, TuneError
from ..flags import OptionParser, add_option, given
from .runner import tune
from .settings import PRUNERS, SAMPLERS, TuneSettings
from .space import SPACES
from .storage import DEFAULT_STORAGE

__all__ = ["build_parser", "settings_from_args", "main"]

PROG = "python -m ras_deap.tune"
# Search options with a flag of their own here (any other one: --set KEY=VALUE).
SEARCH_FLAGS = ("max_epochs", "full_epochs", "dataset", "workers", "budget_epochs",
                "objectives", "mo_selection")


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _assignment(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. patience=3), got {text!r}")
    return key.strip().replace("-", "_"), _parse_value(value.strip())


def _trial_params(text: str) -> dict[str, Any]:
    params = dict(_assignment(part) for part in text.split(",") if part.strip())
    if not params:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE...], got {text!r}")
    return params


def build_parser() -> argparse.ArgumentParser:
    d = TuneSettings()
    p = OptionParser(
        prog=PROG,
        description="Tune RAS's evolution hyperparameters with Optuna (seeded TPE, pruning on "
                    "intermediate fitness, RDB storage). A trial is a complete RAS search "
                    "with a fixed budget of evaluated individuals; its value is the fitness "
                    "(accuracy + robustness) of the search's best architecture re-measured "
                    "on fresh seeds (mean of --remeasure trainings), not the luckiest "
                    "maximum the search saw, so a trial costs --max-evaluations + --remeasure "
                    "trainings. Every trial is an MLflow run with its search nested under it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("study")
    g.add_argument("--study-name", default=None,
                   help="study to create or continue (default: ras-<space>)")
    g.add_argument("--storage", default=DEFAULT_STORAGE,
                   help="Optuna storage: any SQLAlchemy URL; a shared PostgreSQL/MySQL URL "
                        "lets several machines work on one study")
    g.add_argument("--space", choices=sorted(SPACES), default=d.space,
                   help="what to tune: " + "; ".join(f"{k}: {v.description}"
                                                     for k, v in SPACES.items()))
    g.add_argument("--n-trials", type=int, default=None,
                   help="trials to add in this session (default 8; a grid: what is left)")
    g.add_argument("--timeout", type=float, default=None,
                   help="stop starting new trials after this many seconds")
    g.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="default: tpe (grid for the spectrum space)")
    g.add_argument("--pruner", choices=PRUNERS, default=None,
                   help="default: median (none for the spectrum space, a fair comparison)")
    g.add_argument("--startup-trials", type=int, default=d.startup_trials,
                   help="random trials before TPE models the space; complete trials before "
                        "the median pruner prunes")
    g.add_argument("--replicates", type=int, default=d.replicates,
                   help="seeds per variant of the spectrum grid")
    g.add_argument("--report-every", type=int, default=None,
                   help="evaluations between intermediate reports / pruning checks "
                        "(default --max-evaluations // 10)")
    add_option(g, OPTIONS["seed"], default=d.seed, note="also seeds the sampler")
    g.add_argument("--enqueue", type=_trial_params, action="append", default=[],
                   metavar="KEY=VALUE[,...]",
                   help="run a trial with these parameters before the sampler's (Optuna's "
                        "enqueue_trial; skipped when the study has it already), e.g. the "
                        "paper's setting as a reference: --enqueue mutations=5,"
                        "niche_children=equal,remeasure_every=0,niche_age=0,screen_epochs=0 "
                        "(repeatable)")
    g.add_argument("--tuning-seeds", type=int, default=d.tuning_seeds, metavar="N",
                   help="run each trial's search on N seeds (--seed, --seed+1, ...); the value "
                        "is the mean of their re-measured winners, and only the first reports "
                        "to the pruner. Tune on seeds no reported comparison uses, e.g. "
                        "--seed 100 --tuning-seeds 5 (default 1)")
    g = p.add_argument_group("each trial's search (the same flags as python -m ras_deap.run)")
    add_option(g, OPTIONS["max_evaluations"], default=d.budget,
               note="the budget of each trial's search, which is what ends it")
    g.add_argument("--remeasure", type=int, default=d.remeasure, metavar="N",
                   help="train each trial's best architecture N more times on fresh "
                        "evaluation seeds (as the search trained it); the trial's value is "
                        "their mean fitness, reported with sd and 95%% CI. Each trial costs "
                        "--max-evaluations + N trainings; use N >= 3 for numbers you report")
    add_option(g, PRESET_OPTION, default=d.preset, note="the trials start from it")
    for name in SEARCH_FLAGS:
        preset = PRESETS[d.preset].get(name, OPTIONS[name].default)
        add_option(g, OPTIONS[name], default=(
            f"min({OPTIONS['full_epochs'].default}, --max-epochs)" if name == "full_epochs"
            else f"{preset} with --preset {d.preset}"))
    g.add_argument("--set", dest="overrides", type=_assignment, action="append", default=[],
                   metavar="KEY=VALUE", help="any other search option (TOML name), e.g. --set "
                   "patience=3 (repeatable)")
    # the schema's --final-training; given bare (as before it took a kind) it means
    # standard, and left out there is no final training at all
    opt = OPTIONS["final_training"]
    g.add_argument(opt.flag, dest=opt.name, nargs="?", const="standard", type=opt.kind,
                   choices=opt.choices, metavar="KIND", default=argparse.SUPPRESS,
                   help=opt.help_text(note="here: also retrain each trial's best model on the "
                                           "full set and log weights and test accuracy "
                                           "(slower; not part of the value); bare: standard; "
                                           "left out: no final training"))
    g.add_argument("--progress", action="store_true", help="show each search's progress bars")
    g = p.add_argument_group("outputs")
    g.add_argument("--out-dir", default=d.out_dir,
                   help="plots, summary.json, trials.csv and run folders go to OUT_DIR/<study>/")
    add_option(g, OPTIONS["tracking_uri"])
    add_option(g, OPTIONS["experiment"], default=d.experiment)
    g.add_argument("--no-mlflow", action="store_true", help="do not log trials to MLflow")
    return p


def settings_from_args(args: argparse.Namespace) -> TuneSettings:
    d = TuneSettings()
    overrides = {**dict(args.overrides), **given(args, SEARCH_FLAGS)}
    final = getattr(args, "final_training", None)
    if final not in (None, "standard"):
        overrides["final_training"] = final
    return TuneSettings(
        study_name=args.study_name, storage=args.storage, space=args.space,
        n_trials=args.n_trials, timeout=args.timeout,
        budget=getattr(args, "max_evaluations", d.budget),
        preset=getattr(args, "preset", d.preset), overrides=overrides,
        seed=getattr(args, "seed", d.seed), sampler=args.sampler, pruner=args.pruner,
        startup_trials=args.startup_trials, replicates=args.replicates,
        report_every=args.report_every, out_dir=args.out_dir,
        tracking_uri=getattr(args, "tracking_uri", d.tracking_uri),
        experiment=getattr(args, "experiment", d.experiment), track=not args.no_mlflow,
        final_training=final is not None, progress=args.progress,
        remeasure=args.remeasure, tuning_seeds=args.tuning_seeds,
        enqueue=tuple(args.enqueue))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is printed instead
    from ..errors import UsageError, sigterm_as_interrupt

    restore = sigterm_as_interrupt()  # `kill PID` ends the running trial FAIL, as Ctrl-C does
    try:
        settings = settings_from_args(args)
        outcome = tune(settings)
    except (TuneError, UsageError) as exc:  # bad flags, storage, tracking server, ...
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are stored; run the same command again to "
              f"continue study {args.study_name or 'ras-' + args.space!r}", file=sys.stderr)
        return 130
    finally:
        restore()
    if outcome.study_run_id is not None:
        from ..tracking import run_links

        links = run_links(settings.tracking_uri, outcome.study_run_id,
                          order_by="metrics.`value`")
        print(f"see the trials in MLflow: {links['command']}   # then open {links['children']}")
    return 0 if outcome.report.best_value is not None else 1
