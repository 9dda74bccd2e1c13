"""A finished cell's stored result as a table row, and a comparison's results.

Each method picks its winner (per seed) itself: the best fitness its search
saw. That maximum is mostly the luckiest training run, so it is reported only
as ``search_fitness``; the number compared is the winner's fitness
re-measured on fresh seeds, then its errors after re-training on the full
training set, on the test split, on the bank and under direct attacks
(:mod:`.cells`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..assess.assess_config import AUTOATTACK_PARTIAL
from ..genome import Model
from .compare_config import CompareConfig
from .method import MethodOutcome

__all__ = ["ComparisonResult", "RunResult", "remeasured_columns", "row_of"]


def remeasured_columns(measured: Any) -> dict[str, float]:
    """The re-measured fitness of a winner as result columns:
    ``remeasured_fitness`` (mean over the fresh trainings), ``remeasured_sd``,
    ``remeasured_ci95`` (half-width of the 95 % t-interval; both NaN for one
    training), the accuracy/robustness means, ``remeasure_repeats`` and
    ``remeasure_failures`` (failed trainings, counted as fitness 0). All NaN
    when nothing was re-measured. ``measured``: a Remeasurement or its dict."""
    keys = ("remeasured_fitness", "remeasured_sd", "remeasured_ci95", "remeasured_accuracy",
            "remeasured_robustness", "remeasure_repeats", "remeasure_failures")
    if measured is None:
        return dict.fromkeys(keys, math.nan)
    if isinstance(measured, dict):
        def mean(values: list[float]) -> float:
            return float(sum(values) / len(values)) if values else math.nan

        return {"remeasured_fitness": float(measured["mean"]),
                "remeasured_sd": float(measured["sd"]),
                "remeasured_ci95": float(measured["ci95"]),
                "remeasured_accuracy": mean(measured["accuracy"]),
                "remeasured_robustness": mean(measured["robustness"]),
                "remeasure_repeats": float(len(measured["fitness"])),
                "remeasure_failures": float(measured["failures"])}
    return {"remeasured_fitness": float(measured.mean), "remeasured_sd": float(measured.sd),
            "remeasured_ci95": float(measured.ci95),
            "remeasured_accuracy": float(measured.accuracy_mean),
            "remeasured_robustness": float(measured.robustness_mean),
            "remeasure_repeats": float(measured.repeats),
            "remeasure_failures": float(measured.failures)}


def _direct_columns(assessment: dict[str, Any] | None) -> dict[str, float]:
    if not assessment:
        return {}
    out: dict[str, float] = {}
    attacks = []
    for row in assessment["rows"]:
        if row["key"].startswith("bank"):
            continue  # the same network on the same bank: adv_error already
        error = 1.0 - float(row["accuracy"])
        out[f"er_{row['key']}"] = error
        # AutoAttack's rows after its first attacks alone are parts of its own row
        if row["key"] != "clean" and not row["key"].endswith(AUTOATTACK_PARTIAL):
            attacks.append(error)
    out["er_direct_mean"] = float(sum(attacks) / len(attacks)) if attacks else math.nan
    out["assess_levels"] = float(assessment["levels"])
    out["assess_seconds"] = float(assessment.get("seconds", math.nan))
    return out


def row_of(result: dict[str, Any]) -> dict[str, Any]:
    """One results.csv row from a cell's stored result."""
    o = result["outcome"]
    measured = result.get("remeasured")
    assessment = result.get("assessment")
    return {"method": result["method"], "seed": int(result["seed"]),
            "evaluations": int(o["evaluations"]), "search_fitness": float(o["best_fitness"]),
            **remeasured_columns(measured), **result["final"], **_direct_columns(assessment),
            "search_seconds": float(o["seconds"]),
            "remeasure_seconds": float(measured["seconds"]) if measured else 0.0,
            "retrain_seconds": float(result["retrain_seconds"]),
            "wall_seconds": float(result["cell_seconds"]),
            "cpu_seconds": float(result.get("cpu_seconds", math.nan)),
            "replayed": int(result.get("replayed", 0)),
            "best_id": o["best_genome"].get("id") or Model.from_dict(o["best_genome"]).id,
            "failure": result.get("final_failure") or "", "run_id": result.get("run_id") or ""}


@dataclass
class RunResult:
    """One finished cell, as stored in its ``result.json``."""

    data: dict[str, Any]

    @property
    def row(self) -> dict[str, Any]:
        return row_of(self.data)

    @property
    def outcome(self) -> MethodOutcome:
        o = self.data["outcome"]
        return MethodOutcome(method=self.data["method"], seed=int(self.data["seed"]),
                             best_genome=Model.from_dict(o["best_genome"]),
                             best_fitness=float(o["best_fitness"]),
                             best_metrics=dict(o["best_metrics"]),
                             evaluations=int(o["evaluations"]), curve=list(o["curve"]),
                             seconds=float(o["seconds"]), info=dict(o["info"]),
                             best_generation=int(o["best_generation"]))

    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")


@dataclass
class ComparisonResult:
    config: CompareConfig
    runs: list[RunResult]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float = 0.0  # wall time of this session
    total_seconds: float = 0.0  # over every session of this comparison
    cells_run: list[str] = field(default_factory=list)
    cells_reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r.row for r in self.runs]
