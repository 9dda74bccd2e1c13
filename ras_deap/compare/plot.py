"""Best fitness against evaluations for every method, in one figure.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global
backend switch), so it works headless and inside any host application.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import METHOD_LABELS, METHOD_ORDER

__all__ = ["plot_curves"]


def plot_curves(curves: dict[tuple[str, int], Sequence[float]], path: str | Path, *,
                budget: int | None = None) -> Path:
    """One line per method: the mean over seeds of the best fitness after
    each evaluation, with a band from the lowest to the highest seed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("plot_curves: no curves to draw; run at least one method")
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    methods = [m for m in METHOD_ORDER if any(k[0] == m for k in curves)]
    for method in methods:
        runs = [np.asarray(c, dtype=float) for (m, _), c in sorted(curves.items()) if m == method]
        n = max(len(r) for r in runs)
        grid = np.full((len(runs), n), np.nan)
        for i, r in enumerate(runs):
            grid[i, :len(r)] = r
        x = np.arange(1, n + 1)
        valid = ~np.all(np.isnan(grid), axis=0)
        if not valid.any():
            continue
        mean = np.nanmean(grid[:, valid], axis=0)
        (line,) = ax.plot(x[valid], mean, drawstyle="steps-post",
                          label=f"{METHOD_LABELS[method]} (n={len(runs)})")
        if len(runs) > 1:
            ax.fill_between(x[valid], np.nanmin(grid[:, valid], axis=0),
                            np.nanmax(grid[:, valid], axis=0), step="post", alpha=0.15,
                            color=line.get_color())
    if budget is not None:
        ax.set_xlim(1, max(budget, 2))
    ax.set_xlabel("evaluations (trained models)")
    ax.set_ylabel("best fitness (accuracy + bank accuracy)")
    ax.set_title("Best fitness against evaluations")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
