"""The spectrum of a model: the 10-feature histogram used for niching (5.4).

Connection counts are over *layer-level* edges, which are of two sorts:
edges inside a block, and the edges a block connection induces from the
exit layer of one block to the entry layer of the next. The edges from the
input to the first layer and from the last layer to the softmax head exist
in every model, so they are not counted (section 5.4 does not say; the
caption of the paper's Figure 4 omits them from its statistics for that
reason).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .records import Model

__all__ = ["SPECTRUM_FEATURES", "spectrum", "spectrum_distance", "feature_scale"]

SPECTRUM_FEATURES = (
    "blocks",
    "layers",
    "block_connections",
    "layer_connections",
    "dense_layers",
    "conv_layers",
    "dense_to_dense",
    "dense_to_conv",
    "conv_to_dense",
    "conv_to_conv",
)


def spectrum(model: Model) -> tuple[int, ...]:
    """Return the 10 features in the order of ``SPECTRUM_FEATURES``.

    ``layers`` counts layer nodes (a layer used twice counts twice) and
    ``layer_connections`` counts every layer-level edge: those inside blocks
    plus one per block connection (exit layer -> entry layer).
    """
    kinds = {"dense_to_dense": 0, "dense_to_conv": 0, "conv_to_dense": 0, "conv_to_conv": 0}

    def count(src_conv: bool, dst_conv: bool) -> None:
        key = f"{'conv' if src_conv else 'dense'}_to_{'conv' if dst_conv else 'dense'}"
        kinds[key] += 1

    n_layers = conv = inner_edges = 0
    for block in model.blocks:
        n_layers += len(block.layers)
        conv += sum(layer.is_conv for layer in block.layers)
        inner_edges += len(block.edges)
        for u, v in block.edges:
            count(block.layers[u].is_conv, block.layers[v].is_conv)
    for u, v in model.edges:
        count(model.blocks[u].layers[-1].is_conv, model.blocks[v].layers[0].is_conv)
    return (
        len(model.blocks),
        n_layers,
        len(model.edges),
        inner_edges + len(model.edges),
        n_layers - conv,
        conv,
        kinds["dense_to_dense"],
        kinds["dense_to_conv"],
        kinds["conv_to_dense"],
        kinds["conv_to_conv"],
    )


def feature_scale(spectra: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Per-feature scale for normalised distances: the largest value of each
    feature in ``spectra`` (1 where a feature is 0 everywhere), so every
    feature weighs the same whatever its typical magnitude."""
    if not spectra:
        return tuple(1.0 for _ in SPECTRUM_FEATURES)
    return tuple(float(max(col)) or 1.0 for col in zip(*spectra, strict=True))


def spectrum_distance(a: Sequence[float], b: Sequence[float],
                      scale: Sequence[float] | None = None) -> float:
    """Plain Euclidean distance between two spectra (the paper does not
    specify the distance), optionally dividing each feature by ``scale``
    first (see :func:`feature_scale`)."""
    if scale is None:
        return math.dist(a, b)
    return math.dist([x / s for x, s in zip(a, scale, strict=True)],
                     [y / s for y, s in zip(b, scale, strict=True)])
