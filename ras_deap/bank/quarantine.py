"""The quarantine of a bank: its base images are none of the images a search
trains, validates or tests on (see :mod:`ras_deap.data.splits`), and a
fitness bank's are none of the images the held-out assessment is built from
(see :mod:`ras_deap.data.assessment`).

A bank records, in its manifest, the fingerprint of the dataset it was built
from and the dataset indices of its base images. Before a bank is used, both
are checked against the dataset and seed in use, and the base images are
compared *by content* with every image of the train, validation and test
splits, so even an exact duplicate stored under another index is caught.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BankError
from .format import AdversarialBank

__all__ = ["HELDOUT_SPLITS", "check_heldout", "check_quarantine", "quarantine_record"]

# Where a held-out bank (python -m ras_deap.attacks heldout) takes its base
# images from: the fixed assessment split, or the test split of one seed.
HELDOUT_SPLITS = ("assessment", "test")


def quarantine_record(dataset: Any, base_index: np.ndarray,
                      heldout_split: str | None = None) -> dict[str, Any]:
    """The manifest entry of a bank built from ``dataset``'s bank split, or,
    with ``heldout_split``, of a held-out bank built from that split."""
    from ..data.assessment import ASSESSMENT_SPLIT_SALT, assessment_split
    from ..data.splits import BANK_SPLIT_SALT

    record = {"dataset_fingerprint": dataset.fingerprint,
              "bank_split": f"{BANK_SPLIT_SALT} ({len(dataset.bank)} images)",
              "base_indices": sorted({int(i) for i in base_index})}
    held = assessment_split(dataset)
    if held is not None:
        record["assessment_split"] = f"{ASSESSMENT_SPLIT_SALT} ({len(held)} images)"
    if heldout_split is not None:
        record["heldout_split"] = heldout_split
        if heldout_split == "test":
            record["seed"] = int(dataset.seed)
    return record


def _check_record(bank: AdversarialBank, dataset: Any, where: str) -> np.ndarray:
    """The bank's distinct base indices, after checking it was built from
    ``dataset`` (same fingerprint) and that its manifest matches its samples."""
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
    return base


def _contents(dataset: Any, base: np.ndarray, where: str, fix: str) -> set[str]:
    """Content digests of the base images, looked up in the bank split."""
    from ..data.splits import image_digests

    pos = {int(i): k for k, i in enumerate(dataset.bank.index)}
    missing = [int(i) for i in base if int(i) not in pos]
    if missing:
        raise BankError(f"{where}: base images {missing[:5]} are not in the bank split of "
                        f"dataset {dataset.name!r} (seed {dataset.seed}); {fix}")
    return set(image_digests(dataset.bank.x[[pos[int(i)] for i in base]]).tolist())


def check_quarantine(bank: AdversarialBank, dataset: Any, where: str = "the bank", *,
                     fitness: bool = True) -> None:
    """Raise :class:`BankError` unless ``bank`` was built from ``dataset``
    (same fingerprint) and none of its base images is, by index or by
    content, in ``dataset``'s train, validation or test split. With
    ``fitness`` (a bank a search's robustness is measured on), none may be
    in the assessment split either: held-out assessments are built there."""
    from ..data.splits import image_digests

    name = f"dataset {dataset.name!r} (seed {dataset.seed})"
    base = _check_record(bank, dataset, where)
    fix = ("use a bank built from this dataset's bank split (python -m ras_deap.attacks "
           "build), or load the data the bank was built for")
    for split_name, split in dataset.splits().items():
        hit = np.intersect1d(base, split.index)
        if len(hit):
            raise BankError(f"{where} leaks into the {split_name} split of {name}: {len(hit)} "
                            f"of its base images are {split_name} images (e.g. dataset index "
                            f"{int(hit[0])}); {fix}")
    contents = _contents(dataset, base, where, fix)
    for split_name, split in dataset.splits().items():
        same = contents & set(image_digests(split.x).tolist())
        if same:
            raise BankError(f"{where} leaks into the {split_name} split of {name}: {len(same)} "
                            f"of its base images have an identical copy among the {split_name} "
                            f"images; {fix}")
    if fitness:
        from ..data.assessment import assessment_split

        held = assessment_split(dataset)
        if held is not None:
            same = contents & set(image_digests(held.x).tolist())
            if same:
                raise BankError(
                    f"{where} uses {len(same)} images of the assessment split of {name} as base "
                    "images, which no fitness bank may use (held-out assessments are built from "
                    "them); rebuild it with python -m ras_deap.attacks build, which skips them, "
                    "or pass it to an assessment as --heldout-bank instead")


def check_heldout(bank: AdversarialBank, dataset: Any, where: str = "the held-out bank") -> None:
    """Raise :class:`BankError` unless ``bank`` is a held-out bank usable on
    ``dataset`` (and its seed): built from this data, and its base images
    are none of the images the assessed network's search trained, validated
    or selected on.

    * built from the **assessment split** (``python -m ras_deap.attacks
      heldout --split assessment``): every base image is in it, so it is
      disjoint by content from train/validation/test of every seed and from
      every fitness bank's base images;
    * built from the **test split of one seed** (``--split test``): the seed
      must be the dataset's, and every base image is one of its test images,
      none with a copy among its train/validation images or the bank split;
    * an older held-out bank (``attacks build`` with another seed) is only
      checked as a bank is (:func:`check_quarantine` without ``fitness``):
      its base images may be the fitness bank's.
    """
    from ..data.splits import image_digests

    role = (bank.manifest.get("quarantine") or {}).get("heldout_split")
    if role is None:
        check_quarantine(bank, dataset, where, fitness=False)
        return
    name = f"dataset {dataset.name!r} (seed {dataset.seed})"
    if role not in HELDOUT_SPLITS:
        raise BankError(f"{where}: unknown held-out split {role!r} in its manifest; rebuild it "
                        "with python -m ras_deap.attacks heldout")
    base = _check_record(bank, dataset, where)
    if role == "assessment":
        from ..data.assessment import assessment_split

        check_quarantine(bank, dataset, where, fitness=False)
        held = assessment_split(dataset)
        outside = np.setdiff1d(base, held.index) if held is not None else base
        if len(outside):
            raise BankError(f"{where}: {len(outside)} base images are not in the assessment split "
                            f"of {name} (e.g. dataset index {int(outside[0])}); rebuild it with "
                            "python -m ras_deap.attacks heldout --split assessment")
        return
    seed = (bank.manifest.get("quarantine") or {}).get("seed")
    if seed != dataset.seed:
        raise BankError(f"{where} was built on the test split of seed {seed}, but the network "
                        f"was searched with seed {dataset.seed}: use the bank of seed "
                        f"{dataset.seed} (a path with {{seed}} picks it per cell)")
    outside = np.setdiff1d(base, dataset.test.index)
    if len(outside):
        raise BankError(f"{where}: {len(outside)} base images are not test images of {name} "
                        f"(e.g. dataset index {int(outside[0])}); rebuild it with python -m "
                        "ras_deap.attacks heldout --split test")
    pos = {int(i): k for k, i in enumerate(dataset.test.index)}
    contents = set(image_digests(dataset.test.x[[pos[int(i)] for i in base]]).tolist())
    for split_name, split in (("train", dataset.train), ("validation", dataset.val),
                              ("bank", dataset.bank)):
        same = contents & set(image_digests(split.x).tolist())
        if same:
            raise BankError(f"{where}: {len(same)} of its base images have an identical copy "
                            f"among the {split_name} images of {name}; it is not held out")
