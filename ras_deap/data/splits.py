"""Dataset records and the loader registry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "Dataset", "DatasetError", "Split", "load_dataset", "register"]


class DatasetError(ValueError):
    """Unknown dataset, missing data folder, or files in the wrong format."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # float32, N x C x H x W, values in [0, 1]
    y: np.ndarray  # int64, N

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.dtype != np.float32:
            raise DatasetError(f"split images must be float32 N x C x H x W, got "
                               f"{self.x.dtype} {self.x.shape}")
        if self.y.shape != (self.x.shape[0],):
            raise DatasetError(f"split has {self.x.shape[0]} images but labels of shape "
                               f"{self.y.shape}")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]
    # How many distinct levels one pixel value has on disk (digits: 17 for
    # 0..16, images: 256). Attacks use the 0-255 scale whatever this is.
    levels: int = 256

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


Loader = Callable[..., Dataset]
DATASETS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn
    return deco


def split_indices(n: int, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed seeded permutation split into train / validation / test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False,
                 seed: int = 0) -> Dataset:
    """Load a dataset by name. ``seed`` fixes any split the loader makes."""
    from . import digits  # noqa: F401  (registers the embedded dataset)
    with contextlib.suppress(ImportError):  # torchvision datasets, if importable
        from . import vision  # noqa: F401
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](data_dir=data_dir, download=download, seed=seed)
