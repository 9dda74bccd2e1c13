"""Adversarial training of the final network: PGD-AT and TRADES, in plain torch.

The paper trains every network normally; ``--final-training pgd-at|trades``
hardens the search's winner afterwards (issue #29). Both are written here
rather than through ART because the loop is short and must follow the
reference implementations' BatchNorm handling exactly: adversarial examples
are crafted with the network in eval mode (fixed BatchNorm statistics, so an
attack does not move them) and the update is made in train mode.

* **PGD-AT** (Madry et al. 2018): minimise the cross-entropy on L∞ PGD
  examples crafted from a uniform random start in the eps box.
* **TRADES** (Zhang et al. 2019): minimise the clean cross-entropy plus
  ``beta`` times KL(f(x) || f(x')), where x' maximises that KL by PGD from
  x + 0.001·N(0, 1) (the reference code's start), ``beta`` = 6 as there.

**The schedule** (:class:`AdversarialSchedule`, small on purpose): the
network is first trained exactly as the standard final training trains it
(bit for bit the same), then *fine-tuned* adversarially for ``epochs``
epochs (default 10) on the same training images with a fresh optimiser of
the search's kind and learning rate, no early stopping. Fine-tuning keeps the
clean accuracy the standard training reached and costs about ``steps + 1``
standard epochs per epoch; measured on digits it gives the robustness of
training adversarially from scratch at a fraction of the cost
(docs/guide/comparison.md, "Adversarial fine-tuning of the winner").

eps counts steps of the data's intensity grid (1/16 on digits, 1/255 on
8-bit data), as every L∞ budget here does; by default it is the largest step
of the direct measure's grid (:class:`~ras_deap.evaluation.direct.DirectConfig`):
2/16 on digits, 10/255 on 8-bit data. PGD takes ``steps`` (7) steps of
``step_fraction`` (1/4) of eps, the ratio of Madry et al.'s CIFAR setting
(eps 8/255, 7 steps of 2/255).

Inputs and the examples crafted from them keep the canonical row-major
layout (:mod:`ras_deap.data.layout`), so the input gradients go through the
same kernels the standard training's weight gradients do.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..constants import FINAL_TRAININGS
from ..errors import TrainingError
from .direct import DirectConfig
from .inference import accuracy, canonical_layout
from .train_config import TrainConfig
from .trainer import TrainResult, make_optimizer, run_epoch

__all__ = ["ADVERSARIAL_KINDS", "AdversarialSchedule", "FINAL_TRAININGS", "adversarial_train",
           "pgd_examples", "trades_examples", "trades_loss"]

# the kinds that train on adversarial examples (FINAL_TRAININGS less "standard")
ADVERSARIAL_KINDS = tuple(k for k in FINAL_TRAININGS if k != "standard")


@dataclass(frozen=True)
class AdversarialSchedule:
    """How a trained network is fine-tuned adversarially (see the module
    docstring for why these values). ``eps_steps``: L∞ budget in steps of the
    data's intensity grid (None: the largest of the direct measure's grid,
    2 on digits, 10 on 8-bit data); ``steps``/``step_fraction``: the inner
    PGD (step = ``step_fraction`` x eps); ``beta``: TRADES' weight of the
    robust term; ``lr``: None for the search's learning rate."""

    epochs: int = 10
    eps_steps: int | None = None
    steps: int = 7
    step_fraction: float = 0.25
    beta: float = 6.0
    lr: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        if self.eps_steps is not None and (not isinstance(self.eps_steps, int)
                                           or self.eps_steps < 1):
            raise ValueError(f"eps_steps={self.eps_steps!r} must be a positive integer or None")
        if not 0 < self.step_fraction <= 1 or not self.beta >= 0:
            raise ValueError("step_fraction must be in (0, 1] and beta >= 0")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0 (or None: the search's)")

    def eps_for(self, levels: int) -> float:
        """The L∞ budget as a fraction of the [0, 1] range."""
        steps = self.eps_steps if self.eps_steps is not None else max(
            DirectConfig().linf_for(levels))
        return steps / (levels - 1)


def _uniform(x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    noise = torch.rand(x.shape, generator=generator, device=generator.device)
    return noise.to(x.device, x.dtype).mul_(2 * eps).sub_(eps)


def _normal(x: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    noise = torch.randn(x.shape, generator=generator, device=generator.device)
    return noise.to(x.device, x.dtype).mul_(scale)


def _project(adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """``adv`` clipped to the eps box around ``x`` and to the image range [0, 1]."""
    return torch.min(torch.max(adv, x - eps), x + eps).clamp_(0.0, 1.0)


def pgd_examples(net: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int,
                 step_size: float, generator: torch.Generator) -> Tensor:
    """Madry et al.'s L∞ PGD from a uniform random start in the eps box:
    ``steps`` signed-gradient ascent steps on the cross-entropy, each followed
    by the projection. Crafted in eval mode (the caller's mode is restored);
    returns detached examples in canonical layout, within eps of ``x``."""
    was_training = net.training
    net.eval()
    try:
        adv = _project(x + _uniform(x, eps, generator), x, eps)
        for _ in range(steps):
            adv.requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(net(adv), y)
                (grad,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                adv = _project(adv + step_size * grad.sign(), x, eps)
    finally:
        net.train(was_training)
    return canonical_layout(adv.detach())


def _kl(adv_logits: Tensor, clean_probs: Tensor) -> Tensor:
    """KL(clean || adv) summed over the batch (the reference code's
    ``KLDivLoss(size_average=False)``)."""
    return F.kl_div(F.log_softmax(adv_logits, dim=1), clean_probs, reduction="sum")


def trades_examples(net: nn.Module, x: Tensor, eps: float, steps: int, step_size: float,
                    generator: torch.Generator) -> Tensor:
    """TRADES' inner maximisation: L∞ PGD on KL(f(x) || f(x')) from
    x + 0.001·N(0, 1), in eval mode (the caller's mode is restored)."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            clean = F.softmax(net(x), dim=1)
        adv = _project(x + _normal(x, 0.001, generator), x, eps)
        for _ in range(steps):
            adv.requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(_kl(net(adv), clean), adv)
            with torch.no_grad():
                adv = _project(adv + step_size * grad.sign(), x, eps)
    finally:
        net.train(was_training)
    return canonical_layout(adv.detach())


def trades_loss(net: nn.Module, x: Tensor, adv: Tensor, y: Tensor, beta: float
                ) -> tuple[Tensor, Tensor]:
    """The TRADES objective in the network's current (train) mode: clean
    cross-entropy + beta x mean KL(f(x) || f(adv)); also the logits of ``adv``."""
    logits = net(x)
    adv_logits = net(adv)
    robust = _kl(adv_logits, F.softmax(logits, dim=1)) / x.shape[0]
    return F.cross_entropy(logits, y) + beta * robust, adv_logits


def adversarial_train(net: nn.Module, kind: str, x: Tensor, y: Tensor, x_val: Tensor,
                      y_val: Tensor, config: TrainConfig, schedule: AdversarialSchedule,
                      levels: int, generator: torch.Generator) -> TrainResult:
    """Fine-tune ``net`` in place with ``kind`` (``pgd-at`` or ``trades``) for
    ``schedule.epochs`` epochs over ``x``, ``y`` (batches of
    ``config.batch_size`` in a seeded order, a trailing single sample
    skipped as in :func:`~ras_deap.evaluation.trainer.train`). The history
    holds per epoch the accuracy on the batches' adversarial examples (the
    robust training accuracy, before each update) and the clean validation
    accuracy. Raises :class:`TrainingError` on
    a non-finite loss."""
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"kind={kind!r}: choose one of {', '.join(ADVERSARIAL_KINDS)}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 training samples, got {x.shape[0]}")
    eps = schedule.eps_for(levels)
    step_size = schedule.step_fraction * eps
    lr = schedule.lr if schedule.lr is not None else config.lr
    opt = make_optimizer(net.parameters(), dataclasses.replace(config, lr=lr))
    bs = config.batch_size
    history: list[tuple[float, float]] = []
    seen = 0
    start = time.perf_counter()
    net.train()
    def batch_loss(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if kind == "pgd-at":
            adv = pgd_examples(net, xb, yb, eps, schedule.steps, step_size, generator)
            adv_logits = net(adv)
            return F.cross_entropy(adv_logits, yb), adv_logits
        adv = trades_examples(net, xb, eps, schedule.steps, step_size, generator)
        return trades_loss(net, xb, adv, yb, schedule.beta)

    for epoch in range(schedule.epochs):
        train_acc, count, finite = run_epoch(x, y, opt, bs, generator, batch_loss)
        seen += count
        if not finite:
            raise TrainingError(f"non-finite {kind} loss in adversarial epoch {epoch + 1}")
        history.append((train_acc, accuracy(net, x_val, y_val, config.eval_batch_size)))
    return TrainResult(epochs=len(history), stopped_early=False,
                       train_accuracy=history[-1][0], val_accuracy=history[-1][1],
                       seconds=time.perf_counter() - start, samples_seen=seen,
                       history=history)
