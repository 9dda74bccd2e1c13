"""Are RAS's surviving representatives the lucky ones? (issue #27)

Reads a finished run's checkpoint and re-measures, on fresh evaluation seeds
and under the schedule each was measured with, (a) the final cluster
representatives and (b) the initial population, whose stored fitness passed
no selection. If selection keeps lucky single measurements, the final
representatives' stored fitness exceeds their re-measured mean by more than
the initial population's does (the winner's curse).

    python benchmarks/representative_noise.py runs/<name> --repeats 2 --workers 2

Prints a markdown table and writes it with the per-individual values as JSON
(``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from ras_deap.executor import Crash, ProcessPool


def _remeasure(job: tuple) -> dict:
    import torch

    from ras_deap.config import SearchConfig
    from ras_deap.evaluation.remeasure import remeasure
    from ras_deap.genome import Model
    from ras_deap.search import make_evaluator

    torch.set_num_threads(1)
    config, genome_json, generation, repeats, stored, group = job
    evaluator = make_evaluator(SearchConfig.from_dict(config))
    genome = Model.from_json(genome_json)
    measured = remeasure(evaluator, genome, repeats=repeats, generation=generation,
                         salt="representative-noise")
    return {"group": group, "genome": genome.id, "generation": generation, "stored": stored,
            "remeasured": list(measured.fitness), "mean": measured.mean}


def _summary(rows: list[dict], group: str) -> dict:
    gap = np.array([r["stored"] - r["mean"] for r in rows if r["group"] == group])
    n = len(gap)
    sd = float(gap.std(ddof=1)) if n > 1 else math.nan
    return {"group": group, "n": n, "mean_gap": float(gap.mean()) if n else math.nan,
            "ci95": 1.96 * sd / math.sqrt(n) if n > 1 else math.nan,
            "positive": int((gap > 0).sum())}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run folder (runs/<name>)")
    p.add_argument("--repeats", type=int, default=2, help="fresh trainings per individual")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, help="JSON file for the values")
    args = p.parse_args(argv)

    from ras_deap.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.run)
    config = {**ckpt.config, "workers": 1}
    state = ckpt.state
    final = [("final", ind) for ind in state.population]
    initial = [("initial", ind) for ind in _initial(state, config)]
    jobs = [(config, ind.genome.to_json(None), int(ind.generation), args.repeats,
             float(ind.fitness.values[0]), group) for group, ind in final + initial]
    with ProcessPool(args.workers, name="bench") as pool:  # the package's one pool
        rows = list(pool.map(_remeasure, jobs))
    crashed = [r for r in rows if isinstance(r, Crash)]
    if crashed:
        sys.exit(f"{len(crashed)} re-measurement(s) lost their process: {crashed[0]}")
    table = [_summary(rows, "final"), _summary(rows, "initial")]
    print("| individuals | n | stored - re-measured mean | 95% CI | stored higher |")
    print("|---|---|---|---|---|")
    for t in table:
        print(f"| {t['group']} | {t['n']} | {t['mean_gap']:+.4f} | ±{t['ci95']:.4f} | "
              f"{t['positive']}/{t['n']} |")
    result = {"run": str(args.run), "repeats": args.repeats, "summary": table, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _initial(state, config: dict) -> list:
    """The generation-0 individuals with the fitness they were measured with
    (from the run's MLflow children, evaluated in generation-0 order)."""
    from ras_deap.evolution import initial_state
    from ras_deap.tracking.runs import evaluated_fitness

    fresh = initial_state(state.seed, len(state.population)).offspring
    stored = evaluated_fitness(config.get("tracking_uri"), state.extra["mlflow_run_id"])
    for ind, fitness in zip(fresh, stored[:len(fresh)], strict=True):
        ind.fitness.values = (float(fitness),)
    return fresh


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
