"""Seconds per logged individual on a fresh local SQLite store.

Every evaluated individual becomes one MLflow child run, so this cost is paid
once per evaluation; it should stay a small fraction of even a quick training.

    python benchmarks/bench_tracking.py [--individuals 200] [--no-wal]

(with the package installed, ``pip install -e .``, or ``PYTHONPATH=.`` from the repo root)
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from ras_deap.genome import SPECTRUM_FEATURES, random_model, spectrum
from ras_deap.tracking import IndividualRecord, SearchTracker


def make_records(n: int, seed: int) -> list[IndividualRecord]:
    """Realistic records: a random genome, ~20 evaluator metrics, the spectrum."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        model = random_model(rng)
        metrics = {"accuracy": rng.random(), "robustness": rng.random(),
                   "param_count": float(rng.randint(10_000, 2_000_000)),
                   "train_seconds": rng.random() * 30, "eval_seconds": rng.random(),
                   **{f"robustness_cell_{c}": rng.random() for c in range(15)}}
        records.append(IndividualRecord(
            key=f"g{i // 50}-i{i % 50}", genome_id=model.id, generation=i // 50, index=i % 50,
            cluster=rng.randrange(5), parent_id=None, mutations=["add_layer"],
            fitness=rng.random(), metrics=metrics,
            spectrum=dict(zip(SPECTRUM_FEATURES, spectrum(model), strict=True)),
            genome=model.to_dict(), failure="RuntimeError: diverged" if i % 25 == 7 else None))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=200)
    parser.add_argument("--no-wal", action="store_true",
                        help="leave SQLite in its default rollback-journal mode")
    args = parser.parse_args()
    if args.individuals < 1:
        parser.error("--individuals must be at least 1")
    records = make_records(args.individuals, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlruns' / 'mlflow.db'}"
        started = time.perf_counter()
        tracker = SearchTracker(uri, experiment="bench", sqlite_wal=not args.no_wal)
        tracker.start_search({"population": 50, "evaluation": {"epochs": 1}}, {"seed": "0"})
        setup = time.perf_counter() - started
        times = []
        for rec in records:
            t0 = time.perf_counter()
            tracker.log_individual(rec)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        keys = tracker.logged_keys()
        scan = time.perf_counter() - t0
        tracker.end_search()
    if len(keys) != len(records):
        raise SystemExit(f"expected {len(records)} logged keys, found {len(keys)}")
    mean = statistics.fmean(times)
    print(f"store setup (new database + search run): {setup:.2f} s")
    print(f"logged {len(times)} individuals (wal={not args.no_wal}): "
          f"mean {mean:.4f} s, median {statistics.median(times):.4f} s, "
          f"max {max(times):.4f} s per individual")
    print(f"logged_keys() over {len(keys)} children: {scan:.3f} s")
    print(f"seconds_per_individual={mean:.4f}")


if __name__ == "__main__":
    main()
