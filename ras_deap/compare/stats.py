"""Paired per-seed comparisons of RAS against each baseline.

Within a seed every method sees the same data split, bank and training
schedule, so the seeds pair the methods: for each baseline and metric the
differences RAS - baseline over the seeds both ran are tested with the
Wilcoxon signed-rank test (two-sided; zero differences dropped, exact null
distribution for small samples without ties) and the paired t-test
(two-sided), and counted as wins, ties and losses of RAS.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PAIRED_METRICS", "PairedResult", "mean_ci95", "p_value", "paired_comparison",
           "paired_table", "percent_ci"]

# (column, label, higher is better)
PAIRED_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("test_error", "Test ER", False),
    ("adv_error", "Bank ER", False),
    ("remeasured_fitness", "Re-measured fitness", True),
    ("er_direct_mean", "Direct-attack ER (mean)", False),
)


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of the 95 % t-interval (NaN below 2 values)."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return math.nan, math.nan
    if len(xs) < 2:
        return statistics.fmean(xs), math.nan
    from scipy.stats import t

    return (statistics.fmean(xs),
            float(t.ppf(0.975, len(xs) - 1)) * statistics.stdev(xs) / math.sqrt(len(xs)))


def percent_ci(mean: float, ci: float) -> str:
    """A rate and its 95 % half-width in points, as report tables print them."""
    if math.isnan(mean):
        return "n/a"
    return f"{100 * mean:.1f}" + ("" if math.isnan(ci) else f" ± {100 * ci:.1f}")


def p_value(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


@dataclass(frozen=True)
class PairedResult:
    """RAS against ``baseline`` on ``metric`` over ``n`` paired seeds:
    ``diff_mean`` ± ``diff_ci95`` of RAS - baseline, wins/ties/losses of RAS
    (a win is better: lower for errors, higher for fitness), the Wilcoxon
    signed-rank statistic and p-value and the paired t statistic and p-value
    (NaN where undefined: fewer than 2 pairs, all differences zero for
    Wilcoxon, or no spread of the differences for t)."""

    baseline: str
    metric: str
    n: int
    ras_mean: float
    baseline_mean: float
    diff_mean: float
    diff_ci95: float
    wins: int
    ties: int
    losses: int
    wilcoxon_stat: float
    wilcoxon_p: float
    t_stat: float
    t_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paired_values(rows: Sequence[dict[str, Any]], method: str, reference: str,
                   metric: str) -> tuple[list[float], list[float]]:
    def by_seed(name: str) -> dict[int, float]:
        out = {}
        for r in rows:
            if r["method"] == name:
                value = r.get(metric)
                if value is not None and not math.isnan(float(value)):
                    out[int(r["seed"])] = float(value)
        return out

    ref, other = by_seed(reference), by_seed(method)
    seeds = sorted(set(ref) & set(other))
    return [ref[s] for s in seeds], [other[s] for s in seeds]


def paired_comparison(ras: Sequence[float], baseline: Sequence[float], *, higher_is_better: bool,
                      baseline_name: str = "", metric: str = "", tol: float = 1e-12
                      ) -> PairedResult:
    """The paired tests of ``ras`` against ``baseline`` (same seeds, same order)."""
    from scipy.stats import ttest_rel, wilcoxon

    if len(ras) != len(baseline):
        raise ValueError(f"paired samples need equal lengths, got {len(ras)} and "
                         f"{len(baseline)}")
    diffs = [a - b for a, b in zip(ras, baseline, strict=True)]
    n = len(diffs)
    sign = 1.0 if higher_is_better else -1.0
    wins = sum(sign * d > tol for d in diffs)
    losses = sum(sign * d < -tol for d in diffs)
    ties = n - wins - losses
    w_stat = w_p = t_stat = t_p = math.nan
    if n >= 2:
        if any(abs(d) > tol for d in diffs):
            res = wilcoxon(ras, baseline, zero_method="wilcox", alternative="two-sided")
            w_stat, w_p = float(res.statistic), float(res.pvalue)
        if statistics.stdev(diffs) > tol:
            res = ttest_rel(ras, baseline, alternative="two-sided")
            t_stat, t_p = float(res.statistic), float(res.pvalue)
    diff_mean, diff_ci = mean_ci95(diffs)
    return PairedResult(baseline=baseline_name, metric=metric, n=n,
                        ras_mean=statistics.fmean(ras) if n else math.nan,
                        baseline_mean=statistics.fmean(baseline) if n else math.nan,
                        diff_mean=diff_mean, diff_ci95=diff_ci, wins=wins, ties=ties,
                        losses=losses, wilcoxon_stat=w_stat, wilcoxon_p=w_p, t_stat=t_stat,
                        t_p=t_p)


def paired_table(rows: Sequence[dict[str, Any]], *, reference: str = "ras",
                 metrics: Sequence[tuple[str, str, bool]] = PAIRED_METRICS,
                 baselines: Sequence[str] | None = None) -> list[PairedResult]:
    """One :class:`PairedResult` per (baseline, metric) with at least one
    seed run by both the reference and the baseline."""
    from .compare_config import METHOD_ORDER

    present = {r["method"] for r in rows}
    if reference not in present:
        return []
    names = baselines if baselines is not None else [m for m in METHOD_ORDER
                                                      if m in present and m != reference]
    out = []
    for name in names:
        for metric, _, higher in metrics:
            ras, base = _paired_values(rows, name, reference, metric)
            if ras:
                out.append(paired_comparison(ras, base, higher_is_better=higher,
                                             baseline_name=name, metric=metric))
    return out
