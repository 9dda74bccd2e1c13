"""What a study tunes: named search spaces over :class:`SearchConfig` fields.

Every parameter a space suggests is named after the ``SearchConfig`` field it
sets (``mutations``, ``children``, ...), so a trial's params are directly the
``python -m ras_deap.run`` flags that reproduce it. The one exception is the
spectrum study's ``replicate``, which shifts the seed: comparing two distance
variants on one seed would compare two random draws, not the variants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from ..config import DISTANCES, OPTIONS, SearchConfig
from ..constants import SINGLE_OBJECTIVE_NICHE_CHILDREN
from ..errors import TuneError
from ..options import paper_values

__all__ = ["SearchSpace", "SPACES", "get_space", "PAPER_VALUES"]



@dataclass(frozen=True)
class SearchSpace:
    """A named space: ``suggest(trial, base)`` asks Optuna for values and
    returns the config changes; ``grid(replicates)`` is the full grid when the
    space is small enough to enumerate (then a GridSampler is the default)."""

    name: str
    description: str
    suggest: Callable[[optuna.Trial, SearchConfig], dict[str, Any]]
    tunes: tuple[str, ...]  # the SearchConfig fields the space sets
    grid: Callable[[int], dict[str, list[Any]]] | None = None
    default_sampler: str = "tpe"
    default_pruner: str = "median"


def _max_population(base: SearchConfig) -> int:
    """Initial clusters up to the paper's 25, but never more than half the
    evaluation budget: the rest must be left for children, or the study would
    tune random search."""
    budget = base.max_evaluations or 50
    return max(2, min(25, budget // 2))


def _suggest_evolution(trial: optuna.Trial, base: SearchConfig) -> dict[str, Any]:
    return {
        "mutations": trial.suggest_int("mutations", 1, 10),
        "children": trial.suggest_int("children", 1, 4),
        "population": trial.suggest_int("population", 2, _max_population(base)),
        "layer_limit": trial.suggest_int("layer_limit", 5, 200, log=True),
        "block_limit": trial.suggest_int("block_limit", 5, 200, log=True),
        "subset_size": trial.suggest_int("subset_size", 100, 1000, step=50),
        "full_every": trial.suggest_int("full_every", 1, 10),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
    }


def _suggest_spectrum(trial: optuna.Trial, base: SearchConfig) -> dict[str, Any]:
    distance = trial.suggest_categorical("distance", list(DISTANCES))
    replicate = trial.suggest_int("replicate", 0, 1_000)
    return {"distance": distance, "seed": base.seed + replicate}


def _spectrum_grid(replicates: int) -> dict[str, list[Any]]:
    return {"distance": list(DISTANCES), "replicate": list(range(replicates))}


def _suggest_full(trial: optuna.Trial, base: SearchConfig) -> dict[str, Any]:
    changes = _suggest_evolution(trial, base)
    changes["distance"] = trial.suggest_categorical("distance", list(DISTANCES))
    return changes


def _categorical(trial: optuna.Trial, name: str, choices: tuple[str, ...]) -> Any:
    """``suggest_categorical(name, choices)``, except in a study whose trials
    already drew ``name`` from other choices (made before a choice was added,
    e.g. ``niche_children="tournament"``): it keeps its own, since Optuna
    refuses to change a categorical's choices within a study."""
    for past in trial.study.get_trials(deepcopy=False):
        known = past.distributions.get(name)
        if isinstance(known, optuna.distributions.CategoricalDistribution):
            return trial.suggest_categorical(name, list(known.choices))
    return trial.suggest_categorical(name, list(choices))


def _suggest_learning(trial: optuna.Trial, base: SearchConfig) -> dict[str, Any]:
    """The knobs of a RAS that learns (issue #27): selection pressure across
    niches, noise-aware representatives (re-measured, or aged out of their
    niche after 1-3 generations), mutation strength and cheap
    screening of children (epochs below the schedule's; the promoted
    fraction only when screening). Compare trials at equal compute with
    ``--budget-epochs``: at equal evaluations screening could only lose."""
    changes = {
        "mutations": trial.suggest_int("mutations", 1, 10),
        "niche_children": _categorical(trial, "niche_children",
                                       SINGLE_OBJECTIVE_NICHE_CHILDREN),
        "remeasure_every": trial.suggest_int("remeasure_every", 0, 3),
        "niche_age": trial.suggest_int("niche_age", 0, 3),
        "screen_epochs": trial.suggest_int("screen_epochs", 0, max(0, min(5, base.max_epochs - 1))),
    }
    if changes["screen_epochs"]:
        changes["screen_keep"] = trial.suggest_float("screen_keep", 0.1, 0.5)
    return changes


_EVOLUTION = ("mutations", "children", "population", "layer_limit", "block_limit",
              "subset_size", "full_every", "lr")

SPACES: dict[str, SearchSpace] = {
    "evolution": SearchSpace(
        "evolution",
        "RAS's evolution hyperparameters: mutations per child, children per cluster, initial "
        "clusters, layer/block subpopulation limits, subset size, full-training period, lr",
        _suggest_evolution, tunes=_EVOLUTION),
    "spectrum": SearchSpace(
        "spectrum",
        "spectrum distance of the niching (raw Euclidean vs per-feature normalised), each "
        "variant run on the same seeds (replicates)",
        _suggest_spectrum, tunes=("distance", "seed"), grid=_spectrum_grid,
        default_sampler="grid", default_pruner="none"),
    "learning": SearchSpace(
        "learning",
        "what makes RAS learn: children shared equally, by niche rank or by tournament, "
        "re-measured representatives (every 1-3 generations, or never), representatives aged "
        "out of their niche (after 1-3 generations, or never), mutations per child, screening "
        "of children (epochs, promoted fraction)",
        _suggest_learning, tunes=("mutations", "niche_children", "remeasure_every",
                                  "niche_age", "screen_epochs", "screen_keep")),
    "full": SearchSpace(
        "full", "the evolution space plus the spectrum distance as a categorical parameter",
        _suggest_full, tunes=(*_EVOLUTION, "distance")),
}


# The paper's values of the parameters tuned here (the schema's paper=; lr and the
# distance have none: the paper does not state them), for reference in reports.
PAPER_VALUES: dict[str, Any] = {
    name: value for name, value in paper_values(OPTIONS).items()
    if any(name in space.tunes for space in SPACES.values())}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise TuneError(f"space={name!r}: unknown search space; choose one of "
                        f"{', '.join(sorted(SPACES))}")
    return SPACES[name]
