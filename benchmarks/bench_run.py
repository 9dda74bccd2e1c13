"""Benchmark of the main job: share of wall time outside training/evaluation
(mutation, niching, MLflow, checkpoints; goal <= 3%) and the speedup of 2
workers over 1 (goal >= 1.8x on 2 cores).

    python benchmarks/bench_run.py              # a reduced default run (a few minutes)
    python benchmarks/bench_run.py --full       # the real default run (about 10 min per leg)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ras_deap.config import SearchConfig
from ras_deap.search import run_search


def one_run(config: SearchConfig) -> tuple[float, dict[str, float], int]:
    start = time.perf_counter()
    result = run_search(config, progress=False, final_training=False)
    return time.perf_counter() - start, result.timings, result.evaluations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="use the default run's size")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--population", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = SearchConfig(run_dir=str(Path(tmp) / "runs"),
                            tracking_uri=f"sqlite:///{tmp}/mlflow.db", experiment="bench")
        if not args.full:
            base = base.replace(generations=args.generations, population=args.population)
        results = {}
        for workers in (1, 2):
            cfg = base.replace(workers=workers, run_name=f"w{workers}")
            wall, timings, evals = one_run(cfg)
            results[workers] = wall
            overhead = timings["tracking"] + timings["checkpoint"] + timings["evolution"]
            print(f"workers={workers}: {evals} evaluations in {wall:.1f} s "
                  f"({wall / evals:.2f} s/evaluation)")
            print(f"  evaluation {timings['evaluation']:.1f} s, MLflow {timings['tracking']:.2f} s,"
                  f" checkpoints {timings['checkpoint']:.2f} s, mutation+niching "
                  f"{timings['evolution']:.2f} s")
            print(f"  share of wall time outside evaluation: {overhead / wall:.2%} (goal <= 3%)")
        print(f"speedup of 2 workers over 1: {results[1] / results[2]:.2f}x (goal >= 1.8x)")


if __name__ == "__main__":
    main()
