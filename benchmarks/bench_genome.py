"""Speed of the genome and evolution bookkeeping (no training, no torch).

Prints mutations/s (each of the 13 genome mutations and ``toolbox.mutate``
with 5 mutations), spectrum computations/s, JSON round trips/s and the
seconds one full synthetic generation takes (25 clusters x 2 children:
breeding, a trivial fitness, niching selection, pruning, hall of fame and
logbook record). Goal: a generation in well under 0.1 s, so bookkeeping is
noise next to one model's training.

    python benchmarks/bench_genome.py [--seconds 1.0] [--generations 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from ras_deap.evolution import (
    MUTATIONS,
    build_toolbox,
    cached_spectrum,
    ea_spectrum_niching,
    initial_state,
    make_individual,
    step,
)
from ras_deap.genome import GenePool, Model, random_model, spectrum


def rate(fn: Callable[[int], object], seconds: float) -> float:
    """Calls per second of ``fn(i)`` over about ``seconds``."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            fn(count)
            count += 1
    return count / elapsed


def synthetic_fitness(individual) -> tuple[float]:
    s = cached_spectrum(individual.genome)
    return (0.5 * s[9] + 0.3 * s[2] + 0.1 * s[5] - 0.2 * s[4],)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per rate measurement")
    parser.add_argument("--generations", type=int, default=20,
                        help="synthetic generations to time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    models = [random_model(rng) for _ in range(200)]
    pool = GenePool.from_models(models)

    print("genome mutations (pure functions, random initial models):")
    for op in MUTATIONS:
        r = random.Random(1)
        per_s = rate(lambda i, op=op, r=r: op.fn(models[i % len(models)], r, pool), args.seconds)
        print(f"  {op.letter}) {op.name:<24} {per_s:>10,.0f} /s")

    state = initial_state(args.seed, 25)
    toolbox = build_toolbox(state, evaluate=synthetic_fitness)
    parents = [make_individual(m) for m in models[:25]]
    per_s = rate(lambda i: toolbox.mutate(parents[i % 25]), args.seconds)
    print(f"  toolbox.mutate (5 mutations, pool updates) {per_s:>10,.0f} children/s "
          f"= {5 * per_s:,.0f} mutations/s")

    per_s = rate(lambda i: spectrum(models[i % len(models)]), args.seconds)
    print(f"spectrum (uncached)      {per_s:>10,.0f} /s")
    per_s = rate(lambda i: Model.from_json(models[i % len(models)].to_json()), args.seconds)
    print(f"JSON round trip          {per_s:>10,.0f} /s")

    # a search of 25 clusters x 2 children, gen 0 done, then timed generations
    state = initial_state(args.seed, 25)
    toolbox = build_toolbox(state, evaluate=synthetic_fitness)
    ea_spectrum_niching(state, toolbox, 0)
    times = []
    for _ in range(args.generations):
        start = time.perf_counter()
        step(state, toolbox, children=2)
        times.append(time.perf_counter() - start)
    sizes = state.pool.sizes()
    print(f"full generation (25 clusters x 2 children, no training): "
          f"median {statistics.median(times):.4f} s, max {max(times):.4f} s "
          f"over {len(times)} generations (goal < 0.1 s); "
          f"pool after: {sizes['blocks']} blocks, {sizes['layers']} layers")


if __name__ == "__main__":
    main()
