"""Property tests: any sequence of mutations from any random initial model
keeps every genome valid, the gene pool consistent and the limit rule
obeyed; block and model ids are the same for every numbering of a graph and
differ between graphs that are not isomorphic."""

from __future__ import annotations

import copy
import json
import random

import networkx as nx
from graph_checks import on_entry_exit_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ras_deap.evolution import (
    MUTATIONS,
    MUTATIONS_BY_NAME,
    SearchState,
    build_toolbox,
    make_individual,
    try_mutation,
)
from ras_deap.genome import (
    CONV_FILTERS,
    CONV_KERNELS,
    CONV_STRIDES,
    DENSE_UNITS,
    Block,
    GenePool,
    GenomeError,
    Layer,
    Model,
    random_model,
    spectrum,
)
from ras_deap.genome.dag import validate_dag

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
STEPS = [op.name for op in MUTATIONS] + ["mutate"]


def check_graph(n: int, edges, what: str) -> None:
    """Independent of the genome code: acyclic (canonical edges go forward),
    single entry 0 and exit n-1, every node on an entry-exit path."""
    validate_dag(n, edges, what)
    assert all(0 <= u < v < n for u, v in edges), (what, edges)
    assert list(edges) == sorted(set(edges))
    assert on_entry_exit_paths(n, edges), what


def check_valid(model: Model) -> None:
    text = model.to_json()
    rebuilt = Model.from_json(text)  # re-runs every validation on fresh records
    assert rebuilt == model and rebuilt.to_json() == text
    check_graph(len(model.blocks), model.edges, "model")
    for block in model.blocks:
        check_graph(len(block.layers), block.edges, "block")
        for layer in block.layers:
            if layer.kind == "conv":
                assert layer.filters in CONV_FILTERS and layer.kernel in CONV_KERNELS
                assert layer.stride in CONV_STRIDES and layer.units is None
            else:
                assert layer.kind == "dense" and layer.units in DENSE_UNITS
    s = spectrum(model)
    assert s[1] == s[4] + s[5] and s[3] == sum(s[6:])


def snapshot(pool: GenePool) -> tuple[dict, dict]:
    return ({k: v.to_dict() for k, v in pool.layers.items()},
            {k: json.dumps(v.to_dict()) for k, v in pool.blocks.items()})


def allowed_in(sizes: tuple[int, int], op_name: str, layer_limit: int, block_limit: int) -> bool:
    op = MUTATIONS_BY_NAME[op_name]
    n_layers, n_blocks = sizes
    if op.level == "layer" and n_layers > layer_limit:
        return op.swap
    if op.level == "block" and n_blocks > block_limit:
        return op.swap
    return True


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1),
       steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=10),
       layer_limit=st.sampled_from([3, 12, 100]),
       block_limit=st.sampled_from([5, 100]),
       n_mutations=st.integers(1, 5),
       data=st.data())
def test_any_mutation_sequence_keeps_genomes_and_pool_valid(seed, steps, layer_limit,
                                                           block_limit, n_mutations, data):
    model = random_model(random.Random(seed))
    check_valid(model)
    state = SearchState(seed=seed, rng=random.Random(seed + 1),
                        pool=GenePool.from_models([model]), population=[])
    toolbox = build_toolbox(state, n_mutations=n_mutations, layer_limit=layer_limit,
                            block_limit=block_limit)
    limits = toolbox.limits
    pool = state.pool
    ind = make_individual(model)
    seen = [model]
    for name in steps:
        parent_json, parent_mutations = ind.genome.to_json(), ind.mutations
        before = snapshot(pool)
        sizes = (pool.new_layers, pool.new_blocks)  # what the limits count
        over_layers = sizes[0] > layer_limit
        probe = copy.deepcopy(state.rng)  # replays the same random draws
        if name == "mutate":
            (child,) = toolbox.mutate(ind)
            applied = child.mutations
            # add_block always applies (its pool is never empty): exactly k mutations
            assert len(applied) == n_mutations
        else:
            op = MUTATIONS_BY_NAME[name]
            allowed = limits.allows(op, pool)
            copy_pool = GenePool(dict(pool.layers), dict(pool.blocks), *sizes)
            expected = try_mutation(op, ind.genome, probe, copy_pool, limits)
            (child,) = getattr(toolbox, op.toolbox_name)(ind)
            assert child.mutations[:len(parent_mutations)] == parent_mutations
            applied = child.mutations[len(parent_mutations):]
            if not allowed:
                assert applied == () and expected is None
            if expected is None:  # forbidden or not applicable: an unchanged copy
                assert applied == () and child.genome == ind.genome
            else:  # the toolbox applies exactly the pure mutation
                assert applied == (name,) and child.genome == expected
        # the limit rule: the counts only grow while mutating, so a mutation
        # forbidden at the start stays forbidden; none may have been applied
        for op_name in applied:
            assert allowed_in(sizes, op_name, layer_limit, block_limit), (op_name, sizes)
        # every applied mutation counted the instances it created
        ops = [MUTATIONS_BY_NAME[n] for n in applied]
        assert pool.new_blocks - sizes[1] == sum(op.new_block for op in ops)
        fresh_layers = pool.new_layers - sizes[0]
        assert (sum(op.new_layer and op.name != "add_layer" for op in ops) <= fresh_layers
                <= sum(op.new_layer for op in ops))
        if over_layers:
            assert set(pool.layers) == set(before[0]), "a layer was created over the limit"
        # the child is valid and round-trips through JSON exactly
        check_valid(child.genome)
        assert child.parent_id == ind.genome.id and not child.fitness.valid
        # nothing existing was modified or removed
        assert ind.genome.to_json() == parent_json and ind.mutations == parent_mutations
        after = snapshot(pool)
        assert all(after[0].get(k) == v for k, v in before[0].items())
        assert all(after[1].get(k) == v for k, v in before[1].items())
        # the child's members are all in the pool (the same records)
        for block in child.genome.blocks:
            assert pool.blocks[block.id] == block
            for layer in block.layers:
                assert pool.layers[layer.id] == layer
        ind = child
        seen.append(child.genome)
    # pruning keeps exactly the layers and blocks the kept models use
    keep = data.draw(st.lists(st.sampled_from(seen), max_size=len(seen)), label="keep")
    pool.prune(keep)
    assert (pool.new_layers, pool.new_blocks) == (0, 0)
    assert set(pool.blocks) == {b.id for m in keep for b in m.blocks}
    assert set(pool.layers) == {layer.id for m in keep for layer in m.layers()}


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1),
       min_blocks=st.integers(1, 3), extra_blocks=st.integers(0, 4),
       min_layers=st.integers(1, 3), extra_layers=st.integers(0, 4))
def test_random_models_are_valid_and_round_trip(seed, min_blocks, extra_blocks, min_layers,
                                                extra_layers):
    model = random_model(random.Random(seed), min_blocks, min_blocks + extra_blocks,
                         min_layers, min_layers + extra_layers)
    check_valid(model)
    assert min_blocks <= len(model.blocks) <= min_blocks + extra_blocks
    assert all(min_layers <= len(b.layers) <= min_layers + extra_layers for b in model.blocks)


def _paths(value, prefix=()):
    """Every (path, leaf) of a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))
    else:
        yield prefix, value


# no subnormal floats: the evaluator's torch.set_flush_denormal(True) flushes
# them process-wide, and hypothesis refuses to draw them then
JUNK = st.one_of(st.integers(-3, 600), st.floats(allow_nan=False, allow_subnormal=False),
                 st.text(max_size=4),
                 st.none(), st.booleans(), st.lists(st.integers(-1, 5), max_size=3),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), data=st.data())
def test_corrupted_json_raises_genome_error_or_is_still_valid(seed, data):
    model = random_model(random.Random(seed))
    doc = model.to_dict()
    doc = json.loads(json.dumps(doc))
    leaves = list(_paths(doc))
    path, _ = data.draw(st.sampled_from(leaves), label="leaf")
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(JUNK, label="junk")
    try:
        rebuilt = Model.from_dict(doc)
    except GenomeError as exc:
        assert str(exc)
        return
    check_valid(rebuilt)  # an edit that happens to be harmless (e.g. same value)
    assert rebuilt == model


# ------------------------------------------------------- graph identity
LABELS = (Layer.conv(8, 3, 1), Layer.conv(16, 5, 2), Layer.dense(64))


@st.composite
def dags(draw, labels=LABELS, max_n: int = 7):
    """A random single-entry single-exit DAG with node labels: any set of
    forward edges, then every node without an input fed by node 0 and every
    node without an output feeding node n-1."""
    n = draw(st.integers(1, max_n))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    chosen = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    edges = {p for p, keep in zip(pairs, chosen, strict=True) if keep}
    edges |= {(0, v) for v in range(1, n) if all(e[1] != v for e in edges)}
    edges |= {(v, n - 1) for v in range(n - 1) if all(e[0] != v for e in edges)}
    nodes = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    return tuple(nodes), tuple(sorted(edges))


def relabel(nodes, edges, perm):
    """The same graph with node i renumbered perm[i]."""
    moved = [None] * len(nodes)
    for i, node in enumerate(nodes):
        moved[perm[i]] = node
    return tuple(moved), tuple((perm[u], perm[v]) for u, v in edges)


def isomorphic(a, b) -> bool:
    def graph(nodes, edges):
        g = nx.DiGraph()
        g.add_nodes_from((i, {"label": node.id}) for i, node in enumerate(nodes))
        g.add_edges_from(edges)
        return g
    return nx.is_isomorphic(graph(*a), graph(*b), node_match=lambda x, y: x == y)


@SETTINGS
@given(graph=dags(), data=st.data())
def test_every_numbering_of_a_block_has_one_id(graph, data):
    nodes, edges = graph
    perm = data.draw(st.permutations(range(len(nodes))), label="perm")
    block, moved = Block(nodes, edges), Block(*relabel(nodes, edges, perm))
    assert moved.id == block.id and moved == block and hash(moved) == hash(block)
    model = Model((block, moved), ((0, 1),))  # both numberings in one model
    text = model.to_json()
    again = Model.from_json(text)
    assert again.to_json() == text
    assert [(b.layers, b.edges) for b in again.blocks] == \
        [(b.layers, b.edges) for b in model.blocks]


@SETTINGS
@given(a=dags(), b=dags())
def test_blocks_share_an_id_exactly_when_isomorphic(a, b):
    assert (Block(*a).id == Block(*b).id) == isomorphic(a, b)


BLOCKS = (Block((LABELS[0],)), Block(LABELS[:2], ((0, 1),)), Block(LABELS[1::-1], ((0, 1),)),
          Block((LABELS[0], LABELS[2], LABELS[1], LABELS[0]), ((0, 1), (0, 2), (1, 3), (2, 3))))


@SETTINGS
@given(graph=dags(labels=BLOCKS, max_n=6), other=dags(labels=BLOCKS, max_n=6), data=st.data())
def test_model_ids_ignore_numbering_and_tell_graphs_apart(graph, other, data):
    nodes, edges = graph
    perm = data.draw(st.permutations(range(len(nodes))), label="perm")
    model = Model(nodes, edges)
    assert Model(*relabel(nodes, edges, perm)).id == model.id
    assert (Model(*other).id == model.id) == isomorphic(graph, other)
