"""The adversarial bank (numpy only): stored transfer-attack samples used to
measure robustness (section 4.1), their on-disk format and metrics."""

from ..errors import BankError
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
from .quarantine import HELDOUT_SPLITS, check_heldout, check_quarantine, quarantine_record
from .synthetic import (
    PERTURBED_SOURCE,
    default_linf_thresholds,
    fallback_bank,
    linf_grid,
    perturbed_bank,
)

__all__ = [
    "BANKS_DIR",
    "BANK_FORMAT",
    "HELDOUT_SPLITS",
    "NORMS",
    "OPTIMIZERS",
    "PERTURBED_SOURCE",
    "AdversarialBank",
    "BankError",
    "bank_checksum",
    "check_heldout",
    "check_quarantine",
    "default_bank_path",
    "default_linf_thresholds",
    "fallback_bank",
    "linf_grid",
    "load_bank",
    "metric_name",
    "perturbed_bank",
    "quarantine_record",
    "robustness_metrics",
    "save_bank",
]
