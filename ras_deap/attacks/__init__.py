"""Transferable adversarial bank builder (paper section 4.1, Table 1).

Trains the source models (ResNet, CapsNet, PGD adversarial training, feature
squeezing), runs IBM ART's Pixel (L0) and Threshold (Linf) attacks with DE
and CMA-ES in every attack setting of Table 1 (:mod:`ras_deap.attacks.settings`), and
stores the successes as a bank (:mod:`ras_deap.bank`). torch and ART are imported here only.
"""

from ..evaluation.inference import accuracy, predict  # the one home, re-exported for convenience
from .attack import (
    AttackError,
    AttackSettingResult,
    art_classifier,
    image_seed,
    run_attack_setting,
)
from .build import BankBuildError, build_bank, work_dir_for
from .build_config import BuildConfig
from .settings import (
    ALL_ATTACK_SETTINGS,
    NORMS,
    OPTIMIZERS,
    THRESHOLDS,
    AttackSetting,
    AttackSettingError,
    parse_attack_setting,
)
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
    "ALL_ATTACK_SETTINGS",
    "NORMS",
    "OPTIMIZERS",
    "SOURCE_NAMES",
    "THRESHOLDS",
    "AttackError",
    "AttackSetting",
    "AttackSettingError",
    "AttackSettingResult",
    "BuildConfig",
    "BankBuildError",
    "CapsNet",
    "FeatureSqueeze",
    "SmallResNet",
    "SourceConfig",
    "SourceModelError",
    "accuracy",
    "adversarial_train",
    "art_classifier",
    "build_bank",
    "build_source",
    "image_seed",
    "make_untrained",
    "parse_attack_setting",
    "predict",
    "run_attack_setting",
    "train_classifier",
    "work_dir_for",
]
