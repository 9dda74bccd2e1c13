"""Genome ``Model`` -> ``torch.nn.Module``.

Rules (all deterministic; every layer size is fixed at construction from
the dataset's image shape, so parameter counts are exact):

* A tensor between layers is either a *map* (N x C x H x W) or a *vector*
  (N x F).
* Layers: a conv layer is ``Conv2d(kernel, stride, padding=kernel // 2)``
  and a dense layer ``Linear``; each is followed by ReLU then BatchNorm
  (2d / 1d), as in section 5.1. With that padding a conv's output is
  ``ceil(H / stride)``, so a stride-2 conv on a 1 x 1 map stays 1 x 1 and
  no map ever shrinks below 1 x 1 (the genome's stride is kept as is).
* conv -> dense: the map is flattened (C*H*W features).
* dense -> conv: the vector of F features is reshaped to an F x 1 x 1 map
  (parameter-free, so a changed kernel only changes the conv itself).
* A node with several inputs concatenates them, in increasing order of the
  source node index. If every input is a map they are concatenated along
  channels after adaptive average pooling of the larger ones to the
  smallest height and the smallest width among them; if any input is a
  vector, every input is flattened and the vectors are concatenated.
* Block entry node <- the block input; block output = exit node output.
  A block's input is the concatenation (same rule) of the outputs of its
  predecessor blocks; the entry block gets the normalised image.
* The network first normalises with the dataset's mean/std (images and
  adversarial samples are stored in [0, 1]); the head is global average
  pooling (maps) or identity (vectors) followed by ``Linear(num_classes)``
  producing logits.

The built module exposes its structure for inspection and tests:
``net.blocks[i].layers[j].op`` is the Conv2d / Linear of layer j of block i,
``net.blocks[i].node_inputs[j]`` the predecessor layer indices of node j
and ``net.block_inputs[i]`` the predecessor blocks of block i.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ras_deap.genome import Block, Layer, Model

from .errors import BuildError

__all__ = [
    "CompiledBlock",
    "CompiledLayer",
    "CompiledNetwork",
    "Concat",
    "Normalize",
    "Shape",
    "compile_model",
    "merge_shape",
    "planned_parameters",
]

Shape = tuple[int, ...]  # (C, H, W) for a map, (F,) for a vector


def _is_map(shape: Shape) -> bool:
    return len(shape) == 3


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def merge_shape(shapes: Sequence[Shape]) -> tuple[str, Shape]:
    """How several inputs are merged: ``(mode, output shape)`` with mode
    'single' (one input, passed through), 'maps' (pool to the smallest H, W,
    concatenate channels) or 'flat' (flatten all, concatenate)."""
    if len(shapes) == 1:
        return "single", tuple(shapes[0])
    if all(_is_map(s) for s in shapes):
        h = min(s[1] for s in shapes)
        w = min(s[2] for s in shapes)
        return "maps", (sum(s[0] for s in shapes), h, w)
    return "flat", (sum(_numel(s) for s in shapes),)


class Concat(nn.Module):
    """Merge the inputs of a node (see :func:`merge_shape`). ``num_inputs``
    is how many tensors the node concatenates."""

    def __init__(self, shapes: Sequence[Shape]) -> None:
        super().__init__()
        self.mode, self.out_shape = merge_shape(shapes)
        self.num_inputs = len(shapes)
        self.in_shapes = tuple(tuple(s) for s in shapes)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        if self.mode == "single":
            return inputs[0]
        if self.mode == "flat":
            return torch.cat([t.flatten(1) for t in inputs], dim=1)
        hw = self.out_shape[1:]
        return torch.cat([t if tuple(t.shape[2:]) == hw else F.adaptive_avg_pool2d(t, hw)
                          for t in inputs], dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, inputs={self.num_inputs}, out={self.out_shape}"


class CompiledLayer(nn.Module):
    """One genome layer: shape adapter, Conv2d/Linear ``op``, ReLU, BatchNorm."""

    def __init__(self, layer: Layer, in_shape: Shape) -> None:
        super().__init__()
        self.layer = layer
        self.in_shape = tuple(in_shape)
        if layer.is_conv:
            self.adapt = "to_map" if not _is_map(in_shape) else "none"
            c, h, w = in_shape if _is_map(in_shape) else (in_shape[0], 1, 1)
            k, s = int(layer.kernel), int(layer.stride)
            self.op: nn.Module = nn.Conv2d(c, int(layer.filters), k, stride=s, padding=k // 2)
            self.bn: nn.Module = nn.BatchNorm2d(int(layer.filters))
            self.out_shape: Shape = (int(layer.filters), -(-h // s), -(-w // s))
            # On a 1 x 1 input every kernel tap but the centre one sees zero
            # padding, so the conv *is* a matrix product with the centre tap
            # (same outputs and same gradients: the other taps get exactly 0).
            # Computing it that way avoids oneDNN's large fixed cost for tiny
            # maps, which dominates training time after dense -> conv edges.
            self.center_tap = (h, w) == (1, 1)
        else:
            self.center_tap = False
            self.adapt = "flatten" if _is_map(in_shape) else "none"
            self.op = nn.Linear(_numel(in_shape), int(layer.units))
            self.bn = nn.BatchNorm1d(int(layer.units))
            self.out_shape = (int(layer.units),)

    def forward(self, x: Tensor) -> Tensor:
        if self.center_tap:
            k = self.op.kernel_size[0] // 2
            y = F.linear(x.flatten(1), self.op.weight[:, :, k, k], self.op.bias)
            return self.bn(F.relu(y[:, :, None, None]))
        if self.adapt == "flatten":
            x = x.flatten(1)
        elif self.adapt == "to_map":
            x = x[:, :, None, None]
        return self.bn(F.relu(self.op(x)))


class CompiledBlock(nn.Module):
    """A block's layer DAG run in (canonical = topological) node order."""

    def __init__(self, block: Block, in_shape: Shape) -> None:
        super().__init__()
        self.block = block
        n = len(block.layers)
        self.node_inputs: tuple[tuple[int, ...], ...] = tuple(
            tuple(sorted(block.predecessors(v))) for v in range(n))
        layers: list[CompiledLayer] = []
        merges: list[Concat] = []
        shapes: list[Shape] = []
        for v, layer in enumerate(block.layers):
            src = [tuple(in_shape)] if v == 0 else [shapes[u] for u in self.node_inputs[v]]
            merge = Concat(src)
            unit = CompiledLayer(layer, merge.out_shape)
            merges.append(merge)
            layers.append(unit)
            shapes.append(unit.out_shape)
        self.layers = nn.ModuleList(layers)
        self.merges = nn.ModuleList(merges)
        self.in_shape = tuple(in_shape)
        self.out_shape = shapes[-1]
        # The last consumer of each node, so intermediate tensors are freed early.
        self._last_use = {u: max(v for v in range(n) if u in self.node_inputs[v])
                          for u in range(n - 1)}

    def forward(self, x: Tensor) -> Tensor:
        outs: dict[int, Tensor] = {}
        for v, (merge, layer) in enumerate(zip(self.merges, self.layers, strict=True)):
            inputs = [x] if v == 0 else [outs[u] for u in self.node_inputs[v]]
            outs[v] = layer(merge(inputs))
            for u in self.node_inputs[v]:
                if self._last_use.get(u) == v:
                    del outs[u]
        return outs[len(self.layers) - 1]


class Normalize(nn.Module):
    """(x - mean) / std per channel, as fixed buffers (not parameters)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        as_buffer = lambda v: torch.tensor(list(v), dtype=torch.float32).view(1, -1, 1, 1)  # noqa: E731
        self.register_buffer("mean", as_buffer(mean))
        self.register_buffer("std", as_buffer(std))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class CompiledNetwork(nn.Module):
    """The network of one genome ``Model`` (see the module docstring)."""

    def __init__(self, model: Model, input_shape: Shape, num_classes: int,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.genome_id = model.id
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.normalize = Normalize(mean, std)
        n = len(model.blocks)
        self.block_inputs: tuple[tuple[int, ...], ...] = tuple(
            tuple(sorted(model.predecessors(v))) for v in range(n))
        blocks: list[CompiledBlock] = []
        merges: list[Concat] = []
        for v, block in enumerate(model.blocks):
            src = ([self.input_shape] if v == 0
                   else [blocks[u].out_shape for u in self.block_inputs[v]])
            merge = Concat(src)
            merges.append(merge)
            blocks.append(CompiledBlock(block, merge.out_shape))
        self.blocks = nn.ModuleList(blocks)
        self.merges = nn.ModuleList(merges)
        feat = blocks[-1].out_shape
        self.pool = "global_avg" if _is_map(feat) else "identity"
        self.head = nn.Linear(feat[0], self.num_classes)
        self._last_use = {u: max(v for v in range(n) if u in self.block_inputs[v])
                          for u in range(n - 1)}

    def forward(self, x: Tensor) -> Tensor:
        x = self.normalize(x)
        outs: dict[int, Tensor] = {}
        for v, (merge, block) in enumerate(zip(self.merges, self.blocks, strict=True)):
            inputs = [x] if v == 0 else [outs[u] for u in self.block_inputs[v]]
            outs[v] = block(merge(inputs))
            for u in self.block_inputs[v]:
                if self._last_use.get(u) == v:
                    del outs[u]
        z = outs[len(self.blocks) - 1]
        if self.pool == "global_avg":
            z = z.mean(dim=(2, 3))
        return self.head(z)


def planned_parameters(model: Model, input_shape: Shape, num_classes: int) -> int:
    """Exact parameter count of the network, computed from shapes alone so an
    oversized genome is refused before any memory is allocated."""
    total = 0
    block_out: list[Shape] = []
    for v, block in enumerate(model.blocks):
        src = [tuple(input_shape)] if v == 0 else [block_out[u] for u in model.predecessors(v)]
        shape = merge_shape(src)[1]
        outs: list[Shape] = []
        for j, layer in enumerate(block.layers):
            s = shape if j == 0 else merge_shape([outs[u] for u in block.predecessors(j)])[1]
            if layer.is_conv:
                c, h, w = s if _is_map(s) else (s[0], 1, 1)
                f, k, st = int(layer.filters), int(layer.kernel), int(layer.stride)
                total += c * f * k * k + f + 2 * f
                outs.append((f, -(-h // st), -(-w // st)))
            else:
                u_ = int(layer.units)
                total += _numel(s) * u_ + u_ + 2 * u_
                outs.append((u_,))
        block_out.append(outs[-1])
    return total + block_out[-1][0] * num_classes + num_classes


def compile_model(model: Model, input_shape: Sequence[int], num_classes: int,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  *, max_parameters: int | None = None) -> CompiledNetwork:
    """Build the network of ``model`` for images of ``input_shape`` (C, H, W).

    ``mean``/``std`` default to 0/1 per channel (no normalisation). Raises
    :class:`BuildError` (naming the genome id) when the network cannot be
    built or has more than ``max_parameters`` parameters.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape={tuple(input_shape)} must be (C, H, W) with positive sizes")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must be at least 2")
    mean = tuple(mean) if mean is not None else (0.0,) * shape[0]
    std = tuple(std) if std is not None else (1.0,) * shape[0]
    if len(mean) != shape[0] or len(std) != shape[0] or min(std) <= 0:
        raise ValueError(f"mean={mean} and std={std} need one value per channel ({shape[0]}) "
                         "and positive std")
    if not isinstance(model, Model):
        raise BuildError(getattr(model, "id", "?"), f"expected a genome Model, got "
                         f"{type(model).__name__}")
    if max_parameters is not None:
        n = planned_parameters(model, shape, num_classes)
        if n > max_parameters:
            raise BuildError(model.id, f"{n:,} parameters exceed max_parameters="
                             f"{max_parameters:,}; raise the limit to train it")
    try:
        return CompiledNetwork(model, shape, num_classes, mean, std)
    except (RuntimeError, ValueError, MemoryError) as exc:
        raise BuildError(model.id, f"{type(exc).__name__}: {exc}") from exc
