"""The conventional search space of the converted-NAS baseline (TPE), and
of RAS's ``--initial chains``.

DeepArchitect's SMBO searches chains: a few convolutions, then a few dense
layers, each with its own hyper-parameters. A chain is a RAS genome with one
block whose layers form a path, inside a one-block model, so the same
compiler, trainer and bank score it. Every choice is one of the RAS layer
choices, so the two spaces differ only in topology (chains vs DAGs of DAGs).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import choices as C
from .records import Block, Layer, Model

__all__ = ["ChainSpace", "chain_model", "random_chain", "suggest_chain"]


class Trial(Protocol):
    """The part of ``optuna.trial.Trial`` the space uses (so this module
    needs no Optuna import and can be driven by any sampler)."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class ChainSpace:
    """Depth ranges of the chain; per-layer values come from the RAS choices."""

    min_conv: int = 1
    max_conv: int = 4
    min_dense: int = 0
    max_dense: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.min_conv <= self.max_conv:
            raise ValueError(f"conv depth range [{self.min_conv}, {self.max_conv}] is invalid; "
                             "need 0 <= min_conv <= max_conv")
        if not 0 <= self.min_dense <= self.max_dense:
            raise ValueError(f"dense depth range [{self.min_dense}, {self.max_dense}] is invalid; "
                             "need 0 <= min_dense <= max_dense")
        if self.max_conv + self.max_dense < 1:
            raise ValueError("the chain space must allow at least one layer; raise max_conv "
                             "or max_dense")


def chain_model(conv: Sequence[tuple[int, int, int]], dense: Sequence[int]) -> Model:
    """A one-block model whose block is the path conv[0] -> ... -> dense[-1].

    ``conv`` holds (filters, kernel, stride) triples, ``dense`` unit counts;
    values outside the RAS choices raise :class:`ras_deap.genome.GenomeError`.
    """
    layers = [Layer.conv(f, k, s) for f, k, s in conv] + [Layer.dense(u) for u in dense]
    if not layers:
        raise ValueError("a chain needs at least one layer; pass a conv or a dense layer")
    edges = tuple((i, i + 1) for i in range(len(layers) - 1))
    return Model((Block(tuple(layers), edges),), ())


def suggest_chain(trial: Trial, space: ChainSpace = ChainSpace()) -> Model:
    """Sample a chain with ``trial`` (define-by-run: the per-layer parameters
    of layer i exist only when the sampled depth reaches it)."""
    n_conv = trial.suggest_int("conv_depth", space.min_conv, space.max_conv)
    low_dense = max(space.min_dense, 1 if n_conv == 0 else 0)
    n_dense = trial.suggest_int("dense_depth", low_dense, max(low_dense, space.max_dense))
    conv = [(trial.suggest_categorical(f"conv{i}_filters", C.CONV_FILTERS),
             trial.suggest_categorical(f"conv{i}_kernel", C.CONV_KERNELS),
             trial.suggest_categorical(f"conv{i}_stride", C.CONV_STRIDES))
            for i in range(n_conv)]
    dense = [trial.suggest_categorical(f"dense{i}_units", C.DENSE_UNITS) for i in range(n_dense)]
    return chain_model(conv, dense)


class _RandomTrial:
    """The :class:`Trial` protocol over a seeded ``random.Random``: uniform
    draws, so :func:`suggest_chain` samples as Optuna's random sampler does."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._rng.choice(list(choices))


def random_chain(rng: random.Random, space: ChainSpace = ChainSpace()) -> Model:
    """A chain drawn uniformly from ``space`` with ``rng`` (pure: the same
    state of ``rng`` gives the same chain); RAS's ``--initial chains``."""
    return suggest_chain(_RandomTrial(rng), space)
