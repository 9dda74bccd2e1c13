"""The source models the adversarial bank is crafted on (paper, Section 4.1).

Four models, as in the paper's Table 1: a plain ResNet, a CapsNet, the ResNet
adversarially trained with PGD (Madry et al.) and the ResNet behind feature
squeezing (Xu et al.). Every model takes images in [0, 1] (N x C x H x W) and
normalises inside, so adversarial samples need no extra bookkeeping; outputs
are class scores (logits, or capsule lengths for the CapsNet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..errors import UsageError
from ..evaluation.inference import Normalize
from ..options import check_options, option, options_of
from ..seeding import seed_everything

__all__ = [
    "SOURCE_NAMES",
    "SOURCE_OPTIONS",
    "CapsNet",
    "FeatureSqueeze",
    "SmallResNet",
    "SourceConfig",
    "SourceModelError",
    "adversarial_train",
    "build_source",
    "make_untrained",
    "train_classifier",
]

SOURCE_NAMES = ("resnet", "capsnet", "at", "fs")


class SourceModelError(UsageError, ValueError):
    """Unknown source model name or a bad training setting."""


class SmallResNet(nn.Module):
    """A three-stage ResNet (torchvision BasicBlocks) sized for small images.

    Why small: 8x8 digits need no ImageNet stem; a 3x3 stem and two stride-2
    stages keep it to ~0.1 M parameters while still being a real ResNet.
    """

    def __init__(self, in_channels: int, num_classes: int, mean: tuple[float, ...],
                 std: tuple[float, ...], width: int = 16) -> None:
        super().__init__()
        self.norm = Normalize(mean, std)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(
            BasicBlock(width, width),
            self._down(width, 2 * width),
            self._down(2 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, num_classes)

    @staticmethod
    def _down(cin: int, cout: int) -> BasicBlock:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        return BasicBlock(cin, cout, stride=2, downsample=down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(self.norm(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def _squash(s: torch.Tensor, dim: int = -1) -> torch.Tensor:
    n2 = (s * s).sum(dim=dim, keepdim=True)
    return n2 / (1.0 + n2) * s / torch.sqrt(n2 + 1e-8)


class CapsNet(nn.Module):
    """A compact capsule network with dynamic routing (Sabour et al., 2017).

    Conv -> primary capsules (stride-2 conv, squashed) -> one class capsule per
    class via routing-by-agreement. Output: class capsule lengths in [0, 1].
    The reconstruction decoder is left out (it regularises, it does not
    change what is attacked) to keep the model small and fast.

    ``stem_stride`` is the stride of the first conv. Routing costs grow with
    the number of primary capsules: on 28 x 28 images a stride-1 stem gives
    8 x 14 x 14 = 1568 of them and one forward pass of a DE population (784
    images) takes ~8 s on one core; :func:`make_untrained` uses stride 2 for
    images of 16 pixels or more (8 x 7 x 7 = 392 capsules on 28 x 28, the
    order of Sabour et al.'s 1152 on MNIST) and stride 1 on 8 x 8 digits.
    """

    def __init__(self, in_channels: int, num_classes: int, image_hw: tuple[int, int],
                 mean: tuple[float, ...], std: tuple[float, ...], conv_channels: int = 32,
                 primary_types: int = 8, primary_dim: int = 8, class_dim: int = 16,
                 routing_iters: int = 3, stem_stride: int = 1) -> None:
        super().__init__()
        self.norm = Normalize(mean, std)
        self.conv = nn.Conv2d(in_channels, conv_channels, 3, stride=stem_stride, padding=1)
        self.primary = nn.Conv2d(conv_channels, primary_types * primary_dim, 3, stride=2,
                                 padding=1)
        h, w = ((image_hw[0] - 1) // stem_stride + 2) // 2, \
            ((image_hw[1] - 1) // stem_stride + 2) // 2
        self.num_primary = primary_types * h * w
        self.primary_dim = primary_dim
        self.routing_iters = routing_iters
        self.W = nn.Parameter(
            0.05 * torch.randn(self.num_primary, num_classes, class_dim, primary_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(self.norm(x)))
        p = self.primary(h)  # N x (types*dim) x h x w
        n = p.shape[0]
        p = p.view(n, -1, self.primary_dim, p.shape[-2], p.shape[-1])
        u = _squash(p.permute(0, 1, 3, 4, 2).reshape(n, self.num_primary, self.primary_dim))
        p_, k, d, i = self.W.shape
        w = self.W.reshape(p_, k * d, i).transpose(1, 2)  # P x I x (K*D)
        u_hat = torch.bmm(u.transpose(0, 1), w).transpose(0, 1).reshape(n, p_, k, d)
        logits = torch.zeros(u_hat.shape[:3], device=x.device)
        for it in range(self.routing_iters):
            c = logits.softmax(dim=2)
            v = _squash((c[..., None] * u_hat).sum(dim=1))  # N x K x D
            if it < self.routing_iters - 1:
                logits = logits + (u_hat * v[:, None]).sum(-1)
        return v.norm(dim=-1)


def _margin_loss(lengths: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    t = F.one_hot(y, lengths.shape[1]).float()
    loss = t * F.relu(0.9 - lengths) ** 2 + 0.5 * (1 - t) * F.relu(lengths - 0.1) ** 2
    return loss.sum(dim=1).mean()


def _median_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """Median over a size x size window, same output size (reflect padding at the
    bottom/right, as in the feature squeezing paper's 2x2 filter)."""
    pad = (0, size - 1, 0, size - 1)
    xp = F.pad(x, pad, mode="reflect") if size > 1 else x
    patches = xp.unfold(2, size, 1).unfold(3, size, 1)
    return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values


class FeatureSqueeze(nn.Module):
    """Feature squeezing (Xu et al., 2018) in front of a classifier: bit-depth
    reduction then median smoothing. Inside the module, so black-box attacks
    see (and must beat) the defended model."""

    def __init__(self, model: nn.Module, bits: int = 4, median_size: int = 2) -> None:
        super().__init__()
        if not 1 <= bits <= 8:
            raise SourceModelError(f"feature squeezing bits must be in 1..8, got {bits}")
        if median_size < 1:
            raise SourceModelError(f"median_size must be >= 1, got {median_size}")
        self.model = model
        self.levels = float(2**bits - 1)
        self.median_size = median_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.round(x.clamp(0, 1) * self.levels) / self.levels
        if self.median_size > 1:
            x = _median_pool(x, self.median_size)
        return self.model(x)


@dataclass(frozen=True)
class SourceConfig:
    """Training settings of the source models (defaults: digits, seconds each)."""

    epochs: int = option(25, "training epochs of resnet / capsnet / fs", "bank", minimum=1)
    batch_size: int = option(64, "training batch size of the sources", "bank", minimum=1)
    lr: float = option(3e-3, "learning rate of the sources", "bank", minimum=0, closed=False)
    resnet_width: int = option(16, "channels of the ResNet source's first stage", "bank",
                               minimum=1)
    at_epochs: int = option(20, "PGD adversarial-training epochs of the at source", "bank",
                            minimum=1)
    at_eps: float = option(0.1, "Linf radius of the at source's adversarial training on the "
                           "[0, 1] scale (paper thresholds: <= 10/255)", "bank", minimum=0,
                           closed=False, below=1)
    at_steps: int = option(5, "PGD steps of the at source's adversarial training", "bank",
                           minimum=1)
    fs_bits: int = option(4, "bit depth of the fs source's feature squeezing (1-8)", "bank",
                          minimum=1)
    fs_median: int = option(2, "median filter size of the fs source's feature squeezing",
                            "bank", minimum=1)

    def __post_init__(self) -> None:
        check_options(self, SOURCE_OPTIONS)


SOURCE_OPTIONS = options_of(SourceConfig)


def _batches(n: int, batch_size: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


def _pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
         loss_fn: Callable, gen: torch.Generator) -> torch.Tensor:
    """Madry et al.'s PGD: random start in the eps ball, signed-gradient steps."""
    alpha = 2.5 * eps / steps
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = loss_fn(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int,
                     batch_size: int, lr: float, seed: int, loss_fn: Callable | None = None,
                     pgd_eps: float | None = None, pgd_steps: int = 5) -> nn.Module:
    """Adam + cosine schedule; with ``pgd_eps`` every batch is replaced by its
    PGD adversarial version (Madry et al. adversarial training)."""
    loss_fn = loss_fn or F.cross_entropy
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(yt) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for _ in range(epochs):
        for idx in _batches(len(yt), batch_size, gen):
            xb, yb = xt[idx], yt[idx]
            if pgd_eps is not None:
                model.eval()
                xb = _pgd(model, xb, yb, pgd_eps, pgd_steps, loss_fn, gen)
            model.train()
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            sched.step()
    return model.eval()


def adversarial_train(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int,
                      batch_size: int, lr: float, eps: float, steps: int, seed: int) -> nn.Module:
    """PGD adversarial training (Madry et al., 2018) of ``model``."""
    return train_classifier(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                            pgd_eps=eps, pgd_steps=steps)


def make_untrained(name: str, shape: tuple[int, int, int], num_classes: int,
                   mean: tuple[float, ...], std: tuple[float, ...],
                   cfg: SourceConfig | None = None) -> nn.Module:
    """The architecture of source ``name`` with fresh (seeded-by-caller) weights."""
    cfg = cfg or SourceConfig()
    c, h, w = shape
    if name in ("resnet", "at"):
        return SmallResNet(c, num_classes, mean, std, width=cfg.resnet_width)
    if name == "fs":
        return FeatureSqueeze(SmallResNet(c, num_classes, mean, std, width=cfg.resnet_width),
                              bits=cfg.fs_bits, median_size=cfg.fs_median)
    if name == "capsnet":
        return CapsNet(c, num_classes, (h, w), mean, std,
                       stem_stride=2 if min(h, w) >= 16 else 1)
    raise SourceModelError(f"unknown source model {name!r}; choose from {', '.join(SOURCE_NAMES)}")


def build_source(name: str, dataset, seed: int, cfg: SourceConfig | None = None) -> nn.Module:
    """Train source ``name`` on ``dataset.train`` from ``seed``.

    ``fs`` trains the ResNet behind its squeezers: on 8x8 digits a 2x2 median
    filter in front of a ResNet trained on raw images costs ~20 points of
    accuracy (0.99 -> 0.79), so the squeezed view is learned instead.
    """
    cfg = cfg or SourceConfig()
    seed_everything(seed)
    args = (dataset.shape, dataset.num_classes, dataset.mean, dataset.std, cfg)
    x, y = dataset.train.x, dataset.train.y
    common = dict(batch_size=cfg.batch_size, lr=cfg.lr, seed=seed)
    if name == "resnet":
        return train_classifier(make_untrained("resnet", *args), x, y, epochs=cfg.epochs, **common)
    if name == "capsnet":
        return train_classifier(make_untrained("capsnet", *args), x, y, epochs=cfg.epochs,
                                loss_fn=_margin_loss, **common)
    if name == "at":
        return adversarial_train(make_untrained("at", *args), x, y, epochs=cfg.at_epochs,
                                 eps=cfg.at_eps, steps=cfg.at_steps, **common)
    if name == "fs":
        return train_classifier(make_untrained("fs", *args), x, y, epochs=cfg.epochs, **common)
    raise SourceModelError(f"unknown source model {name!r}; choose from {', '.join(SOURCE_NAMES)}")
