"""Direct (white-box) robustness: attack the trained network itself.

The paper measures robustness by transfer (a stored bank of samples found
against other models). Architectures barely differ on that number on small
data, while they differ strongly under attacks on the network itself, so the
fitness can use either (``robustness='bank' | 'direct' | 'both'``).

Two attacks, each reported per (norm, threshold) cell like the bank:

* **Linf**: PGD (Madry et al.) from the clean image, no random start (so the
  measure needs no seed), ``steps`` signed-gradient steps of ``eps / 4``,
  projected on the eps box. Written in torch because ART's wrapper costs
  several times the attack on tiny networks; tests check it gives exactly
  ART's ``ProjectedGradientDescentPyTorch`` result.
  eps counts steps of the data's intensity grid (1/16 on digits, 1/255 on
  8-bit data), as the bank's Linf thresholds do.
* **L0**: ART's ``SaliencyMapMethod`` (JSMA), aimed at each image's runner-up
  class, run once with the largest pixel budget. JSMA changes pixels
  greedily and stops at success, so the number of pixels it changed tells
  every smaller threshold's outcome from one run.

Robustness of a cell is the share of the fixed fitness images that are still
classified correctly (a clean image already misclassified counts as lost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["DirectConfig", "direct_robustness", "jsma_pixels", "pgd_linf"]

COARSE_LINF_TH = (1, 2)  # grid steps on data with few levels (digits: 1/16, 2/16)
FINE_LINF_TH = (1, 3, 5, 10)  # out of 255 on 8-bit data, the paper's grid
L0_TH = (1, 3, 5, 10)  # pixels, the paper's grid


@dataclass(frozen=True)
class DirectConfig:
    """What the direct measure attacks: the first ``images`` validation images
    (the validation split is a seeded permutation, so that is a random fixed
    sample), PGD with ``pgd_steps`` steps at ``linf_th`` grid steps (None:
    1, 2 steps on coarse grids, the paper's 1/3/5/10 on 8-bit data), and JSMA
    up to ``max(l0_th)`` pixels on ``l0_images`` of them (the L0 attack is
    the costly part)."""

    images: int = 128
    l0_images: int = 48
    pgd_steps: int = 10
    linf_th: tuple[int, ...] | None = None
    l0_th: tuple[int, ...] = L0_TH

    def __post_init__(self) -> None:
        for name in ("images", "l0_images", "pgd_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
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


def jsma_pixels(net: nn.Module, x: np.ndarray, num_classes: int, max_pixels: int) -> tuple[
        np.ndarray, np.ndarray]:
    """ART's JSMA (theta=+1, pixels set to the maximum) aimed at each image's
    runner-up class, changing at most ``max_pixels`` pixels. Returns the
    adversarial images and how many pixels each changed."""
    from art.attacks.evasion import SaliencyMapMethod
    from art.estimators.classification import PyTorchClassifier

    n, c, h, w = x.shape
    clf = PyTorchClassifier(net, loss=nn.CrossEntropyLoss(), input_shape=(c, h, w),
                            nb_classes=num_classes, clip_values=(0.0, 1.0), device_type="cpu")
    scores = clf.predict(x, batch_size=len(x))
    target = np.argsort(scores, axis=1)[:, -2]
    gamma = min(1.0, max_pixels * c / (c * h * w))
    attack = SaliencyMapMethod(clf, theta=1.0, gamma=gamma, batch_size=len(x), verbose=False)
    adv = attack.generate(x, y=np.eye(num_classes, dtype=np.float32)[target])
    changed = (np.abs(adv - x) > 1e-6).reshape(n, c, h * w).any(axis=1).sum(axis=1)
    return adv.astype(np.float32), changed


def direct_robustness(net: nn.Module, x: Tensor, y: Tensor, *, levels: int, num_classes: int,
                      config: DirectConfig) -> dict[str, float]:
    """Metrics ``direct_Linf_th<t>``, ``direct_L0_th<t>`` per cell and
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
            k = min(config.l0_images, len(x))
            xs = x[:k].detach().cpu().numpy()
            adv, changed = jsma_pixels(net, xs, num_classes, max(config.l0_th))
            with torch.no_grad():
                fooled = (net(torch.from_numpy(adv).to(x.device)).argmax(1) != y[:k]).cpu()
            fooled_at = np.where(fooled.numpy(), changed, np.iinfo(np.int64).max)
            lost_clean = ~clean_ok[:k].cpu().numpy()
            for th in config.l0_th:
                lost = lost_clean | (fooled_at <= th)
                out[f"direct_L0_th{th}"] = float(1.0 - lost.mean())
    finally:
        net.train(was_training)
    cells = [v for key, v in out.items() if key.startswith("direct_")]
    out["robustness_direct"] = float(np.mean(cells))
    return out
