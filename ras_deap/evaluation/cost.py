"""Size and cost of a compiled network: parameter count and a FLOPs estimate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["count_parameters", "estimate_flops"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BatchNorm running statistics and the
    normalisation buffers are buffers, so they are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def estimate_flops(module: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on one image of ``input_shape`` (C, H, W),
    counting a multiply-add as 2 FLOPs, for Conv2d and Linear layers only
    (ReLU, BatchNorm, pooling and concatenation are comparatively free).
    Measured with forward hooks, so it follows the real tensor shapes."""
    total = 0

    def conv_hook(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        per_out = (mod.in_channels // mod.groups) * kh * kw
        total += 2 * out[0].numel() * per_out

    def linear_hook(mod: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * mod.in_features * mod.out_features

    handles = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
    was_training = module.training
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return int(total)
