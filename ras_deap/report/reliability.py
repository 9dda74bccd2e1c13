"""How much of a measurement's variance lies between architectures: the
intraclass correlation (ICC) of an architectures x seeds table.

Why: a search selects on single noisy trainings. If the seed-to-seed spread
of the fitness is as large as the spread between architectures, selection
picks lucky seeds, not architectures. The ICC is the share of the variance
that is the architecture's; Shrout & Fleiss (1979) give the forms used here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ICC", "icc"]


@dataclass(frozen=True)
class ICC:
    """``value`` with its 95 % confidence interval (F-distribution based),
    the between-architecture sd of the means and the within (seed) sd."""

    value: float
    low: float
    high: float
    between_sd: float
    within_sd: float
    n: int  # architectures
    k: int  # seeds (measurements per architecture)
    form: str

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def icc(table: np.ndarray, *, paired: bool = False, confidence: float = 0.95) -> ICC:
    """ICC of ``table`` (rows: architectures, columns: seeds).

    ``paired=False``: ICC(1,1), one-way random effects; every seed's noise
    counts, as when each individual trains with its own seed.
    ``paired=True``: ICC(3,1), consistency; the column (seed) main effect is
    removed, as when every architecture of a comparison trains with the same
    seed (common random numbers).
    """
    from scipy.stats import f as f_dist

    a = np.asarray(table, dtype=float)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"table must be architectures x seeds with at least 2 of each, got "
                         f"shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("table holds non-finite values")
    n, k = a.shape
    grand = a.mean()
    rows, cols = a.mean(axis=1), a.mean(axis=0)
    ss_rows = k * ((rows - grand) ** 2).sum()
    ms_rows = ss_rows / (n - 1)
    alpha = 1.0 - confidence
    if paired:
        ss_cols = n * ((cols - grand) ** 2).sum()
        ss_err = ((a - grand) ** 2).sum() - ss_rows - ss_cols
        ms_err = ss_err / ((n - 1) * (k - 1))
        df1, df2, ms_noise = n - 1, (n - 1) * (k - 1), ms_err
        form = "ICC(3,1) consistency, seeds shared"
    else:
        ss_within = ((a - rows[:, None]) ** 2).sum()
        ms_within = ss_within / (n * (k - 1))
        df1, df2, ms_noise = n - 1, n * (k - 1), ms_within
        form = "ICC(1,1) one-way, seeds independent"
    if ms_noise <= 0:
        value = low = high = 1.0 if ms_rows > 0 else float("nan")
    else:
        f_obs = ms_rows / ms_noise
        value = (ms_rows - ms_noise) / (ms_rows + (k - 1) * ms_noise)
        f_low = f_obs / f_dist.ppf(1 - alpha / 2, df1, df2)
        f_high = f_obs * f_dist.ppf(1 - alpha / 2, df2, df1)
        low = (f_low - 1) / (f_low + k - 1)
        high = (f_high - 1) / (f_high + k - 1)
    return ICC(value=float(value), low=float(low), high=float(high),
               between_sd=float(rows.std(ddof=1)), within_sd=float(np.sqrt(ms_noise)),
               n=n, k=k, form=form)
