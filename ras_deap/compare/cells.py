"""One (method, seed) cell of a comparison, runnable in any process.

:func:`run_cell` searches with one method under the budget, re-measures its
winner, re-trains it on the full training set and attacks the re-trained
network directly (:mod:`ras_deap.assess`); it returns a JSON-ready dict and
leaves in the cell folder ``cells/<method>-seed<seed>/`` (with
``--final-training pgd-at|trades`` the re-trained winner is fine-tuned
adversarially before it is stored and attacked):

* ``evaluations.jsonl``: every search evaluation, written as it ends (the
  journal a resumed cell replays instead of training again; RAS keeps its
  own checkpoint under ``ras_runs/`` and its curve in ``ras_curve.jsonl``);
* ``remeasure.partial.jsonl``: the winner's finished re-measurement
  trainings, until ``result.json`` holds them;
* ``best_genome.json``, ``best_model.pt`` (state dict of the re-trained
  winner) and ``config.json``: a run folder ``python -m ras_deap.assess``
  accepts; ``final.json``: the re-trained winner's metrics (a resumed cell
  loads the network instead of training it again);
* ``assess.md`` / ``assess.json``: the direct attacks (``assess.partial.jsonl``
  keeps the finished ones until then);
* a multi-objective method's front (``nsga2``, ``ras_mo``, or ``ras`` with
  several ``--objectives``): ``front.json``, ``front/<genome id>.json``,
  ``front.png``, its members re-measured like the winner (:mod:`.front`).

Its result holds the final population's search-time objectives
(``population``, for methods with one) and the re-measured front (``front``).

The runner (main process) writes ``result.json`` once the cell's result is
logged to MLflow: its presence marks the cell finished. Nothing here touches
MLflow except RAS's own search run, which nests under the cell's run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import read_json_if_valid, write_atomic, write_bytes_atomic, write_json_atomic
from ..config import SearchConfig
from ..seeding import derive_seed
from .baselines import run_method
from .budget import BudgetedEvaluator, EvaluationJournal, evaluations_within, ras_generation
from .compare_config import RAS_METHODS, CompareConfig
from .front import cell_front, population_records, search_run_ids, write_front_files
from .method import MethodContext

__all__ = ["REMEASURE_JOURNAL", "CellSpec", "RESULT_NAME", "cell_dir", "cell_name",
           "cell_seeds", "journal_length", "parse_cell_name", "ras_run_dir", "run_cell",
           "search_config_for"]

RESULT_NAME = "result.json"
# the winner's finished re-measurement trainings, until result.json holds them
REMEASURE_JOURNAL = "remeasure.partial.jsonl"
JOURNAL_NAME = "evaluations.jsonl"
RAS_CURVE_NAME = "ras_curve.jsonl"
RAS_RUNS = "ras_runs"  # RAS cells' own search folders, ras_runs/<cell name>/


def cell_name(method: str, seed: int) -> str:
    return f"{method}-seed{seed}"


def parse_cell_name(name: str) -> tuple[str, int] | None:
    """``(method, seed)`` of a cell folder's name, None for any other name."""
    method, sep, seed = name.rpartition("-seed")
    return (method, int(seed)) if sep and method and seed.isdigit() else None


def cell_dir(out: str | Path, method: str, seed: int) -> Path:
    return Path(out) / "cells" / cell_name(method, seed)


def cell_seeds(out: str | Path, method: str | None = None) -> list[int]:
    """The seeds that have a cell folder in comparison ``out`` (of ``method``,
    or of any method), ascending."""
    cells = Path(out) / "cells"
    found = (parse_cell_name(d.name) for d in cells.iterdir() if d.is_dir()) \
        if cells.is_dir() else ()
    return sorted({p[1] for p in found if p is not None and method in (None, p[0])})


def ras_run_dir(out: str | Path, name: str) -> Path:
    """The run folder (checkpoint, settings) of RAS cell ``name``'s own search."""
    return Path(out) / RAS_RUNS / name


def journal_length(folder: Path) -> int:
    """Evaluations a cell has finished so far (its journal or RAS curve
    lines; for progress bars)."""
    total = 0
    for name in (JOURNAL_NAME, RAS_CURVE_NAME):
        path = folder / name
        if path.is_file():
            try:
                with path.open("rb") as fh:
                    total += sum(1 for _ in fh)
            except OSError:
                pass
    return total


def search_config_for(cfg: CompareConfig, seed: int) -> SearchConfig:
    """The search settings of every method of ``seed``: same data split,
    bank and training schedule; RAS's run folders under ``<out>/ras_runs``;
    one process per cell (``workers=1``: the comparison parallelises cells)."""
    return cfg.search.replace(seed=seed, run_dir=str(Path(cfg.out) / RAS_RUNS), workers=1,
                              scheduler=None)


@dataclass(frozen=True)
class CellSpec:
    """Everything a worker process needs (picklable): the comparison's
    config, the cell, the MLflow run RAS nests its search under, and an
    optional evaluator factory (default :func:`ras_deap.search.make_evaluator`)."""

    cfg: CompareConfig
    method: str
    seed: int
    run_id: str | None = None
    evaluator_factory: Callable[[SearchConfig], Any] | None = None

    @property
    def name(self) -> str:
        return cell_name(self.method, self.seed)

    @property
    def folder(self) -> Path:
        return cell_dir(self.cfg.out, self.method, self.seed)


def final_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The reported numbers of a re-trained model: error rates (1 - accuracy)
    on the test set and on the bank (overall and per norm), fitness and size."""
    from ..bank import NORMS, metric_name

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


def _write_json(path: Path, data: Any) -> Path:
    return write_json_atomic(path, data, default=str)


def cell_budget(cfg: CompareConfig, search: SearchConfig, evaluator: Any, method: str) -> int:
    """The evaluations a cell may train: ``cfg.budget``, or with a compute
    budget (``search.budget_epochs``) as many as fit in it for the methods
    that do not count compute themselves (RAS does, with ``budget_epochs``;
    its count is then only a cap)."""
    if search.budget_epochs is None:
        return cfg.budget
    if method in RAS_METHODS:
        return max(cfg.budget, 10**6)
    from ..search.records import train_config_of, train_size_of

    train = train_config_of(search, evaluator)
    return max(1, evaluations_within(search.budget_epochs, search.population, search.children,
                                     train, train_size_of(evaluator, train)))


def _search(spec: CellSpec, search: SearchConfig, evaluator: Any,
            on_evaluation: Callable[[], None] | None) -> tuple[Any, int]:
    """The cell's method under its budget: its outcome and how many of its
    evaluations were replayed from the journal."""
    cfg, method, seed = spec.cfg, spec.method, spec.seed
    folder = spec.folder
    journal = EvaluationJournal(folder / JOURNAL_NAME) if method not in RAS_METHODS else None
    budgeted = BudgetedEvaluator(
        evaluator, cell_budget(cfg, search, evaluator, method), seed=seed, method=method,
        schedule=lambda i: ras_generation(i, search.population, search.children),
        on_evaluated=(lambda rec: on_evaluation()) if on_evaluation else None, journal=journal)
    ctx = MethodContext(budgeted=budgeted, config=search, seed=seed,
                        tournament_size=cfg.tournament_size, parent_run_id=spec.run_id,
                        aging_population=cfg.aging_population, aging_sample=cfg.aging_sample,
                        cell_dir=folder, on_evaluation=on_evaluation)
    return run_method(method, ctx), budgeted.replayed


def _front(spec: CellSpec, outcome: Any, evaluator: Any) -> tuple[Any, Any]:
    """The final population's objectives and, multi-objective, the re-measured front."""
    population = population_records(outcome.population) if outcome.population else None
    front = None
    if len(outcome.objectives) > 1 and outcome.population:
        front = cell_front(outcome.population, outcome.objectives, evaluator, spec.cfg.remeasure)
        search_run_ids(front, outcome.info.get("run_dir"))  # RAS tagged its own members
        write_front_files(spec.folder, front, population,
                          f"{spec.name}: final front ({outcome.evaluations} evaluations)")
    return population, front


FINAL_NAME = "final.json"  # the re-trained winner's metrics, beside best_model.pt


def _stored_final(folder: Path, evaluator: Any, key: dict[str, Any], genome: Any) -> Any:
    """The re-trained winner a cut cell already stored (``final.json`` with
    the same key, and its weights), rebuilt; None if there is none. Re-training
    a large mnist10k winner costs most of an hour: a resumed cell loads it."""
    from ..atomic import read_json_if_valid

    stored = read_json_if_valid(folder / FINAL_NAME)
    weights = folder / "best_model.pt"
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    from ..evaluation import EvaluationResult

    if stored.get("failure") is not None:
        return EvaluationResult(fitness=0.0, metrics=stored["metrics"],
                                failure=stored["failure"], genome_id=genome.id,
                                seed=key["seed"])
    if not weights.is_file():
        return None
    import torch

    from ..evaluation import compile_model

    ds = evaluator.data().dataset
    net = compile_model(genome, ds.shape, ds.num_classes, ds.mean, ds.std)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return EvaluationResult(fitness=float(stored["fitness"]), metrics=stored["metrics"],
                            genome_id=genome.id, seed=key["seed"], state_dict=state,
                            module=net.eval())


def _retrain(spec: CellSpec, search: SearchConfig, evaluator: Any, outcome: Any
             ) -> tuple[Any, float]:
    """The winner re-trained on the full training set, stored as a run folder
    ``python -m ras_deap.assess`` accepts; the result and its seconds (a
    resumed cell loads the one it stored, with the seconds it took)."""
    cfg, folder = spec.cfg, spec.folder
    seed = derive_seed(spec.seed, "final", outcome.best_genome.id)
    key = json.loads(json.dumps(  # as final.json stores it
        {"genome_id": outcome.best_genome.id, "seed": seed, "generation": cfg.retrain_generation,
         "training": search.final_training, "settings": cfg.settings()}, default=str))
    t0 = time.perf_counter()
    final = _stored_final(folder, evaluator, key, outcome.best_genome)
    if final is None:
        # --final-training: the keyword only when adversarial, so the default call (and
        # any evaluator factory's evaluator) is the one it always was
        kind = ({} if search.final_training == "standard"
                else {"training": search.final_training})
        final = evaluator.evaluate(outcome.best_genome, cfg.retrain_generation, seed=seed,
                                   with_test=True, return_module=True, **kind)
        seconds = time.perf_counter() - t0
        module = getattr(final, "module", None)
        if module is not None and getattr(final, "state_dict", None) is not None:
            import torch

            write_bytes_atomic(folder / "best_model.pt",
                               lambda fh: torch.save(final.state_dict, fh))
        _write_json(folder / FINAL_NAME, {"key": key, "fitness": final.fitness,
                                          "metrics": dict(final.metrics),
                                          "failure": final.failure, "seconds": seconds})
    else:
        seconds = float((read_json_if_valid(folder / FINAL_NAME) or {}).get("seconds", 0.0))
    write_atomic(folder / "best_genome.json", outcome.best_genome.to_json())
    _write_json(folder / "config.json", {"search": search.to_dict(), "method": spec.method,
                                         "mlflow_run_id": spec.run_id,
                                         "budget": cfg.budget})
    return final, seconds


def _assess(spec: CellSpec, evaluator: Any, final: Any, outcome: Any) -> Any:
    """The direct attacks on the re-trained winner (None without an
    assessment or a network to attack)."""
    module = getattr(final, "module", None)
    data = getattr(evaluator, "data", None)
    if spec.cfg.assess is None or module is None or not callable(data):
        return None
    from ..assess.attacks import assess_network
    from ..assess.journal import AttackJournal
    from ..assess.result import format_table

    loaded = data()
    seed = derive_seed(spec.seed, "assess", outcome.best_genome.id)
    # an interrupted cell keeps the attacks it finished (PixelAttack on an mnist10k
    # winner is most of an hour); the re-trained network is the same one on resume
    partial = spec.folder / "assess.partial.jsonl"
    journal = AttackJournal.for_network(partial, module, seed, spec.cfg.assess)
    assessment = assess_network(
        module, loaded.dataset, loaded.bank, spec.cfg.assess, seed=seed,
        bank_fallback=loaded.bank_fallback, journal=journal,
        source={"target": f"compare cell {spec.name}", "genome_id": outcome.best_genome.id,
                "retrained": True, "run_id": spec.run_id})
    write_atomic(spec.folder / "assess.md", format_table(assessment))
    _write_json(spec.folder / "assess.json", assessment.to_dict())
    partial.unlink(missing_ok=True)
    return assessment


def run_cell(spec: CellSpec, on_evaluation: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run one cell (see the module docstring) and return its result."""
    from ..evaluation.remeasure import remeasure
    from ..search import make_evaluator

    started, cpu_started = time.perf_counter(), time.process_time()
    cfg, method, seed = spec.cfg, spec.method, spec.seed
    spec.folder.mkdir(parents=True, exist_ok=True)
    search = search_config_for(cfg, seed)
    evaluator = (spec.evaluator_factory or make_evaluator)(search)
    outcome, replayed = _search(spec, search, evaluator, on_evaluation)
    search_cpu = time.process_time() - cpu_started
    population, front = _front(spec, outcome, evaluator)
    measured = remeasure(evaluator, outcome.best_genome, repeats=cfg.remeasure,
                         generation=outcome.best_generation, salt="compare",
                         journal=spec.folder / REMEASURE_JOURNAL, journal_key=cfg.settings())
    final, retrain_seconds = _retrain(spec, search, evaluator, outcome)
    assessment = _assess(spec, evaluator, final, outcome)
    return {
        "method": method, "seed": seed, "settings": cfg.settings(),
        "outcome": {"best_genome": outcome.best_genome.to_dict(),
                    "best_fitness": outcome.best_fitness,
                    "best_metrics": outcome.best_metrics, "evaluations": outcome.evaluations,
                    "curve": outcome.curve, "seconds": outcome.seconds, "info": outcome.info,
                    "best_generation": outcome.best_generation},
        "replayed": replayed,
        "remeasured": measured.to_dict(),
        "final_metrics": dict(final.metrics), "final": final_metrics(final.metrics),
        "final_failure": final.failure, "retrain_seconds": retrain_seconds,
        "assessment": assessment.to_dict() if assessment is not None else None,
        **({"population": population} if population is not None else {}),
        **({"front": front} if front is not None else {}),
        "cell_seconds": time.perf_counter() - started,
        # CPU time of this process (one torch thread): the cell's cost on an idle core
        "cpu_seconds": time.process_time() - cpu_started, "search_cpu_seconds": search_cpu,
        "folder": str(spec.folder),
    }
