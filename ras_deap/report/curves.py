"""The paper's per-generation figures: accuracy/fitness/robustness over
generations (Figure 3) and architecture statistics (Figure 4).

Figures are built on a bare :class:`matplotlib.figure.Figure` with the Agg
canvas, never through pyplot, so they work headless, in threads, and leave
the process's matplotlib backend alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_accuracy_over_generations", "plot_architecture_statistics", "save_figure"]

_QUALITIES = ("accuracy", "fitness", "robustness")
_SERIES = (("best", "-", "o", "C0"), ("mean", "--", "s", "C1"), ("min", ":", "v", "C2"))
_STATISTICS = (
    ("mean_blocks", "blocks"),
    ("mean_layers", "layers"),
    ("mean_connections", "connections"),
    ("mean_layers_per_block", "layers per block"),
    ("mean_connections_per_block", "connections per block"),
)


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default),
    creating the folder."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _check_history(history: Sequence[Mapping[str, Any]], where: str) -> list[Mapping[str, Any]]:
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise TypeError(f"{where}: history must be a list of per-generation dicts, got "
                        f"{type(history).__name__}")
    if not history:
        raise ValueError(f"{where}: history is empty; log at least one generation first")
    for entry in history:
        if not isinstance(entry, Mapping):
            raise TypeError(f"{where}: every history entry must be a dict, got "
                            f"{type(entry).__name__}")
    return list(history)


def _column(history: list[Mapping[str, Any]], key: str) -> list[float]:
    values = []
    for entry in history:
        value = entry.get(key)
        values.append(math.nan if value is None else float(value))
    return values


def _generations(history: list[Mapping[str, Any]]) -> list[float]:
    if all("generation" in entry for entry in history):
        return _column(history, "generation")
    return [float(i) for i in range(len(history))]


def _present(history: list[Mapping[str, Any]], key: str) -> bool:
    return any(entry.get(key) is not None for entry in history)


def _grid(count: int, ncols: int) -> tuple[int, int]:
    cols = min(count, ncols)
    return math.ceil(count / cols), cols


def plot_accuracy_over_generations(history: Sequence[Mapping[str, Any]],
                                   path: str | Path) -> Path:
    """Figure 3: best/mean (and min, where logged) accuracy, fitness and
    robustness per generation, one panel per quantity that ``history`` holds."""
    rows = _check_history(history, "plot_accuracy_over_generations")
    panels = [(q, [series for series in _SERIES if _present(rows, f"{series[0]}_{q}")])
              for q in _QUALITIES]
    panels = [(q, series) for q, series in panels if series]
    if not panels:
        wanted = [f"{series[0]}_{q}" for q in _QUALITIES for series in _SERIES[:2]]
        raise ValueError(f"plot_accuracy_over_generations: history has none of the keys "
                         f"{wanted}")
    x = _generations(rows)
    nrows, ncols = _grid(len(panels), 3)
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    marker = len(x) <= 30
    for ax, (quality, series) in zip(axes, panels, strict=False):
        for name, style, mark, colour in series:
            ax.plot(x, _column(rows, f"{name}_{quality}"), linestyle=style, color=colour,
                    marker=mark if marker else None, markersize=4, label=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation")
        ax.set_ylabel(quality)
        ax.set_title(f"{quality} over generations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Improvement over the generations")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_architecture_statistics(history: Sequence[Mapping[str, Any]],
                                 path: str | Path) -> Path:
    """Figure 4: population means of blocks, layers, connections, layers per
    block and connections per block per generation (see
    :func:`ras_deap.report.architecture_statistics`)."""
    rows = _check_history(history, "plot_architecture_statistics")
    panels = [(key, label) for key, label in _STATISTICS if _present(rows, key)]
    if not panels:
        raise ValueError(f"plot_architecture_statistics: history has none of the keys "
                         f"{[key for key, _ in _STATISTICS]}")
    x = _generations(rows)
    nrows, ncols = _grid(len(panels), 3)
    fig = Figure(figsize=(4.0 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    marker = "o" if len(x) <= 30 else None
    for ax, (key, label) in zip(axes, panels, strict=False):
        ax.plot(x, _column(rows, key), marker=marker, markersize=4)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation")
        ax.set_ylabel(f"mean {label}")
        ax.set_title(f"mean {label}")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Architectures per generation (input and softmax connections omitted)")
    fig.tight_layout()
    return save_figure(fig, path)
