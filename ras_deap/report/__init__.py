"""Report figures of a search (matplotlib only: no mlflow, no torch).

The per-generation curves reproduce the paper's Figures 3 and 4; the
architecture drawings show a model as DOT text, a PNG or a deterministic SVG.
"""

from .curves import plot_accuracy_over_generations, plot_architecture_statistics, save_figure
from .drawing import draw_model, layer_graph, layer_label, model_to_dot, model_to_svg
from .front import plot_front
from .stats import (
    ARCHITECTURE_STATISTICS,
    architecture_ranges,
    architecture_statistics,
    model_statistics,
)

__all__ = [
    "ARCHITECTURE_STATISTICS",
    "architecture_ranges",
    "architecture_statistics",
    "draw_model",
    "layer_graph",
    "layer_label",
    "model_statistics",
    "model_to_dot",
    "model_to_svg",
    "plot_accuracy_over_generations",
    "plot_architecture_statistics",
    "plot_front",
    "save_figure",
]
