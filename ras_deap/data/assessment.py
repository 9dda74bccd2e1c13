"""The assessment split: images that no fitness bank is, or will be, built from.

Why: a held-out assessment must share nothing with any fitness. The bank
split (:mod:`ras_deap.data.splits`) already keeps the images adversarial
banks are made of away from every seed's train/validation/test split, but
the fitness banks are built from it, so a held-out transfer set built from
the same split reuses their base images. The assessment split is carved out
of the bank split (so it inherits its quarantine from train/validation/test
for every seed) and excludes, by content, every base image of the fitness
banks that shipped when it was fixed; later fitness banks must skip it
(:func:`ras_deap.bank.check_quarantine`, :mod:`ras_deap.attacks.build`).

The split is chosen once by a rule (:func:`choose_assessment_split`: the
distinct contents of the bank split that no shipped fitness bank uses,
ordered by a salted hash of their digest, first ``size``) and frozen in
``files/assessment-splits.json`` (``scripts/make_assessment_splits.py``
writes it), so a later rebuild of a fitness bank cannot move it. The train,
validation, test and bank splits are untouched: the assessment split is a
subset of the bank split, nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .splits import DatasetError, Split, image_digests, salted_choice

__all__ = [
    "ASSESSMENT_RECORDS",
    "ASSESSMENT_SPLIT_FORMAT",
    "ASSESSMENT_SPLIT_SALT",
    "assessment_record",
    "assessment_split",
    "choose_assessment_split",
    "contents_sha256",
    "fitness_positions",
    "make_record",
]

# Changing the salt would choose other images: versioned, never edited.
ASSESSMENT_SPLIT_SALT = "ras_deap.assessment-split/1"
ASSESSMENT_SPLIT_FORMAT = "ras_deap.assessment-splits/1"
ASSESSMENT_RECORDS = Path(__file__).resolve().parent / "files" / "assessment-splits.json"


def contents_sha256(digests: np.ndarray) -> str:
    """sha256 of the sorted distinct image digests: names a set of contents."""
    return hashlib.sha256("\n".join(sorted(set(np.asarray(digests).tolist()))).encode()
                          ).hexdigest()


def choose_assessment_split(digests: np.ndarray, bank_index: np.ndarray,
                            exclude: set[str], size: int) -> np.ndarray:
    """The rule: the distinct contents among ``digests[bank_index]`` that are
    not in ``exclude`` (digests of fitness-bank base images), ordered by a
    salted sha256 of the digest, taken until ``size`` images are covered
    (all of them if fewer). Returned are the dataset indices of the bank
    split holding a chosen content, sorted; copies stay together."""
    if size < 1:
        raise ValueError(f"size={size}: the assessment split needs at least one image")
    bank_index = np.asarray(bank_index)
    chosen = salted_choice(digests[bank_index].tolist(), size, ASSESSMENT_SPLIT_SALT, exclude)
    return np.sort(bank_index[np.isin(digests[bank_index], list(chosen))])


def make_record(dataset: Any, banks: dict[str, dict[str, Any]], size: int) -> dict[str, Any]:
    """The frozen record of ``dataset``'s assessment split under the rule of
    :func:`choose_assessment_split`, excluding the base images of ``banks``
    (name -> manifest of a shipped fitness bank, as written by
    :func:`ras_deap.bank.save_bank`)."""
    digests = image_digests(np.concatenate([dataset.train.x, dataset.val.x, dataset.test.x,
                                            dataset.bank.x]))
    index = np.concatenate([dataset.train.index, dataset.val.index, dataset.test.index,
                            dataset.bank.index])
    by_index = np.empty(int(index.max()) + 1, dtype=digests.dtype)
    by_index[index] = digests
    exclude: set[str] = set()
    for name, manifest in banks.items():
        record = manifest.get("quarantine") or {}
        if manifest.get("dataset") != dataset.name or \
                record.get("dataset_fingerprint") != dataset.fingerprint:
            raise DatasetError(f"bank {name} was not built from this {dataset.name!r} data")
        exclude |= set(by_index[np.asarray(record["base_indices"], dtype=np.int64)].tolist())
    chosen = choose_assessment_split(by_index, dataset.bank.index, exclude, size)
    return {
        "salt": ASSESSMENT_SPLIT_SALT,
        "dataset_fingerprint": dataset.fingerprint,
        "bank_split_images": len(dataset.bank),
        "requested_size": size,
        "excluded_banks": {name: {"sha256": m.get("sha256"),
                                  "base_images": len(m["quarantine"]["base_indices"])}
                           for name, m in sorted(banks.items())},
        "excluded_contents": len(exclude),
        "size": len(chosen),
        "indices": [int(i) for i in chosen],
        "contents_sha256": contents_sha256(by_index[chosen]),
    }


@cache
def _records(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"assessment split records {path} are unreadable ({exc}); "
                           "recreate them with scripts/make_assessment_splits.py") from exc
    if data.get("format") != ASSESSMENT_SPLIT_FORMAT:
        raise DatasetError(f"assessment split records {path} have format "
                           f"{data.get('format')!r}, expected {ASSESSMENT_SPLIT_FORMAT!r}")
    return data["datasets"]


def assessment_record(name: str, fingerprint: str) -> dict[str, Any] | None:
    """The frozen record of dataset ``name`` with content ``fingerprint``, or
    None: data without a record (another dataset, or other images under the
    same name) has no assessment split."""
    record = _records(str(ASSESSMENT_RECORDS)).get(name)
    if record is None or record.get("dataset_fingerprint") != fingerprint:
        return None
    return record


def assessment_split(dataset: Any) -> Split | None:
    """The assessment split of ``dataset`` (a :class:`~ras_deap.data.Dataset`)
    as a :class:`Split` of dataset indices, or None if it has none. The same
    for every seed; refused with :class:`DatasetError` if the recorded images
    are not in the bank split or not the recorded contents."""
    record = assessment_record(dataset.name, dataset.fingerprint)
    if record is None or dataset.bank is None:
        return None
    pos = {int(i): k for k, i in enumerate(dataset.bank.index)}
    idx = [int(i) for i in record["indices"]]
    if any(i not in pos for i in idx):
        raise DatasetError(f"the assessment split of {dataset.name!r} names images outside its "
                           "bank split; recreate it with scripts/make_assessment_splits.py")
    take = np.array([pos[i] for i in idx], dtype=np.int64)
    x, y = dataset.bank.x[take], dataset.bank.y[take]
    if contents_sha256(image_digests(x)) != record["contents_sha256"]:
        raise DatasetError(f"the assessment split of {dataset.name!r} does not hold the recorded "
                           "images; recreate it with scripts/make_assessment_splits.py")
    return Split(x, y, np.array(idx, dtype=np.int64))


def fitness_positions(dataset: Any) -> np.ndarray:
    """Bool mask over ``dataset.bank``: True where a fitness bank may use the
    image (the bank split minus the assessment split, by content)."""
    held = assessment_split(dataset)
    ok = np.ones(len(dataset.bank), dtype=bool)
    if held is not None:
        ok &= ~np.isin(image_digests(dataset.bank.x), image_digests(held.x))
    return ok
