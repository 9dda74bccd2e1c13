"""What the search records about individuals and generations (for MLflow,
the figures and the checkpoint), and the schedule it registers."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import SearchConfig, training_values
from ..evolution import Individual, SearchState, cached_spectrum
from ..genome import SPECTRUM_FEATURES

__all__ = ["Timed", "evaluation_window", "genetic_parent_key", "individual_record",
           "population_metrics", "train_config_of", "train_size_of", "training_cost",
           "training_schedule"]

# wall-clock end (epoch seconds) of an evaluation, added to its metrics by the
# worker and taken out again as soon as the main process receives the result
_ENDED_AT = "_ras_deap_evaluation_ended_at"


class Timed:
    """The evaluator as ``toolbox.evaluate``, noting when each evaluation
    ended (in the worker, where it ran), so the individual's MLflow run
    spans the real evaluation and not the moment it was logged."""

    def __init__(self, evaluate: Callable[[Any], Any]) -> None:
        self.evaluate = evaluate

    def __call__(self, individual: Any) -> Any:
        result = self.evaluate(individual)
        metrics = getattr(result, "metrics", None)
        if isinstance(metrics, dict):
            metrics[_ENDED_AT] = time.time()
        return result


def evaluation_window(ind: Individual) -> tuple[float | None, float | None]:
    """``(start, end)`` of ``ind``'s evaluation in epoch seconds (the start is
    the end minus the evaluator's ``eval_seconds``), removing the end mark
    from its metrics."""
    end = ind.metrics.pop(_ENDED_AT, None)
    if end is None:
        return None, None
    seconds = ind.metrics.get("eval_seconds")
    return (float(end) - float(seconds) if seconds is not None else None), float(end)


def train_config_of(config: SearchConfig, evaluator: Any) -> Any:
    """The :class:`~ras_deap.evaluation.TrainConfig` the evaluator trains with
    (its ``train_config``; one built from ``config``'s training options when
    it has none)."""
    train = getattr(evaluator, "train_config", None)
    if train is None:
        from ..evaluation import TrainConfig

        train = TrainConfig(**training_values(config))
    return train


def train_size_of(evaluator: Any, train: Any) -> int:
    """The size of the evaluator's training split (``train.subset_size`` for
    an evaluator without data, as stand-ins in tests)."""
    data = getattr(evaluator, "data", None)
    dataset = getattr(data() if callable(data) else None, "dataset", None)
    return len(dataset.train) if dataset is not None else train.subset_size


def training_schedule(config: SearchConfig, evaluator: Any) -> Callable[[int], str]:
    """``generation -> "full" | "subset"``: the schedule the evaluator trains
    with (:func:`train_config_of`), registered as ``toolbox.schedule``."""
    train = train_config_of(config, evaluator)
    return lambda generation: "full" if train.is_full_generation(generation) else "subset"


def training_cost(config: SearchConfig, evaluator: Any) -> Callable[[Any], float]:
    """``individual -> worst-case training cost`` in epoch-equivalents
    (``TrainConfig.worst_case_cost``, the unit of the evaluator's
    ``cost_epochs`` metric), registered as ``toolbox.cost`` so a compute
    budget is never overspent. The training split's size is read once, when
    a budget first asks."""
    train = train_config_of(config, evaluator)
    size = functools.cache(lambda: train_size_of(evaluator, train))

    def cost(ind: Any) -> float:
        return train.worst_case_cost(int(ind.generation), size(), ind.epochs)

    return cost


def population_metrics(state: SearchState) -> dict[str, float]:
    """Per-generation metrics of the cluster representatives, for MLflow and
    the figures (the logbook has the fitness statistics)."""
    from ..report import architecture_ranges, architecture_statistics

    pop = state.population
    fitness = np.array([ind.fitness.values[0] for ind in pop])
    best = pop[int(np.argmax(fitness))]
    out: dict[str, float] = {
        "best_fitness": float(fitness.max()),
        "mean_fitness": float(fitness.mean()),
        "min_fitness": float(fitness.min()),
        "evaluations": float(state.evaluations),
        "cost_epochs": float(state.extra.get("cost_epochs", 0.0)),
        "models": float(len(pop)),
        "layer_subpopulation": float(len(state.pool.layers)),
        "block_subpopulation": float(len(state.pool.blocks)),
    }
    for key in ("accuracy", "robustness"):
        values = [ind.metrics.get(key, 0.0) for ind in pop]
        # the fittest's accuracy, not the highest accuracy (that is max_accuracy)
        out[f"fittest_{key}"] = float(best.metrics.get(key, 0.0))
        out[f"mean_{key}"] = float(np.mean(values))
        out[f"max_{key}"] = float(np.max(values))
        out[f"min_{key}"] = float(np.min(values))
    spectra = np.array([cached_spectrum(ind.genome) for ind in pop], dtype=float).mean(axis=0)
    out.update({f"spectrum_{n}": float(v) for n, v in zip(SPECTRUM_FEATURES, spectra,
                                                        strict=True)})
    out.update(architecture_statistics([ind.genome for ind in pop]))
    out.update(architecture_ranges([ind.genome for ind in pop]))
    return out


def genetic_parent_key(state: SearchState, ind: Individual) -> str | None:
    """The tracking key of the representative ``ind`` was mutated from (the
    one of its cluster, still in the population while its generation is
    evaluated), or None (generation 0, a re-evaluation, a representative not logged to MLflow)."""
    if ind.parent_id is None or ind.reevaluation_of is not None:
        return None
    cluster = ind.cluster
    if cluster is None or not 0 <= cluster < len(state.population):
        return None
    rep = state.population[cluster]
    return rep.tracking_key if rep.genome.id == ind.parent_id else None


def _fidelity_params(ind: Individual) -> dict[str, str]:
    """Screening params of a child run, only when screening ran (so runs
    without it log exactly what they did before)."""
    if ind.epochs is not None:
        return {"fidelity": "screen", "screen_epochs": str(ind.epochs)}
    promoted = ind.promoted_from
    return {} if promoted is None else {"fidelity": "full", "promoted_from": f"i{promoted}"}


def individual_record(state: SearchState, ind: Individual, *,
                      parent_key: str | None = None,
                      window: tuple[float | None, float | None] = (None, None)) -> Any:
    """The tracking record of an evaluated offspring (key ``g<generation>-i<index>``)."""
    from ..tracking import IndividualRecord

    index = next(i for i, o in enumerate(state.offspring) if o is ind)
    # a representative re-evaluated under a new schedule is not a child: mark it
    reevaluation = ind.reevaluation_of is not None
    return IndividualRecord(
        key=f"g{ind.generation}-i{index}",
        genome_id=ind.genome.id,
        generation=ind.generation,
        index=index,
        cluster=ind.cluster,
        parent_id=ind.parent_id,
        mutations=list(ind.mutations),
        fitness=float(ind.fitness.values[0]),
        metrics={k: float(v) for k, v in ind.metrics.items()},
        spectrum=dict(zip(SPECTRUM_FEATURES, map(float, cached_spectrum(ind.genome)),
                          strict=True)),
        genome=ind.genome.to_dict(),
        failure=ind.failure,
        extra_params={"schedule": ind.schedule,
                      "reevaluation": "true" if reevaluation else "false",
                      **_fidelity_params(ind)},
        parent_key=parent_key,
        started_at=window[0],
        ended_at=window[1],
    )
