"""Tensor shapes of a genome's network, without torch.

The compiler (:mod:`ras_deap.evaluation.compiler`, whose docstring lists
every shape rule) builds its modules from these functions, so parameter
counts and benchmarks of the search space (how many convolutions see a
1 x 1 map) need no torch and cannot drift from the built network.
A shape is ``(C, H, W)`` for a map and ``(F,)`` for a vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .records import Layer, Model

__all__ = ["RESHAPE_SIDE", "Shape", "is_map", "numel", "merge_shape", "vector_to_map",
           "conv_input_shape", "layer_output_shape", "node_shapes"]

Shape = tuple[int, ...]

# The largest map side a vector is reshaped to for a convolution. 4 x 4 is
# the smallest map on which every kernel (3, 5) and stride (2) of the search
# space changes the result; larger maps add compute, not behaviour: with 8
# (the whole digits image) random models train 2.6x slower on digits than
# with the old F x 1 x 1, with 4 only 1.4x, and the share of convolutions
# that still see 1 x 1 (after stride-2 chains) is 2% against 5%.
RESHAPE_SIDE = 4


def is_map(shape: Shape) -> bool:
    return len(shape) == 3


def numel(shape: Shape) -> int:
    return math.prod(shape)


def merge_shape(shapes: Sequence[Shape]) -> tuple[str, Shape]:
    """How several inputs are merged: ``(mode, output shape)`` with mode
    'single' (one input, passed through), 'maps' (pool to the smallest H, W,
    concatenate channels) or 'flat' (flatten all, concatenate)."""
    if len(shapes) == 1:
        return "single", tuple(shapes[0])
    if all(is_map(s) for s in shapes):
        h = min(s[1] for s in shapes)
        w = min(s[2] for s in shapes)
        return "maps", (sum(s[0] for s in shapes), h, w)
    return "flat", (sum(numel(s) for s in shapes),)


def vector_to_map(features: int, side: int) -> Shape:
    """The ``(C, s, s)`` map a convolution sees for a vector of ``features``:
    ``s`` is the largest side up to ``min(side, RESHAPE_SIDE)`` (``side`` is
    the image's smaller side) whose square divides ``features``, and
    ``C = features / s**2``.

    A conv after a dense layer therefore works on a real map, so its kernel
    and stride change what it computes (on a 1 x 1 map every tap but the
    centre one sees padding). Every dense width (64-512) is a multiple of
    16, so s = 4 on every dataset shape of the package (1x8x8, 1x28x28,
    3x32x32) for all four widths: F units become F/16 x 4 x 4. Any vector
    here has a multiple of 8 features (filters and units are multiples of
    8), so s >= 2 on any image of side 2 or more."""
    if features < 1 or side < 1:
        raise ValueError(f"features={features} and side={side} must be positive")
    top = min(side, RESHAPE_SIDE, math.isqrt(features))
    s = next(s for s in range(top, 0, -1) if features % (s * s) == 0)
    return features // (s * s), s, s


def conv_input_shape(shape: Shape, side: int) -> Shape:
    """The map a convolution sees for its merged input ``shape``."""
    return tuple(shape) if is_map(shape) else vector_to_map(shape[0], side)


def layer_output_shape(layer: Layer, shape: Shape, side: int) -> Shape:
    """A conv keeps the map size at stride 1 and gives ``ceil(H / stride)``
    otherwise (padding ``kernel // 2``); a dense layer gives ``(units,)``."""
    if not layer.is_conv:
        return (int(layer.units),)
    _, h, w = conv_input_shape(shape, side)
    s = int(layer.stride)
    return int(layer.filters), -(-h // s), -(-w // s)


def node_shapes(model: Model, input_shape: Sequence[int]) -> list[list[tuple[Shape, Shape]]]:
    """``[block][node] -> (merged input shape, output shape)`` of every layer
    node of ``model`` for images of ``input_shape`` (C, H, W)."""
    image = tuple(int(s) for s in input_shape)
    side = min(image[1:])
    block_out: list[Shape] = []
    out: list[list[tuple[Shape, Shape]]] = []
    for v, block in enumerate(model.blocks):
        src = [image] if v == 0 else [block_out[u] for u in model.predecessors(v)]
        block_in = merge_shape(src)[1]
        nodes: list[tuple[Shape, Shape]] = []
        for j, layer in enumerate(block.layers):
            shape = block_in if j == 0 else merge_shape(
                [nodes[u][1] for u in block.predecessors(j)])[1]
            nodes.append((shape, layer_output_shape(layer, shape, side)))
        out.append(nodes)
        block_out.append(nodes[-1][1])
    return out
