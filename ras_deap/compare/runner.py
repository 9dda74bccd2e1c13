"""Run every method under the same budget and seeds, re-measure and re-train
the best models the same way, and log it all to MLflow.

Each method picks its winner (per seed) itself: the best fitness its search
saw. That maximum is mostly the luckiest training run, so it is reported only
as ``search_fitness`` (the search maximum); the number compared is the
winner's fitness re-measured (:func:`ras_deap.evaluation.remeasure`): trained
``cfg.remeasure`` more times exactly as its search trained it (same
evaluator, same generation) on fresh seeds, mean with sd and 95 % CI. The
final re-training on the full training set (test and bank error) follows.

MLflow layout (all through :class:`ras_deap.tracking.SearchTracker`): one
parent run per comparison (config, table, CSV, figure), one child run per
method and seed (its best-fitness curve, final metrics, best genome), and
under that child the evaluated individuals (RAS: its own search run, which
holds them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..bank import NORMS, metric_name
from ..config import SearchConfig
from ..evolution.algorithm import derive_seed
from ..genome.spectrum import SPECTRUM_FEATURES, spectrum
from .baselines import MethodContext, MethodOutcome, run_method
from .budget import BudgetedEvaluator, EvaluationRecord, ras_generation
from .config import CompareConfig

__all__ = ["ComparisonResult", "RunResult", "final_metrics", "remeasured_columns",
           "run_comparison"]


@dataclass
class RunResult:
    """One method and seed: the search outcome, the winner re-measured on
    fresh seeds, and the re-trained best model."""

    outcome: MethodOutcome
    final: dict[str, float]
    final_failure: str | None
    retrain_seconds: float
    run_id: str | None = None
    remeasured: Any = None  # ras_deap.evaluation.Remeasurement

    @property
    def row(self) -> dict[str, Any]:
        o = self.outcome
        return {"method": o.method, "seed": o.seed, "evaluations": o.evaluations,
                "search_fitness": o.best_fitness, **remeasured_columns(self.remeasured),
                **self.final,
                "search_seconds": o.seconds, "remeasure_seconds": self.remeasure_seconds,
                "retrain_seconds": self.retrain_seconds,
                "wall_seconds": o.seconds + self.remeasure_seconds + self.retrain_seconds,
                "best_id": o.best_genome.id, "failure": self.final_failure or "",
                "run_id": self.run_id or ""}

    @property
    def remeasure_seconds(self) -> float:
        return float(self.remeasured.seconds) if self.remeasured is not None else 0.0


@dataclass
class ComparisonResult:
    config: CompareConfig
    runs: list[RunResult]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r.row for r in self.runs]


def final_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The reported numbers of a re-trained model: error rates (1 - accuracy)
    on the test set and on the bank (overall and per norm), fitness and size."""
    def error(key: str) -> float:
        value = metrics.get(key)
        return 1.0 - float(value) if value is not None else math.nan

    out = {"test_error": error("test_accuracy"), "adv_error": error("robustness")}
    for norm in NORMS:
        out[f"adv_error_{norm}"] = error(metric_name(norm))
    out["final_fitness"] = float(metrics.get("fitness", math.nan))
    out["val_accuracy"] = float(metrics.get("accuracy", math.nan))
    out["parameters"] = float(metrics.get("parameters", math.nan))
    out["bank_fallback"] = float(metrics.get("bank_fallback", math.nan))
    return out


def remeasured_columns(measured: Any) -> dict[str, float]:
    """The re-measured fitness of a winner as result columns:
    ``remeasured_fitness`` (mean over the fresh trainings), ``remeasured_sd``,
    ``remeasured_ci95`` (half-width of the 95 % t-interval; both NaN for one
    training), the accuracy/robustness means, ``remeasure_repeats`` and
    ``remeasure_failures`` (failed trainings, counted as fitness 0). All NaN
    when nothing was re-measured."""
    if measured is None:
        return {k: math.nan for k in ("remeasured_fitness", "remeasured_sd", "remeasured_ci95",
                                      "remeasured_accuracy", "remeasured_robustness",
                                      "remeasure_repeats", "remeasure_failures")}
    return {"remeasured_fitness": float(measured.mean), "remeasured_sd": float(measured.sd),
            "remeasured_ci95": float(measured.ci95),
            "remeasured_accuracy": float(measured.accuracy_mean),
            "remeasured_robustness": float(measured.robustness_mean),
            "remeasure_repeats": float(measured.repeats),
            "remeasure_failures": float(measured.failures)}


def _individual_record(rec: EvaluationRecord) -> Any:
    from ..tracking import IndividualRecord

    return IndividualRecord(
        key=f"e{rec.index}", genome_id=rec.genome.id, generation=rec.generation,
        index=rec.index, cluster=None, parent_id=rec.info.get("parent_id"),
        mutations=list(rec.info.get("mutations", [])), fitness=rec.fitness,
        metrics={k: float(v) for k, v in rec.metrics.items()},
        spectrum=dict(zip(SPECTRUM_FEATURES, map(float, spectrum(rec.genome)), strict=True)),
        genome=rec.genome.to_dict(), failure=rec.failure,
        extra_params={k: v for k, v in rec.info.items() if k not in ("parent_id", "mutations")})


def _retrain(evaluator: Any, cfg: CompareConfig, outcome: MethodOutcome
             ) -> tuple[dict[str, float], str | None, float]:
    start = time.perf_counter()
    result = evaluator.evaluate(outcome.best_genome, cfg.retrain_generation,
                                seed=derive_seed(outcome.seed, "final", outcome.best_genome.id),
                                with_test=True)
    return final_metrics(result.metrics), result.failure, time.perf_counter() - start


def run_comparison(cfg: CompareConfig, *,
                   evaluator_factory: Callable[[SearchConfig], Any] | None = None,
                   log: Callable[[str], None] = print) -> ComparisonResult:
    """Run ``cfg.methods`` x ``cfg.seed_list``; write the table, CSVs and the
    figure to ``cfg.out`` and return everything measured.

    Each seed gets the evaluator ``evaluator_factory(search config with that
    seed)`` (default :func:`ras_deap.search.make_evaluator`, which RAS's
    ``run_search`` also uses): the seed fixes the data split and the fallback
    bank, so within a seed every method sees the same data and bank.
    """
    from ..evaluation.remeasure import remeasure
    from ..search import make_evaluator
    from ..tracking import SearchTracker
    from .plot import plot_curves
    from .table import write_outputs

    started = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    search = cfg.search.replace(run_dir=str(out / "ras_runs"))
    factory = evaluator_factory or make_evaluator
    evaluators = {seed: factory(search.replace(seed=seed)) for seed in cfg.seed_list}
    schedule = lambda i: ras_generation(i, search.population, search.children)  # noqa: E731
    runs: list[RunResult] = []
    with SearchTracker(search.tracking_uri, search.experiment) as parent:
        parent.start_search(cfg.to_dict(), {"ras_deap.compare": "comparison",
                                            "dataset": search.dataset},
                            run_name=f"compare-{search.dataset}-{stamp}")
        for method in cfg.methods:
            for seed in cfg.seed_list:
                evaluator = evaluators[seed]
                log(f"[compare] {method} seed={seed}: searching ({cfg.budget} evaluations)")
                with SearchTracker(search.tracking_uri, search.experiment) as child:
                    child.start_search(
                        {**search.to_dict(), "method": method, "budget": cfg.budget},
                        {"ras_deap.compare": "method", "method": method, "seed": str(seed)},
                        run_name=f"{method}-seed{seed}", parent_run_id=parent.run_id)
                    budgeted = BudgetedEvaluator(
                        evaluator, cfg.budget, seed=seed, method=method, schedule=schedule,
                        on_evaluated=lambda rec, t=child: t.log_individual(_individual_record(rec)))
                    ctx = MethodContext(
                        budgeted=budgeted, tournament_size=cfg.tournament_size, seed=seed,
                        config=search.replace(seed=seed, run_name=f"{stamp}-ras-seed{seed}"),
                        parent_run_id=child.run_id)
                    outcome = run_method(method, ctx)
                    for i, value in enumerate(outcome.curve, start=1):
                        if not math.isnan(value):
                            child.log_generation(i, {"best_fitness": value})
                    log(f"[compare] {method} seed={seed}: search maximum "
                        f"{outcome.best_fitness:.4f} after {outcome.evaluations} evaluations; "
                        f"re-measuring its winner with {cfg.remeasure} fresh trainings")
                    measured = remeasure(evaluator, outcome.best_genome, repeats=cfg.remeasure,
                                         generation=outcome.best_generation, salt="compare")
                    log(f"[compare] {method} seed={seed}: re-measured fitness "
                        f"{measured.describe()}; search maximum {outcome.best_fitness:.4f}; "
                        "re-training it on the full training set")
                    final, failure, seconds = _retrain(evaluator, cfg, outcome)
                    run = RunResult(outcome, final, failure, seconds, run_id=child.run_id,
                                    remeasured=measured)
                    child.log_generation(outcome.evaluations, {
                        k: v for k, v in run.row.items()
                        if isinstance(v, float | int) and k != "seed"})
                    child.log_dict(outcome.best_genome.to_dict(), "best_genome.json")
                    child.log_dict(measured.to_dict(), "remeasured.json")
                    child.set_tags({"best_id": outcome.best_genome.id,
                                    **({"final_failure": failure} if failure else {})})
                    runs.append(run)
                    log(f"[compare] {method} seed={seed}: test error "
                        f"{final['test_error']:.3f}, bank error {final['adv_error']:.3f}")
        result = ComparisonResult(cfg, runs, out, run_id=parent.run_id)
        curves = {(r.outcome.method, r.outcome.seed): r.outcome.curve for r in runs}
        result.files = write_outputs(result.rows, curves, cfg, out)
        result.files["figure"] = plot_curves(curves, out / "best_fitness.png",
                                             budget=cfg.budget)
        for path in result.files.values():
            parent.log_artifact(path, "comparison")
        result.seconds = time.perf_counter() - started
        parent.log_generation(0, {"wall_seconds": result.seconds})
    return result
