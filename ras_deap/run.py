"""``python -m ras_deap.run``: a complete RAS search from the command line.

With no arguments it runs the default search on the embedded ``digits`` data
(about 5 minutes on 2 free CPU cores) and prints a summary; ``--preset smoke``
finishes in under a minute. Every individual is logged to MLflow (by default
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
    OPTIONS,
    PRESET_OPTION,
    PRESETS,
    RESUMABLE_OVERRIDES,
    SearchConfig,
    check_resumable,
    load_toml,
)
from .errors import EXIT_USAGE, run_cli, sigterm_as_interrupt
from .flags import OptionParser, add_option, given
from .options import GROUPS

__all__ = ["build_parser", "config_from_args", "format_summary", "main", "EXIT_USAGE"]


def build_parser() -> argparse.ArgumentParser:
    """The flags: every search option from the schema (:data:`OPTIONS`), in
    its group, and the few that only this command has."""
    p = OptionParser(
        prog="python -m ras_deap.run",
        description="Robust Architecture Search (Kotyan & Vargas) on DEAP: evolve architectures "
                    "whose fitness is validation accuracy + accuracy on a bank of transferable "
                    "adversarial samples. Values come from the defaults, then --preset, then "
                    "--config, then the flags given here.",
        argument_default=argparse.SUPPRESS,
    )
    g = p.add_argument_group("configuration")
    add_option(g, PRESET_OPTION)
    g.add_argument("--config", metavar="FILE",
                   help="TOML file of options (same names as the flags); flags override it")
    for group, title in GROUPS.items():
        g = p.add_argument_group(title)
        for opt in OPTIONS.values():
            if opt.group == group:
                add_option(g, opt)
    g = p.add_argument_group("this command")
    g.add_argument("--register-model", metavar="NAME",
                   help="register the retrained best network in the MLflow model registry "
                        "under NAME (it is always logged as a model on the best individual's "
                        "run)")
    g.add_argument("--resume", nargs="?", const=True, metavar="RUN",
                   help="continue a killed run: its folder (runs/<name>), or the latest run "
                        "if omitted; only " + ", ".join(OPTIONS[n].flag for n in
                                                       RESUMABLE_OVERRIDES) + " may change")
    g.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    g.add_argument("--force", action="store_true",
                   help="run even with sizes that look like typos (more than 10,000 clusters, "
                        "more than 1,000,000 trainings, ...), which are refused otherwise")
    return p


def explicit_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user set (preset, then config file, then flags)."""
    values: dict[str, Any] = {}
    if "preset" in args:
        values.update(PRESETS[args.preset])
    if "config" in args:
        values.update(load_toml(args.config))
    values.update(given(args, OPTIONS))
    return values


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig.from_dict(explicit_values(args), source="options")


def resumed_config(args: argparse.Namespace) -> SearchConfig:
    """The checkpoint's config with the options that may change on resume
    taken from what the user set; other options must not differ."""
    from .search import resolve_run_dir

    given_values = explicit_values(args)
    run_dir = resolve_run_dir(config_from_args(args), args.resume)
    stored = load_checkpoint(run_dir).config
    check_resumable(stored, given_values)
    merged = {**stored, **{k: v for k, v in given_values.items() if k in RESUMABLE_OVERRIDES}}
    merged["run_dir"], merged["run_name"] = str(run_dir.parent), run_dir.name
    return SearchConfig.from_stored(merged, source="checkpoint config")


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
        ("  final training", summary.get("final_training")),
        ("  validation accuracy", summary.get("final_accuracy")),
        ("  test accuracy", summary.get("final_test_accuracy")),
        ("  robustness", summary.get("final_robustness")),
        ("  parameters", summary.get("final_parameters")),
    ]
    if summary.get("final_training", "standard") != "standard":  # before -> after hardening
        def pair(key: str) -> str | None:
            before, after = summary.get(f"final_standard_{key}"), summary.get(f"final_{key}")
            return None if before is None or after is None else \
                f"{_fmt(before)} -> {_fmt(after)}"

        rows += [
            ("  standard -> adversarially fine-tuned:", ""),
            ("    test accuracy", pair("test_accuracy")),
            ("    validation accuracy under PGD", pair("val_pgd_accuracy")),
            ("    robustness (bank accuracy)", pair("robustness")),
            ("    adversarial training time (s)", summary.get("final_adversarial_seconds")),
        ]
    def natural(key: str) -> list[Any]:  # th3 before th10
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]

    breakdown = sorted((k for k in summary if k.startswith("final_robustness_")), key=natural)
    rows += [(f"  {k.removeprefix('final_')}", summary[k]) for k in breakdown]
    rows += [
        ("front (non-dominated, front.json)", (f"{summary['front_size']} members"
                                               if summary.get("front_size") else None)),
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


def _resume_hint(config: SearchConfig | None, exc: BaseException, resume: bool) -> str:
    """The one line printed after Ctrl-C or SIGTERM: where the run is and how
    to go on, or, when a new search stopped before its first evaluation, that
    there is nothing to resume (its run folder is gone)."""
    run_dir = getattr(exc, "run_dir", None)
    if run_dir is None and resume and config is not None:
        run_dir = Path(config.run_dir) / str(config.run_name)
    if run_dir is None:
        return ("nothing was evaluated, so there is nothing to resume; run the same command "
                "again to start the search")
    return ("the MLflow run is marked KILLED and every evaluated individual is saved; "
            f"continue with: python -m ras_deap.run --resume {run_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resume = getattr(args, "resume", False)
    prog = parser.prog
    holder: dict[str, SearchConfig] = {}

    def configure() -> int:
        holder["config"] = resumed_config(args) if resume else config_from_args(args)
        return 0

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
        # one line, no usage: argparse prints that for a malformed command line
        code = run_cli(prog, configure, on_interrupt=lambda exc: "nothing was started")
        if code:
            return code
        return run_cli(prog, search,
                       on_interrupt=lambda exc: _resume_hint(holder.get("config"), exc,
                                                         bool(resume)))
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
