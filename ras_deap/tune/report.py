"""What a finished (or interrupted) study leaves behind.

The best parameters, the best trial's re-measured fitness with its spread
next to the search's raw maximum, the ``python -m ras_deap.run`` command that
reproduces the best trial, per-category means of categorical parameters (the
spectrum study's answer), parameter importances (with a warning when they
rest on too few trials to mean anything), and Optuna's plots (matplotlib,
Agg: no display needed) written to ``<out_dir>/<study>/``.
"""

from __future__ import annotations

import math
import shlex
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..atomic import save_figure_atomic, write_csv_atomic, write_json_atomic
from ..config import EXECUTION_FIELDS, OPTIONS

__all__ = ["StudyReport", "reproduce_command", "summarise_study", "write_outputs",
           "format_report", "importance_trials_needed"]

MIN_TRIALS_FOR_IMPORTANCE = 2  # fANOVA cannot run on fewer
# Below this many complete trials importances are printed with a warning that
# they mean nothing: fANOVA fits a random forest to (params -> value) and
# splits the value's variance between the parameters. With k parameters and
# n trials, n < 4k leaves fewer than four observations per dimension, and with
# a seed-to-seed fitness sd of about 0.06 the forest then mostly apportions
# training noise; 20 is the floor for a space of few parameters.
MIN_TRIALS_PER_PARAMETER = 4
MIN_TRIALS_FOR_RELIABLE_IMPORTANCE = 20


def importance_trials_needed(n_params: int) -> int:
    """Complete trials below which importances of ``n_params`` parameters are
    flagged as meaningless: ``max(20, 4 * n_params)``."""
    return max(MIN_TRIALS_FOR_RELIABLE_IMPORTANCE, MIN_TRIALS_PER_PARAMETER * n_params)


def reproduce_command(config: dict[str, Any]) -> str:
    """``python -m ras_deap.run`` with the flag of every search option that
    differs from its default (execution options, which never change the
    result, are left out: where things go is the reader's choice)."""
    parts = ["python", "-m", "ras_deap.run"]
    for name, opt in OPTIONS.items():
        if name in EXECUTION_FIELDS or name not in config:
            continue
        value = config[name]
        if value is None or value == opt.default:
            continue
        if opt.kind is bool:  # switches (--download, --augment), off by default
            if value:
                parts.append(opt.flag)
            continue
        parts += [opt.flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass
class StudyReport:
    study_name: str
    counts: dict[str, int]
    best_value: float | None = None
    best_trial: int | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_attrs: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str | None = None
    importances_reliable: bool = False
    importance_warning: str | None = None
    by_category: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"study_name": self.study_name, "counts": self.counts,
                "best_value": self.best_value, "best_trial": self.best_trial,
                "best_params": self.best_params, "best_attrs": self.best_attrs,
                "reproduce_command": self.command, "importances": self.importances,
                "importance_note": self.importance_note,
                "importances_reliable": self.importances_reliable,
                "importance_warning": self.importance_warning,
                "by_category": self.by_category,
                "files": [str(p) for p in self.files]}


def _importance_evaluator() -> optuna.importance.BaseImportanceEvaluator:
    # fANOVA (Optuna's own random-forest implementation): seeded, so a report
    # is reproducible; PED-ANOVA (Optuna's default) needs many trials.
    return optuna.importance.FanovaImportanceEvaluator(seed=0)


def summarise_study(study: optuna.Study) -> StudyReport:
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    counts = {k: v for k, v in counts.items() if v}
    report = StudyReport(study.study_name, counts)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return report
    best = study.best_trial
    report.best_value = float(best.value)  # type: ignore[arg-type]
    report.best_trial = best.number
    report.best_params = dict(best.params)
    report.best_attrs = {k: v for k, v in best.user_attrs.items() if k != "config"}
    if "config" in best.user_attrs:
        report.command = reproduce_command(best.user_attrs["config"])
    report.by_category = _by_category(complete)
    n_params = len({name for t in complete for name in t.params})
    needed = importance_trials_needed(n_params)
    report.importances_reliable = len(complete) >= needed
    if not report.importances_reliable:
        report.importance_warning = (
            f"WARNING: parameter importances rest on {len(complete)} complete trial(s) for "
            f"{n_params} parameter(s), fewer than max({MIN_TRIALS_FOR_RELIABLE_IMPORTANCE}, "
            f"{MIN_TRIALS_PER_PARAMETER} x {n_params}) = {needed}: too few trials for them to "
            f"mean anything (with a seed-to-seed fitness sd of ~0.06 they mostly split noise); "
            f"run more trials before reading them")
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        report.importance_note = (f"parameter importances need at least "
                                  f"{MIN_TRIALS_FOR_IMPORTANCE} complete trials "
                                  f"(have {len(complete)})")
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(
                    study, evaluator=_importance_evaluator())
            report.importances = {k: float(v) for k, v in imp.items()}
        except (ValueError, RuntimeError) as exc:
            report.importance_note = f"parameter importances unavailable: {exc}"
    return report


def _by_category(trials: list[FrozenTrial]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, spread and count of the value per category of each categorical
    parameter (e.g. distance raw vs normalized)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for trial in trials[:1]:
        names = [n for n, d in trial.distributions.items()
                 if isinstance(d, optuna.distributions.CategoricalDistribution)]
        for name in names:
            groups: dict[str, list[float]] = {}
            for t in trials:
                if name in t.params and t.value is not None:
                    groups.setdefault(str(t.params[name]), []).append(float(t.value))
            out[name] = {cat: {"mean": statistics.fmean(v),
                               "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                               "n": float(len(v))} for cat, v in sorted(groups.items())}
    return out


def write_outputs(study: optuna.Study, report: StudyReport, folder: Path) -> list[Path]:
    """Plots, ``summary.json`` and ``trials.csv`` in ``folder``; returns the
    files written (plots that cannot be drawn yet are skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    plots: list[tuple[str, Any]] = []
    if complete:
        plots.append(("optimization_history.png", lambda: ovm.plot_optimization_history(study)))
    if report.importances:
        plots.append(("param_importances.png", lambda: ovm.plot_param_importances(
            study, evaluator=_importance_evaluator())))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots.append(("intermediate_values.png", lambda: ovm.plot_intermediate_values(study)))
    for name, draw in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning of the matplotlib backend
            ax = draw()
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.tight_layout()
        save_figure_atomic(fig, folder / name, dpi=110)
        plt.close(fig)
        files.append(folder / name)
    files.append(_write_trials_csv(study, folder / "trials.csv"))
    report.files = [*files, folder / "summary.json"]
    write_json_atomic(folder / "summary.json", report.to_dict(), default=str)
    return report.files


def _cpu(machine: Any) -> str:
    """Where a trial ran: its CPU and the kernels torch picked ("" for trials
    recorded before trials kept it)."""
    if not isinstance(machine, dict):
        return ""
    return f"{machine.get('cpu', '?')} ({machine.get('cpu_capability', '?')})"


def _write_trials_csv(study: optuna.Study, path: Path) -> Path:
    trials = study.get_trials(deepcopy=False)
    names = sorted({n for t in trials for n in t.params})
    header = ["number", "state", "value", *names, "remeasured_sd", "remeasured_ci95",
              "remeasure_repeats", "search_best_fitness", "evaluations", "seconds",
              "cpu", "mlflow_run_id", "failure"]
    rows = [[t.number, t.state.name, "" if t.value is None else t.value,
             *[t.params.get(n, "") for n in names],
             *[_blank(t.user_attrs.get(k)) for k in (
                 "remeasured_sd", "remeasured_ci95", "remeasure_repeats",
                 "search_best_fitness")],
             t.user_attrs.get("evaluations", ""),
             _round(t.user_attrs.get("seconds")),
             _cpu(t.user_attrs.get("machine")),
             t.user_attrs.get("mlflow_run_id", ""),
             t.user_attrs.get("failure", "")] for t in trials]
    return write_csv_atomic(path, [header, *rows])


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _round(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) and math.isfinite(value) else ""


def format_report(report: StudyReport) -> str:
    counts = ", ".join(f"{n} {k.lower()}" for k, n in report.counts.items()) or "no trials"
    lines = ["", f"Study {report.study_name!r}: {counts}"]
    if report.best_value is None:
        lines.append("no trial completed yet: nothing to report (see the failures above)")
        return "\n".join(lines)
    lines.append(_best_line(report))
    lines.append("best parameters:")
    lines += [f"  {k} = {_fmt(v)}" for k, v in report.best_params.items()]
    for name, cats in report.by_category.items():
        lines.append(f"value by {name}:")
        lines += [f"  {cat:<12} mean {s['mean']:.4f}  std {s['std']:.4f}  n={int(s['n'])}"
                  for cat, s in cats.items()]
    if report.importances:
        lines.append("parameter importances (fANOVA)"
                     + ("" if report.importances_reliable else ", NOT meaningful (see below)")
                     + ":")
        lines += [f"  {k:<14} {v:.3f}" for k, v in report.importances.items()]
    elif report.importance_note:
        lines.append(report.importance_note)
    if report.importance_warning:
        lines.append(report.importance_warning)
    if report.command:
        lines += ["reproduce the best trial with:", f"  {report.command}"]
    if report.files:
        lines.append(f"plots and summary: {report.files[0].parent}")
    return "\n".join(lines)


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and math.isfinite(value) \
        else "n/a"


def _best_line(report: StudyReport) -> str:
    """``best trial N: re-measured fitness mean ± sd (95% CI ±x) over N trainings;
    search maximum y`` (trials from before re-measuring: just the value)."""
    attrs = report.best_attrs
    repeats = attrs.get("remeasure_repeats")
    if not isinstance(repeats, int):
        return (f"best value (the search's maximum fitness = accuracy + robustness, not "
                f"re-measured): {report.best_value:.4f} (trial {report.best_trial})")
    line = (f"best trial {report.best_trial}: re-measured fitness (accuracy + robustness) "
            f"{report.best_value:.4f} ± {_num(attrs.get('remeasured_sd'))} "
            f"(95% CI ±{_num(attrs.get('remeasured_ci95'))}) over {repeats} fresh "
            f"training{'s' if repeats != 1 else ''}; search maximum "
            f"{_num(attrs.get('search_best_fitness'))}")
    failures = attrs.get("remeasure_failures")
    if failures:
        line += f" ({failures} re-measuring training(s) failed, counted as 0)"
    return line


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
