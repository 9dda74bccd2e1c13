"""Why does (or doesn't) RAS beat the baselines? Ablations of RAS, each a
finished ``python -m ras_deap.compare`` folder that changes one setting,
paired seed by seed with the reference comparison's RAS cells.

    python -m ras_deap.compare.ablation \\
        --reference docs/results/table2-digits-cells \\
        --variant "no niching=docs/results/table2-digits-cells:mu_plus_lambda" \\
        --variant "normalized distance=docs/results/ras-ablation-digits/distance-normalized" \\
        --report docs/results/ras-ablation-digits.md

A variant is ``NAME=FOLDER[:METHOD]`` (METHOD defaults to ``ras``). Within a
seed a variant and the reference share the data split, the bank, the
training schedule and (for RAS variants) the initial population, so the seed
pairs them. The report names, for each variant, the settings that differ from
the reference (read from the two ``comparison.json`` manifests) so a variant
that changes more than it claims shows it. Reads stored results only: it
trains nothing (pure Python and scipy; no torch).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import read_json_lines, write_atomic, write_csv_atomic
from ..errors import UsageError
from ..flags import OptionParser
from .cells import cell_seeds
from .compare_config import METHOD_ORDER
from .stats import PairedResult, mean_ci95, paired_comparison

__all__ = ["ABLATION_METRICS", "AblationError", "Variant", "evaluation_fitness", "load_rows",
           "main", "parse_variant", "setting_changes", "stages", "stretch_gain", "write_report"]

# (column, label, higher is better, percent)
ABLATION_METRICS: tuple[tuple[str, str, bool, bool], ...] = (
    ("remeasured_fitness", "Re-measured fitness", True, False),
    ("test_error", "Test ER", False, True),
    ("adv_error", "Bank ER", False, True),
    ("er_direct_mean", "Direct-attack ER (mean)", False, True),
    ("search_fitness", "Search max fitness", True, False),
)


class AblationError(UsageError, ValueError):
    """A bad --reference / --variant; the message names the option and the fix."""


@dataclass(frozen=True)
class Variant:
    """A named set of cells: ``method``'s cells of the comparison in ``out``."""

    name: str
    out: Path
    method: str = "ras"


def parse_variant(text: str, option: str = "--variant") -> Variant:
    name, sep, spec = text.partition("=")
    if option == "--reference" and not sep:
        name, spec = "RAS (reference)", text
    elif not sep or not name.strip() or not spec.strip():
        raise AblationError(f"{option} {text!r}: write NAME=FOLDER[:METHOD], e.g. "
                            "'no niching=docs/results/table2-digits-cells:mu_plus_lambda'")
    folder, colon, method = spec.strip().rpartition(":")
    if not colon or method not in METHOD_ORDER:  # no method given (or a ':' in the path)
        folder, method = spec.strip(), "ras"
    out = Path(folder)
    if not (out / "comparison.json").is_file():
        raise AblationError(f"{option} {text!r}: {out} holds no comparison.json; pass the "
                            "--out folder of a python -m ras_deap.compare run")
    return Variant(name.strip(), out, method)


def _settings(out: Path) -> dict[str, Any]:
    return json.loads((out / "comparison.json").read_text())["settings"]


def setting_changes(reference: Variant, variant: Variant) -> list[str]:
    """What the variant changes: the settings that differ between the two
    manifests (the method, if it differs, first)."""
    from .manifest import _differences

    changes = [] if variant.method == reference.method else [
        f"method {reference.method} -> {variant.method}"]
    diffs = _differences(_settings(reference.out), _settings(variant.out))
    changes += [d.replace(" then, ", " -> ").replace(" now", "") for d in diffs]
    return changes


def changes_training(changes: Sequence[str]) -> bool:
    """Whether a variant trains its candidates otherwise (a training option of
    the schema differs): its fitness is then measured on another scale, and
    only the errors of the re-trained winners compare with the reference's."""
    from ..config import OPTIONS

    training = {f"search.{k}" for k, o in OPTIONS.items() if o.group == "training"}
    return any(c.partition(":")[0] in training for c in changes)


def load_rows(variant: Variant) -> list[dict[str, Any]]:
    """One results row (see :func:`ras_deap.compare.rows.row_of`) per
    finished cell of ``variant``, tagged with the variant's name."""
    from .compare_config import CompareConfig
    from .manifest import load_result
    from .rows import row_of

    cfg = CompareConfig.from_dict({**_settings(variant.out), "out": str(variant.out)})
    rows = []
    for seed in cell_seeds(variant.out, variant.method):
        result = load_result(cfg, variant.method, seed)
        if result is not None:
            rows.append({**row_of(result), "variant": variant.name})
    return rows


def evaluation_fitness(variant: Variant, row: dict[str, Any]) -> list[float] | None:
    """The fitness of each evaluation of ``row``'s search, in order: from the
    cell's journal (baselines) or its RAS curve (each line's own fitness),
    else from the MLflow runs the cell logged (RAS curves written before the
    curve kept each evaluation's fitness); None where none is at hand (such
    an old cell in a clone without the local MLflow store)."""
    from .cells import JOURNAL_NAME, RAS_CURVE_NAME, cell_dir

    folder = cell_dir(variant.out, variant.method, int(row["seed"]))
    journal = folder / JOURNAL_NAME
    if journal.is_file():
        lines = read_json_lines(journal)
        return [float(e.get("fitness") or 0.0) for e in lines]
    curve = folder / RAS_CURVE_NAME
    if curve.is_file():
        lines = read_json_lines(curve)
        if lines and all(isinstance(e, dict) and "fitness" in e for e in lines):
            # screened children's low-fidelity fitness is not the trained fitness
            return [float(e["fitness"]) for e in lines if not e.get("screen")]
    uri = _settings(variant.out)["search"].get("tracking_uri") or "sqlite:///mlruns/mlflow.db"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    if not row.get("run_id"):
        return None
    from ..tracking.runs import evaluated_fitness

    try:
        values = evaluated_fitness(uri, row["run_id"])
    except Exception:  # an unreachable or foreign store: no drift numbers
        return None
    return values or None


def stages(settings: dict[str, Any], budget: int) -> list[tuple[int, int]]:
    """Evaluation ranges of the reference's generations: the initial
    population, then one generation of children each."""
    search = settings["search"]
    first, step = int(search["population"]), int(search["population"] * search["children"])
    bounds = [(0, min(first, budget))]
    while bounds[-1][1] < budget:
        bounds.append((bounds[-1][1], min(bounds[-1][1] + step, budget)))
    return bounds


def stretch_gain(series: Sequence[float], bounds: list[tuple[int, int]]) -> float | None:
    """Mean fitness of a run's last non-empty stretch minus its first (None
    with fewer than two): how much the networks it trains improved."""
    stretches = [series[a:b] for a, b in bounds if series[a:b]]
    if len(stretches) < 2:
        return None
    return sum(stretches[-1]) / len(stretches[-1]) - sum(stretches[0]) / len(stretches[0])


def _drift_lines(series: dict[str, list[list[float]]], bounds: list[tuple[int, int]],
                 names: Sequence[str]) -> list[str]:
    """A search that re-trains survivors (a full-set generation) trains fewer
    new networks than its budget: its last stretches are shorter or empty."""
    lines = ["| Variant | Seeds | " + " | ".join(f"evals {a + 1}-{b}" for a, b in bounds) +
             " | last − first |", "|---|---|" + "---|" * (len(bounds) + 1)]
    for name in names:
        runs = series.get(name, [])
        cols = []
        for a, b in bounds:
            means = [sum(s[a:b]) / len(s[a:b]) for s in runs if s[a:b]]
            cols.append(_fmt(*mean_ci95(means), False) if means else "n/a")
        firsts_lasts = [g for g in (stretch_gain(s, bounds) for s in runs) if g is not None]
        gain = _fmt(*mean_ci95(firsts_lasts), False) if firsts_lasts else "n/a"
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cols) + f" | {gain} |")
    return lines


def _values(rows: Sequence[dict[str, Any]], name: str, metric: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows if r["variant"] == name
            and r.get(metric) is not None and not math.isnan(float(r[metric]))}


def paired(rows: Sequence[dict[str, Any]], name: str, reference: str, metric: str,
           higher: bool) -> PairedResult:
    """``name`` - ``reference`` on ``metric`` over the seeds both finished."""
    a, b = _values(rows, name, metric), _values(rows, reference, metric)
    seeds = sorted(set(a) & set(b))
    return paired_comparison([a[s] for s in seeds], [b[s] for s in seeds],
                             higher_is_better=higher, baseline_name=reference, metric=metric)


def _fmt(mean: float, ci: float, percent: bool) -> str:
    if math.isnan(mean):
        return "n/a"
    scale, digits, unit = (100, 1, "%") if percent else (1, 3, "")
    return (f"{scale * mean:.{digits}f}" + ("" if math.isnan(ci) else f" ± {scale * ci:.{digits}f}")
            + unit)


def _noise_lines(rows: Sequence[dict[str, Any]], reference: str) -> list[str]:
    """How large one fitness measurement's noise is next to the effects."""
    sd, _ = mean_ci95([r.get("remeasured_sd", math.nan) for r in rows])
    bias, bias_ci = mean_ci95([r["search_fitness"] - r["remeasured_fitness"] for r in rows])
    ref = [r["remeasured_fitness"] for r in rows if r["variant"] == reference]
    spread = (max(ref) - min(ref)) if ref else math.nan
    return [
        f"* One training's fitness has a standard deviation of about **{sd:.3f}** "
        "(the sd of each winner's re-measurements, averaged over every cell above).",
        f"* The search maximum exceeds the winner's re-measured fitness by **{bias:.3f} ± "
        f"{bias_ci:.3f}** on average: selection on single trainings picks lucky trainings.",
        f"* Across the reference's seeds RAS's re-measured fitness spans {spread:.3f}.",
    ]


def write_report(path: Path, rows: Sequence[dict[str, Any]], *, reference: Variant,
                 variants: Sequence[Variant], command: str, changes: dict[str, list[str]],
                 series: dict[str, list[list[float]]] | None = None,
                 bounds: list[tuple[int, int]] | None = None) -> list[Path]:
    """The Markdown report and its CSV (every row) beside it."""
    names = [reference.name] + [v.name for v in variants]
    lines = ["# Why RAS does not beat the baselines: ablations", "",
             f"Command: `{command}`", "",
             f"Every variant is paired by seed with **{reference.name}** "
             f"(`{reference.out}`, method `{reference.method}`): same split, bank, training "
             "schedule and budget; the column *what changes* is read from the two manifests.",
             "", "| Variant | What changes | Seeds | " +
             " | ".join(label for _, label, _, _ in ABLATION_METRICS) + " |",
             "|---|---|---|" + "---|" * len(ABLATION_METRICS)]
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        cells = [_fmt(*mean_ci95([r.get(m, math.nan) for r in mine]), pct) for m, _, _, pct in
                 ABLATION_METRICS]
        what = "; ".join(changes.get(name, [])) or ("(reference)" if name == reference.name
                                                     else "nothing")
        if changes_training(changes.get(name, [])):
            what += " †"
        lines.append(f"| {name} | {what} | {len(mine)} | " + " | ".join(cells) + " |")
    if any(changes_training(c) for c in changes.values()):
        lines += ["", "† trains its candidates otherwise, so its fitness (search maximum and "
                  "re-measured, both measured as its search trained) is on another scale than "
                  "the reference's: compare its errors, which come from the same full-set "
                  "re-training for every variant."]
    lines += ["", f"**Variant − {reference.name}, paired by seed** (95% CI of the mean "
              "difference; W/T/L = seeds where the variant is better / equal / worse; "
              "two-sided Wilcoxon signed-rank and paired t-test):", "",
              "| Variant | Metric | Seeds | Difference | W/T/L | Wilcoxon p | Paired t p |",
              "|---|---|---|---|---|---|---|"]
    out_rows = []
    for v in variants:
        for metric, label, higher, pct in ABLATION_METRICS[:4]:
            res = paired(rows, v.name, reference.name, metric, higher)
            if not res.n:
                continue
            p = [("n/a" if math.isnan(x) else f"{x:.3f}") for x in (res.wilcoxon_p, res.t_p)]
            lines.append(f"| {v.name} | {label} | {res.n} | "
                         f"{_fmt(res.diff_mean, res.diff_ci95, pct)} | "
                         f"{res.wins}/{res.ties}/{res.losses} | {p[0]} | {p[1]} |")
            out_rows.append({"variant": v.name, **res.to_dict()})
    lines += ["", "With n paired seeds the exact two-sided Wilcoxon p cannot go below "
              "2 / 2^n (0.25 for 3 seeds, 0.0625 for 5): read the CIs and the W/T/L counts.",
              "", "## How large the noise is", "", *_noise_lines(rows, reference.name), ""]
    if series and bounds:
        lines += ["## Does selection move the population?", "",
                  "Mean fitness of the networks each search trained, by stretch of its budget "
                  "(the reference's generations), mean ± 95% CI over seeds: a search whose "
                  "selection works trains fitter networks as it goes; random search stays "
                  "flat. Read from each cell's journal, or for RAS from the MLflow runs it "
                  "logged (n/a where that store is not at hand).", "",
                  *_drift_lines(series, bounds, names), ""]
    write_atomic(path, "\n".join(lines) + "\n")
    csv_path = path.with_suffix(".csv")
    keys = sorted({k for r in rows for k in r})
    write_csv_atomic(csv_path, rows, ["variant", *[k for k in keys if k != "variant"]])
    paired_path = path.with_name(path.stem + "-paired.csv")
    write_csv_atomic(paired_path, out_rows, list(out_rows[0]) if out_rows else None)
    return [path, csv_path, paired_path]


def _parser() -> argparse.ArgumentParser:
    p = OptionParser(
        prog="python -m ras_deap.compare.ablation",
        description="Pair ablations of RAS (finished python -m ras_deap.compare folders that "
                    "change one setting) seed by seed with the reference comparison's RAS "
                    "cells, and write a report. Trains nothing.")
    p.add_argument("--reference", required=True, metavar="[NAME=]FOLDER[:METHOD]",
                   help="the reference comparison folder (method ras unless given)")
    p.add_argument("--variant", action="append", required=True, metavar="NAME=FOLDER[:METHOD]",
                   help="an ablation and its comparison folder (repeat for several)")
    p.add_argument("--report", required=True, metavar="MD",
                   help="write the report here (and its CSVs beside it)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.report.endswith(".md"):
        parser.error(f"--report {args.report}: give a Markdown file name ending in .md")
    try:
        reference = parse_variant(args.reference, "--reference")
        variants = [parse_variant(v) for v in args.variant]
        names = [reference.name] + [v.name for v in variants]
        if len(set(names)) != len(names):
            raise AblationError(f"--variant: names must be distinct, got {names}")
    except AblationError as exc:
        parser.error(str(exc))
    rows = [r for v in (reference, *variants) for r in load_rows(v)]
    empty = [v.name for v in (reference, *variants) if not any(r["variant"] == v.name
                                                               for r in rows)]
    if empty:
        print(f"no finished cells yet for: {', '.join(empty)}", file=sys.stderr)
        return 1
    changes = {v.name: setting_changes(reference, v) for v in variants}
    series: dict[str, list[list[float]]] = {}
    for v in (reference, *variants):
        for row in (r for r in rows if r["variant"] == v.name):
            values = evaluation_fitness(v, row)
            if values is not None:
                series.setdefault(v.name, []).append(values)
    budget = int(_settings(reference.out)["budget"])
    bounds = stages(_settings(reference.out), budget)
    command = "python -m ras_deap.compare.ablation " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))
    paths = write_report(Path(args.report), rows, reference=reference, variants=variants,
                         command=command, changes=changes, series=series, bounds=bounds)
    print(Path(args.report).read_text())
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
