"""The adversarial bank (numpy only): stored transfer-attack samples used to
measure robustness (section 4.1), their on-disk format and metrics."""

from .errors import BankError
from .format import (
    BANK_FORMAT,
    NORMS,
    OPTIMIZERS,
    AdversarialBank,
    bank_checksum,
    load_bank,
    save_bank,
)
from .metrics import metric_name, robustness_metrics
from .paths import BANKS_DIR, default_bank_path
from .synthetic import PERTURBED_SOURCE, perturbed_bank

__all__ = [
    "BANKS_DIR",
    "BANK_FORMAT",
    "NORMS",
    "OPTIMIZERS",
    "PERTURBED_SOURCE",
    "AdversarialBank",
    "BankError",
    "bank_checksum",
    "default_bank_path",
    "load_bank",
    "metric_name",
    "perturbed_bank",
    "robustness_metrics",
    "save_bank",
]
