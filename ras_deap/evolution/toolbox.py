"""Build the DEAP toolbox of a RAS search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from deap import base

from .algorithm import SearchState
from .individual import ensure_creator
from .limits import Limits
from .multiobjective import multiobjective_select
from .mutations import MUTATIONS
from .niching import DISTANCES, sel_spectrum_niching
from .objectives import objectives_from
from .operators import apply_mutation, mutate

__all__ = ["build_toolbox"]


def _clone(individual: Any) -> Any:
    # Genome records are immutable and shared; deepcopy keeps them (see
    # Layer/Block/Model.__deepcopy__) and copies only the wrapper.
    import copy
    return copy.deepcopy(individual)


def build_toolbox(state: SearchState, *, evaluate: Callable[..., Any] | None = None,
                  map_fn: Callable[..., Any] = map, n_mutations: int = 5,
                  layer_limit: int = 100, block_limit: int = 100,
                  distance: str = "raw",
                  schedule: Callable[[int], str] | None = None,
                  objectives: str | Sequence[str] = ("fitness",),
                  mo_selection: str = "crowding", niche_age: int = 0) -> base.Toolbox:
    """A toolbox whose operators share the state's gene pool and seeded RNG.

    Registers the 13 mutations one by one (``toolbox.mut_change_kernel``, ...,
    each ``individual -> (child,)``), ``mutate`` (``n_mutations`` random
    applicable ones), ``select`` (spectrum niching), ``evaluate``, ``map`` and
    ``clone``, and ``schedule`` when given: ``generation -> name`` of the
    training schedule the evaluator uses in that generation (e.g. ``"full"``
    or ``"subset"``), so the loop only compares fitnesses measured under the
    same schedule (see :func:`ras_deap.evolution.step`).

    With two or more ``objectives`` (:mod:`.objectives`) ``select`` is the
    multi-objective survival ``mo_selection`` (``crowding``, the default since
    it measured larger fronts, or ``spectrum``, see :mod:`.multiobjective`)
    instead of spectrum niching; ``("fitness",)``
    is the paper's search. ``niche_age`` > 0 ages the niches' representatives
    (``sel_spectrum_niching``'s ``max_age``; single objective only).
    """
    if n_mutations < 1:
        raise ValueError(f"n_mutations must be >= 1, got {n_mutations}")
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} must be one of {DISTANCES}")
    ensure_creator()
    limits = Limits(layers=layer_limit, blocks=block_limit)
    toolbox = base.Toolbox()
    for op in MUTATIONS:
        toolbox.register(op.toolbox_name, apply_mutation, op=op, rng=state.rng,
                         pool=state.pool, limits=limits)
    toolbox.register("mutate", mutate, k=n_mutations, rng=state.rng, pool=state.pool,
                     limits=limits)
    if len(objectives_from(objectives)) > 1:
        select, keywords = multiobjective_select(objectives, mo_selection, distance)
        toolbox.register("select", select, **keywords)
    else:
        toolbox.register("select", sel_spectrum_niching, distance=distance, max_age=niche_age)
    toolbox.register("clone", _clone)
    toolbox.register("map", map_fn)
    if evaluate is not None:
        toolbox.register("evaluate", evaluate)
    if schedule is not None:
        toolbox.register("schedule", schedule)
    toolbox.limits = limits
    # the objectives' names, for what ranks individuals beside select (the
    # parents of niche_children="crowded", see ras_deap.evolution.algorithm)
    toolbox.objectives = tuple(o.name for o in objectives_from(objectives))
    return toolbox
