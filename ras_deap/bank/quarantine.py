"""The quarantine of a bank: its base images are none of the images a search
trains, validates or tests on (see :mod:`ras_deap.data.splits`).

A bank records, in its manifest, the fingerprint of the dataset it was built
from and the dataset indices of its base images. Before a bank is used, both
are checked against the dataset and seed in use, and the base images are
compared *by content* with every image of the train, validation and test
splits, so even an exact duplicate stored under another index is caught.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import BankError
from .format import AdversarialBank

__all__ = ["check_quarantine", "quarantine_record"]


def quarantine_record(dataset: Any, base_index: np.ndarray) -> dict[str, Any]:
    """The manifest entry of a bank built from ``dataset``'s bank split."""
    from ..data.splits import BANK_SPLIT_SALT

    return {"dataset_fingerprint": dataset.fingerprint,
            "bank_split": f"{BANK_SPLIT_SALT} ({len(dataset.bank)} images)",
            "base_indices": sorted({int(i) for i in base_index})}


def check_quarantine(bank: AdversarialBank, dataset: Any, where: str = "the bank") -> None:
    """Raise :class:`BankError` unless ``bank`` was built from ``dataset``
    (same fingerprint) and none of its base images is, by index or by
    content, in ``dataset``'s train, validation or test split."""
    from ..data.splits import image_digests

    record = bank.manifest.get("quarantine") or {}
    name = f"dataset {dataset.name!r} (seed {dataset.seed})"
    if record.get("dataset_fingerprint") != dataset.fingerprint:
        raise BankError(
            f"{where} was built from data with fingerprint "
            f"{record.get('dataset_fingerprint')!r}, but {name} has fingerprint "
            f"{dataset.fingerprint!r}: its base images cannot be checked against the splits in "
            "use; rebuild the bank from this data (python -m ras_deap.attacks build)")
    base = np.unique(bank.base_index)
    if sorted(record.get("base_indices", [])) != base.tolist():
        raise BankError(f"{where}: the manifest's base indices do not match the samples' "
                        "base_index; the bank was edited, rebuild it")
    fix = ("use a bank built from this dataset's bank split (python -m ras_deap.attacks "
           "build), or load the data the bank was built for")
    for split_name, split in dataset.splits().items():
        hit = np.intersect1d(base, split.index)
        if len(hit):
            raise BankError(f"{where} leaks into the {split_name} split of {name}: {len(hit)} "
                            f"of its base images are {split_name} images (e.g. dataset index "
                            f"{int(hit[0])}); {fix}")
    pos = {int(i): k for k, i in enumerate(dataset.bank.index)}
    missing = [int(i) for i in base if int(i) not in pos]
    if missing:
        raise BankError(f"{where}: base images {missing[:5]} are not in the bank split of "
                        f"{name}; {fix}")
    contents = set(image_digests(dataset.bank.x[[pos[int(i)] for i in base]]).tolist())
    for split_name, split in dataset.splits().items():
        same = contents & set(image_digests(split.x).tolist())
        if same:
            raise BankError(f"{where} leaks into the {split_name} split of {name}: {len(same)} "
                            f"of its base images have an identical copy among the {split_name} "
                            f"images; {fix}")
