"""Architecture statistics of a population, as plotted in the paper's Figure 4.

Connections are counted as the paper does: the edges between blocks plus the
edges between layers inside each block. The edge from the input and the one
into the softmax head exist in every model, so they are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from ras_deap.genome import Model

__all__ = ["ARCHITECTURE_STATISTICS", "architecture_ranges", "architecture_statistics",
           "model_statistics"]

ARCHITECTURE_STATISTICS = (
    "mean_blocks",
    "mean_layers",
    "mean_connections",
    "mean_layers_per_block",
    "mean_connections_per_block",
)


def model_statistics(model: Model) -> dict[str, float]:
    """The five Figure 4 quantities of one model (without the ``mean_`` prefix).

    ``layers`` counts layer nodes (a layer reused in a block counts each
    time); ``connections_per_block`` is the mean number of layer connections
    inside one of the model's blocks.
    """
    blocks = len(model.blocks)
    layers = sum(len(block.layers) for block in model.blocks)
    inner = [len(block.edges) for block in model.blocks]
    return {
        "blocks": float(blocks),
        "layers": float(layers),
        "connections": float(len(model.edges) + sum(inner)),
        "layers_per_block": layers / blocks,
        "connections_per_block": fmean(inner),
    }


def architecture_statistics(models: Sequence[Model]) -> dict[str, float]:
    """Population means of :func:`model_statistics`, keyed as in
    :data:`ARCHITECTURE_STATISTICS` (per-block ratios are computed per model,
    then averaged, so every model weighs the same)."""
    models = list(models)
    if not models:
        raise ValueError("architecture_statistics needs at least one model, got an empty "
                         "population")
    for model in models:
        if not isinstance(model, Model):
            raise TypeError(f"architecture_statistics expects Model records, got "
                            f"{type(model).__name__}")
    per_model = [model_statistics(m) for m in models]
    return {f"mean_{name}": fmean(s[name] for s in per_model) for name in per_model[0]}


def architecture_ranges(models: Sequence[Model]) -> dict[str, float]:
    """Population minimum and maximum of each :func:`model_statistics`
    quantity, keyed ``min_<name>`` and ``max_<name>`` (the bands of Figure 4)."""
    models = list(models)
    if not models:
        raise ValueError("architecture_ranges needs at least one model, got an empty population")
    per_model = [model_statistics(m) for m in models]
    out: dict[str, float] = {}
    for name in per_model[0]:
        values = [s[name] for s in per_model]
        out[f"min_{name}"] = min(values)
        out[f"max_{name}"] = max(values)
    return out
