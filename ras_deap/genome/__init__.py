"""The RAS genome: layers, blocks and models (pure Python, no torch)."""

from ..errors import GenomeError
from .chain import ChainSpace, chain_model, random_chain
from .choices import (
    CONV,
    CONV_FILTERS,
    CONV_KERNELS,
    CONV_STRIDES,
    DENSE,
    DENSE_UNITS,
)
from .pool import GenePool, utility
from .random_init import random_block, random_layer, random_model
from .records import MODEL_FORMAT, Block, Layer, Model
from .spectrum import SPECTRUM_FEATURES, feature_scale, spectrum, spectrum_distance

__all__ = [
    "CONV",
    "CONV_FILTERS",
    "CONV_KERNELS",
    "CONV_STRIDES",
    "DENSE",
    "DENSE_UNITS",
    "MODEL_FORMAT",
    "Block",
    "ChainSpace",
    "GenePool",
    "GenomeError",
    "Layer",
    "Model",
    "SPECTRUM_FEATURES",
    "chain_model",
    "feature_scale",
    "random_block",
    "random_chain",
    "random_layer",
    "random_model",
    "spectrum",
    "spectrum_distance",
    "utility",
]
