"""Pilot of issue #31: the multi-objective selections against the paper's
single fitness on digits, at a tiny budget (a check that the variants
behave differently, not a result: values are the search's own single
measurements, not re-measured on fresh seeds).

For each seed and variant (fitness = the paper's niching; spectrum and
crowding = accuracy,robustness with either truncation) one search without
final training; printed per run: the hypervolume of its final
representatives' (accuracy, robustness) above the reference point (0, 0),
the size of their non-dominated set, how many distinct spectra they hold,
and the best sum.

    python benchmarks/bench_mo_pilot.py --seeds 2 --population 6 --generations 3

Measured (2026-12-06, seeds 100-103 in two calls with --first-seed 100 and
102, preset smoke's training: 3 epochs on 300 samples, 42 networks per
search, a shared 2-core machine at load 5-10), HV of the final
representatives, search's values:

    seed   fitness  spectrum  crowding
    100    0.6075   0.0994    0.6272
    101    0.6237   0.2680    0.5212
    102    0.6053   0.6183    0.6007
    103    0.5785   0.5674    0.5674

Front sizes 1-2 of 6 (accuracy and robustness move together at this
budget). Two spectrum searches never bred the one lucky child the others
found (best sum 0.67 and 1.11 against 1.59 and 1.60): at 42 networks of 3
epochs one child decides the run, so this picks no variant; the default
(spectrum) is the design's, not a measured winner.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ras_deap.config import PRESETS, SearchConfig
from ras_deap.evolution import cached_spectrum, hypervolume, pareto_front
from ras_deap.search import run_search

VARIANTS = {"fitness": {}, "spectrum": {"objectives": "accuracy,robustness"},
            "crowding": {"objectives": "accuracy,robustness", "mo_selection": "crowding"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=100)
    p.add_argument("--population", type=int, default=6)
    p.add_argument("--generations", type=int, default=3)
    args = p.parse_args()
    objs = ("accuracy", "robustness")
    print("| seed | variant | evaluations | HV (search's values) | front | spectra | best sum "
          "| s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name, change in VARIANTS.items():
                cfg = SearchConfig(**{**PRESETS["smoke"], "population": args.population,
                                      "generations": args.generations, "children": 2,
                                      "seed": seed, "run_dir": tmp,
                                      "run_name": f"{name}-{seed}",
                                      "tracking_uri": f"sqlite:///{tmp}/m.db", **change})
                start = time.perf_counter()
                res = run_search(cfg, progress=False, final_training=False)
                pop = res.population
                spectra = len({cached_spectrum(i.genome) for i in pop})
                print(f"| {seed} | {name} | {res.evaluations} | {hypervolume(pop, objs):.4f} "
                      f"| {len(pareto_front(pop, objs))} | {spectra} "
                      f"| {res.best.fitness.values[0]:.4f} | {time.perf_counter() - start:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
