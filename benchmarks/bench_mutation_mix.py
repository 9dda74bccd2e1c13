"""Which mutations a search applies, where, and how often the limits bind
(pure Python, no training, no torch).

Runs the default search's breeding (``SearchConfig`` defaults: 25 clusters,
2 children, 5 mutations, layer and block limits 100) through the real
toolbox and ``step`` loop over several seeds and generations, with a
neutral fake fitness (a uniform draw seeded by each individual's evaluation
seed, so selection favours no structure), and prints:

* each mutation's share of the applied mutations against the uniform 1/13,
  overall and while no limit binds;
* block mutations e-h per cluster;
* how often each limit binds (share of mutations drawn over it, share of
  generations in which it bound, where in a generation the block limit
  starts binding);
* the share of conv nodes that see a 1 x 1 input in random models, per
  dataset shape (shape rules of ``ras_deap.genome.shapes``).

Goals (issue 11): while no limit binds every mutation between 0.5x and 2x
its uniform share; for every mutation no cluster below half the clusters'
mean; 1 x 1 share <= 10% on 1x8x8 and 3x32x32. Exits with status 1 if one
is missed.

    python benchmarks/bench_mutation_mix.py [--seeds 10] [--generations 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections import Counter, defaultdict

from ras_deap.config import SearchConfig
from ras_deap.evolution import (
    MUTATIONS,
    build_toolbox,
    ea_spectrum_niching,
    initial_state,
    mutate,
    step,
)
from ras_deap.genome import random_model
from ras_deap.genome.shapes import conv_input_shape, node_shapes

LETTERS = [op.letter for op in MUTATIONS]
BLOCK_LETTERS = ("e", "f", "g", "h")
SHAPES = ((1, 8, 8), (1, 28, 28), (3, 32, 32))


def neutral_fitness(individual) -> tuple[float]:
    return (random.Random(individual.eval_seed).random(),)


class Tally:
    """Every applied mutation: its letter, cluster, the limits that bound when
    it was drawn and its position in the generation's breeding."""

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.free: Counter[str] = Counter()  # applied while no limit bound
        self.per_cluster: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.cluster_over: Counter[int] = Counter()  # drawn over the block limit, per cluster
        self.over = Counter()  # mutations drawn over the layer / block limit
        self.generations = 0
        self.generations_bound = Counter()
        self.block_onsets: list[float] = []  # share of a generation before the block limit
        self._gen: list[tuple[bool, bool]] = []

    def start_generation(self) -> None:
        self._close()
        self.generations += 1

    def _close(self) -> None:
        if not self._gen:
            return
        for i, name in enumerate(("layers", "blocks")):
            if any(flags[i] for flags in self._gen):
                self.generations_bound[name] += 1
        first = next((k for k, (_, blk) in enumerate(self._gen) if blk), len(self._gen))
        self.block_onsets.append(first / len(self._gen))
        self._gen = []

    def record(self, letter: str, cluster: int, over_layers: bool, over_blocks: bool) -> None:
        self.applied[letter] += 1
        self.per_cluster[cluster][letter] += 1
        self.over["layers"] += over_layers
        self.over["blocks"] += over_blocks
        self.cluster_over[cluster] += over_blocks
        if not (over_layers or over_blocks):
            self.free[letter] += 1
        self._gen.append((over_layers, over_blocks))


def run_search(seed: int, generations: int, config: SearchConfig, tally: Tally) -> None:
    state = initial_state(seed, config.population)
    toolbox = build_toolbox(state, evaluate=neutral_fitness, n_mutations=config.mutations,
                            layer_limit=config.layer_limit, block_limit=config.block_limit,
                            distance=config.distance)
    ea_spectrum_niching(state, toolbox, 0)  # generation 0: the random initial clusters

    def observed_mutate(individual):
        def observe(op, over_layers, over_blocks):
            tally.record(op.letter, individual.cluster, over_layers, over_blocks)
        return mutate(individual, k=config.mutations, rng=state.rng, pool=state.pool,
                      limits=toolbox.limits, observe=observe)

    toolbox.register("mutate", observed_mutate)
    for _ in range(generations):
        tally.start_generation()
        step(state, toolbox, children=config.children)
    tally.start_generation()


def one_by_one_share(shape: tuple[int, int, int], models: int) -> float:
    rng = random.Random(0)
    convs = ones = 0
    for _ in range(models):
        model = random_model(rng)
        for block, nodes in zip(model.blocks, node_shapes(model, shape), strict=True):
            for layer, (in_shape, _) in zip(block.layers, nodes, strict=True):
                if layer.is_conv:
                    convs += 1
                    ones += conv_input_shape(in_shape, min(shape[1:]))[1:] == (1, 1)
    return ones / convs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--models", type=int, default=2000,
                        help="random models for the 1 x 1 share")
    args = parser.parse_args()
    config = SearchConfig()
    tally = Tally()
    for seed in range(args.seeds):
        run_search(seed, args.generations, config, tally)

    total, free = sum(tally.applied.values()), sum(tally.free.values())
    uniform = 1 / len(MUTATIONS)
    clusters = range(config.population)
    print(f"{args.seeds} seeds x {args.generations} generations of the default search "
          f"({config.population} clusters x {config.children} children x {config.mutations} "
          f"mutations,\nlimits {config.layer_limit}/{config.block_limit}), neutral fitness: "
          f"{total} mutations applied, {free} while no limit bound\n")
    print("mutation                     share  x uniform  | no limit: share  x uniform  "
          "| min/mean cluster")
    ok_free, ok_cluster = True, True
    for op in MUTATIONS:
        share, share_free = tally.applied[op.letter] / total, tally.free[op.letter] / free
        counts = [tally.per_cluster[c][op.letter] for c in clusters]
        mean = statistics.mean(counts)
        ratio = min(counts) / mean if mean else 0.0
        ok_free &= 0.5 <= share_free / uniform <= 2
        ok_cluster &= ratio >= 0.5
        print(f"{op.letter}) {op.name:<24} {share:6.1%}  {share / uniform:8.2f}  "
              f"|       {share_free:6.1%}  {share_free / uniform:8.2f}  | {ratio:6.2f}")
    block = sum(tally.applied[x] for x in BLOCK_LETTERS) / total
    print(f"e-h together: {block:.1%} of applied mutations (uniform {4 * uniform:.1%})\n")

    print("e-h per cluster (all seeds and generations):")
    per = [sum(tally.per_cluster[c][x] for x in BLOCK_LETTERS) for c in clusters]
    for row in range(0, len(per), 13):
        print("  " + " ".join(f"{c:>4}" for c in clusters[row:row + 13]))
        print("  " + " ".join(f"{n:>4}" for n in per[row:row + 13]))
    print(f"  min {min(per)}, mean {statistics.mean(per):.1f}, max {max(per)}")
    over = [tally.cluster_over[c] / sum(tally.per_cluster[c].values()) for c in clusters]
    print(f"  a cluster's mutations drawn over the block limit (breeding order): "
          f"min {min(over):.0%}, mean {statistics.mean(over):.0%}, max {max(over):.0%}\n")

    onsets = tally.block_onsets
    print("limits (counts of instances created since the last pruning):")
    for name in ("layers", "blocks"):
        print(f"  {name[:-1]} limit: bound for {tally.over[name] / total:.1%} of the applied "
              f"mutations, in {tally.generations_bound[name]} of {len(onsets)} generations")
    print(f"  the block limit starts binding after {statistics.mean(onsets):.0%} of a "
          f"generation's mutations on average (min {min(onsets):.0%})\n")

    print("conv nodes that see a 1 x 1 input, random models:")
    ok_shape = True
    for shape in SHAPES:
        share = one_by_one_share(shape, args.models)
        if shape != (1, 28, 28):
            ok_shape &= share <= 0.10
        print(f"  {'x'.join(map(str, shape)):>8}: {share:.1%}")

    goals = {"every mutation 0.5x-2x uniform while no limit binds": ok_free,
             "no cluster below half the mean of any mutation": ok_cluster,
             "1 x 1 share <= 10% on 1x8x8 and 3x32x32": ok_shape}
    print()
    for goal, met in goals.items():
        print(f"goal {'met' if met else 'MISSED'}: {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
