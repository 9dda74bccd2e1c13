"""The end of a search: its summary, the retraining of the best architecture
and what a resumed run that had already ended returns."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic, write_bytes_atomic
from ..checkpoint import Checkpoint
from ..config import SearchConfig
from ..contracts import RetrainingEvaluator, Tracker
from ..evolution import Individual, SearchState, finished

__all__ = ["ARCHITECTURE_SVG", "already_finished", "architecture_svg", "child_artifacts",
           "finalise", "search_description", "summarise"]

ARCHITECTURE_SVG = "architecture.svg"  # artifact name on a child run


def architecture_svg(genome: dict[str, Any]) -> str:
    """The SVG drawing of a genome (``Model.to_dict()``), for its child run."""
    from ..genome import Model
    from ..report import model_to_svg

    return model_to_svg(Model.from_dict(genome))


def child_artifacts() -> dict[str, Any]:
    """What every child run gets besides ``genome.json``: ``architecture.svg``.

    Issue #29 allowed it on every child only if drawing and logging it cost
    under 5% of an evaluation. Measured with ``python benchmarks/bench_drawing.py
    --drawings 100 --evaluations 20`` (genomes of a default-budget
    regularized-evolution search on digits, 2-25 layers; a fresh SQLite
    store; the default digits training with one torch thread; a 2-core
    machine at load average 3-5): drawing + logging the SVG took a median of
    0.042 CPU-s (0.056 s wall) against 1.60 CPU-s (2.25 s wall) per
    evaluation, i.e. 2.6% of the CPU time and 2.5% of the wall time (the
    default 40/10 run: 3.1% and 2.3%). So every child gets it. digits is the
    cheapest embedded dataset to train (mnist10k costs 3.5x as much per
    evaluation), so elsewhere the share is smaller. The drawing is made in
    the tracker's writer thread, beside the training workers, not in the
    search loop; it adds about 30 kB per child to the artifact store."""
    return {ARCHITECTURE_SVG: architecture_svg}


def summarise(best: Individual, state: SearchState) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "best_id": best.genome.id,
        "generation_found": best.generation,
        "generations": state.generation,
        "evaluations": state.evaluations,
        # training compute spent, in epoch-equivalents (the unit of --budget-epochs)
        "cost_epochs": float(state.extra.get("cost_epochs", 0.0)),
    }
    summary.update({k: float(v) for k, v in best.metrics.items()})
    summary["fitness"] = float(best.fitness.values[0])  # DEAP's value wins over the metric
    return summary


def already_finished(checkpoint: Checkpoint, config: SearchConfig, final_training: bool) -> bool:
    """Whether a resumed run has nothing left to do: it ended (and was
    finalised as asked) and the resumed config adds no generations."""
    done = checkpoint.completed
    return (done is not None
            and finished(checkpoint.state, config.generations, config.max_evaluations,
                         config.budget_epochs)
            and (bool(done.get("final_training")) or not final_training))


def search_description(summary: dict[str, Any], tracker: Any, figures: list[str]) -> str:
    """The search run's Markdown description (the best, figures, the model)."""
    from ..tracking.notes import search_description as describe
    from ..tracking.store import is_remote

    return describe(summary, experiment_id=tracker.experiment_id, run_id=tracker.run_id,
                    best_run_id=summary.get("best_run_id"), model_uri=summary.get("model_uri"),
                    tracking_uri=None if is_remote(tracker.tracking_uri)
                    else tracker.tracking_uri,
                    figures=figures, registered=summary.get("registered_model"))


def finalise(config: SearchConfig, evaluator: RetrainingEvaluator, best: Individual,
             history: list[dict[str, Any]], tracker: Tracker, run_dir: Path,
             best_run: str | None = None, register_model: str | None = None
             ) -> dict[str, Any]:
    """Retrain the best architecture on the full training set, measure its
    test accuracy and robustness, and log weights, drawing and figures (on
    the search run) and the retrained network as an MLflow model with its
    ``final/`` metrics (on the best individual's run ``best_run``).

    ``config.final_training`` other than ``standard`` fine-tunes the retrained
    network adversarially (:mod:`ras_deap.evaluation.adversarial`): the
    weights and ``final_*`` metrics are the hardened network's, the standard
    one's are ``final_standard_*``, and ``final_training`` names the kind."""
    out: dict[str, Any] = {"final_training": config.final_training}
    # only an adversarial final training passes the keyword: an evaluator written
    # for the standard one (any RetrainingEvaluator) keeps working
    kind = ({} if config.final_training == "standard"
            else {"training": config.final_training})
    # a search always has full_every >= 1: the final training is a full generation's
    result = evaluator.evaluate(best.genome, config.full_every, seed=best.eval_seed,
                                with_test=True, return_module=True, **kind)
    out.update({f"final_{k}": float(v) for k, v in result.metrics.items()})
    if result.failure:
        out["final_failure"] = result.failure
    files = _log_best_files(best, result, history, tracker, run_dir)
    if best_run is not None:
        out.update(_log_best_model(evaluator, result, tracker, run_dir, best_run,
                                   register_model, files))
    return out


def _log_best_files(best: Individual, result: Any, history: list[dict[str, Any]],
                    tracker: Tracker, run_dir: Path) -> tuple[Path, Path, Path]:
    """Write the retrained weights (if it trained), the genome, its drawings
    and the paper's figures 3 and 4 to the run folder and log them on the
    search run; returns the genome's JSON and its PNG and SVG drawings."""
    from ..report import (
        draw_model,
        model_to_dot,
        plot_accuracy_over_generations,
        plot_architecture_statistics,
    )

    if not result.failure:
        import torch  # the evaluator already imported it

        weights = run_dir / "best_model.pt"
        write_bytes_atomic(weights, lambda fh: torch.save(result.state_dict, fh))
        tracker.log_artifact(weights, "best_model")
    genome = run_dir / "best_genome.json"
    write_atomic(genome, best.genome.to_json())
    tracker.log_artifact(genome, "best_model")
    dot = run_dir / "best_architecture.dot"
    write_atomic(dot, model_to_dot(best.genome))
    tracker.log_artifact(dot, "best_model")
    drawing = draw_model(best.genome, run_dir / "best_architecture.png")
    tracker.log_artifact(drawing, "best_model")
    svg = draw_model(best.genome, run_dir / "best_architecture.svg")
    tracker.log_artifact(svg, "best_model")
    tracker.log_artifact(plot_accuracy_over_generations(history, run_dir / "fig3_accuracy.png"),
                         "figures")
    tracker.log_artifact(plot_architecture_statistics(history, run_dir / "fig4_architecture.png"),
                         "figures")
    return genome, drawing, svg


def _log_best_model(evaluator: RetrainingEvaluator, result: Any, tracker: Tracker,
                    run_dir: Path, best_run: str, register_model: str | None,
                    files: tuple[Path, Path, Path]) -> dict[str, Any]:
    """Log the retrained network as an MLflow model with its ``final/``
    metrics on the best individual's run ``best_run`` (and register it);
    returns the summary's lines on where it went, or why it did not."""
    module = getattr(result, "module", None) if not result.failure else None
    example = output = None
    if module is not None:
        import torch

        example = np.ascontiguousarray(evaluator.data().dataset.val.x[:4], dtype=np.float32)
        with torch.no_grad():
            output = module(torch.from_numpy(example)).numpy()
    from ..tracking.notes import run_link

    run_id = tracker.run_id  # type: ignore[attr-defined]
    note = (f"**The best individual of search "
            f"{run_link(tracker.experiment_id, run_id, run_id[:8])}.** "  # type: ignore[attr-defined]
            "Its `final/` metrics are the architecture retrained on the full training set"
            + (", and `model` is that network: "
               f"`mlflow.pytorch.load_model(\"runs:/{best_run}/model\")`." if module is not None
               else "."))
    genome, drawing, svg = files
    try:
        info = tracker.log_final(best_run, result.metrics, module=module,
                                 input_example=example, output_example=output,
                                 extra_files=(genome, drawing, svg),
                                 register_name=register_model, description=note,
                                 # children logged before drawings existed (a resumed
                                 # search) lack it; the best one must have it
                                 artifacts={ARCHITECTURE_SVG: svg})
    except Exception as exc:  # the search is done and saved: report, do not lose it
        warnings.warn(f"could not log the retrained network to MLflow ({exc}); its weights "
                      f"are in {run_dir / 'best_model.pt'}", stacklevel=3)
        return {"model_failure": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {}
    if info is not None:
        out["model_uri"] = info.run_uri
        out["logged_model_uri"] = info.model_uri
        out["model_format"] = info.serialization
        if info.registered:
            out["registered_model"] = info.registered
    return out
