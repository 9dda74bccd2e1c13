"""DEAP-contract wrappers around the genome mutations.

A DEAP mutation takes an individual and returns a 1-tuple. These wrappers
return a *new* individual (the input is left untouched, like the immutable
genome inside it), record the mutation names applied, and add the new
layers and blocks to the gene pool: mutations add members, never replace.
"""

from __future__ import annotations

import random

from ..genome.pool import GenePool
from ..genome.random_init import random_layer
from ..genome.records import Model
from .individual import Individual, make_individual
from .limits import Limits, available_mutations
from .mutations import MutationOp, mut_add_layer

__all__ = ["apply_mutation", "mutate", "try_mutation"]


def try_mutation(op: MutationOp, model: Model, rng: random.Random, pool: GenePool,
                 limits: Limits) -> Model | None:
    """Apply ``op`` if the limit rule allows it and it applies to ``model``.

    Over the layer limit, add layer (e) inserts a layer drawn from the layer
    subpopulation instead of a fresh random one, so no layer is created."""
    if not limits.allows(op, pool):
        return None
    if op.name == "add_layer":
        over = len(pool.layers) > limits.layers and pool.layers
        layer = rng.choice(list(pool.layers.values())) if over else random_layer(rng)
        return mut_add_layer(model, rng, pool, new_layer=layer)
    return op.fn(model, rng, pool)


def _child(individual: Individual, genome: Model, applied: tuple[str, ...]) -> Individual:
    return make_individual(genome, generation=individual.generation,
                           parent_id=individual.genome.id, mutations=applied,
                           cluster=individual.cluster)


def apply_mutation(individual: Individual, *, op: MutationOp, rng: random.Random,
                   pool: GenePool, limits: Limits) -> tuple[Individual]:
    """One named mutation. Returns ``(child,)``; when the mutation is not
    applicable (or the limit rule forbids it) the child is an unchanged copy
    with nothing recorded."""
    model = try_mutation(op, individual.genome, rng, pool, limits)
    if model is None:
        return (_child(individual, individual.genome, individual.mutations),)
    pool.add_model(model)
    return (_child(individual, model, (*individual.mutations, op.name)),)


def mutate(individual: Individual, *, k: int, rng: random.Random, pool: GenePool,
           limits: Limits) -> tuple[Individual]:
    """Apply ``k`` randomly chosen mutations (with replacement). A drawn
    mutation that does not apply is redrawn among the others, so the child
    gets exactly ``k`` mutations unless none applies at some step."""
    model = individual.genome
    applied: list[str] = []
    for _ in range(k):
        candidates = available_mutations(pool, limits)
        while candidates:
            op = rng.choice(candidates)
            new = try_mutation(op, model, rng, pool, limits)
            if new is None:
                candidates.remove(op)
                continue
            pool.add_model(new)
            model = new
            applied.append(op.name)
            break
    return (_child(individual, model, tuple(applied)),)
