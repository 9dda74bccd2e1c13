"""Issue #27's goals for a RAS that learns, read from finished comparison cells.

    python benchmarks/ras_learning_goals.py \\
        --variant "ras=docs/results/table2-digits-cells:ras" \\
        --cells docs/results/table2-digits-cells

``--variant NAME=FOLDER[:METHOD]`` is the search under test; ``--cells`` is the
reference comparison holding ``ras``, ``random``, ``regularized`` and ``tpe``
(the same settings and seeds, so seeds pair). With ``--screened`` and
``--unscreened`` (two folders at equal CPU time) the screening goal is read
too. Each goal prints ``met`` or ``MISSED`` with the margin; the exit code is 0
only when all are met. Reads stored results only: it trains nothing.

The goals (issue #27):

* learning: the variant's drift (mean fitness of the last stretch of the
  budget minus the first, the stretches of the reference's generations) is at
  least regularized evolution's;
* winning: its re-measured fitness beats RAS, random search and regularized
  evolution on at least 4 of 5 paired seeds each, its mean is at least TPE's,
  and its bank error and direct-attack error are no worse than TPE's;
* cheap screening: at equal CPU time the screened search examines at least
  twice as many candidates, and its winner's re-measured fitness is at least
  the unscreened one's (paired mean difference >= 0).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from typing import Any

from ras_deap.compare.ablation import (
    Variant,
    _settings,
    evaluation_fitness,
    load_rows,
    parse_variant,
    stages,
    stretch_gain,
)
from ras_deap.flags import OptionParser

Goal = tuple[str, bool | None, str]  # what, met (None: not measurable here), the numbers


def _by_seed(rows: Sequence[dict[str, Any]], metric: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows
            if r.get(metric) is not None and float(r[metric]) == float(r[metric])}


def drift(variant: Variant, rows: Sequence[dict[str, Any]], bounds: list[tuple[int, int]]
          ) -> float:
    """Mean over seeds of (mean fitness of the last stretch - of the first)."""
    gains = [stretch_gain(evaluation_fitness(variant, row) or [], bounds) for row in rows]
    gains = [g for g in gains if g is not None]
    return statistics.fmean(gains) if gains else float("nan")


def learning_goals(variant: Variant, cells: str) -> list[Goal]:
    ref = {m: parse_variant(f"{m}={cells}:{m}", "--cells") for m in
           ("ras", "random", "regularized", "tpe")}
    rows = {name: load_rows(v) for name, v in {**ref, "variant": variant}.items()}
    settings = _settings(variant.out)
    bounds = stages(settings, int(settings["budget"]))
    goals: list[Goal] = []
    mine, theirs = drift(variant, rows["variant"], bounds), drift(ref["regularized"],
                                                                  rows["regularized"], bounds)
    goals.append(("learning: drift >= regularized evolution's",
                  None if mine != mine or theirs != theirs else mine >= theirs,
                  f"{mine:+.3f} vs {theirs:+.3f} ({mine - theirs:+.3f})"))
    fit = _by_seed(rows["variant"], "remeasured_fitness")
    for other in ("ras", "random", "regularized"):
        if (ref[other].out, ref[other].method) == (variant.out, variant.method):
            continue  # the variant is this method
        theirs_fit = _by_seed(rows[other], "remeasured_fitness")
        seeds = sorted(set(fit) & set(theirs_fit))
        wins = sum(fit[s] > theirs_fit[s] for s in seeds)
        goals.append((f"winning: re-measured fitness beats {other} on >= 4 of 5 seeds",
                      wins >= 4 and len(seeds) >= 5, f"{wins} of {len(seeds)} seeds"))
    for metric, higher, label in (("remeasured_fitness", True, "re-measured fitness"),
                                  ("adv_error", False, "bank error"),
                                  ("er_direct_mean", False, "direct-attack error")):
        a, b = _by_seed(rows["variant"], metric), _by_seed(rows["tpe"], metric)
        ma, mb = (statistics.fmean(a.values()) if a else float("nan"),
                  statistics.fmean(b.values()) if b else float("nan"))
        met = ma >= mb if higher else ma <= mb
        goals.append((f"winning: {label} no worse than TPE's", met,
                      f"{ma:.4f} vs {mb:.4f} ({ma - mb:+.4f}; {len(a)} and {len(b)} seeds)"))
    return goals


def screening_goals(screened: Variant, unscreened: Variant) -> list[Goal]:
    rs, ru = load_rows(screened), load_rows(unscreened)
    es, eu = _by_seed(rs, "evaluations"), _by_seed(ru, "evaluations")
    ratio = statistics.fmean(es.values()) / statistics.fmean(eu.values())
    fs, fu = _by_seed(rs, "remeasured_fitness"), _by_seed(ru, "remeasured_fitness")
    seeds = sorted(set(fs) & set(fu))
    diff = statistics.fmean(fs[s] - fu[s] for s in seeds) if seeds else float("nan")
    return [("cheap screening: >= 2x candidates at equal CPU time", ratio >= 2,
             f"{ratio:.2f}x"),
            ("cheap screening: winner re-measured >= the unscreened one's (paired)",
             diff >= 0, f"{diff:+.4f} over {len(seeds)} seeds")]


def main(argv: Sequence[str] | None = None) -> int:
    p = OptionParser(prog="python benchmarks/ras_learning_goals.py",
                     description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True, metavar="NAME=FOLDER[:METHOD]")
    p.add_argument("--cells", required=True, metavar="FOLDER",
                   help="the reference comparison (ras, random, regularized, tpe)")
    p.add_argument("--screened", metavar="NAME=FOLDER[:METHOD]")
    p.add_argument("--unscreened", metavar="NAME=FOLDER[:METHOD]")
    args = p.parse_args(argv)
    goals = learning_goals(parse_variant(args.variant), args.cells)
    if args.screened and args.unscreened:
        goals += screening_goals(parse_variant(args.screened, "--screened"),
                                 parse_variant(args.unscreened, "--unscreened"))
    for what, met, numbers in goals:
        verdict = {True: "met", False: "MISSED", None: "NOT MEASURED"}[met]
        print(f"goal {verdict}: {what}: {numbers}")
    if any(met is None for _, met, _ in goals):
        print("NOT MEASURED: these cells store no per-evaluation fitness (no journal, no "
              "curve, and their MLflow store is not here)")
    return 0 if all(met for _, met, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
