"""Seconds per evaluation of the default search on each embedded dataset, and
the default run's wall time extrapolated from them.

    python benchmarks/bench_datasets.py                       # digits and mnist10k, 1 and 2 workers
    python benchmarks/bench_datasets.py --datasets mnist10k --workers 2 --evaluations 50
    python benchmarks/bench_datasets.py --preset mnist10k     # a preset instead of the defaults

Each leg runs the default configuration (or ``--preset``) with
``max_evaluations`` = ``--evaluations``: the first individuals of the search
(the initial clusters, then children of the first generation), trained and
scored exactly as in the full run. It reports seconds per evaluation (wall and
CPU: the CPU time does not depend on other jobs sharing the cores), then the
final training of the best architecture on the full training set (what
``python -m ras_deap.run`` does after the search) and an extrapolation of the
whole run: evaluations of the run x seconds per evaluation + final training, as
measured here and on idle cores (CPU time spread over min(workers, --cores)).
The extrapolation assumes later children cost what the first ones did; on
digits the measured full default run (docs/guide/costs.md) checks that assumption.
"""

from __future__ import annotations

import argparse
import resource
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


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker
    processes of ``--workers N``): unlike wall time it does not grow when other
    jobs share the cores, so it gives the cost on idle cores."""
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="digits,mnist10k")
    ap.add_argument("--workers", default="1,2", help="comma list of worker counts")
    ap.add_argument("--evaluations", type=int, default=30, help="evaluations per leg")
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ap.add_argument("--cores", type=int, default=2,
                    help="cores of the machine the idle-core estimate is for (default 2)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            full = SearchConfig(**{**PRESETS[args.preset], "dataset": name})
            for workers in (int(w) for w in args.workers.split(",")):
                cfg = full.replace(workers=workers, max_evaluations=args.evaluations,
                                   run_dir=str(Path(tmp) / "runs"),
                                   run_name=f"{name}-w{workers}",
                                   tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                                   experiment="bench")
                start, cpu_start = time.perf_counter(), cpu_seconds()
                result = run_search(cfg, progress=False, final_training=False)
                search = time.perf_counter() - start
                per_eval = search / result.evaluations
                cpu_per_eval = (cpu_seconds() - cpu_start) / result.evaluations
                # the final training of run.py: the best architecture on the full set
                evaluator = make_evaluator(cfg)
                start, cpu_start = time.perf_counter(), cpu_seconds()
                evaluator.evaluate(result.best.genome, cfg.full_every, seed=result.best.eval_seed,
                                   with_test=True)
                final = time.perf_counter() - start
                final_cpu = cpu_seconds() - cpu_start
                n_run = run_evaluations(full)
                estimate = n_run * per_eval + final
                # on idle cores: the CPU time spread over the workers (at most the cores)
                idle = n_run * cpu_per_eval / min(workers, args.cores) + final_cpu
                rows.append((name, workers, result.evaluations, per_eval, cpu_per_eval, final,
                             n_run, estimate, idle))
                print(f"{name} workers={workers}: {result.evaluations} evaluations in "
                      f"{search:.1f} s ({per_eval:.2f} s/evaluation, {cpu_per_eval:.2f} CPU-s); "
                      f"final training {final:.1f} s; {args.preset} run ({n_run} evaluations) "
                      f"~ {estimate / 60:.1f} min here, ~ {idle / 60:.1f} min on idle cores",
                      flush=True)
    print("\ndataset    workers  evals  s/eval  CPU-s/eval  final(s)  run evals  run here  "
          "run on idle cores")
    for name, w, n, pe, cpe, fin, n_run, est, idle in rows:
        print(f"{name:<10} {w:>7}  {n:>5}  {pe:>6.2f}  {cpe:>10.2f}  {fin:>8.1f}  {n_run:>9}  "
              f"{est / 60:>6.1f} min  {idle / 60:>6.1f} min")


if __name__ == "__main__":
    main()
