"""The 13 mutations (section 5.2): each changes exactly what its name says.

The mutation functions are checked on a hand-built model over many seeds
(every random choice they can make), then the DEAP wrappers: pool
bookkeeping, the limit rule and ``mutate``.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ras_deap.evolution import (
    BLOCK_MUTATIONS,
    LAYER_MUTATIONS,
    MODEL_MUTATIONS,
    MUTATIONS,
    MUTATIONS_BY_NAME,
    Limits,
    SearchState,
    apply_mutation,
    available_mutations,
    build_toolbox,
    make_individual,
    mutate,
    try_mutation,
)
from ras_deap.evolution import mutations as M
from ras_deap.genome import (
    CONV_FILTERS,
    CONV_KERNELS,
    DENSE_UNITS,
    Block,
    GenePool,
    Layer,
    Model,
)
from ras_deap.genome.dag import descendants

SEEDS = range(25)

C8 = Layer.conv(8, 3, 1)
C16 = Layer.conv(16, 5, 2)
C32 = Layer.conv(32, 1, 1)
C64 = Layer.conv(64, 3, 2)
C8b = Layer.conv(8, 1, 2)
C16b = Layer.conv(16, 3, 1)
D64 = Layer.dense(64)
D128 = Layer.dense(128)
D256 = Layer.dense(256)
D512 = Layer.dense(512)
X = Layer.conv(32, 5, 2)  # in the pool, not in the model


def chain(*layers: Layer) -> Block:
    return Block(tuple(layers), tuple((i, i + 1) for i in range(len(layers) - 1)))


A = Block((C8, C16, D64), ((0, 1), (0, 2), (1, 2)))  # complete: no layer edge can be added
B = chain(D128, C32, D256)  # a chain: no layer edge can be removed
C = chain(C64)  # one layer: nothing can be removed
D = Block((D512, C8b, C16b, D64), ((0, 1), (0, 2), (1, 3), (2, 3)))  # diamond
E = chain(D512, Layer.conv(64, 5, 1))  # in the pool, not in the model
MODEL = Model((A, B, C, D), ((0, 1), (0, 2), (1, 2), (2, 3)))


def make_pool(*extra_layers: Layer, extra_blocks: tuple[Block, ...] = (E,)) -> GenePool:
    pool = GenePool.from_models([MODEL])
    for layer in extra_layers:
        pool.add_layer(layer)
    for block in extra_blocks:
        pool.add_block(block)
    return pool


def snapshot(pool: GenePool) -> tuple[dict, dict]:
    return ({k: v.to_dict() for k, v in pool.layers.items()},
            {k: v.to_dict() for k, v in pool.blocks.items()})


def signature(nodes, edges) -> tuple[Counter, Counter]:
    """Graph up to relabelling (exact when the nodes are distinct records)."""
    return (Counter(n.id for n in nodes), Counter((nodes[u].id, nodes[v].id) for u, v in edges))


def run(name: str, model: Model = MODEL, pool: GenePool | None = None):
    """Apply the pure mutation for every seed; check it never touches its inputs."""
    pool = pool if pool is not None else make_pool(X)
    before, model_json = snapshot(pool), model.to_json()
    out = [M.MUTATIONS_BY_NAME[name].fn(model, random.Random(s), pool) for s in SEEDS]
    assert snapshot(pool) == before, "a mutation function modified the pool"
    assert model.to_json() == model_json
    return out


def one_layer_changed(old: Model, new: Model) -> tuple[Layer, Layer]:
    """Assert the models differ in exactly one layer node; return (old, new)."""
    assert new.edges == old.edges and len(new.blocks) == len(old.blocks)
    diffs = []
    for b, (ob, nb) in enumerate(zip(old.blocks, new.blocks, strict=True)):
        assert nb.edges == ob.edges and len(nb.layers) == len(ob.layers)
        diffs += [(b, i) for i, (x, y) in enumerate(zip(ob.layers, nb.layers, strict=True))
                  if x != y]
    assert len(diffs) == 1, diffs
    b, i = diffs[0]
    return old.blocks[b].layers[i], new.blocks[b].layers[i]


def one_block_changed(old: Model, new: Model) -> tuple[Block, Block]:
    """Assert the models differ in exactly one block node and nothing else."""
    assert new.edges == old.edges and len(new.blocks) == len(old.blocks)
    diffs = [b for b, (x, y) in enumerate(zip(old.blocks, new.blocks, strict=True)) if x != y]
    assert len(diffs) == 1, diffs
    return old.blocks[diffs[0]], new.blocks[diffs[0]]


# ----------------------------------------------------------- the registry
def test_the_thirteen_mutations_of_the_paper():
    assert [op.letter for op in MUTATIONS] == list("abcdefghijklm")
    assert LAYER_MUTATIONS == ("change_kernel", "change_filter", "change_units", "swap_layer")
    assert BLOCK_MUTATIONS == ("add_layer", "remove_layer", "add_layer_connection",
                               "remove_layer_connection", "swap_block")
    assert MODEL_MUTATIONS == ("add_block", "remove_block", "add_block_connection",
                               "remove_block_connection")
    assert {op.name for op in MUTATIONS if op.swap} == {"swap_layer", "swap_block"}
    assert all(MUTATIONS_BY_NAME[op.name] is op for op in MUTATIONS)
    assert MUTATIONS_BY_NAME["change_kernel"].toolbox_name == "mut_change_kernel"


# ------------------------------------------------------ a) -- d) layer level
@pytest.mark.parametrize(("name", "param", "choices"), [
    ("change_kernel", "kernel", CONV_KERNELS),
    ("change_filter", "filters", CONV_FILTERS),
])
def test_conv_parameter_mutations_change_one_parameter_of_one_conv_layer(name, param, choices):
    results = run(name)
    for new in results:
        old_layer, new_layer = one_layer_changed(MODEL, new)
        assert old_layer.is_conv and new_layer.is_conv
        old_d, new_d = old_layer.to_dict(), new_layer.to_dict()
        assert getattr(new_layer, param) != getattr(old_layer, param)
        assert getattr(new_layer, param) in choices
        assert {k: v for k, v in new_d.items() if k != param} == \
               {k: v for k, v in old_d.items() if k != param}
    assert len({m.id for m in results}) > 3  # the choices really are random


def test_change_units_changes_the_units_of_one_dense_layer():
    for new in run("change_units"):
        old_layer, new_layer = one_layer_changed(MODEL, new)
        assert old_layer.kind == new_layer.kind == "dense"
        assert new_layer.units != old_layer.units and new_layer.units in DENSE_UNITS


def test_layer_parameter_mutations_do_not_apply_to_the_other_kind():
    all_dense = Model((chain(D64, D128), chain(D256)), ((0, 1),))
    all_conv = Model((chain(C8, C16), chain(C32)), ((0, 1),))
    assert run("change_kernel", all_dense) == [None] * len(SEEDS)
    assert run("change_filter", all_dense) == [None] * len(SEEDS)
    assert run("change_units", all_conv) == [None] * len(SEEDS)


def test_swap_layer_replaces_one_layer_by_a_pool_member():
    pool = make_pool(X)
    results = run("swap_layer", pool=pool)
    for new in results:
        old_layer, new_layer = one_layer_changed(MODEL, new)
        assert new_layer != old_layer and new_layer.id in pool.layers
    assert X in {one_layer_changed(MODEL, m)[1] for m in results}
    only = GenePool(layers={X.id: X})
    for new in run("swap_layer", pool=only):
        assert one_layer_changed(MODEL, new)[1] == X


def test_swap_layer_needs_a_different_layer_in_the_pool():
    model = Model((chain(D64, D64),))
    assert run("swap_layer", model, GenePool(layers={D64.id: D64})) == [None] * len(SEEDS)


# ------------------------------------------------------ e) -- i) block level
def test_add_layer_adds_one_layer_to_one_block():
    for s in SEEDS:
        new = M.mut_add_layer(MODEL, random.Random(s), make_pool(), new_layer=X)
        old_b, new_b = one_block_changed(MODEL, new)
        (old_layers, old_edges), (new_layers, new_edges) = (
            signature(old_b.layers, old_b.edges), signature(new_b.layers, new_b.edges))
        assert new_layers - old_layers == Counter({X.id: 1}) and not old_layers - new_layers
        assert not old_edges - new_edges  # every old connection is kept
        added = new_edges - old_edges
        into = [u for u, v in added if v == X.id]
        out = [v for u, v in added if u == X.id]
        assert len(into) == 1 and len(out) <= 1 and sum(added.values()) == 1 + len(out)
        # X goes after a layer and before one of that layer's descendants (or is the new exit)
        ids = [layer.id for layer in old_b.layers]
        u = ids.index(into[0])
        later = {ids[v] for v in descendants(len(ids), old_b.edges, u)}
        assert (out[0] in later) if out else not later
    for new in run("add_layer"):  # a random new layer by default
        old_b, new_b = one_block_changed(MODEL, new)
        assert len(new_b.layers) == len(old_b.layers) + 1


def test_remove_layer_removes_one_layer_of_one_block_and_bridges_it():
    results = run("remove_layer")
    for new in results:
        old_b, new_b = one_block_changed(MODEL, new)
        (old_layers, old_edges), (new_layers, new_edges) = (
            signature(old_b.layers, old_b.edges), signature(new_b.layers, new_b.edges))
        removed = old_layers - new_layers
        assert sum(removed.values()) == 1 and not new_layers - old_layers
        (gone,) = removed
        ins = {u for u, v in old_edges if v == gone}
        outs = {v for u, v in old_edges if u == gone}
        expected = Counter({e: 1 for e in old_edges if gone not in e}
                           | {(p, s): 1 for p in ins for s in outs})
        assert new_edges == expected
    # C has a single layer; D's entry and exit feed/are fed by two layers that
    # need them, so D can only lose a middle layer
    changed = [one_block_changed(MODEL, m) for m in results]
    assert {old for old, _ in changed} == {A, B, D}
    assert all(new.layers[0] == D512 and new.layers[-1] == D64
               for old, new in changed if old == D)
    assert run("remove_layer", Model((chain(C8), chain(D64)), ((0, 1),))) == [None] * len(SEEDS)


def test_add_layer_connection_adds_one_edge_inside_one_block():
    for new in run("add_layer_connection"):
        old_b, new_b = one_block_changed(MODEL, new)
        assert new_b.layers == old_b.layers
        assert set(old_b.edges) < set(new_b.edges) and len(new_b.edges) == len(old_b.edges) + 1
    complete = Model((A, chain(C8)), ((0, 1),))
    assert run("add_layer_connection", complete) == [None] * len(SEEDS)


def test_remove_layer_connection_removes_one_edge_inside_one_block():
    results = run("remove_layer_connection")
    for new in results:
        old_b, new_b = one_block_changed(MODEL, new)
        assert new_b.layers == old_b.layers
        assert set(new_b.edges) < set(old_b.edges) and len(new_b.edges) == len(old_b.edges) - 1
    # only A's skip connection 0->2 can go (the diamond and chains need every edge)
    assert {m.blocks[0].edges for m in results} == {((0, 1), (1, 2))}
    chains = Model((B, chain(C8, D64)), ((0, 1),))
    assert run("remove_layer_connection", chains) == [None] * len(SEEDS)


def test_swap_block_replaces_one_block_by_a_pool_member():
    pool = make_pool()
    results = run("swap_block", pool=pool)
    for new in results:
        old_b, new_b = one_block_changed(MODEL, new)
        assert new_b != old_b and new_b.id in pool.blocks
    assert E in {one_block_changed(MODEL, m)[1] for m in results}
    single = Model((A,))
    assert run("swap_block", single, GenePool.from_models([single])) == [None] * len(SEEDS)


# ------------------------------------------------------ j) -- m) model level
def test_add_block_adds_one_pool_block_to_the_model():
    pool = GenePool(blocks={E.id: E})
    for new in run("add_block", pool=pool):
        (old_blocks, old_edges) = signature(MODEL.blocks, MODEL.edges)
        (new_blocks, new_edges) = signature(new.blocks, new.edges)
        assert new_blocks - old_blocks == Counter({E.id: 1}) and not old_blocks - new_blocks
        assert not old_edges - new_edges
        added = new_edges - old_edges
        assert sum(added.values()) in (1, 2)
        assert all(E.id in e for e in added)
        assert {b for b in new.blocks if b != E} == set(MODEL.blocks)  # blocks unchanged
    assert run("add_block", pool=GenePool()) == [None] * len(SEEDS)


def test_remove_block_removes_one_block_and_keeps_the_others_intact():
    results = run("remove_block")
    for new in results:
        assert len(new.blocks) == len(MODEL.blocks) - 1
        assert not Counter(new.blocks) - Counter(MODEL.blocks)  # no block edited
        (old_blocks, old_edges), (new_blocks, new_edges) = (
            signature(MODEL.blocks, MODEL.edges), signature(new.blocks, new.edges))
        (gone,) = old_blocks - new_blocks
        ins = {u for u, v in old_edges if v == gone}
        outs = {v for u, v in old_edges if u == gone}
        expected = Counter({e: 1 for e in old_edges if gone not in e}
                           | {(p, s): 1 for p in ins for s in outs})
        assert new_edges == expected
    assert len({m.id for m in results}) > 1
    assert run("remove_block", Model((A,))) == [None] * len(SEEDS)


def test_add_block_connection_adds_one_model_edge_and_keeps_blocks():
    for new in run("add_block_connection"):
        assert new.blocks == MODEL.blocks
        assert set(MODEL.edges) < set(new.edges) and len(new.edges) == len(MODEL.edges) + 1
    complete = Model((A, B, C), ((0, 1), (0, 2), (1, 2)))
    assert run("add_block_connection", complete) == [None] * len(SEEDS)


def test_remove_block_connection_removes_one_model_edge_and_keeps_blocks():
    for new in run("remove_block_connection"):
        assert new.blocks == MODEL.blocks
        assert new.edges == ((0, 1), (1, 2), (2, 3))  # the only optional edge is 0->2
    chain_model = Model((A, B, C), ((0, 1), (1, 2)))
    assert run("remove_block_connection", chain_model) == [None] * len(SEEDS)


# ------------------------------------------------------------ DEAP wrappers
def fresh_state(seed: int = 0, *extra: Layer) -> SearchState:
    return SearchState(seed=seed, rng=random.Random(seed), pool=make_pool(*extra),
                       population=[])


def test_toolbox_registers_every_mutation_and_adds_new_members_to_the_pool():
    state = fresh_state()
    toolbox = build_toolbox(state)
    parent = make_individual(MODEL, generation=3, cluster=2)
    for op in MUTATIONS:
        assert hasattr(toolbox, op.toolbox_name)
        before = snapshot(state.pool)
        (child,) = getattr(toolbox, op.toolbox_name)(parent)
        assert child is not parent and not child.fitness.valid
        assert child.parent_id == MODEL.id and child.generation == 3 and child.cluster == 2
        assert child.mutations == (op.name,)  # every mutation applies to MODEL
        assert child.genome != MODEL
        assert parent.genome is MODEL and parent.mutations == ()
        after = snapshot(state.pool)
        assert all(after[0][k] == v for k, v in before[0].items())  # nothing replaced
        assert all(after[1][k] == v for k, v in before[1].items())
        assert all(b.id in state.pool.blocks for b in child.genome.blocks)
        assert all(layer.id in state.pool.layers for layer in child.genome.layers())


def test_a_mutation_that_does_not_apply_returns_an_unchanged_copy():
    state = fresh_state()
    toolbox = build_toolbox(state)
    single = make_individual(Model((C,)))
    (child,) = toolbox.mut_remove_block(single)
    assert child is not single and child.genome is single.genome and child.mutations == ()
    (child,) = toolbox.mut_change_units(single)
    assert child.genome is single.genome and child.mutations == ()


def test_mutate_applies_exactly_k_mutations_reproducibly():
    for k in (1, 5, 9):
        results = []
        for _ in range(2):
            state = fresh_state(11)
            toolbox = build_toolbox(state, n_mutations=k)
            parent = make_individual(MODEL)
            children = [toolbox.mutate(parent)[0] for _ in range(6)]
            assert all(len(c.mutations) == k for c in children)
            assert all(set(c.mutations) <= set(MUTATIONS_BY_NAME) for c in children)
            assert parent.genome is MODEL and parent.mutations == ()
            results.append([(c.genome.id, c.mutations) for c in children])
        assert results[0] == results[1]


def test_mutate_redraws_mutations_that_do_not_apply():
    # one block of one dense layer, and a pool holding nothing else: only
    # change_units, add_layer and add_block apply; the other ten are redrawn
    tiny = Model((chain(D64),))
    seen = set()
    for s in SEEDS:
        (child,) = mutate(make_individual(tiny), k=1, rng=random.Random(s),
                          pool=GenePool.from_models([tiny]), limits=Limits())
        assert len(child.mutations) == 1
        seen.add(child.mutations[0])
    assert seen == {"change_units", "add_layer", "add_block"}


def test_limits_rule_and_validation():
    pool = make_pool(X)
    # the limits count instances created since the last prune, not pool members
    assert available_mutations(pool, Limits(layers=1, blocks=1)) == list(MUTATIONS)
    pool.count_created(layers=12, blocks=5)
    assert available_mutations(pool, Limits()) == list(MUTATIONS)
    over_layers = {op.name for op in available_mutations(pool, Limits(layers=11))}
    assert over_layers == {"swap_layer", *BLOCK_MUTATIONS, *MODEL_MUTATIONS}
    over_blocks = {op.name for op in available_mutations(pool, Limits(blocks=4))}
    assert over_blocks == {*LAYER_MUTATIONS, "swap_block", *MODEL_MUTATIONS}
    at_limit = {op.name for op in available_mutations(pool, Limits(layers=12, blocks=5))}
    assert at_limit == set(MUTATIONS_BY_NAME)  # "exceeds": equal to the limit is allowed
    assert Limits(layers=11, blocks=5).binding(pool) == (True, False)
    pool.prune([MODEL])  # a new generation starts counting from zero
    assert (pool.new_layers, pool.new_blocks) == (0, 0)
    assert available_mutations(pool, Limits(layers=1, blocks=1)) == list(MUTATIONS)
    with pytest.raises(ValueError, match=">= 0"):
        pool.count_created(layers=-1)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="limit must be a positive integer"):
            Limits(layers=bad)
    with pytest.raises(ValueError, match="n_mutations"):
        build_toolbox(fresh_state(), n_mutations=0)
    with pytest.raises(ValueError, match="distance"):
        build_toolbox(fresh_state(), distance="cosine")


@pytest.mark.parametrize(("name", "layers", "blocks"), [
    ("change_kernel", 1, 1), ("change_filter", 1, 1), ("change_units", 1, 1),
    ("swap_layer", 0, 1), ("add_layer", 1, 1), ("remove_layer", 0, 1),
    ("add_layer_connection", 0, 1), ("remove_layer_connection", 0, 1),
    ("swap_block", 0, 0), ("add_block", 0, 0), ("remove_block", 0, 0),
    ("add_block_connection", 0, 0), ("remove_block_connection", 0, 0)])
def test_each_mutation_counts_the_instances_it_creates(name, layers, blocks):
    """Duplicates count: a changed layer equal to a pooled one is still a new
    instance (what the limit rule compares)."""
    pool = make_pool(X)
    (child,) = apply_mutation(make_individual(MODEL), op=MUTATIONS_BY_NAME[name],
                              rng=random.Random(3), pool=pool, limits=Limits())
    assert child.mutations == (name,)
    assert (pool.new_layers, pool.new_blocks) == (layers, blocks)


def test_mutate_counts_every_applied_mutation_and_reports_the_limits():
    pool = make_pool(X)
    seen = []
    (child,) = mutate(make_individual(MODEL), k=40, rng=random.Random(0), pool=pool,
                      limits=Limits(layers=4, blocks=6),
                      observe=lambda op, lay, blk: seen.append((op, lay, blk)))
    assert [op.name for op, _, _ in seen] == list(child.mutations) and len(seen) == 40
    layers = blocks = 0
    for op, over_layers, over_blocks in seen:
        assert (over_layers, over_blocks) == (layers > 4, blocks > 6)
        if over_layers:
            assert op.level != "layer" or op.swap
        if over_blocks:
            assert op.level != "block" or op.swap
        layers += op.new_layer and not (op.name == "add_layer" and over_layers)
        blocks += op.new_block
    assert (pool.new_layers, pool.new_blocks) == (layers, blocks)
    assert layers > 4 and blocks > 6  # both limits bound during the 40 mutations


def test_over_the_layer_limit_no_layer_is_created():
    limits = Limits(layers=3)
    for s in SEEDS:
        pool = make_pool(X)
        pool.count_created(layers=4)
        layers_before = set(pool.layers)
        assert try_mutation(MUTATIONS_BY_NAME["change_kernel"], MODEL, random.Random(s), pool,
                            limits) is None
        new = try_mutation(MUTATIONS_BY_NAME["add_layer"], MODEL, random.Random(s), pool, limits)
        old_b, new_b = one_block_changed(MODEL, new)
        (added,) = Counter(new_b.layers) - Counter(old_b.layers)
        assert added.id in layers_before
        (child,) = apply_mutation(make_individual(MODEL), op=MUTATIONS_BY_NAME["add_layer"],
                                  rng=random.Random(s), pool=pool, limits=limits)
        assert child.mutations == ("add_layer",) and set(pool.layers) == layers_before
        assert (pool.new_layers, pool.new_blocks) == (4, 1)  # a new block, no new layer


def test_a_forbidden_mutation_is_not_applied_by_the_toolbox():
    state = fresh_state()
    toolbox = build_toolbox(state, layer_limit=3, block_limit=2)
    state.pool.count_created(layers=4, blocks=3)
    parent = make_individual(MODEL)
    for name in ("change_kernel", "change_filter", "change_units", "add_layer", "remove_layer",
                 "add_layer_connection", "remove_layer_connection"):
        (child,) = getattr(toolbox, f"mut_{name}")(parent)
        assert child.genome is MODEL and child.mutations == ()
    (child,) = toolbox.mut_swap_block(parent)
    assert child.mutations == ("swap_block",)
