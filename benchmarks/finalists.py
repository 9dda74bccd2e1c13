"""Does re-measuring the top k at the end pick better winners? (issue #27)

Every search in the package returns the architecture with the highest
search fitness: the largest of a few hundred noisy single measurements, so,
to a large part, the luckiest training run. This reads finished ``compare``
cells and replays one different last step on them, without searching again:

1. the *finalists* are the ``--k`` distinct architectures with the highest
   search fitness (a RAS cell: its final representatives and hall of fame,
   from the run's checkpoint; any other cell: its evaluation journal);
2. each finalist is trained once more on a fresh seed (salt ``finalists``),
   under the schedule of the generation it was measured at;
3. the finalists' winner has the best mean of its two measurements (the
   fresh one alone is kept as a secondary pick);
4. both winners, the argmax and the finalists' one, are re-measured exactly as
   ``compare`` reports a cell (``--repeats`` trainings, salt ``compare``), on
   this machine, so the pair differs only in the pick.

    python benchmarks/finalists.py docs/results/nsga2-pilot-digits --methods ras \
        --out docs/results/finalists-digits.json

Prints one markdown row per cell and the paired summary per method; ``--out``
keeps every measurement as JSON, and is read again on a rerun, so an
interrupted run trains only what it had not.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from resumable_jobs import load_done, run_jobs

from ras_deap.atomic import read_json_lines, write_json_atomic
from ras_deap.compare.cells import parse_cell_name, ras_run_dir

FINALISTS_SALT = "finalists"
COMPARE_SALT = "compare"  # the salt of a compare cell's re-measurement (ras_deap.compare.cells)


def _measure(job: tuple) -> dict[str, Any]:
    import torch

    from ras_deap.config import SearchConfig
    from ras_deap.evaluation.remeasure import remeasure
    from ras_deap.genome import Model
    from ras_deap.search import make_evaluator

    torch.set_num_threads(1)
    key, search, genome_json, generation, repeats, salt = job
    evaluator = make_evaluator(SearchConfig.from_stored(search))
    genome = Model.from_json(genome_json)
    measured = remeasure(evaluator, genome, repeats=repeats, generation=generation, salt=salt)
    return {"key": key, "fitness": list(measured.fitness), "mean": measured.mean,
            "seconds": measured.seconds}


def _journal_candidates(cell: Path) -> list[dict[str, Any]]:
    """Every journalled evaluation: id, genome, generation and search fitness."""
    rows = []
    for entry in read_json_lines(cell / "evaluations.jsonl"):
        fitness = entry.get("fitness")
        if entry.get("failure") or fitness is None or not math.isfinite(float(fitness)):
            continue
        rows.append({"id": entry["genome_id"], "genome": json.dumps(entry["genome"]),
                     "generation": int(entry["generation"]), "fitness": float(fitness)})
    return rows


def _ras_candidates(out: Path, cell: Path) -> list[dict[str, Any]]:
    """The final representatives and the hall of fame of a RAS cell's run."""
    from ras_deap.checkpoint import load_checkpoint

    state = load_checkpoint(ras_run_dir(out, cell.name)).state
    members = list(state.population) + list(state.halloffame)
    return [{"id": ind.genome.id, "genome": ind.genome.to_json(None),
             "generation": int(ind.generation), "fitness": float(sum(ind.fitness.values))}
            for ind in members if ind.fitness.valid]


def finalists(candidates: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` distinct architectures with the highest search fitness, best
    first; an architecture measured more than once is ranked by (and keeps the
    generation of) its best measurement, as the search's own argmax does."""
    best: dict[str, dict[str, Any]] = {}
    for row in candidates:
        if row["id"] not in best or row["fitness"] > best[row["id"]]["fitness"]:
            best[row["id"]] = row
    return sorted(best.values(), key=lambda r: -r["fitness"])[:k]


def _cells(out: Path, methods: list[str]) -> list[Path]:
    found = {parsed: p for p in (out / "cells").iterdir()
             if p.is_dir() and (parsed := parse_cell_name(p.name)) is not None
             and parsed[0] in methods and (p / "result.json").is_file()}
    return [found[key] for key in sorted(found)]


def _paired(diffs: list[float]) -> str:
    n = len(diffs)
    if n == 0:
        return "no cells"
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n) if n > 1 else math.nan
    wins = sum(d > 0 for d in diffs)
    ties = sum(d == 0 for d in diffs)
    return f"{mean:+.4f} ± {se:.4f} (SE), {wins} of {n} higher, {ties} the same architecture"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("compare_out", type=Path, help="a compare --out folder")
    p.add_argument("--methods", required=True, help="comma-separated methods whose cells to read")
    p.add_argument("--k", type=int, default=5, help="finalists per cell")
    p.add_argument("--repeats", type=int, default=3, help="trainings of each reported winner")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, help="JSON file for every measurement (resumed from)")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    done = load_done(args.out, "measurements")

    plans = []
    for cell in _cells(args.compare_out, methods):
        result = json.loads((cell / "result.json").read_text())
        search = json.loads((cell / "config.json").read_text())["search"]
        method = result["method"]
        candidates = (_ras_candidates(args.compare_out, cell) if method.startswith("ras")
                      else _journal_candidates(cell))
        top = finalists(candidates, args.k)
        plans.append({"cell": cell.name, "method": method, "seed": result["seed"],
                      "search": search, "top": top, "result": result})

    def key(plan: dict, row: dict, salt: str) -> str:
        return f"{plan['cell']}|{row['id']}|{row['generation']}|{salt}"

    def jobs_for(rows_salts: list[tuple[dict, dict, str, int]]) -> list[tuple]:
        return [(key(plan, row, salt), plan["search"], row["genome"], row["generation"],
                 repeats, salt) for plan, row, salt, repeats in rows_salts
                if key(plan, row, salt) not in done]

    def run(jobs: list[tuple]) -> None:
        run_jobs(_measure, jobs, done, workers=args.workers, out=args.out, field="measurements")

    # phase 1: one fresh training per finalist; the argmax's compare re-measurement
    run(jobs_for([(plan, row, FINALISTS_SALT, 1) for plan in plans for row in plan["top"]]
                 + [(plan, plan["top"][0], COMPARE_SALT, args.repeats) for plan in plans]))
    rows = []
    for plan in plans:
        top = plan["top"]
        fresh = [done[key(plan, row, FINALISTS_SALT)]["fitness"][0] for row in top]
        two = [(row["fitness"] + f) / 2 for row, f in zip(top, fresh, strict=True)]
        plan["pick"] = top[max(range(len(top)), key=lambda i: two[i])]
        plan["pick_fresh"] = top[max(range(len(top)), key=lambda i: fresh[i])]
        plan["fresh"], plan["two"] = fresh, two
    # phase 2: the compare re-measurement of each pick
    run(jobs_for([(plan, plan[p], COMPARE_SALT, args.repeats)
                  for plan in plans for p in ("pick", "pick_fresh")]))

    print("| cell | argmax (search) | stored re-measured | argmax re-measured here | "
          "finalists' pick | its re-measurement | minus argmax | fresh-only pick minus argmax |")
    print("|---|---|---|---|---|---|---|---|")
    summary: dict[str, dict[str, list[float]]] = {}
    for plan in plans:
        top, result = plan["top"], plan["result"]
        argmax = done[key(plan, top[0], COMPARE_SALT)]["mean"]
        pick = done[key(plan, plan["pick"], COMPARE_SALT)]["mean"]
        fresh_pick = done[key(plan, plan["pick_fresh"], COMPARE_SALT)]["mean"]
        same = top[0]["id"] == result["outcome"]["best_genome"]["id"]
        row = {"cell": plan["cell"], "method": plan["method"], "seed": plan["seed"],
               "argmax_id": top[0]["id"], "argmax_is_cell_winner": same,
               "argmax_search": top[0]["fitness"],
               "stored_remeasured": result["remeasured"]["mean"],
               "argmax_remeasured": argmax,
               "finalists": [{"id": r["id"], "generation": r["generation"],
                              "search": r["fitness"], "fresh": f}
                             for r, f in zip(top, plan["fresh"], strict=True)],
               "pick_id": plan["pick"]["id"], "pick_remeasured": pick,
               "fresh_pick_id": plan["pick_fresh"]["id"], "fresh_pick_remeasured": fresh_pick}
        rows.append(row)
        entry = summary.setdefault(plan["method"], {"pick": [], "fresh": []})
        entry["pick"].append(pick - argmax)
        entry["fresh"].append(fresh_pick - argmax)
        flag = "" if same else " (not the cell's winner!)"
        print(f"| {plan['cell']} | {top[0]['id']} {top[0]['fitness']:.4f}{flag} | "
              f"{result['remeasured']['mean']:.4f} | {argmax:.4f} | {plan['pick']['id']} | "
              f"{pick:.4f} | {pick - argmax:+.4f} | {fresh_pick - argmax:+.4f} |")
    print()
    print("| method | finalists' pick minus argmax | fresh-only pick minus argmax |")
    print("|---|---|---|")
    for method, entry in summary.items():
        print(f"| {method} | {_paired(entry['pick'])} | {_paired(entry['fresh'])} |")
    report = {"compare_out": str(args.compare_out), "k": args.k, "repeats": args.repeats,
              "rows": rows, "measurements": list(done.values())}
    if args.out:
        write_json_atomic(args.out, report, indent=1, newline=True)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
