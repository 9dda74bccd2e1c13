"""scikit-learn's ``load_digits``: 1797 8x8 images, shipped inside sklearn, so
the default run needs no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .splits import Dataset, Split, register, split_indices

__all__ = ["load_digits_dataset"]

DIGITS_MAX = 16.0  # digits pixel values are integers 0..16


@register("digits")
def load_digits_dataset(data_dir: str | Path | None = None, download: bool = False,
                        seed: int = 0) -> Dataset:
    """Seeded 70/15/15 train/validation/test split. ``data_dir`` and
    ``download`` are accepted for a uniform interface and ignored."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images.astype(np.float32) / DIGITS_MAX)[:, None, :, :]
    y = raw.target.astype(np.int64)
    train, val, test = split_indices(len(y), 0.15, 0.15, seed)
    mean = float(x[train].mean())
    std = float(x[train].std())
    return Dataset(
        name="digits",
        train=Split(x[train], y[train]),
        val=Split(x[val], y[val]),
        test=Split(x[test], y[test]),
        num_classes=10,
        mean=(mean,),
        std=(std,),
        levels=17,
    )
