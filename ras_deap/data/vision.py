"""CIFAR-10, MNIST and Fashion-MNIST through torchvision's dataset classes,
read from a local folder (nothing is downloaded unless ``download=True``).

Returned as the same :class:`Dataset` record as digits: float32 N x C x H x W
in [0, 1]; a fixed bank split of 1000 official training images is set aside
for adversarial banks, the validation split (10 % of the rest) is carved from
the official training set with a seeded permutation; the test split is the
official test set.
torchvision is imported inside the loaders, so importing ``ras_deap.data``
stays torch-free.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes_atomic
from .splits import Dataset, DatasetError, assemble, register

__all__ = ["BANK_SPLIT_SIZE", "DEFAULT_DATA_DIR", "VAL_FRACTION", "load_cifar10",
           "load_fashion_mnist", "load_mnist"]

DEFAULT_DATA_DIR = Path("data")
VAL_FRACTION = 0.1
# Images of the official training set set aside for adversarial banks (at
# most 10 % of it, for the tiny files of the tests).
BANK_SPLIT_SIZE = 1000
BANK_SPLIT_MAX_FRACTION = 0.1

_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _missing(name: str, folder: Path, files: str) -> DatasetError:
    return DatasetError(
        f"{name} files not found in {folder}: put {files} there (the layout torchvision "
        f"uses), point --data-dir at the folder that contains them, or pass --download "
        f"(download=True) to fetch them with torchvision")


def _finish(name: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
            test_y: np.ndarray, seed: int) -> Dataset:
    """uint8 N x H x W x C arrays -> Dataset. Source order is the official
    training set, then the official test set; the bank split is taken from
    the official training images (every copy of its contents, in either set,
    is excluded from train/validation/test), the validation split is a
    seeded 10 % of the remaining training images, the test split the
    official test set."""
    def to_float(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)

    x = np.concatenate([to_float(train_x), to_float(test_x)])
    y = np.concatenate([np.asarray(train_y, dtype=np.int64), np.asarray(test_y, dtype=np.int64)])
    n_train = len(train_x)
    bank_size = max(1, min(BANK_SPLIT_SIZE, round(n_train * BANK_SPLIT_MAX_FRACTION)))
    n_val = max(1, round((n_train - bank_size) * VAL_FRACTION))
    return assemble(name, x, y, levels=256, bank_size=bank_size, n_val=n_val, n_test=0,
                    seed=seed, bank_candidates=np.arange(n_train),
                    fixed_test=np.arange(n_train, len(x)))


def _root(data_dir: str | Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR


def _open(cls: Any, root: Path, download: bool, name: str, folder: Path) -> tuple[Any, Any]:
    """The official training and test sets through the torchvision class
    ``cls``; files it cannot read are a :class:`DatasetError` naming
    ``folder``."""
    try:
        return (cls(str(root), train=True, download=download),
                cls(str(root), train=False, download=False))
    except RuntimeError as exc:
        raise DatasetError(f"{name} in {folder} is incomplete or corrupted ({exc}); replace "
                           "the files or pass --download") from exc


@register("cifar10")
def load_cifar10(data_dir: str | Path | None = None, download: bool = False,
                 seed: int = 0) -> Dataset:
    """CIFAR-10 from ``data_dir/cifar-10-batches-py`` (the python version)."""
    from torchvision.datasets import CIFAR10

    root = _root(data_dir)
    folder = root / CIFAR10.base_folder
    if not download and not folder.is_dir():
        raise _missing("CIFAR-10", folder, "data_batch_1..5, test_batch and batches.meta")
    train, test = _open(CIFAR10, root, download, "CIFAR-10", folder)
    return _finish("cifar10", train.data, train.targets, test.data, test.targets, seed)


def _prepare_idx(raw: Path) -> None:
    """torchvision reads uncompressed idx files; unpack ``.gz`` copies the
    user put there (the form they are distributed in)."""
    for name in _MNIST_FILES:
        plain, packed = raw / name, raw / f"{name}.gz"
        if not plain.exists() and packed.exists():
            # atomic: a half-unpacked file would pass the next run's exists() check
            with gzip.open(packed, "rb") as src:
                write_bytes_atomic(plain, lambda dst: shutil.copyfileobj(src, dst))


def _load_mnist_like(cls_name: str, name: str, data_dir: str | Path | None, download: bool,
                     seed: int) -> Dataset:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    root = _root(data_dir)
    raw = root / cls_name / "raw"
    if raw.is_dir():
        _prepare_idx(raw)
    if not download and not all((raw / f).exists() for f in _MNIST_FILES):
        raise _missing(name, raw, ", ".join(_MNIST_FILES) + " (optionally .gz)")
    train, test = _open(cls, root, download, name, raw)
    return _finish(name, train.data.numpy()[..., None], train.targets.numpy(),
                   test.data.numpy()[..., None], test.targets.numpy(), seed)


@register("mnist")
def load_mnist(data_dir: str | Path | None = None, download: bool = False,
               seed: int = 0) -> Dataset:
    """MNIST from ``data_dir/MNIST/raw`` (idx files, plain or .gz)."""
    return _load_mnist_like("MNIST", "mnist", data_dir, download, seed)


@register("fashion-mnist")
def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = False,
                       seed: int = 0) -> Dataset:
    """Fashion-MNIST from ``data_dir/FashionMNIST/raw`` (idx files, plain or .gz)."""
    return _load_mnist_like("FashionMNIST", "fashion-mnist", data_dir, download, seed)
