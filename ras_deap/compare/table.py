"""The comparison tables (the paper's Table 2 with 95 % CIs) as Markdown and CSV.

Per method, every number is the mean over seeds ± the half-width of the 95 %
t-interval of that mean (n/a for one seed): the error rates of the
re-trained winner on the test set and on the adversarial bank (overall and
per norm), its error under each direct attack (:mod:`ras_deap.assess`), the
winner's fitness re-measured on fresh seeds, the search maximum (biased
upwards by lucky trainings), the parameter count and the wall time of the
cell. A third table pairs RAS with each baseline seed by seed
(:mod:`.stats`). ``table.csv`` has ``<col>_mean``, ``<col>_std`` and
``<col>_ci95`` of every column, ``results.csv`` one row per method and seed,
``paired.csv`` every paired test.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic, write_csv_atomic, write_json_atomic
from ..bank import NORMS
from .compare_config import (
    METHOD_LABELS,
    METHOD_ORDER,
    REFERENCE_BUDGET,
    REFERENCE_SEEDS,
    CompareConfig,
)
from .stats import PAIRED_METRICS, paired_table

__all__ = ["COLUMNS", "aggregate", "direct_columns", "format_markdown", "write_outputs"]

# (column key, header, kind): kind picks the number format.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("test_error", "Test ER", "percent"),
    ("adv_error", "Bank ER", "percent"),
    *((f"adv_error_{n}", f"Bank ER {n}", "percent") for n in NORMS),
    ("er_direct_mean", "Direct-attack ER (mean)", "percent"),
    ("remeasured_fitness", "Re-measured fitness", "fitness"),
    ("remeasured_sd", "Training sd", "fitness"),
    ("search_fitness", "Search max fitness", "fitness"),
    ("final_fitness", "Final fitness", "fitness"),
    ("parameters", "Parameters", "count"),
    ("wall_seconds", "Wall time (s)", "seconds"),
)
_ATTACK_ORDER = {"clean": 0, "fgsm": 1, "pgd": 2, "autoattack": 3, "pixel": 4}
# AutoAttack's budgets may be absolute decimals (eps0.1); its per-component rows are not columns
_DIRECT = re.compile(r"^er_(clean|fgsm|pgd|autoattack|pixel)(?:_(eps|th)(\d+(?:\.\d+)?))?$")


def direct_columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(column, header)`` of the direct attacks present in ``rows``, in the
    order clean, FGSM, PGD, AutoAttack, PixelAttack by budget (AutoAttack's
    absolute budgets after its grid steps)."""
    levels = next((int(r["assess_levels"]) for r in rows
                   if _finite([r.get("assess_levels")])), None)
    found = set()
    for row in rows:
        found.update(k for k in row if _DIRECT.match(k))

    def order(key: str) -> tuple[int, bool, float]:
        m = _DIRECT.match(key)
        k = m.group(3) or "0"
        return _ATTACK_ORDER[m.group(1)], "." in k, float(k)

    out = []
    for key in sorted(found, key=order):
        attack, _, k = _DIRECT.match(key).groups()
        if attack == "clean":
            header = "Clean ER"
        elif attack == "pixel":
            header = f"L0 {k} px"
        elif attack == "autoattack":
            grid = "" if "." in k else f"/{levels - 1}" if levels else " steps"
            header = f"AutoAttack {k}{grid}"
        else:
            grid = f"/{levels - 1}" if levels else " steps"
            header = f"{attack.upper()} {k}{grid}"
        out.append((key, header))
    return out


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out.append(f)
    return out


def _summary(values: Sequence[Any]) -> tuple[float, float, float]:
    """Mean, sample std (0 for one value) and 95 % t half-width (NaN for one)."""
    xs = _finite(values)
    if not xs:
        return math.nan, math.nan, math.nan
    if len(xs) == 1:
        return xs[0], 0.0, math.nan
    from scipy.stats import t

    sd = statistics.stdev(xs)
    return (statistics.fmean(xs), sd,
            float(t.ppf(0.975, len(xs) - 1)) * sd / math.sqrt(len(xs)))


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method (in the canonical order): ``<col>_mean``,
    ``<col>_std``, ``<col>_ci95`` (95 % t-interval over seeds), ``seeds``,
    ``evaluations`` (the budget spent per seed) and ``remeasure_repeats``."""
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    keys = [k for k, _, _ in COLUMNS] + [k for k, _ in direct_columns(rows)]
    table = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"method": method, "label": METHOD_LABELS[method],
                                 "seeds": len(mine),
                                 "seed_list": sorted(int(r["seed"]) for r in mine),
                                 "evaluations": sorted({int(r["evaluations"]) for r in mine})}
        for key in keys:
            entry[f"{key}_mean"], entry[f"{key}_std"], entry[f"{key}_ci95"] = _summary(
                [r.get(key, math.nan) for r in mine])
        entry["remeasure_repeats"] = sorted({int(r["remeasure_repeats"]) for r in mine
                                             if _finite([r.get("remeasure_repeats")])})
        entry["remeasure_failures"] = sum(int(float(r.get("remeasure_failures") or 0))
                                          for r in mine
                                          if _finite([r.get("remeasure_failures")]))
        entry["bank_fallback"] = any(float(r.get("bank_fallback", 0) or 0) > 0 for r in mine
                                     if _finite([r.get("bank_fallback")]))
        table.append(entry)
    return table


def _fmt(mean: float, ci: float, kind: str) -> str:
    if math.isnan(mean):
        return "n/a"
    if kind == "percent":
        return f"{100 * mean:.1f} ± {'n/a' if math.isnan(ci) else f'{100 * ci:.1f}'}%"
    if kind == "fitness":
        return f"{mean:.3f} ± {'n/a' if math.isnan(ci) else f'{ci:.3f}'}"
    if kind == "count":
        return f"{mean / 1000:.1f}k ± {'n/a' if math.isnan(ci) else f'{ci / 1000:.1f}k'}"
    return f"{mean:.0f} ± {'n/a' if math.isnan(ci) else f'{ci:.0f}'}"


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out) + "\n"


def _p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def format_paired(rows: Sequence[dict[str, Any]]) -> str:
    """RAS - baseline per seed: mean difference ± 95 % CI, W/T/L, p-values."""
    results = paired_table(rows)
    if not results:
        return ""
    labels = {k: label for k, label, _ in PAIRED_METRICS}
    kinds = {"remeasured_fitness": "fitness"}
    lines = []
    for r in results:
        kind = kinds.get(r.metric, "percent")
        lines.append([METHOD_LABELS[r.baseline], labels[r.metric], str(r.n),
                      _fmt(r.ras_mean, math.nan, kind).replace(" ± n/a", ""),
                      _fmt(r.baseline_mean, math.nan, kind).replace(" ± n/a", ""),
                      _fmt(r.diff_mean, r.diff_ci95, kind), f"{r.wins}/{r.ties}/{r.losses}",
                      _p(r.wilcoxon_p), _p(r.t_p)])
    return _table(["Baseline", "Metric", "Seeds", "RAS", "Baseline mean",
                   "RAS − baseline (95% CI)", "RAS W/T/L", "Wilcoxon p", "Paired t p"], lines)


def format_markdown(table: Sequence[dict[str, Any]], cfg: CompareConfig | None = None,
                    rows: Sequence[dict[str, Any]] | None = None) -> str:
    main = []
    for entry in table:
        evals = "/".join(str(e) for e in entry["evaluations"])
        main.append([entry["label"], evals, str(entry["seeds"]),
                     *(_fmt(entry.get(f"{k}_mean", math.nan), entry.get(f"{k}_ci95", math.nan),
                            kind) for k, _, kind in COLUMNS)])
    text = _table(["Method", "Evals", "Seeds", *(h for _, h, _ in COLUMNS)], main)
    direct = direct_columns(rows or [])
    if direct:
        lines = [[entry["label"],
                  *(_fmt(entry.get(f"{k}_mean", math.nan), entry.get(f"{k}_ci95", math.nan),
                         "percent") for k, _ in direct)] for entry in table]
        text += ("\n**Direct attacks on the re-trained winner** (error rate under attack, mean "
                 "± 95% CI over seeds):\n\n" + _table(["Method", *(h for _, h in direct)], lines))
    paired = format_paired(rows or [])
    if paired:
        text += ("\n**RAS against each baseline, paired by seed** (same split, bank and "
                 "training per seed; W/T/L = seeds where RAS is better / equal / worse; "
                 "two-sided Wilcoxon signed-rank and paired t-test):\n\n" + paired)
    if cfg is not None:
        s = cfg.search
        budget = (f"{cfg.budget} trained models" if s.budget_epochs is None else
                  f"{s.budget_epochs} epoch-equivalents of training (Evals: the networks "
                  "each method trained in it)")
        text += (f"\nEvery number: mean over seeds ± the half-width of the 95% t-interval of "
                 f"that mean (n/a for one seed); seeds {cfg.seed_list}; budget {budget} "
                 f"per method and seed; dataset {s.dataset}; fitness = "
                 f"validation accuracy + accuracy on the adversarial bank. Errors (ER) are of "
                 f"each method's winner re-trained from scratch on the full training set "
                 f"({s.full_epochs} epochs max)"
                 + ("" if s.final_training == "standard" else
                    f", then fine-tuned adversarially ({s.final_training}, "
                    "--final-training)")
                 + " and measured on the quarantined test split. "
                 f"**Re-measured fitness**: the winner trained {cfg.remeasure} more time(s) "
                 f"exactly as its search trained it, on fresh seeds (mean); **Search max "
                 f"fitness** is how the winner was picked, biased upwards by lucky trainings. "
                 + (f"Regularized evolution: P={min(cfg.population_p, cfg.budget)}, "
                    f"S={min(cfg.aging_sample, cfg.population_p, cfg.budget)}. "
                    if "regularized" in cfg.methods else "")
                 + ("* converted to the robust fitness (paper section 4.2)."
                    if any("*" in METHOD_LABELS.get(m, "") for m in cfg.methods) else "")
                 + "\n")
        if cfg.assess is not None:
            a = cfg.assess
            text += (f"\nDirect attacks (ART, white-box, on the re-trained winner): FGSM and "
                     f"PGD ({a.pgd_steps} steps of eps/4) on {a.images} test images, eps in "
                     f"steps of the data's intensity grid; PixelAttack (differential "
                     f"evolution, {a.pixel_iter} generations) on {a.l0_images} test images "
                     f"at th changed pixels. An image counts as an error when it is "
                     f"misclassified clean or under attack. Direct-attack ER (mean) is the "
                     f"mean over all FGSM, PGD and PixelAttack columns.\n")
        if cfg.budget < REFERENCE_BUDGET:
            text += (f"\n**Quick check, not the reference setting** (budget {cfg.budget}, "
                     f"{cfg.seeds} seed(s); the reference is --max-evaluations 275 --seeds 5).\n")
        elif cfg.seeds < REFERENCE_SEEDS or cfg.search.seed != 0:
            text += (f"\n**The reference budget on other seeds** ({cfg.seeds} seed(s) from "
                     f"{cfg.search.seed}; the reference comparison is --seeds 5 from 0).\n")
    failed = sum(int(entry.get("remeasure_failures") or 0) for entry in table)
    if failed:
        text += (f"\n**Note:** {failed} re-measuring training(s) failed and count as fitness "
                 "0 (see `remeasure_failures` in results.csv).\n")
    if any(entry.get("bank_fallback") for entry in table):
        text += ("\n**Warning:** no adversarial bank was given, so 'Bank ER' is measured on "
                 "randomly perturbed images of the bank split (the evaluator's fallback), not "
                 "on adversarial samples; build a bank with `python -m ras_deap.attacks build` "
                 "and pass --bank for the paper's measure.\n")
    return text


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    return write_csv_atomic(path, [{k: (json.dumps(v) if isinstance(v, list) else v)
                                     for k, v in row.items()} for row in rows], keys)


def write_outputs(rows: Sequence[dict[str, Any]],
                  curves: dict[tuple[str, int], Sequence[float]],
                  cfg: CompareConfig, out: Path,
                  extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``table.md``, ``table.csv`` (per method), ``results.csv`` (per
    method and seed), ``paired.csv``, ``curves.csv`` (best fitness after
    each evaluation) and ``results.json``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    table = aggregate(rows)
    files = {"markdown": out / "table.md"}
    write_atomic(files["markdown"], format_markdown(table, cfg, rows))
    files["table_csv"] = _write_csv(out / "table.csv", table)
    files["results_csv"] = _write_csv(out / "results.csv", rows)
    paired = [r.to_dict() for r in paired_table(rows)]
    if paired:
        files["paired_csv"] = _write_csv(out / "paired.csv", paired)
    curve_rows = [{"method": m, "seed": s, "evaluation": i, "best_fitness": v}
                  for (m, s), curve in curves.items() for i, v in enumerate(curve, start=1)]
    files["curves_csv"] = _write_csv(out / "curves.csv", curve_rows)
    files["json"] = out / "results.json"
    write_json_atomic(files["json"], {"config": cfg.to_dict(), "table": table,
                                      "paired": paired, "runs": list(rows), **(extra or {})},
                      default=str)
    return files
