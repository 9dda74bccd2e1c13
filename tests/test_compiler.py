"""Genome -> torch module: shape rules, exact structure, mutations, random genomes."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from ras_deap.evaluation import (
    BuildError,
    Concat,
    compile_model,
    count_parameters,
    estimate_flops,
    planned_parameters,
)
from ras_deap.genome import Block, GenePool, Layer, Model, random_model

conv, dense = Layer.conv, Layer.dense


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def one_block(*layers: Layer, edges=None) -> Model:
    edges = edges if edges is not None else [(i, i + 1) for i in range(len(layers) - 1)]
    return Model((Block(tuple(layers), tuple(edges)),), ())


def assert_reflects(net, model: Model) -> None:
    """The built module is exactly the genome: one Conv2d/Linear per layer node
    with the genome's parameters, ReLU + BatchNorm after it, and each node's
    concatenation has the genome's inputs."""
    assert len(net.blocks) == len(model.blocks)
    assert net.block_inputs == tuple(tuple(sorted(model.predecessors(v)))
                                     for v in range(len(model.blocks)))
    for v, merge in enumerate(net.merges):
        assert merge.num_inputs == max(1, len(model.predecessors(v)))
    for cb, block in zip(net.blocks, model.blocks, strict=True):
        assert len(cb.layers) == len(block.layers)
        assert cb.node_inputs == tuple(tuple(sorted(block.predecessors(j)))
                                       for j in range(len(block.layers)))
        for j, (unit, layer) in enumerate(zip(cb.layers, block.layers, strict=True)):
            assert cb.merges[j].num_inputs == max(1, len(block.predecessors(j)))
            if layer.is_conv:
                assert isinstance(unit.op, nn.Conv2d) and isinstance(unit.bn, nn.BatchNorm2d)
                assert unit.op.out_channels == layer.filters
                assert unit.op.kernel_size == (layer.kernel, layer.kernel)
                assert unit.op.stride == (layer.stride, layer.stride)
                assert unit.op.padding == (layer.kernel // 2, layer.kernel // 2)
            else:
                assert isinstance(unit.op, nn.Linear) and isinstance(unit.bn, nn.BatchNorm1d)
                assert unit.op.out_features == layer.units


def test_conv_keeps_size_and_stride_halves_it():
    net = compile_model(one_block(conv(8, 3, 1), conv(16, 5, 2), conv(8, 1, 2)), (1, 8, 8), 10)
    shapes = [u.out_shape for u in net.blocks[0].layers]
    assert shapes == [(8, 8, 8), (16, 4, 4), (8, 2, 2)]
    assert net.blocks[0].layers[1].op.padding == (2, 2)
    assert net(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert net.pool == "global_avg" and net.head.in_features == 8


def test_conv_to_dense_flattens_and_dense_to_conv_reshapes():
    net = compile_model(one_block(conv(8, 3, 2), dense(64), conv(16, 5, 2), conv(8, 3, 2)),
                        (1, 8, 8), 10)
    units = net.blocks[0].layers
    assert units[1].op.in_features == 8 * 4 * 4
    # the 64 units become a 4 x 4 x 4 map, not 64 x 1 x 1
    assert units[2].adapt == "to_map" and units[2].map_shape == (4, 4, 4)
    assert units[2].op.in_channels == 4 and not units[2].center_tap
    assert units[2].out_shape == (16, 2, 2) and units[3].out_shape == (8, 1, 1)
    out = net(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    # stride 2 on a 1 x 1 map keeps it 1 x 1 (padding kernel // 2, ceil output)
    tiny = compile_model(one_block(conv(8, 3, 2), conv(8, 3, 2)), (1, 1, 1), 10)
    assert [u.out_shape for u in tiny.blocks[0].layers] == [(8, 1, 1), (8, 1, 1)]


@pytest.mark.parametrize("image", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_dense_to_conv_keeps_space_on_every_dataset_shape(image):
    """The documented rule: s is the largest side up to min(image side, 4)
    whose square divides F, so every dense width gives s = 4 > 1 on every
    dataset shape."""
    for units in (64, 128, 256, 512):
        shape = (units // 16, 4, 4)
        net = compile_model(one_block(dense(units), conv(8, 3, 1)), image, 10)
        unit = net.blocks[0].layers[1]
        assert unit.map_shape == shape and unit.op.in_channels == shape[0]
        assert unit.out_shape == (8, *shape[1:])
        assert net(torch.rand(2, *image)).shape == (2, 10)


def test_change_kernel_changes_what_a_conv_after_a_dense_layer_computes():
    """Mutation (a) on the conv after a dense layer changes the forward output.
    The kernel-3/5 conv gets the kernel-1 conv's weights as its centre tap
    and random other taps: on a real map those taps see neighbours, so the
    output changes; on a 1 x 1 map (the control, a 1 x 1 image) they only
    multiply padding and the two networks agree."""
    mutations = pytest.importorskip("ras_deap.evolution.mutations")
    parent = one_block(dense(64), conv(8, 1, 1), dense(128))
    child = mutations.mut_change_kernel(parent, random.Random(0), GenePool())
    k = child.blocks[0].layers[1].kernel
    assert k in (3, 5) and child.blocks[0].layers[0] == parent.blocks[0].layers[0]
    for image, changes in (((1, 8, 8), True), ((1, 1, 1), False)):
        torch.manual_seed(0)
        before = compile_model(parent, image, 10).eval()
        after = compile_model(child, image, 10).eval()
        state = before.state_dict()
        weight = torch.randn_like(after.blocks[0].layers[1].op.weight)
        weight[:, :, k // 2, k // 2] = state["blocks.0.layers.1.op.weight"][:, :, 0, 0]
        state["blocks.0.layers.1.op.weight"] = weight
        after.load_state_dict(state)
        x = torch.rand(4, *image)
        with torch.no_grad():
            same = torch.allclose(before(x), after(x), atol=1e-5)
        assert same != changes, image


def test_center_tap_path_equals_a_real_convolution():
    torch.manual_seed(0)
    # three stride-2 convs take the 8 x 8 image to 1 x 1; the last two convs see 1 x 1
    net = compile_model(one_block(conv(8, 3, 2), conv(8, 3, 2), conv(8, 3, 2), conv(16, 5, 2),
                                  conv(8, 3, 1)), (1, 8, 8), 10)
    assert [u.center_tap for u in net.blocks[0].layers] == [False, False, False, True, True]
    x = torch.rand(5, 1, 8, 8)
    fast = net(x)
    for unit in net.blocks[0].layers:
        unit.center_tap = False
    torch.testing.assert_close(net(x), fast, atol=1e-5, rtol=1e-5)


def test_concat_of_maps_pools_to_the_smallest_size():
    model = one_block(conv(8, 3, 1), conv(16, 3, 2), conv(8, 1, 1),
                      edges=[(0, 1), (0, 2), (1, 2)])
    net = compile_model(model, (1, 8, 8), 10)
    merge = net.blocks[0].merges[2]
    assert (merge.mode, merge.num_inputs, merge.out_shape) == ("maps", 2, (24, 4, 4))
    assert net.blocks[0].layers[2].op.in_channels == 24
    a, b = torch.rand(2, 8, 8, 8), torch.rand(2, 16, 4, 4)
    expected = torch.cat([nn.functional.avg_pool2d(a, 2), b], dim=1)
    torch.testing.assert_close(merge([a, b]), expected)


def test_concat_with_a_vector_flattens_everything():
    model = one_block(conv(8, 3, 2), dense(64), dense(128), edges=[(0, 1), (0, 2), (1, 2)])
    net = compile_model(model, (1, 8, 8), 10)
    merge = net.blocks[0].merges[2]
    assert (merge.mode, merge.out_shape) == ("flat", (8 * 4 * 4 + 64,))
    assert net.blocks[0].layers[2].op.in_features == 192
    assert net.pool == "identity" and net.head.in_features == 128
    m = Concat([(2, 2, 2), (3,)])
    out = m([torch.arange(8.0).view(1, 2, 2, 2), torch.tensor([[8.0, 9.0, 10.0]])])
    assert out.tolist() == [list(range(11))]


def test_block_graph_concatenates_block_outputs():
    b1 = Block((conv(8, 3, 1),))
    b2 = Block((conv(16, 3, 2),))
    b3 = Block((dense(64),))
    b4 = Block((conv(8, 1, 1),))
    model = Model((b1, b2, b3, b4), ((0, 1), (0, 2), (1, 2), (1, 3), (2, 3)))
    net = compile_model(model, (3, 32, 32), 10)
    assert net.block_inputs == ((), (0,), (0, 1), (1, 2))
    # block 2 gets two maps: pooled to 16 x 16 and stacked, then flattened by its dense layer
    assert net.merges[2].mode == "maps" and net.merges[2].out_shape == (24, 16, 16)
    assert net.blocks[2].layers[0].op.in_features == 24 * 16 * 16
    # block 3 gets a map and a vector: both flattened
    assert net.merges[3].mode == "flat" and net.merges[3].out_shape == (16 * 16 * 16 + 64,)
    # ... and reshaped for its conv: 4160 = 260 x 4 x 4
    assert net.blocks[3].layers[0].adapt == "to_map"
    assert net.blocks[3].layers[0].map_shape == (260, 4, 4)
    assert net.blocks[3].layers[0].op.in_channels == 260
    assert_reflects(net, model)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_normalisation_is_the_first_step():
    model = one_block(conv(8, 3, 1), dense(64))
    torch.manual_seed(0)
    plain = compile_model(model, (1, 8, 8), 10)
    torch.manual_seed(0)
    normed = compile_model(model, (1, 8, 8), 10, mean=(0.5,), std=(0.25,))
    plain.eval()
    normed.eval()
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(normed(x), plain((x - 0.5) / 0.25))
    assert count_parameters(normed) == count_parameters(plain)  # buffers, not parameters


def test_parameters_and_flops_of_a_known_network():
    net = compile_model(one_block(conv(8, 3, 1)), (1, 8, 8), 10)
    # conv 1*8*9 + 8, batchnorm 2*8, head 8*10 + 10
    assert count_parameters(net) == 80 + 16 + 90
    # conv: 2 * (8 x 8 x 8 outputs) * 9 taps; head: 2 * 8 * 10
    assert estimate_flops(net, (1, 8, 8)) == 2 * 512 * 9 + 160
    assert net.training  # estimate_flops restores the mode


def test_too_many_parameters_is_a_build_error_naming_the_genome():
    model = one_block(dense(512), dense(512))
    with pytest.raises(BuildError) as info:
        compile_model(model, (3, 32, 32), 10, max_parameters=1000)
    assert info.value.genome_id == model.id and model.id in str(info.value)


def test_bad_arguments_are_rejected():
    model = one_block(conv(8, 3, 1))
    with pytest.raises(ValueError, match="input_shape"):
        compile_model(model, (8, 8), 10)
    with pytest.raises(ValueError, match="per channel"):
        compile_model(model, (3, 8, 8), 10, mean=(0.5,), std=(0.2,))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6))
def test_random_genomes_build_and_run_on_digits(seed):
    model = random_model(random.Random(seed))
    net = compile_model(model, (1, 8, 8), 10)
    assert_reflects(net, model)
    assert count_parameters(net) == planned_parameters(model, (1, 8, 8), 10)
    out = net(torch.rand(2, 1, 8, 8))  # training mode: BatchNorm with batch statistics
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6))
def test_random_genomes_build_and_run_on_cifar_shape(seed):
    model = random_model(random.Random(seed))
    net = compile_model(model, (3, 32, 32), 10)
    assert count_parameters(net) == planned_parameters(model, (3, 32, 32), 10)
    with torch.no_grad():
        out = net.eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


# -- every mutation changes the built module the way it changes the genome ----

def _layer_spec(unit) -> tuple:
    op = unit.op
    if isinstance(op, nn.Conv2d):
        return ("conv", op.out_channels, op.kernel_size[0], op.stride[0])
    return ("dense", op.out_features)


def _specs(net) -> list[list[tuple]]:
    return [[_layer_spec(u) for u in b.layers] for b in net.blocks]


def _layer_concat_inputs(net) -> int:
    return sum(m.num_inputs for b in net.blocks for m in list(b.merges)[1:])


def _block_concat_inputs(net) -> int:
    return sum(m.num_inputs for m in list(net.merges)[1:])


def _changed_positions(a, b) -> list[tuple[int, int]]:
    assert [len(x) for x in a] == [len(x) for x in b]
    return [(i, j) for i, (x, y) in enumerate(zip(a, b, strict=True))
            for j, (p, q) in enumerate(zip(x, y, strict=True)) if p != q]


def _one_changed(before, after) -> tuple[tuple, tuple]:
    changed = _changed_positions(_specs(before), _specs(after))
    assert len(changed) == 1, changed
    i, j = changed[0]
    return _specs(before)[i][j], _specs(after)[i][j]


def _check_change_kernel(before, after):
    old, new = _one_changed(before, after)
    assert old[0] == new[0] == "conv" and old[2] != new[2] and (old[1], old[3]) == (new[1], new[3])


def _check_change_filter(before, after):
    old, new = _one_changed(before, after)
    assert old[0] == new[0] == "conv" and old[1] != new[1] and old[2:] == new[2:]


def _check_change_units(before, after):
    old, new = _one_changed(before, after)
    assert old[0] == new[0] == "dense" and old[1] != new[1]


def _check_swap_layer(before, after):
    old, new = _one_changed(before, after)
    assert old != new


def _total_layers(net) -> int:
    return sum(len(b.layers) for b in net.blocks)


def _check_add_layer(before, after):
    assert len(after.blocks) == len(before.blocks)
    assert _total_layers(after) == _total_layers(before) + 1


def _check_remove_layer(before, after):
    assert len(after.blocks) == len(before.blocks)
    assert _total_layers(after) == _total_layers(before) - 1


def _check_add_layer_connection(before, after):
    assert _specs(after) == _specs(before)
    assert _layer_concat_inputs(after) == _layer_concat_inputs(before) + 1


def _check_remove_layer_connection(before, after):
    assert _specs(after) == _specs(before)
    assert _layer_concat_inputs(after) == _layer_concat_inputs(before) - 1


def _check_swap_block(before, after):
    assert len(after.blocks) == len(before.blocks)
    assert after.block_inputs == before.block_inputs
    diff = [i for i, (a, b) in enumerate(zip(before.blocks, after.blocks, strict=True))
            if (_specs_of(a), a.node_inputs) != (_specs_of(b), b.node_inputs)]
    assert len(diff) == 1


def _specs_of(block) -> list[tuple]:
    return [_layer_spec(u) for u in block.layers]


def _check_add_block(before, after):
    assert len(after.blocks) == len(before.blocks) + 1


def _check_remove_block(before, after):
    assert len(after.blocks) == len(before.blocks) - 1


def _check_add_block_connection(before, after):
    assert len(after.blocks) == len(before.blocks)
    assert _block_concat_inputs(after) == _block_concat_inputs(before) + 1


def _check_remove_block_connection(before, after):
    assert len(after.blocks) == len(before.blocks)
    assert _block_concat_inputs(after) == _block_concat_inputs(before) - 1


CHECKS = {
    "change_kernel": _check_change_kernel,
    "change_filter": _check_change_filter,
    "change_units": _check_change_units,
    "swap_layer": _check_swap_layer,
    "add_layer": _check_add_layer,
    "remove_layer": _check_remove_layer,
    "add_layer_connection": _check_add_layer_connection,
    "remove_layer_connection": _check_remove_layer_connection,
    "swap_block": _check_swap_block,
    "add_block": _check_add_block,
    "remove_block": _check_remove_block,
    "add_block_connection": _check_add_block_connection,
    "remove_block_connection": _check_remove_block_connection,
}


def test_there_is_a_check_for_each_of_the_13_mutations():
    mutations = pytest.importorskip("ras_deap.evolution.mutations")
    assert set(CHECKS) == {op.name for op in mutations.MUTATIONS}
    assert len(CHECKS) == 13


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_each_mutation_changes_the_built_module(name):
    mutations = pytest.importorskip("ras_deap.evolution.mutations")
    fn = mutations.MUTATIONS_BY_NAME[name].fn
    applied = 0
    for seed in range(40):
        parent = random_model(random.Random(seed))
        pool = GenePool.from_models([parent, random_model(random.Random(seed + 1000))])
        child = fn(parent, random.Random(seed), pool)
        if child is None:
            continue
        before = compile_model(parent, (1, 8, 8), 10)
        after = compile_model(child, (1, 8, 8), 10)
        assert_reflects(after, child)
        CHECKS[name](before, after)
        assert after(torch.rand(2, 1, 8, 8)).shape == (2, 10)
        applied += 1
        if applied == 3:
            break
    assert applied == 3, f"{name} applied to only {applied} of 40 random models"
