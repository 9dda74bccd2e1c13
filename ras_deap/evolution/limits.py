"""The paper's subpopulation-limit rule (end of section 5.2)."""

from __future__ import annotations

from dataclasses import dataclass

from ..genome.pool import GenePool
from .mutations import MUTATIONS, MutationOp

__all__ = ["Limits", "available_mutations"]


@dataclass(frozen=True)
class Limits:
    """When the layer (block) subpopulation holds more than ``layers``
    (``blocks``) members, the only layer (block) mutation left is swap layer
    (swap block), so the subpopulations stop filling with untested members.

    Over the layer limit no new layer is ever created (add layer inserts a
    pooled layer, see :func:`ras_deap.evolution.operators.try_mutation`).
    The block pool can still grow over its limit through the layer
    mutations (a-d, allowed by the *layer* limit): a changed or swapped
    layer needs a new block to live in. Pruning after every generation
    bounds that growth.

    Layers are content-identified, so the layer subpopulation holds at most
    the 28 distinct layers of the search space: with the default limit of
    100 only the block limit ever binds."""

    layers: int = 100
    blocks: int = 100

    def __post_init__(self) -> None:
        for name in ("layers", "blocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} limit must be a positive integer, got {value!r}")

    def allows(self, op: MutationOp, pool: GenePool) -> bool:
        if op.level == "layer" and len(pool.layers) > self.layers:
            return op.swap
        if op.level == "block" and len(pool.blocks) > self.blocks:
            return op.swap
        return True


def available_mutations(pool: GenePool, limits: Limits) -> list[MutationOp]:
    return [op for op in MUTATIONS if limits.allows(op, pool)]
