"""Direct (white-box) robustness: attack the trained network itself.

The paper measures robustness by transfer (a stored bank of samples found
against other models). Architectures barely differ on that number on small
data, while they differ strongly under attacks on the network itself, so the
fitness can use either (``robustness='bank' | 'direct' | 'both'``).

Two attacks, each reported per (norm, threshold) like the bank:

* **Linf**: PGD (Madry et al.) from the clean image, no random start (so the
  measure needs no seed), ``steps`` signed-gradient steps of ``eps / 4``,
  projected on the eps box. Written in torch because ART's wrapper costs
  several times the attack on tiny networks; tests check it gives exactly
  ART's ``ProjectedGradientDescentPyTorch`` result.
  eps counts steps of the data's intensity grid (1/16 on digits, 1/255 on
  8-bit data), as the bank's Linf thresholds do.
* **L0**: JSMA (ART's ``SaliencyMapMethod``, ported to torch for the same
  reason and tested against it), aimed at each image's runner-up class, run
  once with the largest pixel budget. JSMA changes pixels greedily and stops
  at success, so the number of pixels it changed tells every smaller
  threshold's outcome from one run.

Robustness at a (norm, threshold) is the share of the fixed fitness images
that are still classified correctly (a clean image already misclassified
counts as lost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..validate import check_int

__all__ = ["DirectConfig", "direct_robustness", "jsma", "jsma_pixels", "pgd_linf"]

COARSE_LINF_TH = (1, 2)  # grid steps on data with few levels (digits: 1/16, 2/16)
FINE_LINF_TH = (1, 3, 5, 10)  # out of 255 on 8-bit data, the paper's grid
L0_TH = (1, 3, 5, 10)  # pixels, the paper's grid


@dataclass(frozen=True)
class DirectConfig:
    """What the direct measure attacks: the first ``images`` validation images
    (the validation split is a seeded permutation, so that is a random fixed
    sample) with PGD of ``pgd_steps`` steps at ``linf_th`` grid steps (None:
    1, 2 steps on coarse grids, the paper's 1/3/5/10 on 8-bit data) and with
    JSMA up to ``max(l0_th)`` pixels."""

    images: int = 128
    pgd_steps: int = 10
    linf_th: tuple[int, ...] | None = None
    l0_th: tuple[int, ...] = L0_TH

    def __post_init__(self) -> None:
        for name in ("images", "pgd_steps"):
            check_int(name, getattr(self, name))
        for name in ("linf_th", "l0_th"):
            ths = getattr(self, name) or ()
            if any(not isinstance(t, int) or t < 1 for t in ths):
                raise ValueError(f"{name}={ths!r}: thresholds must be positive integers")

    def linf_for(self, levels: int) -> tuple[int, ...]:
        if self.linf_th is not None:
            return tuple(self.linf_th)
        return FINE_LINF_TH if levels >= 256 else COARSE_LINF_TH


def pgd_linf(net: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int) -> Tensor:
    """Untargeted Linf PGD without random start, step ``eps / 4``, inputs in
    [0, 1] (ART's ``ProjectedGradientDescentPyTorch`` with ``eps_step=eps/4,
    num_random_init=0``). ``net`` must be in eval mode."""
    step = eps / 4
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        with torch.enable_grad():  # also when called under no_grad / inference
            loss = F.cross_entropy(net(adv), y)
            (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + step * grad.sign()
            adv = adv.clamp(0.0, 1.0)
            adv = x + (adv - x).clamp(-eps, eps)
    return adv.detach()


def jsma(net: nn.Module, x: Tensor, target: Tensor, *, gamma: float,
         theta: float = 1.0) -> Tensor:
    """ART's ``SaliencyMapMethod`` (JSMA, Papernot et al.) in torch, for inputs
    in [0, 1] and ``theta > 0``: while an image is not classified as its
    ``target`` and has used at most ``gamma`` of its features, raise the two
    features of largest target-logit gradient (among those still below 1) by
    ``theta``. Same algorithm and stopping rule as ART 1.20 (tests compare the
    two); written in torch because ART's wrapper costs several times the
    attack on these small networks. ``net`` must be in eval mode."""
    if theta <= 0:
        raise ValueError(f"theta={theta} must be > 0 (features are raised)")
    n = x.shape[0]
    nb = x[0].numel()
    adv = x.detach().reshape(n, nb).clone()
    space = adv < 1.0
    used = torch.zeros_like(space)
    rows = torch.arange(n, device=x.device)
    with torch.no_grad():
        active = net(x).argmax(1) != target
    while bool(active.any()):
        idx = rows[active]
        sub = adv[idx].reshape(-1, *x.shape[1:]).requires_grad_(True)
        with torch.enable_grad():
            out = net(sub)
            (grad,) = torch.autograd.grad(out.gather(1, target[idx, None]).sum(), sub)
        grad = grad.reshape(len(idx), nb).masked_fill(~space[idx], float("-inf"))
        top = grad.topk(2, dim=1).indices
        with torch.no_grad():
            for k in range(2):
                adv[idx, top[:, k]] = (adv[idx, top[:, k]] + theta).clamp(max=1.0)
                used[idx, top[:, k]] = True
            space = space & (adv < 1.0)
            pred = net(adv.reshape(x.shape)).argmax(1)
            active = (pred != target) & (used.sum(1) / nb <= gamma) & space.any(1)
    return adv.reshape(x.shape)


def jsma_pixels(net: nn.Module, x: Tensor, max_pixels: int) -> tuple[Tensor, Tensor]:
    """JSMA aimed at each image's runner-up class with a budget of
    ``max_pixels`` pixels (all channels); returns the adversarial images and
    how many pixels each changed (JSMA changes them in pairs, so the count
    can pass the budget by one pair, as ART's can)."""
    n, c, h, w = x.shape
    with torch.no_grad():
        target = net(x).topk(2, dim=1).indices[:, 1]
    adv = jsma(net, x, target, gamma=min(1.0, max_pixels / (h * w)))
    changed = ((adv - x).abs() > 1e-6).reshape(n, c, h * w).any(dim=1).sum(dim=1)
    return adv, changed


def direct_robustness(net: nn.Module, x: Tensor, y: Tensor, *, levels: int,
                      config: DirectConfig) -> dict[str, float]:
    """Metrics ``direct_Linf_th<t>``, ``direct_L0_th<t>`` per threshold and
    ``robustness_direct`` (their mean). ``x``, ``y``: the fixed fitness
    images (float in [0, 1]) and labels."""
    was_training = net.training
    net.eval()
    out: dict[str, float] = {}
    try:
        x, y = x[:config.images], y[:config.images]
        with torch.no_grad():
            clean_ok = net(x).argmax(1) == y
        for th in config.linf_for(levels):
            adv = pgd_linf(net, x, y, th / (levels - 1), config.pgd_steps)
            with torch.no_grad():
                ok = (net(adv).argmax(1) == y) & clean_ok
            out[f"direct_Linf_th{th}"] = float(ok.float().mean().item())
        if config.l0_th:
            adv, changed = jsma_pixels(net, x, max(config.l0_th))
            with torch.no_grad():
                fooled = net(adv).argmax(1) != y
            for th in config.l0_th:
                lost = ~clean_ok | (fooled & (changed <= th))
                out[f"direct_L0_th{th}"] = float(1.0 - lost.float().mean().item())
    finally:
        net.train(was_training)
    per_threshold = [v for key, v in out.items() if key.startswith("direct_")]
    out["robustness_direct"] = float(np.mean(per_threshold))
    return out
