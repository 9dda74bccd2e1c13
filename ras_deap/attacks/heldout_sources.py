"""Source models of the held-out transfer set: families no fitness bank used.

The fitness banks are crafted on a ResNet (plain, PGD-trained and behind
feature squeezing) and a CapsNet (:mod:`ras_deap.attacks.source_models`).
The held-out set is crafted on families outside those two:

* ``mlp``: a multilayer perceptron (two hidden ReLU layers, no convolution);
* ``cnn``: a plain VGG-style convolutional network (3x3 convs, max pooling,
  no skip connections, no batch normalisation);
* ``linear``: multinomial logistic regression (one linear layer), not in the
  default set. On 8-bit MNIST the two defaults are so sure of almost every
  image that few flip at <= 10/255 (on mnist10k's 500-image assessment
  split, PGD flips 34 images on the MLP at 10/255, none at 1/255, and 1 on
  the CNN); a linear model's margin shrinks with the L1 norm of its weights
  times epsilon, so it yields samples at every threshold of the grid.

Both take images in [0, 1] and normalise inside, like the bank's sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..evaluation.inference import Normalize
from ..options import check_options, option, options_of
from ..seeding import seed_everything
from .source_models import SOURCE_NAMES, SourceModelError, train_classifier

__all__ = ["DEFAULT_HELDOUT_SOURCES", "HELDOUT_SOURCE_NAMES", "HELDOUT_SOURCE_OPTIONS",
           "HeldoutSourceConfig",
           "LinearSoftmax", "MLP", "PlainCNN", "build_heldout_source", "make_heldout_untrained"]

HELDOUT_SOURCE_NAMES = ("mlp", "cnn", "linear")
# what `attacks heldout` uses unless --sources says otherwise (the digits banks)
DEFAULT_HELDOUT_SOURCES = ("mlp", "cnn")
assert not set(HELDOUT_SOURCE_NAMES) & set(SOURCE_NAMES)


class MLP(nn.Module):
    """Flatten, two hidden ReLU layers, class logits."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, mean: tuple[float, ...],
                 std: tuple[float, ...], hidden: tuple[int, int] = (256, 128)) -> None:
        super().__init__()
        c, h, w = shape
        self.norm = Normalize(mean, std)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden[0]), nn.ReLU(),
                                 nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                 nn.Linear(hidden[1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


class LinearSoftmax(nn.Module):
    """Flatten, one linear layer: multinomial logistic regression."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        super().__init__()
        c, h, w = shape
        self.norm = Normalize(mean, std)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


class PlainCNN(nn.Module):
    """VGG-style: conv3x3-ReLU x2, max-pool, conv3x3-ReLU, max-pool, a hidden
    dense layer. On 8 x 8 digits the two pools leave 2 x 2 maps; on 28 x 28
    images 7 x 7."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, mean: tuple[float, ...],
                 std: tuple[float, ...], width: int = 32) -> None:
        super().__init__()
        c, h, w = shape
        self.norm = Normalize(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), 128),
                                  nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.norm(x)))


@dataclass(frozen=True)
class HeldoutSourceConfig:
    """Training of the held-out sources (Adam, one-cycle schedule, as the
    bank's sources; defaults take seconds on digits)."""

    epochs: int = option(25, "training epochs of each held-out source", "bank", minimum=1)
    batch_size: int = option(64, "training batch size of the held-out sources", "bank",
                             minimum=1)
    lr: float = option(3e-3, "learning rate of the held-out sources", "bank", minimum=0,
                       closed=False)

    def __post_init__(self) -> None:
        check_options(self, HELDOUT_SOURCE_OPTIONS)


HELDOUT_SOURCE_OPTIONS = options_of(HeldoutSourceConfig)


def make_heldout_untrained(name: str, shape: tuple[int, int, int], num_classes: int,
                           mean: tuple[float, ...], std: tuple[float, ...]) -> nn.Module:
    """The architecture of held-out source ``name`` with fresh weights."""
    if name == "mlp":
        return MLP(shape, num_classes, mean, std)
    if name == "cnn":
        return PlainCNN(shape, num_classes, mean, std)
    if name == "linear":
        return LinearSoftmax(shape, num_classes, mean, std)
    raise SourceModelError(f"unknown held-out source {name!r}; choose from "
                           f"{', '.join(HELDOUT_SOURCE_NAMES)}")


def build_heldout_source(name: str, dataset, seed: int,
                         cfg: HeldoutSourceConfig | None = None) -> nn.Module:
    """Train held-out source ``name`` on ``dataset.train`` from ``seed``."""
    cfg = cfg or HeldoutSourceConfig()
    seed_everything(seed)
    model = make_heldout_untrained(name, dataset.shape, dataset.num_classes, dataset.mean,
                                   dataset.std)
    return train_classifier(model, dataset.train.x, dataset.train.y, epochs=cfg.epochs,
                            batch_size=cfg.batch_size, lr=cfg.lr, seed=seed)
