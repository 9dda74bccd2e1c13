"""The layer and block subpopulations that models share.

Models hold their blocks and layers by value (so a model is self-contained:
it pickles to a worker and serialises to JSON on its own); the pool is the
registry of *which* layers and blocks currently exist, which the swap and
add-block mutations draw from and which pruning shrinks every generation.
Insertion-ordered dicts keep random draws reproducible for a given seed.
Members are keyed by id, so the two numberings of one graph are one member.

The pool also counts the instances mutations create between two prunings
(``new_layers``, ``new_blocks``), duplicates included: the sizes the
subpopulation limits compare (see :class:`ras_deap.evolution.Limits`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .records import Block, Layer, Model

__all__ = ["GenePool", "utility"]


def utility(models: Iterable[Model]) -> tuple[Counter[str], Counter[str]]:
    """Utility of each layer and block: the number of models that use it
    (a model using a member twice counts once)."""
    layer_use: Counter[str] = Counter()
    block_use: Counter[str] = Counter()
    for model in models:
        block_use.update({b.id for b in model.blocks})
        layer_use.update({layer.id for layer in model.layers()})
    return layer_use, block_use


@dataclass
class GenePool:
    """Layer and block subpopulations, keyed by content id, and the number
    of layer and block instances mutations created since the last prune."""

    layers: dict[str, Layer] = field(default_factory=dict)
    blocks: dict[str, Block] = field(default_factory=dict)
    new_layers: int = 0
    new_blocks: int = 0

    def count_created(self, layers: int = 0, blocks: int = 0) -> None:
        """Record instances a mutation created; an identical member already in
        the pool still counts (the subpopulations keep duplicates)."""
        if min(layers, blocks) < 0:
            raise ValueError(f"created counts must be >= 0, got layers={layers}, "
                             f"blocks={blocks}")
        self.new_layers += layers
        self.new_blocks += blocks

    def add_layer(self, layer: Layer) -> Layer:
        return self.layers.setdefault(layer.id, layer)

    def add_block(self, block: Block) -> Block:
        for layer in block.layers:
            self.add_layer(layer)
        return self.blocks.setdefault(block.id, block)

    def add_model(self, model: Model) -> Model:
        for block in model.blocks:
            self.add_block(block)
        return model

    @classmethod
    def from_models(cls, models: Iterable[Model]) -> GenePool:
        pool = cls()
        for model in models:
            pool.add_model(model)
        return pool

    def prune(self, models: Iterable[Model]) -> tuple[int, int]:
        """Remove every layer and block no model uses, and restart the counts
        of created instances; return how many members of each were removed."""
        layer_use, block_use = utility(models)
        self.new_layers = self.new_blocks = 0
        dead_layers = [lid for lid in self.layers if lid not in layer_use]
        dead_blocks = [bid for bid in self.blocks if bid not in block_use]
        for lid in dead_layers:
            del self.layers[lid]
        for bid in dead_blocks:
            del self.blocks[bid]
        return len(dead_layers), len(dead_blocks)

    def sizes(self) -> dict[str, int]:
        return {"layers": len(self.layers), "blocks": len(self.blocks)}
