"""Resumable training jobs for the benchmark scripts.

Each finished job is kept, under its key, in the script's ``--out`` JSON file
(written atomically after every job), so a benchmark cut after an hour of
trainings resumes where it stopped instead of training everything again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ras_deap.atomic import write_json_atomic
from ras_deap.executor import Crash, ProcessPool

__all__ = ["load_done", "run_jobs"]


def load_done(out: Path | None, field: str) -> dict[str, dict[str, Any]]:
    """The finished jobs recorded under ``field`` of ``out``, by key (none
    without the file)."""
    if out is None or not out.is_file():
        return {}
    return {m["key"]: m for m in json.loads(out.read_text())[field]}


def run_jobs(fn: Callable[[Any], dict[str, Any]], jobs: Sequence[Any],
             done: dict[str, dict[str, Any]], *, workers: int, out: Path | None,
             field: str) -> None:
    """Run ``jobs`` through ``fn`` in the package's one process pool, adding
    each result (a dict with its ``key``) to ``done`` and to ``out`` as it
    finishes. A job that loses its process ends the benchmark: its numbers
    would be missing from the statistics, not zero."""
    if not jobs:
        return
    with ProcessPool(workers, name="bench") as pool:
        for result in pool.map(fn, jobs):
            if isinstance(result, Crash):
                sys.exit(f"a training lost its process: {result}")
            done[result["key"]] = result
            if out:
                write_json_atomic(out, {field: list(done.values())}, indent=1, newline=True)
