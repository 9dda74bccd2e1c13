"""The search space of a single layer, as in section 5.1 of the paper."""

from __future__ import annotations

__all__ = [
    "CONV",
    "DENSE",
    "LAYER_KINDS",
    "CONV_FILTERS",
    "CONV_STRIDES",
    "CONV_KERNELS",
    "DENSE_UNITS",
    "MIN_BLOCKS",
    "MAX_BLOCKS",
    "MIN_LAYERS",
    "MAX_LAYERS",
]

CONV = "conv"
DENSE = "dense"
LAYER_KINDS = (CONV, DENSE)

CONV_FILTERS = (8, 16, 32, 64)
CONV_STRIDES = (1, 2)
CONV_KERNELS = (1, 3, 5)
DENSE_UNITS = (64, 128, 256, 512)

# Initial models have U(2, 5) blocks made of U(2, 5) layers.
MIN_BLOCKS, MAX_BLOCKS = 2, 5
MIN_LAYERS, MAX_LAYERS = 2, 5
