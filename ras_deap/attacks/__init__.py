"""Transferable adversarial bank builder (paper section 4.1, Table 1).

Trains the source models (ResNet, CapsNet, PGD adversarial training, feature
squeezing), runs IBM ART's Pixel (L0) and Threshold (Linf) attacks with DE
and CMA-ES over the Table 1 grid, and stores the successes as a bank
(:mod:`ras_deap.bank`). torch and ART are imported here only.
"""

from ..evaluation.inference import accuracy, predict  # the one home, re-exported for convenience
from .attack import AttackError, CellResult, art_classifier, attack_cell, image_seed
from .build import BankBuildError, build_bank, work_dir_for
from .build_config import BuildConfig
from .cells import ALL_CELLS, NORMS, OPTIMIZERS, THRESHOLDS, Cell, CellError, parse_cell
from .source_models import (
    SOURCE_NAMES,
    CapsNet,
    FeatureSqueeze,
    SmallResNet,
    SourceConfig,
    SourceModelError,
    adversarial_train,
    build_source,
    make_untrained,
    train_classifier,
)

__all__ = [
    "ALL_CELLS",
    "NORMS",
    "OPTIMIZERS",
    "SOURCE_NAMES",
    "THRESHOLDS",
    "AttackError",
    "BuildConfig",
    "BankBuildError",
    "CapsNet",
    "Cell",
    "CellError",
    "CellResult",
    "FeatureSqueeze",
    "SmallResNet",
    "SourceConfig",
    "SourceModelError",
    "accuracy",
    "adversarial_train",
    "art_classifier",
    "attack_cell",
    "build_bank",
    "build_source",
    "image_seed",
    "make_untrained",
    "parse_cell",
    "predict",
    "train_classifier",
    "work_dir_for",
]
