"""A compiled network as plain PyTorch source: ``model.py`` of an export.

:func:`generate_source` reads the structure of a
:class:`~ras_deap.evaluation.compiler.CompiledNetwork` (``net.blocks[i]
.layers[j]``, ``node_inputs``, ``block_inputs``, the merges' shapes) and
writes a module that imports only torch and computes the same logits:

* one attribute per layer, ``block{i}_layer{j}``: an ``nn.Sequential`` of
  ``Conv2d(k, stride, padding=k // 2)`` (or ``Linear``), ``ReLU`` and
  ``BatchNorm2d`` (or ``BatchNorm1d``); ``head`` the final ``Linear``;
* ``mean``/``std`` buffers: the network takes images in [0, 1] and
  normalises them first, after giving them the exact row-major layout the
  compiler's ``Normalize`` gives them (see
  :func:`ras_deap.evaluation.inference.canonical_layout`);
* a ``forward`` with every concatenation, adaptive pooling, flatten and
  reshape written out, shapes in comments.

A convolution that sees a 1 x 1 map is emitted as an ordinary ``Conv2d``:
with padding ``k // 2`` every tap but the centre one reads zeros, which is
what the compiler's ``center_tap`` shortcut computes as a matrix product
(equal up to float rounding).

The state dict keys map one to one (:func:`rename_state_dict`)::

    normalize.mean / normalize.std    -> mean / std
    blocks.{i}.layers.{j}.op.<name>   -> block{i}_layer{j}.0.<name>
    blocks.{i}.layers.{j}.bn.<name>   -> block{i}_layer{j}.2.<name>
    head.<name>                       -> head.<name>
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..genome.shapes import Shape, is_map

__all__ = ["CLASS_NAME", "generate_source", "rename_state_dict"]

CLASS_NAME = "Network"

_KEY = re.compile(r"^blocks\.(\d+)\.layers\.(\d+)\.(op|bn)\.(.+)$")


def rename_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """The compiled network's state dict under the generated module's keys
    (see the module docstring); an unknown key raises ``KeyError``."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key in ("normalize.mean", "normalize.std"):
            out[key.split(".", 1)[1]] = value
        elif key.startswith("head."):
            out[key] = value
        elif m := _KEY.match(key):
            i, j, part, name = m.groups()
            out[f"block{i}_layer{j}.{0 if part == 'op' else 2}.{name}"] = value
        else:
            raise KeyError(f"state dict key {key!r} is not one of a compiled ras_deap network")
    return out


def _shape(shape: Shape) -> str:
    return " x ".join(str(s) for s in shape)


def _var(i: int, j: int) -> str:
    return f"b{i}_l{j}"


def _merge(names: Sequence[str], shapes: Sequence[Shape], mode: str, out: Shape) -> str:
    """The expression that merges ``names`` (of ``shapes``) as
    :class:`~ras_deap.evaluation.compiler.Concat` does."""
    if mode == "single":
        return names[0]
    if mode == "flat":
        parts = [f"{n}.flatten(1)" if is_map(s) else n for n, s in zip(names, shapes, strict=True)]
    else:
        hw = tuple(out[1:])
        parts = [n if tuple(s[1:]) == hw else f"F.adaptive_avg_pool2d({n}, {hw})"
                 for n, s in zip(names, shapes, strict=True)]
    return f"torch.cat([{', '.join(parts)}], dim=1)"


def _merge_comment(names: Sequence[str], shapes: Sequence[Shape], mode: str, out: Shape) -> str:
    if mode == "single":
        return ""
    what = ("pool to the smallest map, concatenate channels" if mode == "maps"
            else "flatten, concatenate features")
    return (f"# concatenation of {', '.join(names)} ({'; '.join(_shape(s) for s in shapes)}): "
            f"{what} -> {_shape(out)}")


def _layer_module(layer: Any) -> str:
    """The modules of one compiled layer's ``nn.Sequential``."""
    op = layer.op
    if layer.layer.is_conv:
        k, s = op.kernel_size[0], op.stride[0]
        return (f"nn.Conv2d({op.in_channels}, {op.out_channels}, {k}, stride={s}, "
                f"padding={op.padding[0]}), nn.ReLU(), nn.BatchNorm2d({op.out_channels})")
    return (f"nn.Linear({op.in_features}, {op.out_features}), nn.ReLU(), "
            f"nn.BatchNorm1d({op.out_features})")


def _describe(layer: Any) -> str:
    g = layer.layer
    if g.is_conv:
        return f"conv {g.filters} filters, kernel {g.kernel}, stride {g.stride}"
    return f"dense {g.units} units"


@dataclass
class _Code:
    """The generated class's two halves, filled block by block: ``init`` the
    lines of ``__init__`` (one attribute per layer), ``body`` those of ``forward``."""

    init: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)


def _adapt(layer: Any, arg: str, arg_shape: Shape) -> tuple[str, str]:
    """The expression that feeds ``layer`` from ``arg`` (flatten, reshape to a
    map, or as it is) and the comment saying what it does ("" for nothing)."""
    if layer.adapt == "flatten":
        arg, note = f"{arg}.flatten(1)", f"flatten the {_shape(arg_shape)} map"
    elif layer.adapt == "to_map":
        mc, mh, mw = layer.map_shape
        arg = f"{arg}.reshape({arg}.shape[0], {mc}, {mh}, {mw})"
        note = f"reshape {_shape(arg_shape)} features to a {mc} x {mh} x {mw} map"
    else:
        note = ""
    if layer.center_tap:
        note = (note + "; " if note else "") + "1 x 1 map: only the kernel's centre tap sees data"
    return arg, note


def _layer_code(code: _Code, i: int, j: int, block: Any, block_in: str,
                outs: list[tuple[str, Shape]]) -> None:
    """Layer ``j`` of block ``i``: its attribute, its input's merge and adaptation,
    and its call; appends ``(variable, output shape)`` to ``outs``."""
    lmerge, layer = block.merges[j], block.layers[j]
    attr = f"block{i}_layer{j}"
    code.init += [f"# block {i}, layer {j}: {_describe(layer)}; "
                  f"{_shape(layer.in_shape)} -> {_shape(layer.out_shape)}",
                  f"self.{attr} = nn.Sequential(",
                  f"    {_layer_module(layer)})"]
    if j == 0:
        arg, arg_shape = block_in, tuple(block.in_shape)
    else:
        names = [outs[u][0] for u in block.node_inputs[j]]
        nshapes = [outs[u][1] for u in block.node_inputs[j]]
        arg = _merge(names, nshapes, lmerge.mode, lmerge.out_shape)
        if lmerge.mode != "single":
            code.body += [_merge_comment(names, nshapes, lmerge.mode, lmerge.out_shape),
                          f"{_var(i, j)}_in = {arg}"]
            arg = f"{_var(i, j)}_in"
        arg_shape = tuple(lmerge.out_shape)
    arg, note = _adapt(layer, arg, arg_shape)
    if note:
        code.body.append(f"# {note}")
    code.body.append(f"{_var(i, j)} = self.{attr}({arg})  # -> {_shape(layer.out_shape)}")
    outs.append((_var(i, j), tuple(layer.out_shape)))


def _block_code(code: _Code, net: Any, i: int, block_out: list[tuple[str, Shape]]) -> None:
    """Block ``i``: the merge of its inputs, its layers, its output variable
    ``block{i}`` (appended to ``block_out`` with its shape)."""
    merge, block = net.merges[i], net.blocks[i]
    if i == 0:
        srcs, shapes = ["x"], [tuple(net.input_shape)]
        preds = "the normalised image"
    else:
        srcs = [block_out[u][0] for u in net.block_inputs[i]]
        shapes = [block_out[u][1] for u in net.block_inputs[i]]
        preds = ("the output of block" + ("s " if len(srcs) > 1 else " ")
                 + ", ".join(str(u) for u in net.block_inputs[i]))
    code.body += ["", f"# block {i}: input {_shape(block.in_shape)}, from {preds}"]
    block_in = srcs[0]
    if merge.mode != "single":
        code.body += [_merge_comment(srcs, shapes, merge.mode, merge.out_shape),
                      f"block{i}_in = {_merge(srcs, shapes, merge.mode, merge.out_shape)}"]
        block_in = f"block{i}_in"
    outs: list[tuple[str, Shape]] = []
    for j in range(len(block.layers)):
        _layer_code(code, i, j, block, block_in, outs)
    block_out.append((f"block{i}", outs[-1][1]))
    code.body.append(f"block{i} = {outs[-1][0]}  # block {i}'s output: {_shape(outs[-1][1])}")


def _network_code(net: Any) -> _Code:
    """``__init__`` and ``forward`` of the whole network: its blocks, the
    pooling and the classifier head."""
    code = _Code()
    block_out: list[tuple[str, Shape]] = []
    for i in range(len(net.blocks)):
        _block_code(code, net, i, block_out)
    last, last_shape = f"block{len(net.blocks) - 1}", block_out[-1][1]
    code.body.append("")
    if net.pool == "global_avg":
        code.body.append(f"features = {last}.mean(dim=(2, 3))  # global average pooling: "
                         f"{_shape(last_shape)} -> {last_shape[0]}")
    else:
        code.body.append(f"features = {last}  # already a vector of {last_shape[0]} features")
    code.body.append("return self.head(features)  # logits")
    code.init += ["# the classifier on the pooled features",
                  f"self.head = nn.Linear({net.head.in_features}, {net.head.out_features})"]
    return code


_MODULE_DOC = '''"""Genome {genome_id}: a network found by ras_deap, as plain PyTorch.

Input: float32 images N x {c} x {h} x {w} with values in [0, 1] ({pixels});
the network normalises them itself with MEAN/STD (per channel).
Output: N x {classes} logits (argmax = the predicted class).

Each layer is Conv2d(k, stride, padding=k // 2) or Linear, then ReLU, then
BatchNorm. A node with several inputs concatenates them: maps along channels
after adaptive average pooling to the smallest height and width; if any input
is a vector, everything is flattened first. A vector feeding a convolution is
reshaped to a small square map.

Generated by python -m ras_deap.export; it imports nothing but torch.
Load it with:

    net = Network()
    net.load_state_dict(torch.load("weights.pt"))
    net.eval()
"""

import torch
from torch import nn'''

# The layout fix every exported network applies to its input (the compiler's
# canonical_layout, written without ras_deap).
_ROW_MAJOR = '''def row_major(x):
    """``x`` itself when its strides are exactly row-major (size-1 axes
    included), else a row-major copy. ``x.contiguous()`` is not enough: it
    accepts an N x 1 x H x W tensor with channels-last strides, which some
    oneDNN CPU kernels mishandle. An exported graph (ONNX) has no strides."""
    if torch.jit.is_tracing():
        return x
    strides, step = [], 1
    for size in reversed(x.shape):
        strides.append(step)
        step *= max(int(size), 1)
    if x.stride() == tuple(reversed(strides)):
        return x
    return x.clone(memory_format=torch.contiguous_format)'''

_MAIN = '''if __name__ == "__main__":
    # python model.py weights.pt images.pt: the predicted class of each image
    import sys

    net = Network()
    net.load_state_dict(torch.load(sys.argv[1], map_location="cpu"))
    net.eval()
    with torch.no_grad():
        images = torch.load(sys.argv[2], map_location="cpu").float()
        print(net(images).argmax(1).tolist())'''


def _class_lines(net: Any, genome_id: str, code: _Code) -> list[str]:
    """The ``nn.Module`` class: buffers, layer attributes, ``forward``."""
    c, h, w = net.input_shape
    return [
        f"class {CLASS_NAME}(nn.Module):",
        f'    """Genome {genome_id} for {c} x {h} x {w} images in [0, 1]."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        "        # per-channel statistics of the training images (buffers, in the state dict)",
        '        self.register_buffer("mean", torch.tensor(MEAN).view(1, -1, 1, 1))',
        '        self.register_buffer("std", torch.tensor(STD).view(1, -1, 1, 1))',
        *(f"        {line}" for line in code.init),
        "",
        "    def forward(self, x):",
        f"        # x: N x {c} x {h} x {w} images in [0, 1]",
        "        x = (row_major(x) - self.mean) / self.std",
        *(f"        {line}" if line else "" for line in code.body),
    ]


def generate_source(net: Any, *, genome_id: str | None = None,
                    levels: int | None = None) -> str:
    """The source of ``model.py`` for the compiled network ``net`` (see the
    module docstring); ``levels``: distinct pixel values of the data, for
    the docstring only."""
    genome_id = genome_id or getattr(net, "genome_id", "?")
    mean = [float(v) for v in net.normalize.mean.flatten().tolist()]
    std = [float(v) for v in net.normalize.std.flatten().tolist()]
    c, h, w = net.input_shape
    code = _network_code(net)
    pixels = f"{levels} levels, steps of 1/{levels - 1}" if levels else "any value"
    head = _MODULE_DOC.format(genome_id=genome_id, c=c, h=h, w=w, pixels=pixels,
                              classes=net.num_classes)
    uses_f = any("F." in line for line in code.body)
    lines = [
        head,
        *(["from torch.nn import functional as F"] if uses_f else []),
        "",
        f"GENOME_ID = {genome_id!r}",
        f"INPUT_SHAPE = {tuple(net.input_shape)!r}  # channels, height, width",
        f"NUM_CLASSES = {net.num_classes}",
        f"MEAN = {tuple(mean)!r}",
        f"STD = {tuple(std)!r}",
        "",
        "",
        _ROW_MAJOR,
        "",
        "",
        *_class_lines(net, genome_id, code),
        "",
        "",
        _MAIN,
    ]
    return "\n".join(lines) + "\n"
