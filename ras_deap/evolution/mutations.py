"""The 13 RAS mutations (a-m, section 5.2 of the paper) on genomes.

Each operator is a pure function ``(model, rng, pool) -> Model | None``: it
returns a *new* model (with new layer/block records where it changed one)
and never modifies the model, its records or the pool; ``None`` means "not
applicable to this model" (no conv layer to change, the only block, no edge
that can be added without a cycle, ...), so the caller redraws. The DEAP
wrappers in :mod:`ras_deap.evolution.toolbox` register these one by one and
add the new members to the subpopulations.

Layer mutations (a-d) pick a layer node anywhere in the model and replace,
in the one block node that holds it, the block by a new block; block
mutations (e-h) replace one block node by a new block; swap block (i) and
the model mutations (j-m) change only the model graph.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..genome import choices as C
from ..genome import dag
from ..genome.pool import GenePool
from ..genome.random_init import random_layer
from ..genome.records import Block, Layer, Model

__all__ = [
    "MutationOp",
    "MUTATIONS",
    "MUTATIONS_BY_NAME",
    "LAYER_MUTATIONS",
    "BLOCK_MUTATIONS",
    "MODEL_MUTATIONS",
    "mut_change_kernel",
    "mut_change_filter",
    "mut_change_units",
    "mut_swap_layer",
    "mut_add_layer",
    "mut_remove_layer",
    "mut_add_layer_connection",
    "mut_remove_layer_connection",
    "mut_swap_block",
    "mut_add_block",
    "mut_remove_block",
    "mut_add_block_connection",
    "mut_remove_block_connection",
]

T = TypeVar("T")
Operator = Callable[[Model, random.Random, GenePool], "Model | None"]


def _replace_block(model: Model, index: int, block: Block) -> Model:
    nodes = list(model.blocks)
    nodes[index] = block
    return Model(tuple(nodes), model.edges)


def _replace_layer(model: Model, b: int, i: int, layer: Layer) -> Model:
    block = model.blocks[b]
    layers = list(block.layers)
    layers[i] = layer
    return _replace_block(model, b, Block(tuple(layers), block.edges))


def _layer_positions(model: Model, kind: str | None) -> list[tuple[int, int]]:
    return [(b, i) for b, block in enumerate(model.blocks)
            for i, layer in enumerate(block.layers) if kind is None or layer.kind == kind]


def _pick_in_block(model: Model, rng: random.Random,
                   candidates: Callable[[int, tuple[dag.Edge, ...]], list[T]]
                   ) -> tuple[int, Block, T] | None:
    """One (block index, block, candidate) drawn uniformly from every block's
    ``candidates(len(block.layers), block.edges)`` (a node or edge the
    change applies to), so a block with more candidates is picked more
    often; None when no block has one."""
    options = [(b, c) for b, block in enumerate(model.blocks)
               for c in candidates(len(block.layers), block.edges)]
    if not options:
        return None
    b, chosen = rng.choice(options)
    return b, model.blocks[b], chosen


def _change_param(model: Model, rng: random.Random, kind: str, param: str,
                  options: tuple[int, ...]) -> Model | None:
    positions = _layer_positions(model, kind)
    if not positions:
        return None
    b, i = rng.choice(positions)
    old = model.blocks[b].layers[i]
    value = rng.choice([v for v in options if v != getattr(old, param)])
    new = Layer(**{**old.to_dict(), param: value})
    return _replace_layer(model, b, i, new)


# a) -- c) change a parameter of one layer
def mut_change_kernel(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """a) Change the kernel size of one convolution layer."""
    return _change_param(model, rng, C.CONV, "kernel", C.CONV_KERNELS)


def mut_change_filter(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """b) Change the number of filters of one convolution layer."""
    return _change_param(model, rng, C.CONV, "filters", C.CONV_FILTERS)


def mut_change_units(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """c) Change the number of units of one dense layer."""
    return _change_param(model, rng, C.DENSE, "units", C.DENSE_UNITS)


def mut_swap_layer(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """d) Swap one layer for a different layer of the layer subpopulation."""
    b, i = rng.choice(_layer_positions(model, None))
    old = model.blocks[b].layers[i].id
    others = [layer for lid, layer in pool.layers.items() if lid != old]
    if not others:
        return None
    return _replace_layer(model, b, i, rng.choice(others))


# e) -- h) change the graph of one block
def mut_add_layer(model: Model, rng: random.Random, pool: GenePool,
                  new_layer: Layer | None = None) -> Model | None:
    """e) Add a random layer to one block, after a random layer and (unless
    that is the exit) before one of its descendants. ``new_layer`` overrides
    the random draw (the toolbox passes a pooled layer over the layer limit)."""
    b = rng.randrange(len(model.blocks))
    block = model.blocks[b]
    layer = new_layer if new_layer is not None else random_layer(rng)
    _, edges = dag.insert_node(len(block.layers), block.edges, rng)
    return _replace_block(model, b, Block((*block.layers, layer), edges))


def mut_remove_layer(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """f) Remove one layer of a block (its inputs are bridged to its outputs)."""
    picked = _pick_in_block(model, rng, dag.removable_nodes)
    if picked is None:
        return None
    b, block, i = picked
    kept, edges = dag.remove_node(len(block.layers), block.edges, i)
    return _replace_block(model, b, Block(tuple(block.layers[k] for k in kept), edges))


def mut_add_layer_connection(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """g) Add a connection between two layers of one block (never a cycle)."""
    picked = _pick_in_block(model, rng, dag.addable_edges)
    if picked is None:
        return None
    b, block, edge = picked
    return _replace_block(model, b, Block(block.layers, (*block.edges, edge)))


def mut_remove_layer_connection(model: Model, rng: random.Random,
                                pool: GenePool) -> Model | None:
    """h) Remove a connection inside one block, if every layer stays on a
    path from the block's entry to its exit."""
    picked = _pick_in_block(model, rng, dag.removable_edges)
    if picked is None:
        return None
    b, block, edge = picked
    return _replace_block(model, b, Block(block.layers,
                                          tuple(e for e in block.edges if e != edge)))


# i) -- m) change the model graph
def mut_swap_block(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """i) Swap one block for a different block of the block subpopulation."""
    b = rng.randrange(len(model.blocks))
    old = model.blocks[b].id
    others = [block for bid, block in pool.blocks.items() if bid != old]
    if not others:
        return None
    return _replace_block(model, b, rng.choice(others))


def mut_add_block(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """j) Add a block of the block subpopulation to the model, after a random
    block and (unless that is the exit) before one of its descendants."""
    if not pool.blocks:
        return None
    block = rng.choice(list(pool.blocks.values()))
    _, edges = dag.insert_node(len(model.blocks), model.edges, rng)
    return Model((*model.blocks, block), edges)


def mut_remove_block(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """k) Remove one block (never the only one); its inputs are bridged to
    its outputs."""
    options = dag.removable_nodes(len(model.blocks), model.edges)
    if not options:
        return None
    kept, edges = dag.remove_node(len(model.blocks), model.edges, rng.choice(options))
    return Model(tuple(model.blocks[k] for k in kept), edges)


def mut_add_block_connection(model: Model, rng: random.Random, pool: GenePool) -> Model | None:
    """l) Add a connection between two blocks (never a cycle)."""
    options = dag.addable_edges(len(model.blocks), model.edges)
    if not options:
        return None
    return Model(model.blocks, (*model.edges, rng.choice(options)))


def mut_remove_block_connection(model: Model, rng: random.Random,
                                pool: GenePool) -> Model | None:
    """m) Remove a block connection, if every block stays on a path from the
    input to the head."""
    options = dag.removable_edges(len(model.blocks), model.edges)
    if not options:
        return None
    edge = rng.choice(options)
    return Model(model.blocks, tuple(e for e in model.edges if e != edge))


@dataclass(frozen=True)
class MutationOp:
    """A mutation and what the paper's subpopulation-limit rule needs to know:
    its level (``layer``/``block``/``model``, as the paper groups a-d, e-i and
    j-m), whether it is the swap of its level, and which instances it
    creates: a new layer (a-c change one, e adds a random one) and a new
    block (a-h rebuild the block they change). Swaps and add block reuse
    pooled members and create none."""

    letter: str
    name: str
    level: str
    fn: Operator
    swap: bool = False
    new_layer: bool = False
    new_block: bool = False

    @property
    def toolbox_name(self) -> str:
        return f"mut_{self.name}"


_LB = {"new_layer": True, "new_block": True}
_B = {"new_block": True}
MUTATIONS: tuple[MutationOp, ...] = (
    MutationOp("a", "change_kernel", "layer", mut_change_kernel, **_LB),
    MutationOp("b", "change_filter", "layer", mut_change_filter, **_LB),
    MutationOp("c", "change_units", "layer", mut_change_units, **_LB),
    MutationOp("d", "swap_layer", "layer", mut_swap_layer, swap=True, **_B),
    MutationOp("e", "add_layer", "block", mut_add_layer, **_LB),
    MutationOp("f", "remove_layer", "block", mut_remove_layer, **_B),
    MutationOp("g", "add_layer_connection", "block", mut_add_layer_connection, **_B),
    MutationOp("h", "remove_layer_connection", "block", mut_remove_layer_connection, **_B),
    MutationOp("i", "swap_block", "block", mut_swap_block, swap=True),
    MutationOp("j", "add_block", "model", mut_add_block),
    MutationOp("k", "remove_block", "model", mut_remove_block),
    MutationOp("l", "add_block_connection", "model", mut_add_block_connection),
    MutationOp("m", "remove_block_connection", "model", mut_remove_block_connection),
)
MUTATIONS_BY_NAME = {op.name: op for op in MUTATIONS}
LAYER_MUTATIONS = tuple(op.name for op in MUTATIONS if op.level == "layer")
BLOCK_MUTATIONS = tuple(op.name for op in MUTATIONS if op.level == "block")
MODEL_MUTATIONS = tuple(op.name for op in MUTATIONS if op.level == "model")
