"""Seconds per evaluation of the default search on each embedded dataset, and
the default run's wall time extrapolated from them.

    python benchmarks/bench_datasets.py                       # digits and mnist10k, 1 and 2 workers
    python benchmarks/bench_datasets.py --datasets mnist10k --workers 2 --evaluations 50
    python benchmarks/bench_datasets.py --preset mnist10k     # a preset instead of the defaults

Each leg runs the default configuration (or ``--preset``) with
``max_evaluations`` = ``--evaluations``: the first individuals of the search
(the initial clusters, then children of the first generation), trained and
scored exactly as in the full run. It reports seconds per evaluation, then the
final training of the best architecture on the full training set (what
``python -m ras_deap.run`` does after the search) and an extrapolation of the
whole run: evaluations of the run x seconds per evaluation + final training.
The extrapolation assumes later children cost what the first ones did; on
digits the measured full default run (README) checks that assumption.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from ras_deap.config import PRESETS, SearchConfig
from ras_deap.search import make_evaluator, run_search


def run_evaluations(config: SearchConfig) -> int:
    """Evaluations of a full run of ``config``: the initial clusters, then
    ``children`` per cluster in every generation. Runs that reach generation
    ``full_every`` also re-measure representatives (and train on the full
    set); those are not counted, so the estimate is a lower bound there."""
    n = config.population + config.generations * config.population * config.children
    return n if config.max_evaluations is None else min(n, config.max_evaluations)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="digits,mnist10k")
    ap.add_argument("--workers", default="1,2", help="comma list of worker counts")
    ap.add_argument("--evaluations", type=int, default=30, help="evaluations per leg")
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            full = SearchConfig(**PRESETS[args.preset], dataset=name)
            for workers in (int(w) for w in args.workers.split(",")):
                cfg = full.replace(workers=workers, max_evaluations=args.evaluations,
                                   run_dir=str(Path(tmp) / "runs"),
                                   run_name=f"{name}-w{workers}",
                                   tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                                   experiment="bench")
                start = time.perf_counter()
                result = run_search(cfg, progress=False, final_training=False)
                search = time.perf_counter() - start
                per_eval = search / result.evaluations
                # the final training of run.py: the best architecture on the full set
                evaluator = make_evaluator(cfg)
                start = time.perf_counter()
                evaluator.evaluate(result.best.genome, cfg.full_every, seed=result.best.eval_seed,
                                   with_test=True)
                final = time.perf_counter() - start
                n_run = run_evaluations(full)
                estimate = n_run * per_eval + final
                rows.append((name, workers, result.evaluations, search, per_eval, final, n_run,
                             estimate))
                print(f"{name} workers={workers}: {result.evaluations} evaluations in "
                      f"{search:.1f} s ({per_eval:.2f} s/evaluation); final training "
                      f"{final:.1f} s; {args.preset} run ({n_run} evaluations) ~ "
                      f"{estimate / 60:.1f} min", flush=True)
    print("\ndataset    workers  evals  s/eval  final(s)  run evals  run estimate")
    for name, w, n, _, pe, fin, n_run, est in rows:
        print(f"{name:<10} {w:>7}  {n:>5}  {pe:>6.2f}  {fin:>8.1f}  {n_run:>9}  "
              f"{est / 60:>8.1f} min")


if __name__ == "__main__":
    main()
