"""What a comparison's cells actually cost, read from what they committed.

A comparison's budget counts trained networks, but a network's cost depends
on what the search learns to propose: on mnist10k the searches that learn
move to networks ten times larger than random search's, so the issue's
estimate (9 CPU-s per network) was off by an order of magnitude (#28). This
reads a ``compare`` folder without training anything and prints, per cell,
the evaluations journalled, their own wall time, the parameters of the
networks at the start and at the end of the search, and the post-phase
(re-measurement, re-training, assessment) of finished cells; then the
sessions' wall and CPU time, and what the unfinished cells would take at the
finished cells' pace.

    python benchmarks/cell_costs.py docs/results/table2-mnist10k-cells \
        --methods random,tpe,regularized,ras --seeds 5

Every time is the evaluations' or the cells' own wall time on one core
(one torch thread each), on whichever machine ran it; a RAS cell keeps no
journal, and its evaluations and their summed time come from its
checkpoint (``ras_runs/<cell>/checkpoint.json``), so it has no parameter
medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from ras_deap.atomic import read_json_lines
from ras_deap.checkpoint import checkpoint_evaluations, checkpoint_timings
from ras_deap.compare.cells import ras_run_dir

__all__ = ["cell_costs", "main"]


def _median_parameters(entries: list[dict[str, Any]]) -> float:
    values = [float(e["metrics"]["parameters"]) for e in entries
              if isinstance(e.get("metrics"), dict) and "parameters" in e["metrics"]]
    return statistics.median(values) if values else float("nan")


def cell_costs(out: Path, stretch: int = 70,
               cells: list[str] | None = None) -> list[dict[str, Any]]:
    """One record per cell (see the module docstring): ``cells`` by name
    (``method-seedN``; a cell not started has no folder in git), else every
    cell folder under ``out/cells``."""
    rows = []
    names = cells if cells is not None else sorted(
        p.name for p in (out / "cells").iterdir() if p.is_dir())
    for name in names:
        folder = out / "cells" / name
        journal = read_json_lines(folder / "evaluations.jsonl")
        result_path = folder / "result.json"
        result = (json.loads(result_path.read_text(encoding="utf-8"))
                  if result_path.is_file() else None)
        row: dict[str, Any] = {"cell": name, "method": name.rpartition("-seed")[0],
                               "finished": result is not None}
        if journal:
            seconds = [float(e.get("seconds") or 0.0) for e in journal]
            k = min(stretch, len(journal) // 2) or len(journal)
            row.update(evaluations=len(journal), evaluation_seconds=sum(seconds),
                       parameters_first=_median_parameters(journal[:k]),
                       parameters_last=_median_parameters(journal[-k:]))
        else:  # a RAS cell: its checkpoint counts evaluations and sums their time
            run_dir = ras_run_dir(out, name)
            row["evaluations"] = (result["outcome"]["evaluations"] if result
                                  else checkpoint_evaluations(run_dir)) or 0
            if (seconds := checkpoint_timings(run_dir).get("evaluation")) is not None:
                row["evaluation_seconds"] = seconds
        if result:
            assessment = result.get("assessment") or {}
            row.update(remeasure_seconds=float(result["remeasured"]["seconds"]),
                       retrain_seconds=float(result["retrain_seconds"]),
                       assess_seconds=sum(float(r.get("seconds") or 0.0)
                                          for r in assessment.get("rows", [])),
                       cell_cpu_seconds=float(result.get("cpu_seconds", float("nan"))),
                       winner_parameters=float(result["final"].get("parameters", float("nan"))))
        rows.append(row)
    return rows


def _hours(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 3600:.1f} h"


def _millions(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value / 1e6:.1f} M"


def _state(row: dict[str, Any]) -> str:
    return "" if row["finished"] else " (running)" if row["evaluations"] else " (not started)"


def _post(row: dict[str, Any]) -> float | None:
    if not row["finished"]:
        return None
    return row["remeasure_seconds"] + row["retrain_seconds"] + row["assess_seconds"]


def format_costs(rows: list[dict[str, Any]], sessions: list[dict[str, Any]], budget: int,
                 stretch: int) -> str:
    lines = [f"| cell | evaluations | mean s per evaluation | evaluation time | median "
             f"parameters, first {stretch} to last {stretch} | post-phase (re-measure + "
             "re-train + assess) | winner's parameters |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        seconds = r.get("evaluation_seconds")
        mean = f"{seconds / r['evaluations']:.0f}" if seconds and r["evaluations"] else "n/a"
        post = _post(r)
        lines.append(
            f"| {r['cell']}{_state(r)} | {r['evaluations']} | "
            f"{mean} | {_hours(seconds)} | {_millions(r.get('parameters_first'))} to "
            f"{_millions(r.get('parameters_last'))} | "
            + (f"{_hours(post)} ({_hours(r['remeasure_seconds'])} + "
               f"{_hours(r['retrain_seconds'])} + {_hours(r['assess_seconds'])})"
               if post is not None else "") + f" | {_millions(r.get('winner_parameters'))} |")
    wall = sum(float(s.get("seconds", 0.0)) for s in sessions)
    cpu = [float(s["cpu_seconds"]) for s in sessions if "cpu_seconds" in s]
    lines += ["", f"Sessions: {len(sessions)} recorded, {_hours(wall)} of wall time"
              + (f"; {len(cpu)} record their CPU time, {_hours(sum(cpu))}" if cpu else
                 "; none records its CPU time") + "."]
    lines.append(_left(rows, budget))
    return "\n".join(lines)


def _left(rows: list[dict[str, Any]], budget: int) -> str:
    """The unfinished cells' time at their method's measured pace: the mean
    time per evaluation (of its finished searches where it has some) for the
    evaluations still to run, plus the mean post-phase of the method's
    finished cells; what has no measured pace yet is named, not guessed."""
    eval_pace: dict[str, list[float]] = {}
    post_pace: dict[str, list[float]] = {}
    # a whole search's pace where a method has one: a search's first evaluations, of small
    # random networks, are the cheapest, so a running cell's pace is too low
    whole = {r["method"] for r in rows if r["finished"] and r.get("evaluation_seconds")}
    for r in rows:
        if (r.get("evaluation_seconds") and r["evaluations"]
                and (r["finished"] or r["method"] not in whole)):
            eval_pace.setdefault(r["method"], []).append(r["evaluation_seconds"]
                                                          / r["evaluations"])
        if (post := _post(r)) is not None:
            post_pace.setdefault(r["method"], []).append(post)
    left, missing = 0.0, set()
    for r in rows:
        if r["finished"]:
            continue
        if r["method"] in eval_pace:
            left += max(budget - r["evaluations"], 0) * statistics.mean(eval_pace[r["method"]])
        elif r["evaluations"] < budget:
            missing.add(f"{r['method']}'s searches")
        if r["method"] in post_pace:
            left += statistics.mean(post_pace[r["method"]])
        else:
            missing.add(f"{r['method']}'s post-phases")
    return (f"Left at the measured pace (each method's mean time per evaluation, "
            f"plus its finished cells' mean post-phase; one core each): about {_hours(left)} "
            "of cell time" + (f", without {', '.join(sorted(missing))}, which have no "
                              "measured pace yet" if missing else "") + ".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a compare --out folder")
    parser.add_argument("--stretch", type=int, default=70,
                        help="evaluations at each end for the parameter medians (default 70)")
    parser.add_argument("--methods", help="the comparison's --methods, so the cells not "
                        "started count in what is left (default: the cell folders present)")
    parser.add_argument("--seeds", type=int, default=5, help="with --methods: its --seeds")
    parser.add_argument("--seed", type=int, default=0, help="with --methods: its first --seed")
    args = parser.parse_args(argv)
    manifest = args.out / "comparison.json"
    if not manifest.is_file():
        print(f"error: {args.out} has no comparison.json: give a python -m ras_deap.compare "
              "--out folder", file=sys.stderr)
        return 2
    data = json.loads(manifest.read_text(encoding="utf-8"))
    budget = int(data["settings"]["budget"])
    cells = None if not args.methods else [
        f"{method}-seed{seed}" for seed in range(args.seed, args.seed + args.seeds)
        for method in args.methods.split(",")]
    print(format_costs(cell_costs(args.out, args.stretch, cells), data.get("sessions", []),
                       budget, args.stretch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
