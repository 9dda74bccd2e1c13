"""The samples of a bank being built, gathered attack by attack and stacked
into one :class:`~ras_deap.bank.AdversarialBank` at the end: the one place that
knows the bank's arrays and their dtypes, for the fitness bank
(:mod:`.build`) and the held-out bank (:mod:`.heldout`) alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..bank import AdversarialBank

__all__ = ["SampleParts"]


@dataclass
class SampleParts:
    """Per-attack pieces of the bank's arrays (``x`` images, ``y_true`` labels,
    ``base_index`` the bank split's image ids, ``source_pred`` what the source
    predicted; ``norm``, ``th``, ``optimizer`` and ``source_model`` per sample)."""

    x: list[np.ndarray] = field(default_factory=list)
    y_true: list[np.ndarray] = field(default_factory=list)
    base_index: list[np.ndarray] = field(default_factory=list)
    source_pred: list[np.ndarray] = field(default_factory=list)
    th: list[np.ndarray] = field(default_factory=list)
    norm: list[str] = field(default_factory=list)
    optimizer: list[str] = field(default_factory=list)
    source_model: list[str] = field(default_factory=list)

    def add(self, *, x: np.ndarray, y_true: np.ndarray, base_index: np.ndarray,
            source_pred: np.ndarray, th: Any, norm: str, optimizer: str,
            source_model: str) -> None:
        """The successes of one attack: arrays of one row per sample; ``th`` one
        threshold for all of them or one each."""
        n = len(y_true)
        self.x.append(x)
        self.y_true.append(y_true)
        self.base_index.append(base_index)
        self.source_pred.append(source_pred)
        self.th.append(np.broadcast_to(np.asarray(th, dtype=np.int64), (n,)))
        self.norm += [norm] * n
        self.optimizer += [optimizer] * n
        self.source_model += [source_model] * n

    def to_bank(self, shape: tuple[int, ...], manifest: dict[str, Any]) -> AdversarialBank:
        """The bank of every sample added, in the order added; ``shape`` is an
        image's (for an empty bank)."""

        def ints(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

        return AdversarialBank(
            x=np.concatenate(self.x) if self.x else np.zeros((0, *shape), np.float32),
            y_true=ints(self.y_true), norm=np.array(self.norm, dtype=str),
            th=ints(self.th), optimizer=np.array(self.optimizer, dtype=str),
            source_model=np.array(self.source_model, dtype=str),
            source_pred=ints(self.source_pred), base_index=ints(self.base_index),
            manifest=manifest)
