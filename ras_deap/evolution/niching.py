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


def sel_spectrum_niching(individuals: Sequence[Individual], k: int, *,
                         distance: str = "raw") -> list[Individual]:
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
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance={distance!r} must be one of {DISTANCES}")
    if not 0 < k <= len(individuals):
        raise ValueError(f"k={k} must be between 1 and the number of individuals "
                         f"({len(individuals)})")
    reps = list(individuals[:k])
    spectra = [cached_spectrum(r.genome) for r in reps]
    scale = None
    if distance == "normalized":
        scale = feature_scale([cached_spectrum(i.genome) for i in individuals])
    for child in individuals[k:]:
        if not child.fitness.valid:
            raise ValueError(f"child {child.genome.id} has no fitness; evaluate it first")
        spec = cached_spectrum(child.genome)
        j = closest_representative(spec, spectra, scale)
        _check_same_schedule(child, reps[j])
        if _fitter(child, reps[j]):
            reps[j] = child
            spectra[j] = spec
    return reps
