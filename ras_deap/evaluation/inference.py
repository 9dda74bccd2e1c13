"""What a network predicts: the one home of prediction, accuracy and input
normalisation, shared by the evaluator, the attacks and the assessment.

Inputs may be torch tensors (the evaluator keeps its data on the device) or
numpy arrays (the attacks and ART work on numpy): the answer comes back in
the same kind. The network is put in eval mode for the prediction and
returned to the mode it was in, so a validation pass inside training does
not leave BatchNorm frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ras_deap.data.layout import canonical_strides

__all__ = ["ARRAY_BATCH", "TENSOR_BATCH", "Normalize", "accuracy", "canonical_layout", "predict"]

# Images per forward pass when none is given: tensors (the evaluator's data,
# perhaps on a GPU) go in larger batches than numpy arrays (the attacks' and
# the assessment's, on the CPU; the banks were built with 512).
TENSOR_BATCH = 1024
ARRAY_BATCH = 512


def canonical_layout(x: Tensor) -> Tensor:
    """``x`` itself when its strides are exactly row-major (size-1 axes
    included), else a row-major copy. ``Tensor.contiguous()`` is not enough:
    it accepts an N x 1 x H x W tensor with channels-last strides, which
    oneDNN's AVX2 kernels mishandle (see :mod:`ras_deap.data.layout`)."""
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        # a traced graph cannot branch on strides without guarding on the batch size
        # (torch.export, MLflow's pt2 format): there the copy is always made
        return x.clone(memory_format=torch.contiguous_format)
    expected = canonical_strides(tuple(x.shape))
    return x if x.stride() == expected else x.clone(memory_format=torch.contiguous_format)


class Normalize(nn.Module):
    """(x - mean) / std per channel, as fixed buffers (not parameters), so a
    network takes images in [0, 1] and its state dict carries the statistics.
    It is the first module of every network, so it also gives the input its
    canonical layout (:func:`canonical_layout`): a caller's own tensors are
    safe too."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        as_buffer = lambda v: torch.tensor(list(v), dtype=torch.float32).view(1, -1, 1, 1)  # noqa: E731
        self.register_buffer("mean", as_buffer(mean))
        self.register_buffer("std", as_buffer(std))

    def forward(self, x: Tensor) -> Tensor:
        return (canonical_layout(x) - self.mean) / self.std


@torch.inference_mode()
def predict(net: nn.Module, x: Tensor | np.ndarray, batch_size: int | None = None
            ) -> Tensor | np.ndarray:
    """Predicted classes (int64) in eval mode: a tensor on ``x``'s device for
    a tensor, a numpy array for a numpy array."""
    as_numpy = isinstance(x, np.ndarray)
    batch_size = batch_size or (ARRAY_BATCH if as_numpy else TENSOR_BATCH)
    was_training = net.training
    net.eval()
    try:
        preds = [net(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])) if as_numpy
                     else x[i:i + batch_size]).argmax(1)
                 for i in range(0, len(x), batch_size)]
    finally:
        net.train(was_training)
    if as_numpy:
        return torch.cat(preds).cpu().numpy().astype(np.int64) if preds else np.zeros(0, np.int64)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64, device=x.device)


def accuracy(net: nn.Module, x: Tensor | np.ndarray, y: Tensor | np.ndarray,
             batch_size: int | None = None, *, empty: float = 0.0) -> float:
    """The fraction of ``x`` classified as ``y`` (``empty`` when there is no
    sample: the evaluator reports 0, the attacks' bookkeeping NaN)."""
    if len(y) == 0:
        return empty
    right = predict(net, x, batch_size) == y
    return float(right.mean()) if isinstance(right, np.ndarray) else float(
        right.float().mean().item())
