"""RAS and multi-objective RAS as compared methods: a real RAS search
(:func:`ras_deap.search.run_search`) on the cell's evaluator, stopped at the
budget, resumed from its own checkpoint when a cell is run again.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from ..atomic import append_line, read_json_lines, write_atomic
from ..checkpoint import checkpoint_evaluations
from ..config import SearchConfig
from .method import MethodContext, MethodOutcome, method_objectives

__all__ = ["curve_best", "ras_generations", "run_ras", "run_ras_mo"]


def ras_generations(budget: int, population: int, children: int) -> int:
    """Generations a RAS search needs for ``budget`` evaluations."""
    if budget <= population:
        return 0
    return math.ceil((budget - population) / (population * children))


def curve_best(entry: Any) -> float:
    """The best-so-far fitness of one ``ras_curve.jsonl`` line: an object
    ``{"best", "fitness"}``, or a bare number (curves written before the
    evaluation's own fitness was kept)."""
    return float(entry["best"] if isinstance(entry, dict) else entry)


def _resumable_curve(curve_file: Path, evaluations: int | None) -> list[float]:
    """The curve a resumed search continues: its lines up to the first torn
    or unreadable one, cut to the checkpoint's ``evaluations`` (the curve is
    appended as an evaluation ends, the checkpoint written after MLflow's
    queued writes, so a kill between them leaves the curve ahead: the
    resumed search trains those again and appends them anew), and rewritten
    so that appends start on a clean line."""
    entries: list[Any] = []
    curve: list[float] = []
    for entry in read_json_lines(curve_file):
        try:
            curve.append(curve_best(entry))
        except (TypeError, ValueError, KeyError):
            break
        entries.append(entry)
    if evaluations is not None:
        del entries[evaluations:], curve[evaluations:]
    write_atomic(curve_file, "".join(json.dumps(e) + "\n" for e in entries))
    return curve


def _ras_attempt(ctx: MethodContext, config: SearchConfig, curve_file: Path | None,
                 resume: Path | None) -> tuple[Any, list[float]]:
    from ..search import run_search

    curve: list[float] = []
    if resume is not None and curve_file is not None:
        curve = _resumable_curve(curve_file, checkpoint_evaluations(resume))
    elif curve_file is not None:
        curve_file.unlink(missing_ok=True)

    def record(ind: Any) -> None:  # best fitness so far after each evaluation
        fitness = float(ind.fitness.values[0])
        # a screened child's low-fidelity fitness is no candidate for the best
        screened = ind.epochs is not None
        best = fitness if not screened else float("-inf")
        curve.append(best if not curve else max(curve[-1], best))
        if curve_file is not None:
            # the evaluation's own fitness too: the ablation's drift table reads it
            # from a clone, without the MLflow store the search logged to
            line = {"best": curve[-1], "fitness": fitness, **({"screen": True} if screened
                                                                else {})}
            append_line(curve_file, json.dumps(line))
        if ctx.on_evaluation is not None:
            ctx.on_evaluation()

    # the cell's own evaluator (RAS enforces the budget itself, with max_evaluations)
    result = run_search(config, parent_run_id=ctx.parent_run_id, progress=False,
                        final_training=False, on_individual=record,
                        resume=resume if resume is not None else False,
                        evaluator=ctx.budgeted.evaluator,
                        # a cell's checkpoint committed with a comparison resumes in a
                        # checkout without the MLflow store it was logged to
                        new_run_if_lost=True)
    return result, curve


def run_ras(ctx: MethodContext) -> MethodOutcome:
    """RAS as in the paper, stopped at exactly ``budget`` evaluations.

    With ``ctx.cell_dir`` the search runs in ``<run_dir>/ras-seed<seed>``: a
    checkpoint left there by an interrupted attempt is resumed (RAS's own
    resume: nothing evaluated is trained again), with the best-fitness curve
    read back from ``cell_dir/ras_curve.jsonl`` (cut to the checkpoint's
    evaluations when a kill left it ahead). If the curve still disagrees
    with the checkpoint (it lacks evaluations the checkpoint holds), the
    search starts over from scratch rather than report a wrong curve."""
    return _run_ras(ctx, "ras")


def run_ras_mo(ctx: MethodContext) -> MethodOutcome:
    """Multi-objective RAS: :func:`run_ras` with ``--objectives`` set to
    accuracy and robustness unless it already names several objectives (the
    survival selection is ``--mo-selection``'s, crowding by default), in its
    own run folder ``<run_dir>/ras_mo-seed<seed>``; resumes the same way. Its
    winner is still the best fitness (sum) it saw; its front is the non-dominated
    set of its final representatives (``MethodOutcome.population``)."""
    return _run_ras(ctx, "ras_mo")


def _run_ras(ctx: MethodContext, method: str) -> MethodOutcome:
    from ..checkpoint import CHECKPOINT_NAME

    start = time.perf_counter()
    cfg = ctx.config
    objectives = method_objectives(method, cfg)
    if ",".join(objectives) != cfg.objectives:
        cfg = cfg.replace(objectives=",".join(objectives))
    if cfg.budget_epochs is not None:  # a compute budget ends the search, not a count
        config = cfg.replace(seed=ctx.seed, max_evaluations=None, generations=10**6)
    else:
        config = cfg.replace(seed=ctx.seed, max_evaluations=ctx.budget,
                             generations=ras_generations(ctx.budget, cfg.population,
                                                         cfg.children))
    curve_file = None
    resume = None
    if ctx.cell_dir is not None:
        config = config.replace(run_name=f"{method}-seed{ctx.seed}")
        ctx.cell_dir.mkdir(parents=True, exist_ok=True)
        curve_file = ctx.cell_dir / "ras_curve.jsonl"
        run_dir = Path(config.run_dir) / config.run_name
        if (run_dir / CHECKPOINT_NAME).is_file():
            resume = run_dir
    # final_training=False: the comparison re-trains every method's best itself,
    # with one trainer and seed rule for all.
    result, curve = _ras_attempt(ctx, config, curve_file, resume)
    resumed = resume is not None
    if len(curve) != result.evaluations and resume is not None:
        shutil.rmtree(resume)  # curve and checkpoint disagree: run it again from scratch
        result, curve = _ras_attempt(ctx, config, curve_file, None)
        resumed = False
    if len(curve) != result.evaluations:
        raise RuntimeError(f"RAS reported {result.evaluations} evaluations but "
                           f"{len(curve)} were seen")
    best = result.best
    return MethodOutcome(method=method, seed=ctx.seed, best_genome=best.genome,
                         best_fitness=float(best.fitness.values[0]),
                         best_metrics=dict(getattr(best, "metrics", {}) or {}),
                         evaluations=int(result.evaluations), curve=curve,
                         seconds=time.perf_counter() - start,
                         info={"run_id": result.run_id, "run_dir": str(result.run_dir),
                               "resumed": resumed},
                         best_generation=int(getattr(best, "generation", 0) or 0),
                         population=list(result.population), objectives=objectives)
