"""Random layers, blocks and models for the initial population (section 5.1)."""

from __future__ import annotations

import random

from . import choices as C
from .dag import insert_node
from .records import Block, Layer, Model

__all__ = ["random_layer", "random_block", "random_model", "random_dag"]


def random_layer(rng: random.Random) -> Layer:
    """A conv or dense layer (each kind with probability 1/2), every parameter
    drawn uniformly from its choices."""
    if rng.random() < 0.5:
        return Layer.conv(rng.choice(C.CONV_FILTERS), rng.choice(C.CONV_KERNELS),
                          rng.choice(C.CONV_STRIDES))
    return Layer.dense(rng.choice(C.DENSE_UNITS))


def random_dag(n: int, rng: random.Random) -> tuple[tuple[int, int], ...]:
    """A random connected single-entry single-exit DAG on n nodes, grown by the
    same node insertion the add-layer/add-block mutations use."""
    edges: tuple[tuple[int, int], ...] = ()
    for size in range(1, n):
        _, edges = insert_node(size, edges, rng)
    return edges


def random_block(rng: random.Random, min_layers: int = C.MIN_LAYERS,
                 max_layers: int = C.MAX_LAYERS) -> Block:
    n = rng.randint(min_layers, max_layers)
    layers = tuple(random_layer(rng) for _ in range(n))
    return Block(layers, random_dag(n, rng))


def random_model(rng: random.Random, min_blocks: int = C.MIN_BLOCKS,
                 max_blocks: int = C.MAX_BLOCKS, min_layers: int = C.MIN_LAYERS,
                 max_layers: int = C.MAX_LAYERS) -> Model:
    """U(min_blocks, max_blocks) blocks of U(min_layers, max_layers) layers."""
    n = rng.randint(min_blocks, max_blocks)
    blocks = tuple(random_block(rng, min_layers, max_layers) for _ in range(n))
    return Model(blocks, random_dag(n, rng))
