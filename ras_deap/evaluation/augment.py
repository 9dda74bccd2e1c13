"""Light CIFAR-style augmentation on batches of tensors.

Equivalent to torchvision's ``v2.RandomCrop(size, padding=4)`` followed by
``v2.RandomHorizontalFlip()`` applied to every image *independently*, but
vectorised: torchvision's transforms, given a batch tensor, draw one crop
and one flip for the whole batch, and a per-image Python loop would cost
more than the training step on small images. Randomness comes from an
explicit ``torch.Generator`` so training stays reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["random_crop_flip"]


def random_crop_flip(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Per image: zero-pad by ``padding``, crop back to H x W at a random
    offset, flip horizontally with probability 1/2."""
    if x.ndim != 4:
        raise ValueError(f"x must be N x C x H x W, got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if padding < 0:
        raise ValueError(f"padding={padding} must be >= 0")
    gen_device = generator.device
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gen_device)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gen_device)
    flip = torch.rand((n,), generator=generator, device=gen_device) < 0.5
    oy, ox, flip = oy.to(x.device), ox.to(x.device), flip.to(x.device)
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = ox[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]
