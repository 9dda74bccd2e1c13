"""Dataset records, the loader registry and the quarantined splits.

Why a quarantine: robustness is measured on a stored bank of adversarial
images, and selection sees that number. If a bank's base images (the clean
images the attacks started from) were also training, validation or test
images, selection would reward memorising them and the test accuracy would be
measured on images selection already used. So every dataset sets aside one
fixed *bank split*, chosen by image content and independent of the seed; the
seeded train/validation/test split is drawn from the rest, for every seed.
Exact duplicate images always land on the same side, because the bank split
is a set of image *contents*, not of positions.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .layout import canonical

__all__ = [
    "BANK_SPLIT_SALT",
    "DATASETS",
    "Dataset",
    "DatasetError",
    "Split",
    "assemble",
    "bank_split_indices",
    "dataset_fingerprint",
    "image_digests",
    "load_dataset",
    "quarantined_split",
    "register",
    "salted_choice",
]

# Changing the salt changes every dataset's bank split, so every shipped bank
# would have to be rebuilt: it is versioned, never edited.
BANK_SPLIT_SALT = "ras_deap.bank-split/1"


class DatasetError(UsageError, ValueError):
    """Unknown dataset, missing data folder, or files in the wrong format."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # float32, N x C x H x W, values in [0, 1], row-major (data.layout)
    y: np.ndarray  # int64, N
    # Position of each image in the dataset's source order (see Dataset);
    # None for splits built by hand (tests, tools).
    index: np.ndarray | None = None

    def __post_init__(self) -> None:
        # the one door every loader's images pass through (see data.layout)
        object.__setattr__(self, "x", canonical(self.x))
        if self.x.ndim != 4 or self.x.dtype != np.float32:
            raise DatasetError(f"split images must be float32 N x C x H x W, got "
                               f"{self.x.dtype} {self.x.shape}")
        if self.y.shape != (self.x.shape[0],):
            raise DatasetError(f"split has {self.x.shape[0]} images but labels of shape "
                               f"{self.y.shape}")
        if self.index is not None and self.index.shape != self.y.shape:
            raise DatasetError(f"split has {len(self.y)} images but {self.index.shape} indices")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """``train``/``val``/``test`` depend on the seed; ``bank`` (the images
    adversarial banks are built from) never does, and shares no image content
    with the other three. ``fingerprint`` identifies the dataset's content
    (all images and labels in source order), so a bank can check it was
    built from this very data."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]
    # How many distinct levels one pixel value has on disk (digits: 17 for
    # 0..16, 8-bit images: 256). The Linf attack grid is expressed in steps
    # of 1 / (levels - 1).
    levels: int = 256
    bank: Split | None = None
    fingerprint: str = ""
    seed: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    def splits(self) -> dict[str, Split]:
        """The seeded splits a search trains, validates and tests on."""
        return {"train": self.train, "validation": self.val, "test": self.test}


Loader = Callable[..., Dataset]
DATASETS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn
    return deco


def image_digests(x: np.ndarray) -> np.ndarray:
    """One content digest per image (sha1 of its bytes), as a numpy array of
    40-character hex strings: equal images, equal digests."""
    x = np.ascontiguousarray(x)
    return np.array([hashlib.sha1(img.tobytes()).hexdigest() for img in x])


def dataset_fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 over every image and label in order (16 hex digits)."""
    digest = hashlib.sha256()
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(np.asarray(y, dtype=np.int64))
    digest.update(f"{x.dtype.str}|{x.shape}|".encode())
    digest.update(x.tobytes())
    digest.update(y.tobytes())
    return digest.hexdigest()[:16]


def bank_split_indices(digests: np.ndarray, size: int,
                       candidates: np.ndarray | None = None) -> np.ndarray:
    """The fixed, seed-independent bank split: distinct image contents among
    ``candidates`` (default: all) are ordered by a salted hash of their digest
    and taken until ``size`` images are covered; returned are *all* indices
    (candidates or not) holding one of the chosen contents, sorted."""
    if size < 1:
        raise ValueError(f"size={size}: the bank split needs at least one image")
    pool = np.arange(len(digests)) if candidates is None else np.asarray(candidates)
    chosen = salted_choice(digests[pool].tolist(), size, BANK_SPLIT_SALT)
    return np.flatnonzero(np.isin(digests, list(chosen)))


def salted_choice(pool: list[str], size: int, salt: str,
                  exclude: Collection[str] = ()) -> set[str]:
    """Distinct image contents of ``pool`` (digests; not in ``exclude``) in
    the order of their ``salt``-ed hash, taken until they cover ``size``
    images (duplicates count each): a choice by content, fixed by the salt,
    that no seed or file order moves."""
    counts: dict[str, int] = {}
    for d in pool:
        counts[d] = counts.get(d, 0) + 1
    order = sorted((d for d in counts if d not in exclude),
                   key=lambda d: hashlib.sha256(f"{salt}|{d}".encode()).digest())
    chosen, covered = set(), 0
    for d in order:
        if covered >= size:
            break
        chosen.add(d)
        covered += counts[d]
    return chosen


def quarantined_split(digests: np.ndarray, *, bank_size: int, n_val: int, n_test: int,
                      seed: int, bank_candidates: np.ndarray | None = None,
                      fixed_test: np.ndarray | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test, bank) dataset indices.

    ``bank`` is :func:`bank_split_indices` (seed-independent). The rest is
    split by a permutation seeded with ``seed``: ``n_test`` test, ``n_val``
    validation, the remainder train. With ``fixed_test`` (an official test
    set) the test split is those indices instead and the permutation splits
    the others into validation and train. No image content of the bank split
    is in any of the other three.
    """
    bank = bank_split_indices(digests, bank_size, bank_candidates)
    in_bank = np.zeros(len(digests), dtype=bool)
    in_bank[bank] = True
    if fixed_test is not None:
        fixed_test = np.asarray(fixed_test)
        test = fixed_test[~in_bank[fixed_test]]
        rest = np.setdiff1d(np.flatnonzero(~in_bank), fixed_test)
        perm = rest[np.random.default_rng(seed).permutation(len(rest))]
        return perm[n_val:], perm[:n_val], test, bank
    rest = np.flatnonzero(~in_bank)
    perm = rest[np.random.default_rng(seed).permutation(len(rest))]
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test], bank


def assemble(name: str, x: np.ndarray, y: np.ndarray, *, levels: int, bank_size: int,
             n_val: int, n_test: int, seed: int, num_classes: int = 10,
             bank_candidates: np.ndarray | None = None,
             fixed_test: np.ndarray | None = None) -> Dataset:
    """A :class:`Dataset` from all images ``x`` (float32 N x C x H x W in
    [0, 1], in the dataset's source order) and labels, quarantined by
    :func:`quarantined_split`. Normalisation statistics come from the
    training split only."""
    y = np.asarray(y, dtype=np.int64)
    digests = image_digests(x)
    train, val, test, bank = quarantined_split(
        digests, bank_size=bank_size, n_val=n_val, n_test=n_test, seed=seed,
        bank_candidates=bank_candidates, fixed_test=fixed_test)

    def part(idx: np.ndarray) -> Split:
        return Split(x[idx], y[idx], idx.astype(np.int64))

    xtr = x[train]
    return Dataset(
        name=name, train=part(train), val=part(val), test=part(test),
        num_classes=num_classes,
        mean=tuple(float(m) for m in xtr.mean(axis=(0, 2, 3))),
        std=tuple(float(s) for s in xtr.std(axis=(0, 2, 3))),
        levels=levels, bank=part(bank), fingerprint=dataset_fingerprint(x, y), seed=seed)


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False,
                 seed: int = 0) -> Dataset:
    """Load a dataset by name. ``seed`` fixes the train/validation/test split;
    the bank split is the same for every seed."""
    from . import digits, mnist10k  # noqa: F401  (register the embedded datasets)
    with contextlib.suppress(ImportError):  # torchvision datasets, if importable
        from . import vision  # noqa: F401
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](data_dir=data_dir, download=download, seed=seed)
