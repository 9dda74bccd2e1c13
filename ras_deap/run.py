"""``python -m ras_deap.run``: a complete RAS search from the command line.

With no arguments it runs the default search on the embedded ``digits`` data
(about 5 minutes on 2 free CPU cores) and prints a summary; ``--preset smoke``
finishes in about a minute. Every individual is logged to MLflow (by default
``sqlite:///mlruns/mlflow.db``), and the run can be killed and continued with
``--resume``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from .config import (
    DATASET_NAMES,
    DISTANCES,
    OPTIMIZERS,
    PRESETS,
    ROBUSTNESS,
    ConfigError,
    SearchConfig,
    load_toml,
)
from .errors import EXIT_USAGE, run_cli, sigterm_as_interrupt

__all__ = ["build_parser", "config_from_args", "format_summary", "main", "EXIT_USAGE"]


def build_parser() -> argparse.ArgumentParser:
    d = SearchConfig()
    p = argparse.ArgumentParser(
        prog="python -m ras_deap.run",
        description="Robust Architecture Search (Kotyan & Vargas) on DEAP: evolve architectures "
                    "whose fitness is validation accuracy + accuracy on a bank of transferable "
                    "adversarial samples. Values come from the defaults, then --preset, then "
                    "--config, then the flags given here.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add = p.add_argument
    g = p.add_argument_group("configuration")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="named starting point: smoke (about a minute), default, mnist10k "
                        "(a smaller search on mnist10k), paper")
    g.add_argument("--config", metavar="FILE",
                   help="TOML file of options (same names as the flags); flags override it")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASET_NAMES,
                   help=f"dataset to search on (default {d.dataset}, embedded)")
    g.add_argument("--data-dir", metavar="DIR",
                   help="folder holding cifar10/mnist/fashion-mnist files (torchvision layout)")
    g.add_argument("--download", action="store_true",
                   help="let torchvision download the dataset into --data-dir (needs internet)")
    g.add_argument("--bank", metavar="NPZ",
                   help="adversarial bank (.npz from `python -m ras_deap.attacks build`); "
                        "default: the bank shipped for the dataset")
    g.add_argument("--robustness", choices=ROBUSTNESS,
                   help="robustness half of the fitness: bank (the paper's transfer bank), "
                        "direct (PGD and JSMA on each trained network), both (their mean); "
                        f"default {d.robustness}")
    g = p.add_argument_group("evolution")
    g.add_argument("--generations", type=int, help=f"generations after the initial one "
                   f"(default {d.generations})")
    g.add_argument("--population", type=int, help=f"initial clusters, each a random model "
                   f"(paper 25; default {d.population})")
    g.add_argument("--children", type=int, help=f"children per cluster and generation "
                   f"(paper 2; default {d.children})")
    g.add_argument("--mutations", type=int, help=f"mutations applied to make each child "
                   f"(paper 5; default {d.mutations})")
    g.add_argument("--layer-limit", type=int, help="over this many layers created in a "
                   f"generation only swap-layer is left (paper 100; default {d.layer_limit})")
    g.add_argument("--block-limit", type=int, help="over this many blocks created in a "
                   f"generation only swap-block is left (paper 100; default {d.block_limit})")
    g.add_argument("--distance", choices=DISTANCES, help="spectrum distance for niching: raw "
                   "(plain Euclidean; the paper does not specify) or per-feature normalised")
    g.add_argument("--max-evaluations", type=int, metavar="N",
                   help="stop after exactly N trained individuals (default: no limit)")
    g = p.add_argument_group("training schedule (paper section 5.3)")
    g.add_argument("--subset-size", type=int, help="training samples drawn in ordinary "
                   f"generations (paper 1000; default {d.subset_size})")
    g.add_argument("--full-every", type=int, help="train on the full training set every N "
                   f"generations (paper 10; default {d.full_every})")
    g.add_argument("--full-epochs", type=int, help="max epochs of full-set training "
                   f"(paper 50; default {d.full_epochs})")
    g.add_argument("--max-epochs", type=int, help="max epochs of subset training "
                   f"(paper 200; default {d.max_epochs})")
    g.add_argument("--patience", type=int, help="early stopping: epochs without a change of "
                   f"min-delta in train or validation accuracy (paper 15; default {d.patience})")
    g.add_argument("--min-delta", type=float, help=f"early stopping threshold (paper 0.001; "
                   f"default {d.min_delta})")
    g.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    g.add_argument("--lr", type=float, help=f"learning rate (default {d.lr})")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
    g.add_argument("--augment", action="store_true",
                   help="random crop + horizontal flip of training images (for cifar10)")
    g = p.add_argument_group("execution")
    g.add_argument("--workers", type=int, help="evaluate N individuals in parallel processes "
                   f"(results are identical for any N; default {d.workers}, sized for 2 cores)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="evaluate on a Dask cluster: "
                   "tcp://host:port of a running scheduler, or 'local' for a LocalCluster of "
                   "--workers processes")
    g.add_argument("--threads", type=int, help="torch threads per evaluation (default 1)")
    g.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    g.add_argument("--seed", type=int, help="fixes every random choice (default 0)")
    g = p.add_argument_group("tracking and checkpoints")
    g.add_argument("--experiment", help=f"MLflow experiment name (default {d.experiment})")
    g.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default "
                   "sqlite:///mlruns/mlflow.db, artifacts in mlruns/artifacts); e.g. "
                   "http://host:5000 for a shared mlflow server")
    g.add_argument("--run-dir", metavar="DIR", help=f"where run folders (checkpoints, weights, "
                   f"figures) go (default {d.run_dir}/)")
    g.add_argument("--run-name", help="name of this run's folder and MLflow run (default "
                   "<dataset>-seed<seed>-<time>-<random suffix>)")
    g.add_argument("--register-model", metavar="NAME",
                   help="register the retrained best network in the MLflow model registry "
                        "under NAME (it is always logged as a model on the best individual's "
                        "run)")
    add("--resume", nargs="?", const=True, metavar="RUN",
        help="continue a killed run: its folder (runs/<name>), or the latest run if omitted")
    add("--no-progress", action="store_true", help="hide the tqdm progress bars")
    add("--force", action="store_true",
        help="run even with sizes that look like typos (more than 10,000 clusters, more than "
             "1,000,000 trainings, ...), which are refused otherwise")
    return p


def explicit_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user set (preset, then config file, then flags)."""
    values: dict[str, Any] = {}
    if "preset" in args:
        values.update(PRESETS[args.preset])
    if "config" in args:
        values.update(load_toml(args.config))
    skip = {"preset", "config", "resume", "no_progress", "register_model", "force"}
    values.update({k: v for k, v in vars(args).items() if k not in skip})
    return values


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig.from_dict(explicit_values(args), source="options")


def resumed_config(args: argparse.Namespace) -> SearchConfig:
    """The checkpoint's config with the options that may change on resume
    taken from what the user set; other options must not differ."""
    from .search import RESUMABLE_OVERRIDES, resolve_run_dir

    given = explicit_values(args)
    run_dir = resolve_run_dir(SearchConfig.from_dict(given, source="options"), args.resume)
    stored = load_checkpoint(run_dir).config
    changed = sorted(k for k, v in given.items()
                     if k not in (*RESUMABLE_OVERRIDES, "run_dir", "run_name")
                     and stored.get(k) != v)
    if changed:
        raise ConfigError(f"cannot change {', '.join(changed)} when resuming (the search would "
                          f"not be the same search); only {', '.join(RESUMABLE_OVERRIDES)} may "
                          "change")
    merged = {**stored, **{k: given[k] for k in given if k in RESUMABLE_OVERRIDES}}
    merged["run_dir"], merged["run_name"] = str(run_dir.parent), run_dir.name
    return SearchConfig.from_dict(merged, source="checkpoint config")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.4f}"
    return str(value)


def format_summary(summary: dict[str, Any]) -> str:
    """The table printed at the end of a run."""
    rows = [
        ("best architecture", summary.get("best_id")),
        ("found in generation", summary.get("generation_found")),
        ("fitness (val acc + robustness)", summary.get("fitness")),
        ("validation accuracy", summary.get("accuracy")),
        ("robustness (bank accuracy)", summary.get("robustness")),
        ("retrained on full train set:", ""),
        ("  validation accuracy", summary.get("final_accuracy")),
        ("  test accuracy", summary.get("final_test_accuracy")),
        ("  robustness", summary.get("final_robustness")),
        ("  parameters", summary.get("final_parameters")),
    ]
    def natural(key: str) -> list[Any]:  # th3 before th10
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]

    cells = sorted((k for k in summary if k.startswith("final_robustness_")), key=natural)
    rows += [(f"  {k.removeprefix('final_')}", summary[k]) for k in cells]
    rows += [
        ("evaluations", summary.get("evaluations")),
        ("wall time (s)", summary.get("wall_seconds")),
        ("run folder", summary.get("run_dir")),
        ("MLflow run id", summary.get("mlflow_run_id")),
        ("see it in MLflow (individuals, best first)", summary.get("mlflow_ui")),
        ("the search run (description, charts)", summary.get("mlflow_run_url")),
        ("load the retrained network", (f'mlflow.pytorch.load_model("{summary["model_uri"]}")'
                                        if summary.get("model_uri") else None)),
        ("registered model", summary.get("registered_model")),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["", "RAS search summary", "=" * (width + 30)]
    lines += [f"{name:<{width}}  {_fmt(value)}" for name, value in rows if value is not None]
    return "\n".join(lines)


def _resume_hint(config: SearchConfig | None, exc: BaseException) -> str:
    """The one line printed after Ctrl-C or SIGTERM: where the run is and how to go on."""
    run_dir = getattr(exc, "run_dir", None)
    where = str(run_dir) if run_dir is not None else (
        f"{config.run_dir}/<run name>" if config is not None else "runs/<run name>")
    return ("the MLflow run is marked KILLED and every evaluated individual is saved; "
            f"continue with: python -m ras_deap.run --resume {where}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resume = getattr(args, "resume", False)
    prog = parser.prog
    holder: dict[str, SearchConfig] = {}

    def configure() -> int:
        holder["config"] = resumed_config(args) if resume else config_from_args(args)
        return 0

    def usage() -> None:
        parser.print_usage(sys.stderr)

    def search() -> int:
        from .search import run_search
        from .tracking.store import bound_http_retries

        config = holder["config"]
        bound_http_retries()
        result = run_search(config, resume=(Path(config.run_dir) / str(config.run_name))
                            if resume else False,
                            progress=not getattr(args, "no_progress", False),
                            register_model=getattr(args, "register_model", None),
                            force=getattr(args, "force", False))
        if result.already_finished:
            print(f"run {result.run_dir} has already finished: nothing was trained or logged "
                  "(to continue it, resume with a larger --generations)")
        print(format_summary(result.summary))
        return 0

    restore = sigterm_as_interrupt()
    try:
        code = run_cli(prog, configure, usage=usage,
                       on_interrupt=lambda exc: "nothing was started")
        if code:
            return code
        return run_cli(prog, search,
                       on_interrupt=lambda exc: _resume_hint(holder.get("config"), exc))
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
