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
* dense -> conv: the vector of F features is reshaped (parameter-free) to a
  C x s x s map, s the largest side up to min(image side, 4) whose square
  divides F, C = F / s^2 (:func:`~ras_deap.genome.shapes.vector_to_map`).
  Every dense width (64, 128, 256, 512) is a multiple of 16, so on 1x8x8
  digits, 1x28x28 (MNIST, Fashion-MNIST) and 3x32x32 (CIFAR-10) alike F
  units become an F/16 x 4 x 4 map: a conv after a dense layer sees a real
  map, and its kernel and stride change what it computes (on the F x 1 x 1
  map of earlier versions every tap but the centre one saw only padding).
  4 x 4 is the smallest map on which every kernel and stride acts; larger
  maps cost more to train (see ``RESHAPE_SIDE``). Every vector has a
  multiple of 8 features, so s >= 2.
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

The shapes come from :mod:`ras_deap.genome.shapes` (pure Python), so
parameter counts and search-space statistics agree with the built module.
The built module exposes its structure for inspection and tests:
``net.blocks[i].layers[j].op`` is the Conv2d / Linear of layer j of block i,
``net.blocks[i].node_inputs[j]`` the predecessor layer indices of node j
and ``net.block_inputs[i]`` the predecessor blocks of block i.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ras_deap.genome import Block, Layer, Model
from ras_deap.genome.shapes import (
    Shape,
    conv_input_shape,
    is_map,
    layer_output_shape,
    merge_shape,
    node_shapes,
    numel,
)

from ..errors import BuildError
from .inference import Normalize

__all__ = [
    "CompiledBlock",
    "CompiledLayer",
    "CompiledNetwork",
    "Concat",
    "Shape",
    "compile_model",
    "merge_shape",
    "planned_parameters",
]

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
    """One genome layer: shape adapter, Conv2d/Linear ``op``, ReLU, BatchNorm.
    ``side`` is the image's smaller side, which bounds the map a vector is
    reshaped to before a conv (see the module docstring). The ReLU is a module
    (``act``, no state) so that the gradient check can make its float64
    reference take this layer's float32 ReLU decisions."""

    def __init__(self, layer: Layer, in_shape: Shape, *, side: int) -> None:
        super().__init__()
        self.layer = layer
        self.act = nn.ReLU()
        self.in_shape = tuple(in_shape)
        if layer.is_conv:
            self.adapt = "to_map" if not is_map(in_shape) else "none"
            self.map_shape: Shape = conv_input_shape(self.in_shape, side)
            c, h, w = self.map_shape
            k, s = int(layer.kernel), int(layer.stride)
            self.op: nn.Module = nn.Conv2d(c, int(layer.filters), k, stride=s, padding=k // 2)
            self.bn: nn.Module = nn.BatchNorm2d(int(layer.filters))
            self.out_shape: Shape = layer_output_shape(layer, self.in_shape, side)
            # On a 1 x 1 input every kernel tap but the centre one sees zero
            # padding, so the conv *is* a matrix product with the centre tap
            # (same outputs and same gradients: the other taps get exactly 0).
            # Computing it that way avoids oneDNN's large fixed cost for tiny
            # maps, which dominates training time after dense -> conv edges.
            self.center_tap = (h, w) == (1, 1)
        else:
            self.center_tap = False
            self.adapt = "flatten" if is_map(in_shape) else "none"
            self.op = nn.Linear(numel(in_shape), int(layer.units))
            self.bn = nn.BatchNorm1d(int(layer.units))
            self.out_shape = (int(layer.units),)

    def forward(self, x: Tensor) -> Tensor:
        if self.center_tap:
            k = self.op.kernel_size[0] // 2
            y = F.linear(x.flatten(1), self.op.weight[:, :, k, k], self.op.bias)
            return self.bn(self.act(y[:, :, None, None]))
        if self.adapt == "flatten":
            x = x.flatten(1)
        elif self.adapt == "to_map":
            x = x.reshape(x.shape[0], *self.map_shape)
        return self.bn(self.act(self.op(x)))


def _node_inputs(graph: Block | Model) -> tuple[tuple[int, ...], ...]:
    """Each node's predecessors in increasing index order (the order its
    merge concatenates them in)."""
    return tuple(tuple(sorted(graph.predecessors(v))) for v in range(len(graph)))


def _last_uses(node_inputs: tuple[tuple[int, ...], ...]) -> dict[int, int]:
    """The last consumer of each node but the exit, so that a forward pass
    frees intermediate tensors early."""
    n = len(node_inputs)
    return {u: max(v for v in range(n) if u in node_inputs[v]) for u in range(n - 1)}


def _run_graph(x: Tensor, merges: nn.ModuleList, units: nn.ModuleList,
               node_inputs: tuple[tuple[int, ...], ...], last_use: dict[int, int]) -> Tensor:
    """One forward pass through a DAG of units in (canonical = topological)
    node order: the entry gets ``x``, every other node the merge of its
    inputs; the exit's output is returned. Shared by blocks (units are
    layers) and the network (units are blocks)."""
    outs: dict[int, Tensor] = {}
    for v, (merge, unit) in enumerate(zip(merges, units, strict=True)):
        inputs = [x] if v == 0 else [outs[u] for u in node_inputs[v]]
        outs[v] = unit(merge(inputs))
        for u in node_inputs[v]:
            if last_use.get(u) == v:
                del outs[u]
    return outs[len(units) - 1]


class CompiledBlock(nn.Module):
    """A block's layer DAG run in (canonical = topological) node order."""

    def __init__(self, block: Block, in_shape: Shape, *, side: int) -> None:
        super().__init__()
        self.block = block
        self.node_inputs = _node_inputs(block)
        layers: list[CompiledLayer] = []
        merges: list[Concat] = []
        shapes: list[Shape] = []
        for v, layer in enumerate(block.layers):
            src = [tuple(in_shape)] if v == 0 else [shapes[u] for u in self.node_inputs[v]]
            merge = Concat(src)
            unit = CompiledLayer(layer, merge.out_shape, side=side)
            merges.append(merge)
            layers.append(unit)
            shapes.append(unit.out_shape)
        self.layers = nn.ModuleList(layers)
        self.merges = nn.ModuleList(merges)
        self.in_shape = tuple(in_shape)
        self.out_shape = shapes[-1]
        self._last_use = _last_uses(self.node_inputs)

    def forward(self, x: Tensor) -> Tensor:
        return _run_graph(x, self.merges, self.layers, self.node_inputs, self._last_use)


class CompiledNetwork(nn.Module):
    """The network of one genome ``Model`` (see the module docstring)."""

    def __init__(self, model: Model, input_shape: Shape, num_classes: int,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.genome_id = model.id
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.normalize = Normalize(mean, std)
        self.block_inputs = _node_inputs(model)
        blocks: list[CompiledBlock] = []
        merges: list[Concat] = []
        for v, block in enumerate(model.blocks):
            src = ([self.input_shape] if v == 0
                   else [blocks[u].out_shape for u in self.block_inputs[v]])
            merge = Concat(src)
            merges.append(merge)
            blocks.append(CompiledBlock(block, merge.out_shape, side=min(self.input_shape[1:])))
        self.blocks = nn.ModuleList(blocks)
        self.merges = nn.ModuleList(merges)
        feat = blocks[-1].out_shape
        self.pool = "global_avg" if is_map(feat) else "identity"
        self.head = nn.Linear(feat[0], self.num_classes)
        self._last_use = _last_uses(self.block_inputs)

    def forward(self, x: Tensor) -> Tensor:
        z = _run_graph(self.normalize(x), self.merges, self.blocks, self.block_inputs,
                       self._last_use)
        if self.pool == "global_avg":
            z = z.mean(dim=(2, 3))
        return self.head(z)


def planned_parameters(model: Model, input_shape: Shape, num_classes: int) -> int:
    """Exact parameter count of the network, computed from shapes alone so an
    oversized genome is refused before any memory is allocated."""
    side = min(int(s) for s in input_shape[1:])
    total = 0
    shapes = node_shapes(model, input_shape)
    for block, nodes in zip(model.blocks, shapes, strict=True):
        for layer, (in_shape, _) in zip(block.layers, nodes, strict=True):
            if layer.is_conv:
                c = conv_input_shape(in_shape, side)[0]
                f, k = int(layer.filters), int(layer.kernel)
                total += c * f * k * k + f + 2 * f
            else:
                u = int(layer.units)
                total += numel(in_shape) * u + u + 2 * u
    return total + shapes[-1][-1][1][0] * num_classes + num_classes


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
