"""Robustness of a model on a bank: the fraction of stored adversarial
samples it still classifies correctly (section 4.1), overall and broken
down so runs can be compared per attack type."""

from __future__ import annotations

import re

import numpy as np

from ..errors import BankError
from .format import NORMS, AdversarialBank

__all__ = ["metric_name", "robustness_metrics"]


def metric_name(*parts: object) -> str:
    """``robustness_<part>_<part>`` with characters MLflow rejects replaced by '_'."""
    return "_".join(re.sub(r"[^A-Za-z0-9_.\-]", "_", str(p)) for p in ("robustness", *parts))


def robustness_metrics(pred: np.ndarray, bank: AdversarialBank) -> dict[str, float]:
    """Accuracy on the bank (a sample is *resisted* when ``pred == y_true``).

    Keys: ``robustness`` (all samples), ``robustness_<norm>_th<th>`` per
    (norm, threshold) (e.g. ``robustness_L0_th1``, ``robustness_Linf_th10``),
    ``robustness_<norm>`` per norm, ``robustness_opt_<optimizer>`` and
    ``robustness_model_<source_model>``. Every value is a float in [0, 1].
    """
    pred = np.asarray(pred)
    if pred.shape != (len(bank),):
        raise BankError(f"pred has shape {pred.shape}; expected ({len(bank)},), one "
                        "predicted class per bank sample")
    if len(bank) == 0:
        raise BankError("the adversarial bank is empty; robustness is undefined")
    resisted = pred.astype(np.int64) == bank.y_true
    out = {"robustness": float(resisted.mean())}
    for (norm, th), idx in bank.by_threshold().items():
        out[metric_name(norm, f"th{th}")] = float(resisted[idx].mean())
    for norm in NORMS:
        mask = bank.norm == norm
        if mask.any():
            out[metric_name(norm)] = float(resisted[mask].mean())
    for label, values in (("opt", bank.optimizer), ("model", bank.source_model)):
        for value in sorted(set(values.tolist())):
            out[metric_name(label, value)] = float(resisted[values == value].mean())
    return out
