"""Genome records: validation, content ids, JSON round trip, gene pool and spectrum."""

from __future__ import annotations

import copy
import json
import pickle
import random

import numpy as np
import pytest

from ras_deap.genome import (
    CONV_FILTERS,
    CONV_KERNELS,
    CONV_STRIDES,
    DENSE_UNITS,
    MODEL_FORMAT,
    SPECTRUM_FEATURES,
    Block,
    GenePool,
    GenomeError,
    Layer,
    Model,
    feature_scale,
    random_layer,
    random_model,
    spectrum,
    spectrum_distance,
    utility,
)

C8 = Layer.conv(8, 3, 1)
C16 = Layer.conv(16, 5, 2)
C32 = Layer.conv(32, 1, 1)
C64 = Layer.conv(64, 3, 2)
D64 = Layer.dense(64)
D128 = Layer.dense(128)
D256 = Layer.dense(256)


def chain(*layers: Layer) -> Block:
    return Block(tuple(layers), tuple((i, i + 1) for i in range(len(layers) - 1)))


def spectrum_dict(model: Model) -> dict[str, int]:
    return dict(zip(SPECTRUM_FEATURES, spectrum(model), strict=True))


# --------------------------------------------------------------------- layers
def test_layer_accepts_every_choice_and_ids_are_content_hashes():
    layers = [Layer.conv(f, k, s) for f in CONV_FILTERS for k in CONV_KERNELS
              for s in CONV_STRIDES] + [Layer.dense(u) for u in DENSE_UNITS]
    assert len({layer.id for layer in layers}) == 28
    assert all(layer.id.startswith("L-") for layer in layers)
    assert Layer.conv(8, 3, 1) == C8 and hash(Layer.conv(8, 3, 1)) == hash(C8)
    assert Layer.conv(8, 3, 1).id == C8.id
    assert Layer.conv(8, 3, 2) != C8
    assert Layer.from_dict(C16.to_dict()) == C16
    assert D64.to_dict() == {"kind": "dense", "units": 64}
    assert C8.is_conv and not D64.is_conv


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Layer.conv(12, 3, 1), "filters=12 is outside its choices"),
    (lambda: Layer.conv(8, 4, 1), "kernel=4 is outside its choices"),
    (lambda: Layer.conv(8, 3, 3), "stride=3 is outside its choices"),
    (lambda: Layer.dense(100), "units=100 is outside its choices"),
    (lambda: Layer.conv(8.0, 3, 1), "filters=8.0 is outside its choices"),
    (lambda: Layer.conv(True, 3, 1), "filters=True"),
    (lambda: Layer.dense("64"), "units='64'"),
    (lambda: Layer("conv", filters=8, kernel=3, stride=1, units=64), "conv layer has no units"),
    (lambda: Layer("dense", units=64, kernel=3), "dense layer has no filters"),
    (lambda: Layer("pool"), "kind='pool' is not one of"),
    (lambda: Layer.from_dict({"kind": "dense", "units": 64, "bias": True}), "unknown fields"),
    (lambda: Layer.from_dict({"units": 64}), "expected an object with a 'kind'"),
])
def test_layer_rejects_parameters_outside_their_choices(make, match):
    with pytest.raises(GenomeError, match=match):
        make()


def test_layer_normalises_numpy_integers():
    layer = Layer.conv(np.int64(16), np.int32(5), np.int8(2))
    assert layer == C16 and type(layer.filters) is int
    assert layer.to_dict() == C16.to_dict()


def test_records_are_shared_by_copy_and_survive_pickle():
    block = chain(C8, D64)
    model = Model((block, chain(C16)), ((0, 1),))
    for record in (C8, block, model):
        assert copy.copy(record) is record
        assert copy.deepcopy(record) is record
        restored = pickle.loads(pickle.dumps(record))
        assert restored == record and restored.id == record.id


# --------------------------------------------------------------------- blocks
def test_block_is_canonicalised_so_labelling_does_not_change_the_id():
    a = Block((D64, C8), ((1, 0),))  # C8 -> D64 given with reversed labels
    b = Block((C8, D64), ((0, 1),))
    assert a.layers == (C8, D64) and a.edges == ((0, 1),)
    assert a.id == b.id and a == b
    diamond = Block((D128, C32, C16, C8), ((3, 1), (3, 2), (1, 0), (2, 0)))
    assert diamond.layers[0] == C8 and diamond.layers[-1] == D128
    assert all(u < v for u, v in diamond.edges)
    assert list(diamond.edges) == sorted(diamond.edges)
    assert diamond.predecessors(3) == [1, 2] and diamond.successors(0) == [1, 2]
    # forward but unsorted edges, and lists from JSON, end up in the same form
    assert Block((C8, C16, D64), ((1, 2), (0, 1))).edges == ((0, 1), (1, 2))
    assert Block((C8, C16, D64), [[0, 1], [1, 2]]) == Block((C8, C16, D64), ((0, 1), (1, 2)))


def _diamonds() -> tuple[Block, Block]:
    """A -> {B, C} -> D numbered both ways: both numberings are canonical."""
    edges = ((0, 1), (0, 2), (1, 3), (2, 3))
    return Block((C8, C16, C32, D64), edges), Block((C8, C32, C16, D64), edges)


def test_two_numberings_of_one_graph_are_one_member():
    one, other = _diamonds()
    assert one.layers != other.layers  # the records keep the numbering they were given
    assert one.id == other.id and one == other and hash(one) == hash(other)
    pool = GenePool()
    assert pool.add_block(one) is one and pool.add_block(other) is one
    assert pool.sizes() == {"layers": 4, "blocks": 1}
    # models: the same for either numbering of a block and of the model graph
    head, tail = chain(D128), chain(C64, D256)
    assert Model((one, head), ((0, 1),)).id == Model((other, head), ((0, 1),)).id
    fork = Model((head, one, tail, other), ((0, 1), (0, 2), (1, 3), (2, 3)))
    swapped = Model((head, tail, one, other), ((0, 1), (0, 2), (1, 3), (2, 3)))
    assert fork.blocks != swapped.blocks and fork.id == swapped.id and fork == swapped
    assert spectrum(fork) == spectrum(swapped)
    assert Model((head, one), ((0, 1),)).id != Model((one, head), ((0, 1),)).id


def test_json_keeps_each_numbering_of_a_shared_id():
    one, other = _diamonds()
    model = Model((one, chain(D128), other), ((0, 1), (1, 2)))
    text = model.to_json()
    data = json.loads(text)
    assert data["model"]["blocks"] == [one.id, model.blocks[1].id, f"{one.id}~1"]
    again = Model.from_json(text)
    assert again.to_json() == text
    assert [b.layers for b in again.blocks] == [b.layers for b in model.blocks]
    assert [b.edges for b in again.blocks] == [b.edges for b in model.blocks]
    layers = data["blocks"][f"{one.id}~1"]["layers"]
    layers[0], layers[1] = layers[1], layers[0]  # the copy must still hash to its id
    with pytest.raises(GenomeError, match="content hashes to"):
        Model.from_dict(data)


def _legacy(model: Model) -> dict:
    """The document format 1 wrote: the same, with ids that hashed the numbering."""
    data = model.to_dict()
    keys = {b.id: b.legacy_id for b in model.blocks}
    return {**data, "format": "ras_deap.model/1", "id": model.legacy_id,
            "blocks": {keys[k]: v for k, v in data["blocks"].items()},
            "model": {**data["model"], "blocks": [keys[k] for k in data["model"]["blocks"]]}}


def test_model_json_of_format_1_still_loads():
    model = random_model(random.Random(4))
    old = _legacy(model)
    assert old["id"] != model.id
    again = Model.from_dict(json.loads(json.dumps(old)))
    assert again == model and again.to_json() == model.to_json()
    old["id"] = model.id  # a format-1 document is checked with format-1 ids
    with pytest.raises(GenomeError, match="content hashes to"):
        Model.from_dict(old)
    current = {**model.to_dict(), "format": "ras_deap.model/1"}
    with pytest.raises(GenomeError, match="content hashes to"):
        Model.from_dict(current)


def test_block_id_depends_on_layers_and_edges():
    assert chain(C8, D64).id != chain(C8, D128).id
    tri = Block((C8, C16, D64), ((0, 1), (1, 2)))
    tri_skip = Block((C8, C16, D64), ((0, 1), (0, 2), (1, 2)))
    assert tri.id != tri_skip.id
    assert tri.id.startswith("B-")


@pytest.mark.parametrize(("n", "edges", "match"), [
    (2, ((0, 1), (1, 0)), "cycle"),
    (1, ((0, 0),), "self-loop"),
    (2, ((0, 1), (0, 1)), "appears twice"),
    (2, ((0, 2),), "dangling reference"),
    (2, ((-1, 1),), "dangling reference"),
    (2, (), "no input"),
    (3, ((0, 1), (0, 2)), "no output"),
    (3, ((0, 2), (1, 2)), "no input"),
    (2, ((0, 1.5),), "integer node indices"),
    (2, ((0, 1, 2),), "pair"),
])
def test_invalid_block_graphs_raise(n, edges, match):
    layers = (C8, C16, D64)[:n]
    with pytest.raises(GenomeError, match=match):
        Block(layers, edges)


def test_block_needs_layers():
    with pytest.raises(GenomeError, match="at least one node"):
        Block(())
    with pytest.raises(GenomeError, match="is not a Layer"):
        Block(({"kind": "dense", "units": 64},))
    with pytest.raises(GenomeError, match="is not a Block"):
        Model((C8,))


# --------------------------------------------------------------------- models
@pytest.mark.parametrize("seed", range(12))
def test_model_json_round_trips_exactly(seed):
    model = random_model(random.Random(seed))
    text = model.to_json()
    again = Model.from_json(text)
    assert again == model and again.id == model.id
    assert again.to_json() == text
    assert again.blocks == model.blocks and again.edges == model.edges
    assert Model.from_json(model.to_json(indent=None)) == model
    data = json.loads(text)
    assert data["format"] == MODEL_FORMAT and data["id"] == model.id
    assert set(data["layers"]) == {layer.id for layer in model.layers()}
    assert set(data["blocks"]) == {block.id for block in model.blocks}
    assert data["model"]["blocks"] == [b.id for b in model.blocks]


def _model_with_repeats() -> Model:
    a = Block((C8, C16, D64), ((0, 1), (0, 2), (1, 2)))
    b = chain(D64, C32)
    return Model((a, b, a), ((0, 1), (1, 2)))


def test_model_may_reuse_a_block_and_json_names_it_once():
    model = _model_with_repeats()
    data = model.to_dict()
    assert len(data["blocks"]) == 2 and len(data["model"]["blocks"]) == 3
    assert len(data["layers"]) == 4
    assert Model.from_dict(data) == model


def _tamper(edit):
    data = _model_with_repeats().to_dict()
    edit(data)
    return data


def _first(section: dict) -> str:
    return next(iter(section))


@pytest.mark.parametrize(("edit", "match"), [
    # a cycle inside a block (an extra back edge from the exit to the entry)
    (lambda d: d["blocks"][_first(d["blocks"])]["edges"].append([2, 0]), "cycle"),
    # a cycle in the model graph
    (lambda d: d["model"]["edges"].append([2, 0]), "cycle"),
    # an edge index out of range
    (lambda d: d["model"]["edges"].append([1, 7]), "dangling reference"),
    (lambda d: d["blocks"][_first(d["blocks"])]["edges"].append([0, 9]), "dangling reference"),
    # JSON naming a missing layer / block id
    (lambda d: d["blocks"][_first(d["blocks"])]["layers"].__setitem__(0, "L-000000000000"),
     "dangling reference to layer"),
    (lambda d: d["model"]["blocks"].__setitem__(1, "B-000000000000"),
     "dangling reference to block"),
    # unreachable output: the exit block loses its only input, so two entries
    (lambda d: d["model"].__setitem__("edges", [[0, 1]]), "no input"),
    # several exits in a block
    (lambda d: d["blocks"][_first(d["blocks"])].__setitem__("edges", [[0, 1], [0, 2]]),
     "no output"),
    # a parameter outside its choices
    (lambda d: d["layers"][_first(d["layers"])].__setitem__("kernel", 4), "kernel=4"),
    (lambda d: d["layers"][_first(d["layers"])].__setitem__("filters", 8.0), "filters=8.0"),
    # tampered content: the id no longer matches what it names
    (lambda d: d["layers"][_first(d["layers"])].__setitem__("kernel", 5), "content hashes to"),
    (lambda d: d["blocks"][_first(d["blocks"])]["edges"].remove([0, 2]), "content hashes to"),
    (lambda d: d.__setitem__("id", "M-000000000000"), "content hashes to"),
    (lambda d: d["model"]["blocks"].__setitem__(0, d["model"]["blocks"][1]),
     "content hashes to|no input|no output"),
    # malformed documents
    (lambda d: d.__setitem__("format", "other/1"), "format"),
    (lambda d: d.pop("blocks"), "missing the 'blocks'"),
    (lambda d: d.__setitem__("layers", []), "'layers' must be a JSON object"),
    (lambda d: d["blocks"][_first(d["blocks"])].pop("layers"), "missing the 'layers'"),
    (lambda d: d["model"].pop("blocks"), "missing the 'blocks'"),
    (lambda d: d["model"].__setitem__("edges", [[0, "1"]]), "integer node indices"),
])
def test_tampered_json_raises_a_clear_genome_error(edit, match):
    data = _tamper(edit)
    with pytest.raises(GenomeError, match=match):
        Model.from_dict(data)
    with pytest.raises(GenomeError):
        Model.from_json(json.dumps(data))


def test_non_json_text_raises_genome_error():
    with pytest.raises(GenomeError, match="not valid JSON"):
        Model.from_json("{not json")
    with pytest.raises(GenomeError, match="must be an object"):
        Model.from_json("[1, 2]")


def test_model_id_changes_with_the_graph():
    a, b = chain(C8, D64), chain(C16)
    assert Model((a, b), ((0, 1),)).id != Model((b, a), ((0, 1),)).id
    assert Model((a, b), ((0, 1),)).id.startswith("M-")


# ---------------------------------------------------------------- random init
def test_random_models_follow_section_5_1():
    rng = random.Random(7)
    models = [random_model(rng) for _ in range(60)]
    assert {len(m.blocks) for m in models} == {2, 3, 4, 5}
    assert {len(b.layers) for m in models for b in m.blocks} == {2, 3, 4, 5}
    kinds = {layer.kind for m in models for layer in m.layers()}
    assert kinds == {"conv", "dense"}
    assert random_model(random.Random(3)) == random_model(random.Random(3))
    assert random_model(random.Random(3)) != random_model(random.Random(4))
    layers = {random_layer(rng).id for _ in range(600)}
    assert len(layers) == 28  # every layer of the search space can be drawn
    small = random_model(random.Random(1), min_blocks=1, max_blocks=1, min_layers=1,
                         max_layers=1)
    assert len(small.blocks) == 1 and len(small.layers()) == 1


# ------------------------------------------------------------------ gene pool
def test_pool_registers_members_once_and_prunes_exactly_the_unused():
    a = Block((C8, C16, D64), ((0, 1), (0, 2), (1, 2)))
    b = chain(D64, C32)
    c = chain(C64, D256)
    m1 = Model((a, b), ((0, 1),))
    m2 = Model((b, c), ((0, 1),))
    pool = GenePool.from_models([m1, m2])
    assert set(pool.blocks) == {a.id, b.id, c.id}
    assert set(pool.layers) == {x.id for x in (C8, C16, D64, C32, C64, D256)}
    assert pool.add_layer(Layer.conv(8, 3, 1)) is C8  # already a member: the pooled record
    assert pool.sizes() == {"layers": 6, "blocks": 3}
    assert pool.prune([m1, m2]) == (0, 0)
    assert pool.prune([m2]) == (2, 1)  # C8, C16 and block a are used by m1 only
    assert set(pool.blocks) == {b.id, c.id}
    assert set(pool.layers) == {x.id for x in (D64, C32, C64, D256)}
    assert pool.prune([]) == (4, 2) and pool.sizes() == {"layers": 0, "blocks": 0}


def test_utility_counts_models_not_occurrences():
    a = chain(C8, C8, D64)
    m = Model((a, a), ((0, 1),))
    layer_use, block_use = utility([m, m, Model((chain(D64),))])
    assert block_use[a.id] == 2
    assert layer_use[C8.id] == 2 and layer_use[D64.id] == 3


# ------------------------------------------------------------------- spectrum
def test_spectrum_of_a_hand_built_model():
    a = Block((C8, C16, D64), ((0, 1), (0, 2), (1, 2)))  # c->c, c->d, c->d
    b = chain(D128, C32)  # d->c
    c = chain(C64)  # a single conv layer, no inner edge
    model = Model((a, b, c), ((0, 1), (1, 2), (0, 2)))
    # Block connections induce exit -> entry layer edges:
    #   a->b: D64 -> D128 (d->d), b->c: C32 -> C64 (c->c), a->c: D64 -> C64 (d->c).
    assert spectrum_dict(model) == {
        "blocks": 3, "layers": 6, "block_connections": 3,
        "layer_connections": 3 + 1 + 0 + 3,
        "dense_layers": 2, "conv_layers": 4,
        "dense_to_dense": 1, "dense_to_conv": 1 + 1, "conv_to_dense": 2, "conv_to_conv": 1 + 1,
    }


def test_spectrum_counts_repeated_members_and_ignores_input_and_head():
    single = Model((chain(D64),))
    assert spectrum(single) == (1, 1, 0, 0, 1, 0, 0, 0, 0, 0)  # no input/softmax edges
    a = chain(C8, D64)
    model = Model((a, a, a), ((0, 1), (1, 2)))
    # 3 x (c->d inside) + 2 block connections D64 -> C8 (d->c)
    assert spectrum_dict(model) == {
        "blocks": 3, "layers": 6, "block_connections": 2, "layer_connections": 5,
        "dense_layers": 3, "conv_layers": 3,
        "dense_to_dense": 0, "dense_to_conv": 2, "conv_to_dense": 3, "conv_to_conv": 0,
    }


@pytest.mark.parametrize("seed", range(10))
def test_spectrum_is_consistent_on_random_models(seed):
    model = random_model(random.Random(seed))
    s = spectrum_dict(model)
    assert s["blocks"] == len(model.blocks)
    assert s["layers"] == len(model.layers()) == s["dense_layers"] + s["conv_layers"]
    assert s["block_connections"] == len(model.edges)
    assert s["layer_connections"] == (s["dense_to_dense"] + s["dense_to_conv"]
                                      + s["conv_to_dense"] + s["conv_to_conv"])
    assert s["layer_connections"] == sum(len(b.edges) for b in model.blocks) + len(model.edges)


def test_spectrum_distance_and_scale():
    assert spectrum_distance((0, 0), (3, 4)) == pytest.approx(5.0)
    assert spectrum_distance((0, 0), (3, 4), scale=(3.0, 4.0)) == pytest.approx(2 ** 0.5)
    assert feature_scale([(1, 0, 5), (3, 0, 2)]) == (3.0, 1.0, 5.0)
    assert feature_scale([]) == tuple(1.0 for _ in SPECTRUM_FEATURES)


# --------------------------------------------------------------------- shapes
def test_vector_to_map_picks_the_largest_square_side_that_divides():
    from ras_deap.genome.shapes import node_shapes, vector_to_map

    assert vector_to_map(64, 8) == (4, 4, 4) and vector_to_map(512, 32) == (32, 4, 4)
    assert vector_to_map(72, 28) == (8, 3, 3) and vector_to_map(8 * 2 * 2, 32) == (2, 4, 4)
    assert vector_to_map(40, 32) == (10, 2, 2) and vector_to_map(7, 32) == (7, 1, 1)
    assert vector_to_map(64, 2) == (16, 2, 2) and vector_to_map(64, 1) == (64, 1, 1)
    with pytest.raises(ValueError, match="positive"):
        vector_to_map(0, 8)
    model = Model((chain(D64, C16, C8),))
    assert node_shapes(model, (1, 8, 8)) == [[((1, 8, 8), (64,)), ((64,), (16, 2, 2)),
                                              ((16, 2, 2), (8, 2, 2))]]
