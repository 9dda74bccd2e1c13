"""The paper's subpopulation-limit rule (end of section 5.2): "when the layer
or block population exceeds 100 individuals, the only layer/block mutation
available is swap layers/blocks"."""

from __future__ import annotations

from dataclasses import dataclass

from ..genome.pool import GenePool
from ..validate import is_int
from .mutations import MUTATIONS, MutationOp

__all__ = ["Limits", "available_mutations"]


@dataclass(frozen=True)
class Limits:
    """When more than ``layers`` (``blocks``) layer (block) instances were
    created since the last pruning, the only layer (block) mutation left is
    swap layer (swap block), so the subpopulations stop filling with
    untested members.

    What is counted: the paper does not say, and its own numbers rule out
    the plain readings. Its 25 initial models of U(2, 5) blocks of U(2, 5)
    layers use about 87 blocks and 300 layer nodes, built from at most 28
    distinct layers. Counting distinct members, the layer limit can never
    bind, and the block limit binds after 5-14 of a generation's 50 children
    (the representatives alone hold ~87 blocks), so the clusters bred later
    never get block mutations; counting every layer node, the layer limit
    binds from the start. So a limit counts the *instances mutations create*
    between two prunings, duplicates included (the authors' code keeps
    duplicates too): changing a layer (a-c) or adding a fresh random one (e)
    creates a layer, every mutation that rebuilds a block (a-h) creates a
    block (:attr:`MutationOp.new_layer`, :attr:`MutationOp.new_block`).
    Swaps and add block reuse members and create none. Pruning, at the end
    of every generation, restarts both counts: the members the
    representatives keep have passed selection.

    With the default search (25 clusters x 2 children x 5 mutations, 250
    mutations a generation) the block limit binds for about the last 40% of
    a generation's mutations and the layer limit rarely; the clusters are
    bred in a fresh random order every generation, so none is favoured
    (``python benchmarks/bench_mutation_mix.py``).

    Over the layer limit add layer (e) inserts a pooled layer instead of a
    fresh one, so no layer is created (see
    :func:`ras_deap.evolution.operators.try_mutation`). The layer mutations
    a-d, allowed by the *layer* limit, still create blocks over the block
    limit: a changed or swapped layer needs a new block to live in."""

    layers: int = 100
    blocks: int = 100

    def __post_init__(self) -> None:
        for name in ("layers", "blocks"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} limit must be a positive integer, got {value!r}")

    def binding(self, pool: GenePool) -> tuple[bool, bool]:
        """Whether the layer and the block limit bind now: ``(layers, blocks)``."""
        return pool.new_layers > self.layers, pool.new_blocks > self.blocks

    def allows(self, op: MutationOp, pool: GenePool) -> bool:
        over_layers, over_blocks = self.binding(pool)
        if op.level == "layer" and over_layers:
            return op.swap
        if op.level == "block" and over_blocks:
            return op.swap
        return True


def available_mutations(pool: GenePool, limits: Limits) -> list[MutationOp]:
    return [op for op in MUTATIONS if limits.allows(op, pool)]
