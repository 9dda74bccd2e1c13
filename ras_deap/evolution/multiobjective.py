"""Multi-objective selection with the paper's niching measure (issue #31).

With two or more objectives (:mod:`.objectives`), ``toolbox.select`` is one
of these instead of :func:`~ras_deap.evolution.sel_spectrum_niching`, and the
loop is otherwise unchanged: every generation each representative still
breeds its children, and ``select(representatives + children, population)``
picks the next representatives, which is (mu+lambda) survival with mu fixed
to ``--population``.

Design, and why:

* Survival is non-dominated sorting (Deb et al.'s NSGA-II, DEAP's
  :func:`deap.tools.sortNondominated`) over parents + children: fronts are
  kept whole, best first, while they fit. (mu+lambda) because RAS already
  keeps its parents (a representative is only replaced by a fitter child),
  so elitism is what the paper's loop does; what changes is "fitter".
* The last front that does not fit is truncated by *spectrum diversity*
  (:func:`sel_nsga_spectrum`), the measure the paper's niching uses to keep
  architectures apart, instead of NSGA-II's crowding distance in objective
  space: first, for each objective in turn, a member with the best value on
  it (the ends of the front, which crowding distance also protects); then,
  greedily, the member whose spectrum is farthest from every survivor chosen
  so far (earlier fronts included), ties by input order. Guarantees: (1) for
  ``k`` >= the number of objectives the survivors hold, for every objective,
  its best value among all the individuals (the maximum of an objective is
  always attained in the first front); (2) no survivor of the truncated front
  duplicates a survivor's spectrum while a member with a new spectrum is left
  out. Niching by spectrum in the paper protects new architectures from
  being out-competed before they are trained well; here it keeps the front
  from collapsing onto copies of one architecture.
* :func:`sel_nsga2` is plain NSGA-II (DEAP's :func:`deap.tools.selNSGA2`,
  crowding distance), the baseline variant (``--mo-selection crowding``).
  ``selTournamentDCD`` is not used: it needs a multiple of 4 individuals
  (DEAP issues #146, #247, #631), and RAS's population is 25; breeding
  stays per representative.
* :func:`sel_tournament_crowded` picks *parents* for the plain NSGA-II
  baseline of ``compare`` (:mod:`ras_deap.compare.nsga2`), which breeds by
  tournament rather than per representative: Deb et al.'s binary
  tournament on the crowded-comparison order (lower non-domination rank,
  then larger crowding distance, then a coin), for any population size and
  any number of parents.

What stays the paper's: breeding (every representative gets ``children``
children, in the seeded breeding order), the training schedules (a
representative measured under another schedule is re-measured before
selection, so objectives are only compared under one schedule; the
selections refuse mixed ones) and the hall of fame, so the winner a search
retrains is still the best sum it saw; the front is the search's other
result (:mod:`ras_deap.search.front`). ``--remeasure-every`` (it averages
the sum, not each objective) and ``--niche-children rank`` (it ranks one
fitness) are refused with several objectives.

The individuals keep their scalar DEAP fitness (the paper's sum); the
selection builds a transient multi-objective DEAP fitness (weights from the
objectives) on light stand-ins, sorts those and maps back, so it returns
references to the individuals passed in, as DEAP's ``sel*`` do, for any
population size.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from deap import base, tools

from ..constants import DISTANCES
from ..genome.spectrum import feature_scale, spectrum_distance
from .individual import Individual
from .niching import cached_spectrum
from .objectives import Objective, objective_values, objectives_from

__all__ = ["crowded_ranks", "front_records", "hypervolume", "multiobjective_select",
           "nondominated_fronts", "pareto_front", "points_hypervolume", "sel_nsga2",
           "sel_nsga_spectrum", "sel_tournament_crowded"]


@lru_cache(maxsize=16)
def _fitness_class(weights: tuple[float, ...]) -> type:
    """A DEAP fitness class with ``weights`` (kept out of ``deap.creator``:
    nothing is pickled with it, and the global RasFitness stays the paper's)."""
    return type(f"ObjectivesFitness{len(weights)}", (base.Fitness,), {"weights": weights})


class _Entry:
    """A stand-in for individual ``index``: just what DEAP's sorting reads."""

    __slots__ = ("fitness", "index")

    def __init__(self, fitness: base.Fitness, index: int) -> None:
        self.fitness = fitness
        self.index = index


def _entries(individuals: Sequence[Individual], objectives: Sequence[Objective]
             ) -> list[_Entry]:
    cls = _fitness_class(tuple(float(o.weight) for o in objectives))
    out = []
    for i, ind in enumerate(individuals):
        if not ind.fitness.valid:
            raise ValueError(f"individual {ind.genome.id} has no fitness; evaluate it first")
        fit = cls()
        fit.values = objective_values(ind, objectives)
        out.append(_Entry(fit, i))
    return out


def _check_schedules(individuals: Sequence[Individual]) -> None:
    """Objectives measured under different training schedules (subset/full)
    are not comparable; the loop re-evaluates representatives first."""
    seen = {s for s in (getattr(i, "schedule", None) for i in individuals) if s is not None}
    if len(seen) > 1:
        raise ValueError(f"individuals measured under different schedules {sorted(seen)}: "
                         "re-evaluate the representatives under the children's schedule first")


def _check_k(individuals: Sequence[Any], k: int) -> None:
    if not 0 < k <= len(individuals):
        raise ValueError(f"k={k} must be between 1 and the number of individuals "
                         f"({len(individuals)})")


def _index_fronts(individuals: Sequence[Individual], objectives: Sequence[Objective],
                  k: int | None = None) -> list[list[int]]:
    """Indices of the non-dominated fronts (each in input order), best first;
    with ``k``, only as many fronts as needed to hold ``k`` individuals."""
    if not individuals:
        return []
    entries = _entries(individuals, objectives)
    fronts = tools.sortNondominated(entries, len(entries) if k is None else k)
    return [sorted(e.index for e in front) for front in fronts if front]


def nondominated_fronts(individuals: Sequence[Individual],
                        objectives: str | Sequence[str] = ("accuracy", "robustness"),
                        ) -> list[list[Individual]]:
    """Every non-dominated front of ``individuals`` (references, input order),
    best first."""
    objs = objectives_from(objectives)
    return [[individuals[i] for i in front] for front in _index_fronts(individuals, objs)]


def pareto_front(individuals: Sequence[Individual],
                 objectives: str | Sequence[str] = ("accuracy", "robustness"),
                 ) -> list[Individual]:
    """The non-dominated members of ``individuals`` (references, input order)."""
    fronts = nondominated_fronts(individuals, objectives)
    return fronts[0] if fronts else []


def front_records(individuals: Sequence[Individual], objectives: str | Sequence[str], *,
                  front_only: bool = True) -> list[dict[str, Any]]:
    """The front (``front_only``; else every individual) as plain data: per
    member its genome id, generation, cluster, objective values as the search
    measured them and the paper's fitness."""
    objs = objectives_from(objectives)
    members = (pareto_front(individuals, [o.name for o in objs]) if front_only
               else list(individuals))
    return [{"genome_id": ind.genome.id, "generation": ind.generation,
             "cluster": ind.cluster, "fitness": float(ind.fitness.values[0]),
             "objectives": dict(zip([o.name for o in objs], objective_values(ind, objs),
                                    strict=True))}
            for ind in members]


def hypervolume(individuals: Sequence[Individual], objectives: str | Sequence[str]) -> float:
    """The hypervolume the individuals dominate above the fixed reference
    point 0 on every objective (a failed network's objectives), in the units
    of the objectives: for accuracy and robustness, both in [0, 1], a number
    in [0, 1] that two fronts can be compared by. Only maximised objectives
    have that reference (a minimised one, e.g. parameters, needs its own)."""
    objs = objectives_from(objectives)
    if any(o.weight <= 0 for o in objs):
        raise ValueError("hypervolume: the reference point 0 is only defined for maximised "
                         "objectives")
    return points_hypervolume([objective_values(ind, objs) for ind in individuals])


def points_hypervolume(points: Sequence[Sequence[float]],
                       reference: Sequence[float] | None = None) -> float:
    """The hypervolume of maximised objective vectors above ``reference``
    (default 0 on every objective, see :func:`hypervolume`), e.g. of
    re-measured means. A point not strictly above the reference on every
    objective adds nothing."""
    import numpy as np
    from moocore import hypervolume as moocore_hypervolume  # DEAP's own dependency

    pts = [tuple(float(v) for v in p) for p in points]
    if not pts:
        return 0.0
    ref = tuple(float(v) for v in reference) if reference is not None else (0.0,) * len(pts[0])
    if any(len(p) != len(ref) for p in pts):
        raise ValueError(f"points_hypervolume: every point needs {len(ref)} objectives (the "
                         "reference point's)")
    kept = [p for p in pts if all(v > r for v, r in zip(p, ref, strict=True))]
    if not kept:
        return 0.0
    # moocore minimises: negate the points and the reference
    return float(moocore_hypervolume(-np.array(kept, dtype=float), ref=[-r for r in ref]))


def _diverse(front: list[int], m: int, chosen: list[int],
             values: list[tuple[float, ...]], weights: Sequence[float],
             spectra: list[tuple[int, ...]], scale: Sequence[float] | None) -> list[int]:
    """``m`` members of ``front`` (indices): the objectives' best ends, then
    greedily the farthest in spectrum from every survivor (module docstring)."""
    keep: list[int] = []
    for j, w in enumerate(weights):
        if len(keep) == m:
            break
        best = max(front, key=lambda i, j=j, w=w: (values[i][j] * w, -i))
        if best not in keep:
            keep.append(best)
    rest = [i for i in front if i not in keep]
    refs = [spectra[i] for i in (*chosen, *keep)]
    nearest = {i: min((spectrum_distance(spectra[i], r, scale) for r in refs),
                      default=math.inf) for i in rest}
    while len(keep) < m:
        pick = max(rest, key=lambda i: (nearest[i], -i))
        keep.append(pick)
        rest.remove(pick)
        for i in rest:
            nearest[i] = min(nearest[i], spectrum_distance(spectra[i], spectra[pick], scale))
    return keep


def sel_nsga_spectrum(individuals: Sequence[Individual], k: int, *,
                      objectives: str | Sequence[str] = ("accuracy", "robustness"),
                      distance: str = "raw") -> list[Individual]:
    """Select ``k`` survivors (references) by non-dominated sorting, the last
    front that does not fit truncated by spectrum diversity (see the module
    docstring). ``distance`` as in niching: ``raw`` or per-feature
    ``normalized`` over all the individuals."""
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} must be one of {DISTANCES}")
    _check_k(individuals, k)
    _check_schedules(individuals)
    objs = objectives_from(objectives)
    fronts = _index_fronts(individuals, objs, k)
    values = [objective_values(ind, objs) for ind in individuals]
    spectra = [cached_spectrum(ind.genome) for ind in individuals]
    scale = feature_scale(spectra) if distance == "normalized" else None
    chosen: list[int] = []
    for front in fronts:
        if len(chosen) + len(front) <= k:
            chosen.extend(front)
        else:
            chosen.extend(_diverse(front, k - len(chosen), chosen, values,
                                   [o.weight for o in objs], spectra, scale))
        if len(chosen) == k:
            break
    return [individuals[i] for i in chosen]


def sel_nsga2(individuals: Sequence[Individual], k: int, *,
              objectives: str | Sequence[str] = ("accuracy", "robustness")
              ) -> list[Individual]:
    """Plain NSGA-II survival (DEAP's ``selNSGA2``: crowding distance in the
    last front), returning references to ``individuals``."""
    _check_k(individuals, k)
    _check_schedules(individuals)
    entries = _entries(individuals, objectives_from(objectives))
    return [individuals[e.index] for e in tools.selNSGA2(entries, k)]


def crowded_ranks(individuals: Sequence[Individual],
                  objectives: str | Sequence[str] = ("accuracy", "robustness"),
                  ) -> list[tuple[int, float]]:
    """Per individual (input order), its non-domination rank (0: the first
    front) and its crowding distance within its front (DEAP's
    ``assignCrowdingDist``; infinite at a front's ends): the two keys of
    NSGA-II's crowded-comparison order."""
    if not individuals:
        return []
    entries = _entries(individuals, objectives_from(objectives))
    out: list[tuple[int, float]] = [(0, 0.0)] * len(entries)
    for rank, front in enumerate(tools.sortNondominated(entries, len(entries))):
        tools.emo.assignCrowdingDist(front)
        for e in front:
            out[e.index] = (rank, float(e.fitness.crowding_dist))
    return out


def sel_tournament_crowded(individuals: Sequence[Individual], k: int, *,
                           objectives: str | Sequence[str] = ("accuracy", "robustness"),
                           rng: random.Random) -> list[Individual]:
    """``k`` parents (references, repeats allowed) by binary tournament on
    NSGA-II's crowded-comparison order (Deb et al. 2002): of two distinct
    individuals drawn uniformly by ``rng``, the one of lower rank, on equal
    ranks the one of larger crowding distance, else either by a coin. Works
    for any population size (one individual is its own opponent), unlike
    DEAP's ``selTournamentDCD``, which needs a multiple of 4."""
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    if not individuals:
        raise ValueError("cannot select parents from an empty population")
    _check_schedules(individuals)
    keys = crowded_ranks(individuals, objectives)
    n = len(individuals)
    chosen = []
    for _ in range(k):
        a = rng.randrange(n)
        b = a if n == 1 else (a + 1 + rng.randrange(n - 1)) % n  # another one, uniformly
        (ra, ca), (rb, cb) = keys[a], keys[b]
        if ra != rb:
            win = a if ra < rb else b
        elif ca != cb:
            win = a if ca > cb else b
        else:
            win = a if rng.random() < 0.5 else b
        chosen.append(individuals[win])
    return chosen


def multiobjective_select(objectives: str | Sequence[str], mo_selection: str = "crowding",
                          distance: str = "raw") -> tuple[Any, dict[str, Any]]:
    """``(function, keywords)`` of the survival selection to register as
    ``toolbox.select`` for ``objectives`` (two or more)."""
    names = tuple(o.name for o in objectives_from(objectives))
    if len(names) < 2:
        raise ValueError(f"objectives={','.join(names)}: a multi-objective selection needs "
                         "two or more objectives")
    if mo_selection == "spectrum":
        return sel_nsga_spectrum, {"objectives": names, "distance": distance}
    if mo_selection == "crowding":
        return sel_nsga2, {"objectives": names}
    raise ValueError(f"mo_selection={mo_selection!r}: choose spectrum or crowding")
