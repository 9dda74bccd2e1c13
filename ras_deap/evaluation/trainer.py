"""Train one compiled network on in-memory tensors.

Batches are taken by indexing whole tensors (no DataLoader: with 8x8 or
32x32 images the per-sample Python overhead of a DataLoader would dominate
the step). All randomness (shuffling, augmentation) comes from one
``torch.Generator`` so a run is reproducible from its seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import TrainingError
from .inference import accuracy
from .train_config import TrainConfig

__all__ = ["BatchLoss", "TrainResult", "make_optimizer", "minibatches", "plateaued", "run_epoch",
           "should_stop", "train"]

Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass
class TrainResult:
    """What happened during training; accuracies are fractions in [0, 1]."""

    epochs: int
    stopped_early: bool
    train_accuracy: float  # running accuracy over the last epoch's batches
    val_accuracy: float  # after the last epoch
    seconds: float
    samples_seen: int
    history: list[tuple[float, float]] = field(default_factory=list)  # (train, val) per epoch


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD (Nesterov momentum). The fused implementations update all
    parameters in one kernel, which on small networks is a large share of
    the step time; the math is the same as the default implementation."""
    params = list(params)
    if config.optimizer == "adam":
        try:
            return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay,
                                    fused=True)
        except (RuntimeError, ValueError):
            return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.momentum > 0)


def plateaued(values: list[float], patience: int, min_delta: float) -> bool:
    """True when none of the last ``patience`` values differs by more than
    ``min_delta`` from the value ``patience`` epochs ago."""
    if len(values) <= patience:
        return False
    ref = values[-patience - 1]
    return all(abs(v - ref) <= min_delta for v in values[-patience:])


def should_stop(history: list[tuple[float, float]], patience: int, min_delta: float) -> bool:
    """The paper's early-stopping rule (section 5.3: "early stopping if
    accuracy or validation accuracy do not change more than 0.001 in the span
    of 15 epochs"): stop as soon as the training accuracy *or* the validation
    accuracy has :func:`plateaued`. ``history`` holds ``(train, val)``
    accuracies per epoch."""
    return (plateaued([h[0] for h in history], patience, min_delta)
            or plateaued([h[1] for h in history], patience, min_delta))


def minibatches(n: int, batch_size: int, generator: torch.Generator,
                device: torch.device) -> Iterator[torch.Tensor]:
    """One epoch's shuffled index batches; a last batch of one sample is
    skipped (BatchNorm needs two)."""
    perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        if idx.shape[0] >= 2:
            yield idx


BatchLoss = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (x, y) -> (loss, logits)


def run_epoch(x: Tensor, y: Tensor, opt: torch.optim.Optimizer, batch_size: int,
              generator: torch.Generator, batch_loss: BatchLoss) -> tuple[float, int, bool]:
    """One epoch of minibatch updates with ``batch_loss`` (standard or
    adversarial training): ``(accuracy of the logits it returned, samples
    seen, whether the summed loss stayed finite)``."""
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    loss_sum = torch.zeros((), device=x.device)
    count = 0
    for idx in minibatches(x.shape[0], batch_size, generator, x.device):
        yb = y[idx]
        loss, logits = batch_loss(x[idx], yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == yb).sum()
        count += idx.shape[0]
    return (float(correct.item()) / max(count, 1), count,
            math.isfinite(float(loss_sum.item())))


def train(net: nn.Module, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor,
          config: TrainConfig, max_epochs: int, generator: torch.Generator,
          augment: Augment | None = None) -> TrainResult:
    """Train ``net`` in place with cross-entropy for at most ``max_epochs``,
    stopping early as the paper words it (section 5.3: "early stopping if
    accuracy or validation accuracy do not change more than 0.001 in the span
    of 15 epochs"): as soon as the training accuracy *or* the validation
    accuracy has not moved more than ``config.min_delta`` over
    ``config.patience`` epochs (:func:`should_stop`). Raises
    :class:`TrainingError` on a non-finite loss.

    A trailing batch of a single sample is skipped: BatchNorm cannot compute
    batch statistics from one value.
    """
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 training samples, got {x.shape[0]}")
    opt = make_optimizer(net.parameters(), config)
    bs = config.batch_size
    history: list[tuple[float, float]] = []
    stopped = False
    seen = 0
    start = time.perf_counter()
    net.train()
    def batch_loss(xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        if augment is not None:
            xb = augment(xb, generator)
        out = net(xb)
        return F.cross_entropy(out, yb), out

    for _epoch in range(max_epochs):
        train_acc, count, finite = run_epoch(x, y, opt, bs, generator, batch_loss)
        seen += count
        if not finite:
            raise TrainingError(f"non-finite training loss in epoch {len(history) + 1}")
        val_acc = accuracy(net, x_val, y_val, config.eval_batch_size)
        history.append((train_acc, val_acc))
        if should_stop(history, config.patience, config.min_delta):
            stopped = True
            break
    return TrainResult(
        epochs=len(history),
        stopped_early=stopped,
        train_accuracy=history[-1][0] if history else 0.0,
        val_accuracy=history[-1][1] if history else 0.0,
        seconds=time.perf_counter() - start,
        samples_seen=seen,
        history=history,
    )
