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

from ..atomic import save_figure_atomic

__all__ = ["plot_accuracy_over_generations", "plot_architecture_statistics", "save_figure"]

_QUALITIES = ("accuracy", "fitness", "robustness")
# "fittest" is the representative with the highest fitness; its accuracy is
# not the population's highest accuracy (histories written before the name
# changed call it best_<quality>, and best_fitness is the fittest's fitness)
_FITTEST_KEYS = {q: (f"fittest_{q}", f"best_{q}") for q in _QUALITIES}
_MAX_KEYS = {"accuracy": ("max_accuracy",), "robustness": ("max_robustness",),
             "fitness": ("max_fitness", "best_fitness")}
_STATISTICS = (
    ("blocks", "blocks"),
    ("layers", "layers"),
    ("connections", "connections"),
    ("layers_per_block", "layers per block"),
    ("connections_per_block", "connections per block"),
)
_BAND = {"alpha": 0.18, "linewidth": 0}


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default),
    creating the folder."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    FigureCanvasAgg(fig)
    return save_figure_atomic(fig, path, dpi=dpi, bbox_inches="tight")


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


def _first_present(rows: list[Mapping[str, Any]], keys: Sequence[str]) -> str | None:
    return next((key for key in keys if _present(rows, key)), None)


def _band(ax: Any, x: list[float], rows: list[Mapping[str, Any]], low: str | None,
          high: str | None, colour: str) -> bool:
    """Shade min..max (or draw the one bound that is logged); True if drawn."""
    if low and high:
        ax.fill_between(x, _column(rows, low), _column(rows, high), color=colour,
                        label="min–max", **_BAND)
        return True
    for key, name in ((low, "min"), (high, "max")):
        if key:
            ax.plot(x, _column(rows, key), linestyle=":", color=colour, label=name)
            return True
    return False


def _panels(count: int, width: float, height: float) -> tuple[Figure, Any]:
    """A figure of ``count`` panels, three to a row, each ``width`` x
    ``height`` inches; its axes flattened."""
    nrows, ncols = _grid(count, 3)
    fig = Figure(figsize=(width * ncols, height * nrows))
    return fig, fig.subplots(nrows, ncols, squeeze=False).ravel()


def _generation_axis(ax: Any, ylabel: str, title: str) -> None:
    """The look every per-generation panel shares: whole generations on x."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)


def _finish(fig: Figure, axes: Any, used: int, title: str, path: str | Path) -> Path:
    """Hide the panels of the last row left empty, title the figure and save it."""
    for ax in axes[used:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_accuracy_over_generations(history: Sequence[Mapping[str, Any]],
                                   path: str | Path) -> Path:
    """Figure 3: per generation, the accuracy, fitness and robustness of the
    *fittest* representative (highest fitness: not the highest accuracy),
    the population mean and the min–max band, one panel per quantity that
    ``history`` holds (keys ``fittest_<q>``, ``mean_<q>``, ``min_<q>``,
    ``max_<q>``; ``best_fitness`` is the fittest's fitness)."""
    rows = _check_history(history, "plot_accuracy_over_generations")
    panels = []
    for q in _QUALITIES:
        keys = (_first_present(rows, _FITTEST_KEYS[q]),
                f"mean_{q}" if _present(rows, f"mean_{q}") else None,
                f"min_{q}" if _present(rows, f"min_{q}") else None,
                _first_present(rows, _MAX_KEYS[q]))
        if any(keys):
            panels.append((q, keys))
    if not panels:
        wanted = [k for q in _QUALITIES for k in (_FITTEST_KEYS[q][0], f"mean_{q}")]
        raise ValueError(f"plot_accuracy_over_generations: history has none of the keys "
                         f"{wanted}")
    x = _generations(rows)
    fig, axes = _panels(len(panels), 4.2, 3.4)
    marker = len(x) <= 30
    for ax, (quality, (fittest, mean, low, high)) in zip(axes, panels, strict=False):
        _band(ax, x, rows, low, high, "C0")
        if fittest:
            ax.plot(x, _column(rows, fittest), linestyle="-", color="C0",
                    marker="o" if marker else None, markersize=4, label="fittest individual")
        if mean:
            ax.plot(x, _column(rows, mean), linestyle="--", color="C1",
                    marker="s" if marker else None, markersize=4, label="mean")
        _generation_axis(ax, quality, f"{quality} over generations")
        ax.legend(fontsize=8)
    return _finish(fig, axes, len(panels), "Improvement over the generations (cluster "
                   "representatives; fittest = highest fitness, not highest accuracy)", path)


def plot_architecture_statistics(history: Sequence[Mapping[str, Any]],
                                 path: str | Path) -> Path:
    """Figure 4: population means of blocks, layers, connections, layers per
    block and connections per block per generation (see
    :func:`ras_deap.report.architecture_statistics`), with the min–max band
    where ``history`` holds ``min_<name>``/``max_<name>``
    (:func:`ras_deap.report.architecture_ranges`)."""
    rows = _check_history(history, "plot_architecture_statistics")
    panels = [(key, label) for key, label in _STATISTICS if _present(rows, f"mean_{key}")]
    if not panels:
        raise ValueError(f"plot_architecture_statistics: history has none of the keys "
                         f"{[f'mean_{key}' for key, _ in _STATISTICS]}")
    x = _generations(rows)
    fig, axes = _panels(len(panels), 4.0, 3.0)
    marker = "o" if len(x) <= 30 else None
    for ax, (key, label) in zip(axes, panels, strict=False):
        low, high = f"min_{key}", f"max_{key}"
        banded = _band(ax, x, rows, low if _present(rows, low) else None,
                       high if _present(rows, high) else None, "C0")
        ax.plot(x, _column(rows, f"mean_{key}"), marker=marker, markersize=4, color="C0",
                label="mean")
        _generation_axis(ax, label, label)
        if banded:
            ax.legend(fontsize=8)
    return _finish(fig, axes, len(panels), "Architectures per generation: population mean "
                   "and min–max (input and softmax connections omitted)", path)
