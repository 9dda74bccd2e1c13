"""The comparison table (the paper's Table 2 with spreads) as Markdown and CSV.

Per method: the fitness of its winner re-measured on fresh seeds (mean over
seeds ± the 95 % t-interval over seeds, the number to compare), the sd between
the re-measuring trainings, and mean and standard deviation over seeds
(sample std, 0 for one seed) of the error rates of the re-trained best model
on the test set and on the adversarial bank (overall and per norm), the
search maximum (the best fitness the search saw: how the winner was picked,
biased upwards by lucky trainings), the fitness after re-training, the
parameter count and the wall time. ``table.csv`` has ``<col>_mean``,
``<col>_std`` and ``<col>_ci95`` of every column.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..bank import NORMS
from .config import METHOD_LABELS, METHOD_ORDER, CompareConfig

__all__ = ["COLUMNS", "aggregate", "format_markdown", "write_outputs"]

# (column key, header, kind) where kind picks the formatting; "ci": mean ± the
# 95 % t-interval over seeds, every other kind: mean ± std over seeds.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("remeasured_fitness", "Re-measured fitness (95% CI)", "ci"),
    ("remeasured_sd", "Training sd", "fitness"),
    ("test_error", "Test ER", "percent"),
    ("adv_error", "Bank ER", "percent"),
    *((f"adv_error_{n}", f"Bank ER {n}", "percent") for n in NORMS),
    ("search_fitness", "Search max fitness", "fitness"),
    ("final_fitness", "Final fitness", "fitness"),
    ("parameters", "Parameters", "count"),
    ("wall_seconds", "Wall time (s)", "seconds"),
)


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = _finite(values)
    if not finite:
        return math.nan, math.nan
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return statistics.fmean(finite), std


def _ci95(values: Sequence[float]) -> float:
    """Half-width of the 95 % t-interval of the mean over seeds (NaN below 2)."""
    finite = _finite(values)
    if len(finite) < 2:
        return math.nan
    from scipy.stats import t  # comes with scikit-learn

    return float(t.ppf(0.975, len(finite) - 1)) * statistics.stdev(finite) / math.sqrt(
        len(finite))


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method (in the canonical order): ``<col>_mean``,
    ``<col>_std``, ``<col>_ci95`` (95 % t-interval over seeds), ``seeds``,
    ``evaluations`` (the budget spent per seed) and ``remeasure_repeats``."""
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    table = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"method": method, "label": METHOD_LABELS[method],
                                 "seeds": len(mine),
                                 "evaluations": sorted({int(r["evaluations"]) for r in mine})}
        for key, _, _ in COLUMNS:
            values = [r.get(key, math.nan) for r in mine]
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std(values)
            entry[f"{key}_ci95"] = _ci95(values)
        entry["remeasure_repeats"] = sorted({int(r["remeasure_repeats"]) for r in mine
                                             if _finite([r.get("remeasure_repeats")])})
        entry["remeasure_failures"] = sum(int(r.get("remeasure_failures") or 0) for r in mine
                                          if _finite([r.get("remeasure_failures")]))
        entry["bank_fallback"] = any(float(r.get("bank_fallback", 0) or 0) > 0 for r in mine)
        table.append(entry)
    return table


def _fmt(mean: float, std: float, kind: str) -> str:
    if math.isnan(mean):
        return "n/a"
    if kind == "ci":  # std holds the 95 % CI half-width here
        return f"{mean:.3f} ± {'n/a' if math.isnan(std) else f'{std:.3f}'}"
    if kind == "percent":
        return f"{100 * mean:.1f} ± {100 * std:.1f}%"
    if kind == "fitness":
        return f"{mean:.3f} ± {std:.3f}"
    if kind == "count":
        return f"{mean / 1000:.1f}k ± {std / 1000:.1f}k"
    return f"{mean:.0f} ± {std:.0f}"


def format_markdown(table: Sequence[dict[str, Any]], cfg: CompareConfig | None = None) -> str:
    header = ["Method", "Evals", *(h for _, h, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in table:
        evals = "/".join(str(e) for e in entry["evaluations"])
        cells = [entry["label"], evals,
                 *(_fmt(entry[f"{k}_mean"], entry[f"{k}_ci95" if kind == "ci" else f"{k}_std"],
                        kind) for k, _, kind in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if cfg is not None:
        s = cfg.search
        text += (f"\n**Re-measured fitness** is the number to compare: each method picks its "
                 f"winner by the best fitness its search saw (**Search max fitness**, biased "
                 f"upwards by lucky trainings), and the winner is then trained "
                 f"{cfg.remeasure} more time(s) exactly as its search trained it, on fresh "
                 f"seeds; the column shows the mean over seeds of those means ± the 95% "
                 f"t-interval over seeds (n/a for one seed), and **Training sd** the mean "
                 f"sd between the {cfg.remeasure} trainings. That costs {cfg.remeasure} "
                 f"trainings per method and seed on top of the budget, the same for every "
                 f"method.\n"
                 f"\nOther columns: mean ± std over {cfg.seeds} seed(s) (seeds "
                 f"{cfg.seed_list}); budget "
                 f"{cfg.budget} trained models per method and seed; dataset {s.dataset}; "
                 f"fitness = validation accuracy + accuracy on the adversarial bank. "
                 f"Errors are of the best model re-trained from scratch on the full training "
                 f"set ({s.full_epochs} epochs max). ER = error rate; Bank ER = error on the "
                 f"adversarial bank. * converted to the robust fitness (paper section 4.2).\n")
    failed = sum(int(entry.get("remeasure_failures") or 0) for entry in table)
    if failed:
        text += (f"\n**Note:** {failed} re-measuring training(s) failed and count as fitness "
                 "0 (see `remeasure_failures` in results.csv).\n")
    if any(entry.get("bank_fallback") for entry in table):
        text += ("\n**Warning:** no adversarial bank was given, so 'Bank ER' is measured on "
                 "randomly perturbed validation images (the evaluator's fallback), not on "
                 "adversarial samples; build a bank with `python -m ras_deap.attacks build` "
                 "and pass --bank for the paper's measure.\n")
    return text


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v) if isinstance(v, list) else v)
                             for k, v in row.items()})
    return path


def write_outputs(rows: Sequence[dict[str, Any]],
                  curves: dict[tuple[str, int], Sequence[float]],
                  cfg: CompareConfig, out: Path) -> dict[str, Path]:
    """Write ``table.md``, ``table.csv`` (per method), ``results.csv`` (per
    method and seed), ``curves.csv`` (best fitness after each evaluation) and
    ``results.json``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    table = aggregate(rows)
    files = {"markdown": out / "table.md"}
    files["markdown"].write_text(format_markdown(table, cfg))
    files["table_csv"] = _write_csv(out / "table.csv", table)
    files["results_csv"] = _write_csv(out / "results.csv", rows)
    curve_rows = [{"method": m, "seed": s, "evaluation": i, "best_fitness": v}
                  for (m, s), curve in curves.items() for i, v in enumerate(curve, start=1)]
    files["curves_csv"] = _write_csv(out / "curves.csv", curve_rows)
    files["json"] = out / "results.json"
    files["json"].write_text(json.dumps({"config": cfg.to_dict(), "table": table,
                                         "runs": list(rows)}, indent=2, default=str))
    return files
