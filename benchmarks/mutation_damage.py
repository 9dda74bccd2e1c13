"""How much does one RAS child lose against its parent? (issue #27)

A search learns only through children that beat their parents. This takes
the winners of finished ``compare`` cells as parents, breeds ``--children``
children of each with the real toolbox (``toolbox.mutate``, ``k`` random
applicable mutations from the 13, over the gene pool of a RAS generation 0
plus the parent's own layers and blocks), trains each child once, and
compares it with its parent's re-measured fitness (``--repeats`` trainings,
salt ``compare``, on this machine). Per kind of parent and ``k`` it reports
the mean child - parent, the share of children above their parent, and the
share that failed to train.

    python benchmarks/mutation_damage.py \
        --parents ras=docs/results/table2-digits-cells:ras \
        --parents chain=docs/results/chain-space-digits:random_chain \
        --k 1,5 --children 6 --out mutation-damage.json

``--out`` keeps every training and is read again on a rerun.
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

from ras_deap.atomic import write_json_atomic
from ras_deap.seeding import derive_seed


def _train(job: tuple) -> dict[str, Any]:
    import torch

    from ras_deap.config import SearchConfig
    from ras_deap.evaluation.remeasure import remeasure
    from ras_deap.genome import Model
    from ras_deap.search import make_evaluator

    torch.set_num_threads(1)
    key, search, genome_json, generation, repeats, salt = job
    evaluator = make_evaluator(SearchConfig.from_stored(search))
    measured = remeasure(evaluator, Model.from_json(genome_json), repeats=repeats,
                         generation=generation, salt=salt)
    return {"key": key, "fitness": list(measured.fitness), "mean": measured.mean,
            "failures": measured.failures}


def _children(parent: Any, seed: int, k: int, n: int) -> list[Any]:
    """``n`` children of ``parent`` with ``k`` mutations each (pure, seeded)."""
    from ras_deap.evolution import build_toolbox, initial_state, make_individual
    from ras_deap.genome.pool import GenePool

    state = initial_state(seed, 25)
    state.pool = GenePool.from_models([parent] + [ind.genome for ind in state.offspring])
    toolbox = build_toolbox(state, n_mutations=k)
    out = []
    for _ in range(n):
        child, = toolbox.mutate(make_individual(parent, generation=0, cluster=0, eval_seed=0))
        out.append(child.genome)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parents", action="append", required=True, metavar="NAME=FOLDER:METHOD",
                   help="the winners of a compare folder's cells of METHOD (repeat)")
    p.add_argument("--k", default="1,5", help="mutations per child, comma-separated")
    p.add_argument("--children", type=int, default=6, help="children per parent and k")
    p.add_argument("--repeats", type=int, default=3, help="trainings of each parent")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, help="JSON file for every training (resumed from)")
    args = p.parse_args(argv)
    from ras_deap.genome import Model

    ks = [int(k) for k in args.k.split(",")]
    done = load_done(args.out, "trainings")
    plans = []
    for spec in args.parents:
        name, _, rest = spec.partition("=")
        folder, _, method = rest.rpartition(":")
        for cell in sorted(Path(folder, "cells").glob(f"{method}-seed*")):
            result = json.loads((cell / "result.json").read_text())
            search = json.loads((cell / "config.json").read_text())["search"]
            parent = Model.from_dict(result["outcome"]["best_genome"])
            generation = int(result["outcome"]["best_generation"])
            seed = int(result["seed"])
            jobs = [(f"{cell.name}|parent", search, parent.to_json(None), generation,
                     args.repeats, "compare")]
            children = {}
            for k in ks:
                kids = _children(parent, derive_seed(seed, "mutation-damage", k), k,
                                 args.children)
                children[k] = [kid.id for kid in kids]
                jobs += [(f"{cell.name}|k{k}|{i}|{kid.id}", search, kid.to_json(None),
                          generation, 1, f"mutation-damage-{i}") for i, kid in enumerate(kids)]
            plans.append({"name": name, "cell": cell.name, "jobs": jobs, "children": children})

    todo = [job for plan in plans for job in plan["jobs"] if job[0] not in done]
    run_jobs(_train, todo, done, workers=args.workers, out=args.out, field="trainings")

    stats: dict[tuple[str, int], list[tuple[float, bool]]] = {}
    for plan in plans:
        parent = done[plan["jobs"][0][0]]["mean"]
        for job in plan["jobs"][1:]:
            k = int(job[0].split("|")[1][1:])
            trained = done[job[0]]
            stats.setdefault((plan["name"], k), []).append(
                (trained["mean"] - parent, bool(trained["failures"])))
    print("| parents | mutations per child | children | child minus parent (mean ± SE) | "
          "above the parent | failed |")
    print("|---|---|---|---|---|---|")
    summary = []
    for (name, k), rows in stats.items():
        diffs = [d for d, _ in rows]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs))
        row = {"parents": name, "k": k, "children": len(rows), "mean": statistics.fmean(diffs),
               "se": se, "above": sum(d > 0 for d in diffs) / len(rows),
               "failed": sum(f for _, f in rows) / len(rows)}
        summary.append(row)
        print(f"| {name} | {k} | {len(rows)} | {row['mean']:+.4f} ± {se:.4f} | "
              f"{row['above']:.0%} | {row['failed']:.0%} |")
    report = {"summary": summary, "plans": [{k: v for k, v in plan.items() if k != "jobs"}
                                            for plan in plans],
              "trainings": list(done.values())}
    if args.out:
        write_json_atomic(args.out, report, indent=1, newline=True)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
