"""What a real search hangs on the evolutionary loop's hooks.

:func:`~ras_deap.search.run_search` drives
:func:`~ras_deap.evolution.ea_spectrum_niching`, the loop a DEAP user calls,
with these observers (:class:`~ras_deap.evolution.LoopObserver`), in order:

1. :class:`Stopwatch` ``.opening``: closes the lap of what just happened
   (an evaluation, breeding, selection);
2. :class:`Recorder`: MLflow (every individual, every generation), the
   history the figures are drawn from, and the checkpoint after every event,
   so a killed search loses nothing;
3. :class:`Progress`: the tqdm bars;
4. :class:`Callbacks`: the caller's ``on_individual`` / ``on_generation``
   (an exception from ``on_generation``, e.g. ``optuna.TrialPruned``, ends
   the search run KILLED and stops the search);
5. :class:`Stopwatch` ``.closing``: starts the next lap.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..atomic import write_atomic
from ..checkpoint import Checkpoint, checkpoint_text
from ..config import SearchConfig
from ..contracts import Tracker
from ..evolution import Individual, LoopObserver, SearchState
from .front import front_metrics
from .records import evaluation_window, genetic_parent_key, individual_record, population_metrics

__all__ = ["Callbacks", "Progress", "Recorder", "Stopwatch"]


class Stopwatch:
    """Wall time per kind of work (evaluation, tracking, checkpoint,
    evolution), cumulative over the sessions of a resumed search
    (``earlier``), for the ``seconds_*`` metrics and the summary."""

    def __init__(self, earlier: dict[str, float] | None = None) -> None:
        self.timings = {"evaluation": 0.0, "tracking": 0.0, "checkpoint": 0.0,
                        "evolution": 0.0}
        self.earlier = dict(earlier or {})
        self.started = self.mark = time.perf_counter()
        self.opening, self.closing = _Lap(self), _Restart(self)

    def lap(self, kind: str) -> None:
        now = time.perf_counter()
        self.timings[kind] += now - self.mark
        self.mark = now

    def restart(self) -> None:
        self.mark = time.perf_counter()

    @contextlib.contextmanager
    def timing(self, kind: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[kind] += time.perf_counter() - t

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def so_far(self) -> dict[str, float]:
        """Every kind's time including the earlier sessions', and ``total``."""
        now = {**self.timings, "total": self.elapsed()}
        return {k: self.earlier.get(k, 0.0) + v for k, v in now.items()}


class _Lap(LoopObserver):
    """First observer: the time since the last mark was an evaluation, or
    breeding / selection (evolution)."""

    def __init__(self, watch: Stopwatch) -> None:
        self.watch = watch

    def bred(self, state: SearchState) -> None:
        self.watch.lap("evolution")

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        self.watch.lap("evaluation")

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        self.watch.lap("evolution")


class _Restart(LoopObserver):
    """Last observer: what the observers did is not the next lap's."""

    def __init__(self, watch: Stopwatch) -> None:
        self.watch = watch

    def bred(self, state: SearchState) -> None:
        self.watch.restart()

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        self.watch.restart()

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        self.watch.restart()


class Recorder(LoopObserver):
    """MLflow, the history and the checkpoint. The checkpoint is written by
    the tracker once the writes queued before it are done, so it never names
    an MLflow run the store does not have."""

    def __init__(self, config: SearchConfig, settings: dict[str, Any], state: SearchState,
                 history: list[dict[str, Any]], tracker: Tracker, path: Path,
                 watch: Stopwatch) -> None:
        # settings: config.to_dict(), made once per search, not at every checkpoint
        self.config, self.settings, self.state, self.history = config, settings, state, history
        self.tracker, self.path, self.watch = tracker, path, watch

    def save(self) -> None:
        """The state as it is now, written after the MLflow writes queued before it."""
        with self.watch.timing("checkpoint"):
            text = checkpoint_text(Checkpoint(config=self.settings, state=self.state,
                                              history=self.history))
            self.tracker.after_writes(write_atomic, self.path, text)

    def bred(self, state: SearchState) -> None:
        self.save()  # a resumed search must evaluate these offspring, not breed others

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        with self.watch.timing("tracking"):
            # the parent's run id is looked up when the writer writes this record (in order)
            record = individual_record(state, individual,
                                       parent_key=genetic_parent_key(state, individual),
                                       window=evaluation_window(individual))
            self.tracker.log_individual(record)
            individual.tracking_key = record.key  # kept in checkpoints and the hall of fame
        self.save()

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        metrics = {**population_metrics(state), **front_metrics(self.config, state)}
        self.history.append({"gen": state.generation, "nevals": record["nevals"],
                             "max": record["max"], "mean": record["mean"],
                             "min": record["min"], **metrics})
        with self.watch.timing("tracking"):
            so_far = self.watch.so_far()
            self.watch.timings["writer"] = self.tracker.writer_seconds
            state.extra["timings"] = so_far
            self.tracker.log_generation(state.generation, {
                **metrics, **{f"seconds_{k}": v for k, v in so_far.items()}})
        self.save()


class Progress(LoopObserver):
    """Two tqdm bars: generations, and the evaluations of the current one."""

    def __init__(self, config: SearchConfig, history: list[dict[str, Any]],
                 enabled: bool) -> None:
        self.history, self.enabled = history, enabled
        self.generations = tqdm(total=config.generations + 1, desc="generations", unit="gen",
                                disable=not enabled, initial=len(history), position=0)
        self.evaluations: Any = None

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        if self.evaluations is None:
            done = sum(o.fitness.valid for o in state.offspring) - 1
            self.evaluations = tqdm(total=len(state.offspring), initial=done, leave=False,
                                    position=1, desc=f"gen {state.generation} evaluations",
                                    unit="model", disable=not self.enabled)
        fits = [o.fitness.values[0] for o in state.offspring if o.fitness.valid]
        self.evaluations.set_postfix(best=f"{max(fits):.3f}", mean=f"{np.mean(fits):.3f}")
        self.evaluations.update(1)

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        self._close_evaluations()
        last = self.history[-1]
        self.generations.set_postfix(best=f"{last['best_fitness']:.3f}",
                                     mean=f"{last['mean_fitness']:.3f}",
                                     evals=state.evaluations)
        self.generations.update(1)

    def _close_evaluations(self) -> None:
        if self.evaluations is not None:
            self.evaluations.close()
            self.evaluations = None

    def close(self) -> None:
        self._close_evaluations()
        self.generations.close()


class Callbacks(LoopObserver):
    """The caller's hooks: ``on_individual(individual)`` after each
    evaluation (logged and checkpointed by then), ``on_generation(generation,
    history record)`` after each generation."""

    def __init__(self, tracker: Tracker, history: list[dict[str, Any]],
                 on_individual: Callable[[Individual], None] | None,
                 on_generation: Callable[[int, dict[str, Any]], None] | None) -> None:
        self.tracker, self.history = tracker, history
        self.on_individual, self.on_generation = on_individual, on_generation

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        if self.on_individual is not None:
            self.on_individual(individual)

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        if self.on_generation is None:
            return
        try:
            self.on_generation(state.generation, self.history[-1])
        except BaseException:
            # stopped by the caller (e.g. optuna.TrialPruned): not a failure
            self.tracker.end_search("KILLED")
            raise
