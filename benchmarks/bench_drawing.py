"""What an architecture SVG would cost on every child run, against an evaluation.

    python benchmarks/bench_drawing.py                  # 40 drawings, 10 evaluations
    python benchmarks/bench_drawing.py --drawings 100 --evaluations 20

The genomes are the evaluated individuals of a stored comparison cell
(``docs/results/table2-digits-cells``: regularized evolution, seed 0, the
default budget), so their sizes are those a default search meets. For each
of ``--drawings`` of them (spread evenly over the journal) it times drawing
``architecture.svg`` and logging it as an artifact of an MLflow child run on
a fresh local SQLite store (the tracker's store); then it trains
``--evaluations`` of them exactly as the default digits search does (one
torch thread, the subset schedule) and times those. Both run in this
process, one after the other, so both see the same machine load; CPU time
(``time.process_time``) does not depend on other jobs at all.

The rule (issue #29): an SVG on every child only if drawing + logging costs
less than 5% of the median evaluation. The result and the decision are in
:mod:`ras_deap.search.final`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from ras_deap.atomic import read_json_lines
from ras_deap.genome import Model

JOURNAL = Path(__file__).resolve().parent.parent / (
    "docs/results/table2-digits-cells/cells/regularized-seed0/evaluations.jsonl")


def genomes(n: int, journal: Path = JOURNAL) -> list[Model]:
    rows = read_json_lines(journal)
    step = max(1, len(rows) // n)
    return [Model.from_dict(row["genome"]) for row in rows[::step][:n]]


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_drawings(models: list[Model]) -> list[tuple[float, float]]:
    from mlflow import MlflowClient

    from ras_deap.report import draw_model
    from ras_deap.tracking import SearchTracker

    with tempfile.TemporaryDirectory() as tmp:
        tracker = SearchTracker(f"sqlite:///{tmp}/mlflow.db", experiment="bench")
        tracker.start_search({"bench": 1}, {})
        client = MlflowClient(tracker.tracking_uri)
        draw_model(models[0], Path(tmp) / "warm.svg")  # fonts, imports: paid once per search
        times = []
        for i, model in enumerate(models):
            run = client.create_run(tracker.experiment_id, run_name=f"child-{i}").info.run_id
            path = Path(tmp) / f"{i}" / "architecture.svg"

            def draw_and_log(model=model, path=path, run=run) -> None:
                draw_model(model, path)
                client.log_artifact(run, str(path))

            times.append(timed(draw_and_log))
        tracker.end_search()
    return times


def bench_evaluations(models: list[Model]) -> list[tuple[float, float]]:
    from ras_deap.config import SearchConfig
    from ras_deap.search import make_evaluator

    evaluator = make_evaluator(SearchConfig())
    evaluator.data()
    return [timed(lambda model=model: evaluator.evaluate(model, 1)) for model in models]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=40)
    parser.add_argument("--evaluations", type=int, default=10)
    args = parser.parse_args()
    models = genomes(max(args.drawings, args.evaluations))
    layers = [len(m.layers()) for m in models]
    print(f"{len(models)} genomes from {JOURNAL.parent.name}: {min(layers)}-{max(layers)} "
          f"layers (median {statistics.median(layers)})")
    draws = bench_drawings(models[:args.drawings])
    evals = bench_evaluations(models[:args.evaluations])
    for name, rows in (("draw + log SVG", draws), ("evaluation", evals)):
        wall, cpu = zip(*rows, strict=True)
        print(f"{name}: median {statistics.median(wall):.3f} s wall, "
              f"{statistics.median(cpu):.3f} s CPU (n={len(rows)}, max "
              f"{max(wall):.3f} s wall)")
    ratio_wall = statistics.median(w for w, _ in draws) / statistics.median(w for w, _ in evals)
    ratio_cpu = statistics.median(c for _, c in draws) / statistics.median(c for _, c in evals)
    print(f"drawing + logging / evaluation (medians): {ratio_wall:.1%} wall, "
          f"{ratio_cpu:.1%} CPU; every child: {'yes' if ratio_cpu < 0.05 else 'no'} "
          "(rule: < 5%)")


if __name__ == "__main__":
    main()
