"""The front of a multi-objective search as a figure: every final
representative's objectives as the search measured them, the non-dominated
ones joined by the edge of the region they dominate (the trade-off the search offers) and, when the
members were re-measured on fresh seeds, their means, each joined to the
search's value it corrects. Agg canvas,
never pyplot, as the other figures (:mod:`.curves`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .curves import save_figure

__all__ = ["plot_front"]


def plot_front(front: Sequence[Mapping[str, Any]], population: Sequence[Mapping[str, Any]],
               path: str | Path, *, title: str = "") -> Path:
    """Plot the first two objectives of ``population`` (records with an
    ``objectives`` mapping, as :func:`ras_deap.evolution.front_records`
    writes them) and highlight ``front``; write ``path`` (PNG)."""
    if not front:
        raise ValueError("plot_front: the front is empty; nothing to plot")
    names = list(front[0]["objectives"])
    if len(names) < 2:
        raise ValueError(f"plot_front: needs two objectives, got {names}")
    x, y = names[0], names[1]
    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.add_subplot()
    ax.scatter([p["objectives"][x] for p in population],
               [p["objectives"][y] for p in population], s=18, color="0.7",
               label="final representatives")
    pts = sorted((p["objectives"][x], p["objectives"][y]) for p in front)
    ax.step([p[0] for p in pts], [p[1] for p in pts], where="pre", color="C0", linewidth=1)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=30, color="C0",
               label=f"non-dominated ({len(pts)}), search's values")
    again = [p for p in front if p.get("remeasured")]
    if again:  # re-measured means, joined to the search's values they correct
        for p in again:
            ax.plot([p["objectives"][x], p["remeasured"]["objectives"][x]],
                    [p["objectives"][y], p["remeasured"]["objectives"][y]],
                    color="C1", linewidth=0.8, alpha=0.7)
        n = again[0]["remeasured"].get("trainings", "")
        ax.scatter([p["remeasured"]["objectives"][x] for p in again],
                   [p["remeasured"]["objectives"][y] for p in again], s=34,
                   facecolors="none", edgecolors="C1",
                   label=f"re-measured (mean of {n} fresh seeds)")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title or f"{x}-{y} front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)
