"""DEAP-contract wrappers around the genome mutations.

A DEAP mutation takes an individual and returns a 1-tuple. These wrappers
return a *new* individual (the input is left untouched, like the immutable
genome inside it), record the mutation names applied, and add the new
layers and blocks to the gene pool, counting the instances each mutation
created for the limit rule: mutations add members, never replace.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..genome.pool import GenePool
from ..genome.random_init import random_layer
from ..genome.records import Model
from .individual import Individual, make_individual
from .limits import Limits, available_mutations
from .mutations import MutationOp, mut_add_layer

__all__ = ["apply_mutation", "mutate", "try_mutation", "Observer"]

# called once per applied mutation with the op and whether the layer and the
# block limit bound when it was drawn (for benchmarks and diagnostics)
Observer = Callable[[MutationOp, bool, bool], None]


def _pooled_layer(op: MutationOp, pool: GenePool, limits: Limits) -> bool:
    """Whether ``op`` is add layer over the layer limit, which inserts a
    pooled layer instead of creating one."""
    return op.name == "add_layer" and limits.binding(pool)[0] and bool(pool.layers)


def try_mutation(op: MutationOp, model: Model, rng: random.Random, pool: GenePool,
                 limits: Limits) -> Model | None:
    """Apply ``op`` if the limit rule allows it and it applies to ``model``.

    Over the layer limit, add layer (e) inserts a layer drawn from the layer
    subpopulation instead of a fresh random one, so no layer is created."""
    if not limits.allows(op, pool):
        return None
    if op.name == "add_layer":
        pooled = _pooled_layer(op, pool, limits)
        layer = rng.choice(list(pool.layers.values())) if pooled else random_layer(rng)
        return mut_add_layer(model, rng, pool, new_layer=layer)
    return op.fn(model, rng, pool)


def _commit(op: MutationOp, model: Model, pool: GenePool, limits: Limits) -> None:
    """Add the mutated model's members to the pool and count what ``op``
    created (call before anything else changes the pool's counts)."""
    new_layer = op.new_layer and not _pooled_layer(op, pool, limits)
    pool.add_model(model)
    pool.count_created(layers=int(new_layer), blocks=int(op.new_block))


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
    _commit(op, model, pool, limits)
    return (_child(individual, model, (*individual.mutations, op.name)),)


def mutate(individual: Individual, *, k: int, rng: random.Random, pool: GenePool,
           limits: Limits, observe: Observer | None = None) -> tuple[Individual]:
    """Apply ``k`` randomly chosen mutations (with replacement), each drawn
    uniformly among those the limit rule allows. A drawn mutation that does
    not apply is redrawn among the others, so the child gets exactly ``k``
    mutations unless none applies at some step. ``observe`` sees every
    applied mutation with the limits that bound when it was drawn."""
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
            if observe is not None:
                observe(op, *limits.binding(pool))
            _commit(op, new, pool, limits)
            model = new
            applied.append(op.name)
            break
    return (_child(individual, model, tuple(applied)),)
