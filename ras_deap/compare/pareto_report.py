"""The page of :mod:`.pareto`: hypervolumes per seed, the paired
comparisons, the sums at the paper's weight, where every front comes from,
a CSV and a figure (Agg canvas, never pyplot)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..atomic import write_atomic, write_csv_atomic
from .compare_config import METHOD_LABELS, METHOD_ORDER
from .pareto import VARIANT_LABELS, CellPoints, SeedRow, method_order, nondominated
from .stats import p_value, paired_comparison

__all__ = ["page_text", "plot_fronts", "write_page"]


_LABELS = {**METHOD_LABELS, **VARIANT_LABELS}


def _f(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _label(method: str) -> str:
    return f"`{method}`"


def _methods(cells: Sequence[CellPoints], multiobjective: bool) -> list[str]:
    found = {c.method for c in cells if c.multiobjective == multiobjective}
    return sorted(found, key=method_order)


def _table_head(columns: Sequence[str]) -> list[str]:
    """A Markdown table's header row and its rule, one column each."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _section(title: str, prose: str, columns: Sequence[str]) -> list[str]:
    """A page section: its heading, what it shows, and its table's head."""
    return ["", f"## {title}", "", prose, "", *_table_head(columns)]


def _paired_line(name: str, other: str, pairs: list[tuple[float, float]]) -> str:
    r = paired_comparison([a for a, _ in pairs], [b for _, b in pairs], higher_is_better=True)
    ci = "n/a" if math.isnan(r.diff_ci95) else f"{r.diff_ci95:.4f}"
    return (f"| {name} | {other} | {r.n} | {_f(r.ras_mean)} | {_f(r.baseline_mean)} | "
            f"{r.diff_mean:+.4f} ± {ci} | {r.wins}/{r.ties}/{r.losses} | {p_value(r.wilcoxon_p)} | "
            f"{p_value(r.t_p)} |")


def _hypervolume_table(rows: Sequence[SeedRow], mo: Sequence[str], so: Sequence[str]) -> list[str]:
    """One row per seed: each method's hypervolume, and the single-objective union's."""
    lines: list[str] = []
    for row in rows:
        lines.append(f"| {row.seed} | " + " | ".join(
            [*(_f(row.hv.get(m, math.nan)) for m in mo), *(_f(row.hv.get(m, math.nan))
                                                           for m in so),
             *([_f(row.hv_single_union)] if so else [])]) + " |")
    return lines


def _paired_by_seed(rows: Sequence[SeedRow], mo: Sequence[str], so: Sequence[str]) -> list[str]:
    """Each multi-objective front against each single-objective method, by seed."""
    lines = _section(
        "Paired by seed",
        "Hypervolume of each multi-objective method's re-measured front minus that of each "
        "single-objective method's points (W/T/L: seeds where the multi-objective front is "
        "larger / equal / smaller; two-sided Wilcoxon signed-rank and paired t-test).",
        ["Multi-objective", "Against", "Seeds", "MO mean", "Other mean",
         "MO − other (95% CI)", "MO W/T/L", "Wilcoxon p", "Paired t p"])
    for m in mo:
        for other in [*so, "all single-objective"]:
            pairs = [(r.hv[m], r.hv_single_union if other == "all single-objective"
                      else r.hv[other]) for r in rows
                     if m in r.hv and (other == "all single-objective" or other in r.hv)]
            pairs = [p for p in pairs if not any(math.isnan(v) for v in p)]
            if pairs:
                lines.append(_paired_line(_label(m), _label(other)
                                          if other in so else other, pairs))
    lines.append("")
    for m in mo:
        both = [r for r in rows if m in r.hv and any(o in r.hv for o in so)]
        ahead = sum(all(r.hv[m] >= r.hv[o] for o in so if o in r.hv) for r in both)
        lines.append(f"- {_label(m)}: hypervolume ≥ every single-objective method's on "
                     f"{ahead} of {len(both)} seeds (issue #31's goal: ≥ 4 of 5).")
    return lines


def _between_fronts(rows: Sequence[SeedRow], mo: Sequence[str]) -> list[str]:
    """Each multi-objective method's re-measured front against each other's, by seed:
    how a choice between them (e.g. spectrum against crowding distance) is measured."""
    lines = _section(
        "Multi-objective methods against each other",
        "Hypervolume of the first method's re-measured front minus the second's, paired by "
        "seed (W/T/L from the first's side).",
        ["First", "Second", "Seeds", "First mean", "Second mean", "First − second (95% CI)",
         "W/T/L", "Wilcoxon p", "Paired t p"])
    for i, m in enumerate(mo):
        for other in mo[i + 1:]:
            pairs = [(r.hv[m], r.hv[other]) for r in rows if m in r.hv and other in r.hv]
            if pairs:
                lines.append(_paired_line(_label(m), _label(other), pairs))
    return lines


def _search_values(rows: Sequence[SeedRow], mo: Sequence[str], so: Sequence[str]) -> list[str]:
    """The same comparison on the values the searches measured."""
    lines = _section(
        "The search's own values",
        "The same comparison on the values the searches measured (one training each): the "
        "multi-objective front's members before re-measurement against the single-objective "
        "final populations (n/a where the population is unknown). Both sides are equally "
        "lucky here.",
        ["Seed", *(_label(m) for m in [*mo, *so])])
    for row in rows:
        lines.append(f"| {row.seed} | " + " | ".join(
            _f(row.hv_search.get(m, math.nan)) for m in [*mo, *so]) + " |")
    return lines


def _paper_weight(rows: Sequence[SeedRow], mo: Sequence[str]) -> list[str]:
    """The front member a user picks at the paper's weight, against the RAS winner."""
    lines = _section(
        "At the paper's weight (accuracy + robustness)",
        "The paper's fitness weighs both objectives 1. Per multi-objective method: the front "
        "member with the best sum *as the search measured it* (the choice a user makes "
        "without more training), its re-measured sum; the best re-measured sum of any member "
        "(optimistic: the maximum of several noisy means); against the single-objective RAS "
        "winner's re-measured fitness.",
        ["Seed", "RAS winner (re-measured)",
         *(f"{_label(m)}: {what}" for m in mo
           for what in ("picked by search sum", "best re-measured"))])
    for row in rows:
        lines.append(f"| {row.seed} | {_f(row.ras_winner_fitness)} | " + " | ".join(
            f"{_f(row.sums.get(m, (math.nan,) * 2)[0])} | "
            f"{_f(row.sums.get(m, (math.nan,) * 2)[1])}" for m in mo) + " |")
    paired = []
    for m in mo:
        pairs = [(r.sums[m][0], r.ras_winner_fitness) for r in rows
                 if m in r.sums and not math.isnan(r.ras_winner_fitness)]
        if pairs:
            paired.append(_paired_line(f"{_label(m)} (picked by search sum)", _label("ras"),
                                       pairs))
    if paired:
        lines += ["", *_table_head(["Multi-objective", "Against", "Seeds", "MO mean",
                                    "RAS mean", "MO − RAS (95% CI)", "MO W/T/L",
                                    "Wilcoxon p", "Paired t p"]), *paired]
    return lines


def _sources(cells: Sequence[CellPoints], notes: Sequence[str], figure: str | None) -> list[str]:
    """Where each front comes from, what was left out, and the figure."""
    lines = ["", "## Where each front comes from", "",
             *_table_head(["Cell", "Folder", "Points", "Values"])]
    for c in sorted(cells, key=lambda c: (c.seed, method_order(c.method))):
        lines.append(f"| {c.method}-seed{c.seed} | `{c.folder}` | {len(c.points)} | "
                     f"{c.source} |")
    if notes:
        lines += ["", "Left out:", "", *(f"- {n}" for n in notes)]
    if figure:
        lines += ["", f"![fronts per seed]({figure})"]
    return lines


def page_text(cells: Sequence[CellPoints], rows: Sequence[SeedRow], *,
              reference: tuple[float, float], notes: Sequence[str], command: str,
              settings: dict[str, Any], figure: str | None) -> str:
    mo, so = _methods(cells, True), _methods(cells, False)
    search = settings.get("search", {})
    ref = f"({reference[0]:g}, {reference[1]:g})"
    lines = [
        f"# Accuracy-robustness fronts on {search.get('dataset', '?')}: multi-objective "
        "against single-objective search",
        "",
        f"Generated {datetime.now():%Y-%m-%d %H:%M} by `{command}`.",
        "",
        f"Budget {settings.get('budget')} evaluations per method and seed; every winner and "
        f"front member re-measured with {settings.get('remeasure')} fresh trainings. The "
        f"hypervolume is the area of the (accuracy, robustness) plane the points dominate "
        f"above the fixed reference point {ref}"
        + (" (a failed network: every trained network adds area; at most 1)"
           if reference == (0.0, 0.0) else "")
        + ". Multi-objective methods: the front of their final population, **re-measured**. "
        "Single-objective methods: their winner **re-measured** plus their final population "
        "**as the search measured it** (one training each, so luckier than a re-measurement) "
        "where it is known; see *Where each front comes from*.",
        "",
        "Methods: " + "; ".join(f"`{m}`: {_LABELS.get(m, m)}" for m in [*mo, *so]) + ".",
        "",
        "## Hypervolume per seed",
        "",
        *_table_head(["Seed", *(f"{_label(m)} (re-measured front)" for m in mo),
                      *(_label(m) for m in so), *(["all single-objective"] if so else [])]),
    ]
    lines += _hypervolume_table(rows, mo, so)
    if so:
        lines += _paired_by_seed(rows, mo, so)
    if len(mo) > 1:
        lines += _between_fronts(rows, mo)
    lines += _search_values(rows, mo, so)
    lines += _paper_weight(rows, mo)
    lines += _sources(cells, notes, figure)
    return "\n".join(lines) + "\n"


def plot_fronts(cells: Sequence[CellPoints], path: Path) -> Path:
    """One panel per seed: each multi-objective method's re-measured front
    (joined as the edge of the region it dominates; open circles: the same
    members as the search measured them), each single-objective
    method's re-measured winner (a cross) and known final population (dots)."""
    from matplotlib.figure import Figure

    from ..report.curves import save_figure

    seeds = sorted({c.seed for c in cells if c.multiobjective})
    cols = min(len(seeds), 5)
    nrows = math.ceil(len(seeds) / cols)
    fig = Figure(figsize=(3.4 * cols, 3.2 * nrows + 0.6))
    colors = {m: f"C{i}" for i, m in enumerate([*METHOD_ORDER, *VARIANT_LABELS])}
    for i, seed in enumerate(seeds):
        ax = fig.add_subplot(nrows, cols, i + 1)
        for c in (c for c in cells if c.seed == seed):
            color = colors.get(c.method, "k")
            if c.multiobjective:
                pts = nondominated(c.points)
                ax.step([p[0] for p in pts], [p[1] for p in pts], where="pre", color=color,
                        linewidth=1)
                ax.scatter([p[0] for p in c.points], [p[1] for p in c.points], s=22,
                           color=color, label=c.method if i == 0 else None)
                # the same members as the search measured them (one training: luckier)
                ax.scatter([p[0] for p in c.search_points], [p[1] for p in c.search_points],
                           s=22, facecolors="none", edgecolors=color, linewidths=0.8)
            else:
                if c.search_points:
                    ax.scatter([p[0] for p in c.search_points], [p[1] for p in c.search_points],
                               s=6, color=color, alpha=0.35)
                ax.scatter([c.winner[0]], [c.winner[1]], marker="x", s=40, color=color,
                           label=c.method if i == 0 else None)
        ax.set_title(f"seed {seed}", fontsize="small")
        ax.set_xlabel("accuracy")
        ax.set_ylabel("robustness")
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=min(7, len({c.method for c in cells})),
               fontsize="small")
    fig.suptitle("re-measured fronts (lines, filled; open: the search's own values) vs "
                 "single-objective winners (x, re-measured) and final populations (dots, "
                 "search's values)", fontsize="small")
    fig.subplots_adjust(bottom=0.22 if nrows == 1 else 0.12, wspace=0.35, hspace=0.45)
    return save_figure(fig, path)


def _csv_rows(cells: Sequence[CellPoints], rows: Sequence[SeedRow]) -> list[dict[str, Any]]:
    by_seed = {r.seed: r for r in rows}
    out = []
    for c in cells:
        row = by_seed.get(c.seed)
        if row is None:
            continue
        sums = row.sums.get(c.method, (math.nan, math.nan))
        out.append({"seed": c.seed, "method": c.method, "multiobjective": int(c.multiobjective),
                    "hypervolume": row.hv[c.method], "hypervolume_search": row.hv_search[c.method],
                    "points": len(c.points), "winner_accuracy": c.winner[0],
                    "winner_robustness": c.winner[1], "winner_fitness": c.winner_fitness,
                    "sum_picked_by_search": sums[0], "sum_best_remeasured": sums[1],
                    "source": c.source, "folder": str(c.folder)})
    return out


def write_page(path: Path, cells: Sequence[CellPoints], rows: Sequence[SeedRow], *,
               reference: tuple[float, float], notes: Sequence[str], command: str,
               settings: dict[str, Any]) -> list[Path]:
    """``path`` (Markdown), ``path.csv`` (one row per cell) and ``path.png``."""
    figure = plot_fronts(cells, path.with_suffix(".png"))
    data = _csv_rows(cells, rows)
    csv_path = write_csv_atomic(path.with_suffix(".csv"), data,
                                list(data[0]) if data else ["seed"])
    write_atomic(path, page_text(cells, rows, reference=reference, notes=notes, command=command,
                                 settings=settings, figure=figure.name))
    return [path, csv_path, figure]
