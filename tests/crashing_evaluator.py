"""An evaluator that kills its own process for chosen genomes (imported by
spawned workers by module name, so it lives in its own file)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace


class CrashingEvaluator:
    """A deterministic fitness of the genome alone; ``os.abort()`` for every
    genome in ``always``, and once (the first try only) for ``once`` (the
    marker file records that the first try happened)."""

    def __init__(self, always: set[str], once: set[str] = frozenset(),
                 marker_dir: str | Path | None = None) -> None:
        self.always, self.once = set(always), set(once)
        self.marker_dir = Path(marker_dir) if marker_dir else None

    def data(self) -> None:
        return None

    def __call__(self, individual):
        gid = individual.genome.id
        if gid in self.always:
            os.abort()
        if gid in self.once:
            marker = self.marker_dir / f"{gid}.tried"
            if not marker.exists():
                marker.touch()
                os.abort()
        fitness = 1.0 + (int(gid[2:10], 16) % 1000) / 1000
        return SimpleNamespace(fitness=fitness, failure=None,
                               metrics={"fitness": fitness, "accuracy": fitness - 1.0,
                                        "robustness": 0.0, "failed": 0.0})


class AbortingCells:
    """A ``compare`` evaluator factory (picklable, for cells in processes):
    the evaluator of seed ``abort_seed`` kills its process at its first
    training; the others score a deterministic fitness of the genome."""

    def __init__(self, abort_seed: int) -> None:
        self.abort_seed = abort_seed

    def __call__(self, config):
        return _CellEvaluator(config.seed, abort=config.seed == self.abort_seed)


class _CellEvaluator:
    def __init__(self, seed: int, abort: bool) -> None:
        self.seed, self.abort = seed, abort  # remeasure derives its seeds from ``seed``

    def evaluate(self, model, generation, *, seed=None, with_test=False, return_module=False):
        if self.abort:
            os.abort()
        fitness = 1.0 + (int(model.id[2:10], 16) % 1000) / 1000
        metrics = {"fitness": fitness, "accuracy": fitness - 1.0, "robustness": 0.0}
        if with_test:
            metrics["test_accuracy"] = 0.8
        return SimpleNamespace(fitness=fitness, failure=None, metrics=metrics)
