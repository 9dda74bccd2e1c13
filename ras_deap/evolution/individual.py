"""The DEAP individual of RAS: a model genome plus its lineage and metrics.

``deap.creator`` classes are process-global, so they are created once and
idempotently (importing twice or building two toolboxes neither warns nor
clashes), and individuals pickle through a module-level rebuild function so a
worker process that never imported this module can still unpickle them.
"""

from __future__ import annotations

from typing import Any

from deap import base, creator

from ..genome import Model

__all__ = ["Individual", "ensure_creator", "make_individual", "FITNESS_NAME", "INDIVIDUAL_NAME"]

FITNESS_NAME = "RasFitness"
INDIVIDUAL_NAME = "RasIndividual"


class Individual:
    """Base class of ``creator.RasIndividual``: a mutable wrapper around an
    immutable :class:`Model` genome (mutations produce new genomes).

    ``schedule`` is the training schedule its fitness is measured under (e.g.
    ``"subset"`` or ``"full"``, set by the loop when it is bred or created);
    ``reevaluation_of`` is the cluster index when the individual is a clone
    of that cluster's representative, re-evaluated under a new schedule (see
    :func:`ras_deap.evolution.step`), else ``None``. ``measurements`` holds the
    fitness values a re-measured representative's fitness is the mean of
    (empty: its one fitness value). ``epochs`` caps a screened child's
    training (a low-fidelity fitness; None: the schedule's epochs) and
    ``promoted_from`` is the offspring index of the screened child a
    full-schedule clone was promoted from (see :func:`ras_deap.evolution.promotions`).
    ``tracking_key`` names its MLflow child run once one is logged. Every
    attribute is set here, so the loop never meets a missing one.
    """

    fitness: base.Fitness

    def __init__(self, genome: Model, *, generation: int = 0, parent_id: str | None = None,
                 mutations: tuple[str, ...] = (), cluster: int | None = None,
                 eval_seed: int | None = None, schedule: str | None = None,
                 reevaluation_of: int | None = None) -> None:
        if not isinstance(genome, Model):
            raise TypeError(f"an Individual wraps a Model genome, got {type(genome).__name__}")
        self.genome = genome
        self.generation = generation
        self.parent_id = parent_id
        self.mutations = tuple(mutations)
        self.cluster = cluster
        self.eval_seed = eval_seed
        self.schedule = schedule
        self.reevaluation_of = reevaluation_of
        self.metrics: dict[str, float] = {}
        self.failure: str | None = None
        self.measurements: tuple[float, ...] = ()  # a representative's fitness values
        self.epochs: int | None = None  # a screened child's epoch cap
        self.promoted_from: int | None = None  # offspring index of the child it promotes
        self.tracking_key: str | None = None  # its MLflow child run, once logged

    @property
    def id(self) -> str:
        return self.genome.id

    def __repr__(self) -> str:
        fit = self.fitness.values if self.fitness.valid else "invalid"
        return f"<{self.genome.id} gen={self.generation} fitness={fit}>"

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        fitness = state.pop("fitness")
        return (_rebuild, (state, fitness.values))


def ensure_creator() -> tuple[type, type]:
    """Create ``creator.RasFitness`` (weights (1.0,)) and
    ``creator.RasIndividual`` once; return them."""
    if not hasattr(creator, FITNESS_NAME):
        creator.create(FITNESS_NAME, base.Fitness, weights=(1.0,))
    if not hasattr(creator, INDIVIDUAL_NAME):
        creator.create(INDIVIDUAL_NAME, Individual, fitness=getattr(creator, FITNESS_NAME))
    return getattr(creator, FITNESS_NAME), getattr(creator, INDIVIDUAL_NAME)


def make_individual(genome: Model, **kwargs: Any) -> Individual:
    """A new ``creator.RasIndividual`` with an invalid fitness."""
    _, cls = ensure_creator()
    return cls(genome, **kwargs)


def _rebuild(state: dict[str, Any], values: tuple[float, ...]) -> Individual:
    _, cls = ensure_creator()
    ind = cls.__new__(cls)
    ind.fitness = getattr(creator, FITNESS_NAME)()
    ind.__dict__.update(state)
    if values:
        ind.fitness.values = values
    return ind


ensure_creator()
