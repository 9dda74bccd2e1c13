"""Spectrum-based niching selection (section 5.4, Figure 2 of the paper)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from ..constants import DISTANCES
from ..genome.records import Model
from ..genome.spectrum import feature_scale, spectrum, spectrum_distance
from .individual import Individual

__all__ = ["sel_spectrum_niching", "closest_representative", "cached_spectrum",
           "DISTANCES"]



@lru_cache(maxsize=8192)
def cached_spectrum(model: Model) -> tuple[int, ...]:
    """Spectra keyed on the genome's id (models hash by id), which is the same
    for every numbering of one graph, as is the spectrum."""
    return spectrum(model)


def closest_representative(child: Sequence[float], reps: Sequence[Sequence[float]],
                           scale: Sequence[float] | None = None) -> int:
    """Index of the representative nearest to ``child`` (lowest index on ties)."""
    best, best_d = 0, float("inf")
    for i, rep in enumerate(reps):
        d = spectrum_distance(child, rep, scale)
        if d < best_d:
            best, best_d = i, d
    return best


def _fitter(child: Individual, rep: Individual) -> bool:
    """Strictly fitter. A NaN fitness is never fitter and always beaten:
    DEAP's ``Fitness.__gt__`` is ``not <=``, so a NaN child would otherwise
    replace every representative it meets."""
    if any(math.isnan(x) for x in child.fitness.wvalues):
        return False
    if any(math.isnan(x) for x in rep.fitness.wvalues):
        return True
    return child.fitness > rep.fitness


def _check_same_schedule(child: Individual, rep: Individual) -> None:
    """Fitnesses measured under different training schedules (subset/full)
    are not comparable; the loop re-evaluates such representatives first."""
    a, b = child.schedule, rep.schedule
    if a is not None and b is not None and a != b:
        raise ValueError(f"child {child.genome.id} was evaluated under schedule {a!r} but its "
                         f"closest representative {rep.genome.id} under {b!r}: re-evaluate the "
                         "representative under the child's schedule first")


def _usable(ind: Individual) -> bool:
    """A child that trained: no failure and a number for a fitness."""
    return ind.failure is None and not any(math.isnan(x) for x in ind.fitness.wvalues)


def _age_out(reps: list[Individual], incumbents: Sequence[Individual],
             assigned: Sequence[Sequence[Individual]], max_age: int) -> None:
    """Aging inside the niches (``max_age`` > 0): a representative that has
    held its niche ``max_age`` generations or more and beat every child it met
    this generation gives the niche to the fittest usable child that met it,
    even a less fit one. A long-held niche is often held by one lucky training
    (docs/results/representative-noise-digits.md), and aging is what
    regularized evolution (Real et al. 2019) uses against that noise; the
    niche itself, and so the diversity, stays. With ``max_age=1`` every niche
    passes to its best child each generation (the search's best is kept by
    the hall of fame)."""
    now = max((c.generation for group in assigned for c in group), default=0)
    for j, rep in enumerate(reps):
        if rep is not incumbents[j] or now - rep.generation < max_age:
            continue  # a child took the niche already, or the representative is young
        usable = [c for c in assigned[j] if _usable(c)]
        if usable:
            reps[j] = max(usable, key=lambda c: c.fitness.wvalues)


def sel_spectrum_niching(individuals: Sequence[Individual], k: int, *,
                         distance: str = "raw", max_age: int = 0) -> list[Individual]:
    """Select ``k`` cluster representatives, DEAP style (returns references).

    ``individuals[:k]`` are the current representatives, the rest are the
    evaluated children in order. Each child is compared with its *closest*
    representative in spectrum distance and takes its place only if strictly
    fitter, so every niche keeps its best member and diversity survives.
    Both fitnesses must be measured under the same training schedule
    (``Individual.schedule``; a ``ValueError`` otherwise, unless one of them
    records none): :func:`ras_deap.evolution.step` re-evaluates
    representatives measured under another schedule before selecting.

    ``distance='raw'`` is the plain Euclidean distance between spectra (the
    paper does not specify the distance), dominated by the large counts
    (layers, connections); ``'normalized'`` divides each feature by its
    maximum over all the individuals first, so every feature weighs the
    same.

    ``max_age`` > 0 adds aging inside the niches (see :func:`_age_out`): a
    representative that is ``max_age`` generations old or more (its
    ``generation``, against the children's) gives its niche to the fittest
    child that met it. ``0`` (the default and the paper) never ages.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} must be one of {DISTANCES}")
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ValueError(f"max_age={max_age!r} must be an int >= 0 (0: no aging)")
    if not 0 < k <= len(individuals):
        raise ValueError(f"k={k} must be between 1 and the number of individuals "
                         f"({len(individuals)})")
    reps = list(individuals[:k])
    spectra = [cached_spectrum(r.genome) for r in reps]
    scale = None
    if distance == "normalized":
        scale = feature_scale([cached_spectrum(i.genome) for i in individuals])
    assigned: list[list[Individual]] = [[] for _ in reps]
    for child in individuals[k:]:
        if not child.fitness.valid:
            raise ValueError(f"child {child.genome.id} has no fitness; evaluate it first")
        spec = cached_spectrum(child.genome)
        j = closest_representative(spec, spectra, scale)
        _check_same_schedule(child, reps[j])
        assigned[j].append(child)
        if _fitter(child, reps[j]):
            reps[j] = child
            spectra[j] = spec
    if max_age:
        _age_out(reps, individuals[:k], assigned, max_age)
    return reps
