"""``python -m ras_deap.compare``: RAS against converted NAS baselines
(the paper's Table 2) on your data and budget, as one command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config import ConfigError, SearchConfig
from .config import COMPARE_PRESETS, METHOD_ORDER, CompareConfig

__all__ = ["build_parser", "config_from_args", "main"]

# SearchConfig fields a comparison lets the user set (the rest keep defaults).
_SEARCH_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("dataset", str, "dataset name (digits, cifar10, mnist, fashion-mnist)"),
    ("data_dir", str, "folder of the dataset files"),
    ("bank", str, "adversarial bank .npz (default: the one shipped for the dataset)"),
    ("population", int, "RAS population; also mu of (mu+lambda), and the generation size of "
                        "the training schedule"),
    ("children", int, "children per cluster (lambda = population x children)"),
    ("mutations", int, "mutations per child"),
    ("subset_size", int, "training samples per search evaluation"),
    ("max_epochs", int, "max epochs per search evaluation"),
    ("patience", int, "early-stopping patience (epochs)"),
    ("full_every", int, "train on the full set every N generations"),
    ("full_epochs", int, "epochs of full training (also the final re-training)"),
    ("batch_size", int, "training batch size"),
    ("lr", float, "learning rate"),
    ("threads", int, "torch threads per evaluation"),
    ("device", str, "torch device (default: cpu)"),
    ("tracking_uri", str, "MLflow tracking URI (default sqlite:///mlruns/mlflow.db)"),
    ("experiment", str, "MLflow experiment name"),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ras_deap.compare",
        description="Compare RAS with converted-NAS baselines under one evaluation budget "
                    "(same fitness, data, adversarial bank and trainer) and write the "
                    "paper's Table 2 with mean ± std over seeds; each winner's fitness is "
                    "re-measured on fresh seeds, reported as mean ± 95% CI over seeds.")
    p.add_argument("--preset", choices=sorted(COMPARE_PRESETS), default="default",
                   help="training/evolution sizes and budget (default: 'default', well under "
                        "an hour on 2 CPU cores with digits; 'tiny' is a quick check)")
    p.add_argument("--budget", type=int, help="trained models per method and seed")
    p.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    p.add_argument("--seed", type=int, help="base seed (seeds are seed, seed+1, ...)")
    p.add_argument("--methods", default=",".join(METHOD_ORDER),
                   help=f"comma-separated subset of {','.join(METHOD_ORDER)}")
    p.add_argument("--out", default="compare_out", help="output folder (default compare_out)")
    p.add_argument("--tournament-size", type=int, default=3,
                   help="tournament size of (mu+lambda) (default 3)")
    p.add_argument("--remeasure", type=int, default=3, metavar="N",
                   help="train each method's winner N more times on fresh evaluation seeds "
                        "(as its search trained it) and report their mean fitness with its "
                        "spread instead of the search's luckiest maximum (default 3; costs N "
                        "trainings per method and seed on top of --budget, the same for every "
                        "method)")
    for name, kind, text in _SEARCH_FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=text)
    return p


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    preset = dict(COMPARE_PRESETS[args.preset])
    budget = args.budget if args.budget is not None else preset.pop("budget")
    preset.pop("budget", None)
    search = {**preset, **{name: getattr(args, name) for name, _, _ in _SEARCH_FLAGS
                           if getattr(args, name) is not None}}
    if args.seed is not None:
        search["seed"] = args.seed
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    return CompareConfig(search=SearchConfig.from_dict(search, source="flags"), budget=budget,
                         seeds=args.seeds, methods=methods, out=args.out,
                         tournament_size=args.tournament_size, remeasure=args.remeasure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    from .runner import run_comparison

    result = run_comparison(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(result.files["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    print(f"MLflow comparison run {result.run_id} ({result.seconds:.0f} s)")
    return 0
