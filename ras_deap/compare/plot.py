"""Best fitness against evaluations for every method, in one figure.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global
backend switch), so it works headless and inside any host application.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import save_figure_atomic
from .compare_config import METHOD_LABELS, METHOD_ORDER

__all__ = ["plot_curves"]


def plot_curves(curves: dict[tuple[str, int], Sequence[float]], path: str | Path, *,
                budget: int | None = None) -> Path:
    """One line per method: the mean over seeds of the best fitness after
    each evaluation, with its 95 % confidence band (mean ± the t-interval
    half-width over the seeds that reached that evaluation; no band for one
    seed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.stats import t

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
        sub = grid[:, valid]
        mean = np.nanmean(sub, axis=0)
        (line,) = ax.plot(x[valid], mean, drawstyle="steps-post",
                          label=f"{METHOD_LABELS[method]} (n={len(runs)})")
        count = np.sum(~np.isnan(sub), axis=0)
        if count.max() > 1:
            with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)  # one seed at some x: no band
                sd = np.nanstd(sub, axis=0, ddof=1)
                half = t.ppf(0.975, np.maximum(count - 1, 1)) * sd / np.sqrt(count)
            half = np.where(count > 1, half, np.nan)
            # fitness lies in [0, 2]: a band wider than that (2 seeds) is clipped to it
            ax.fill_between(x[valid], np.clip(mean - half, 0, 2), np.clip(mean + half, 0, 2),
                            step="post", alpha=0.15,
                            color=line.get_color())
    if budget is not None:
        ax.set_xlim(1, max(budget, 2))
    ax.set_xlabel("evaluations (trained models)")
    ax.set_ylabel("best fitness (accuracy + bank accuracy)")
    ax.set_title("Best fitness against evaluations (mean, 95% CI over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure_atomic(fig, Path(path))
