"""scikit-learn's ``load_digits``: 1797 8x8 images, shipped inside sklearn, so
the default run needs no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .splits import Dataset, assemble, register

__all__ = ["BANK_SPLIT_SIZE", "load_digits_dataset"]

DIGITS_MAX = 16.0  # digits pixel values are integers 0..16
# 20 % of the images are the bank split: enough distinct base images for a
# bank of >= 300, while validation and test keep 15 % (270 images) each.
BANK_SPLIT_SIZE = 360
VAL_TEST_FRACTION = 0.15


@register("digits")
def load_digits_dataset(data_dir: str | Path | None = None, download: bool = False,
                        seed: int = 0) -> Dataset:
    """A fixed bank split of 360 images, then a seeded split of the other
    1437 into 897 train, 270 validation and 270 test images. ``data_dir`` and
    ``download`` are accepted for a uniform interface and ignored."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images.astype(np.float32) / DIGITS_MAX)[:, None, :, :]
    n_hold = round(len(x) * VAL_TEST_FRACTION)
    return assemble("digits", x, raw.target, levels=17, bank_size=BANK_SPLIT_SIZE,
                    n_val=n_hold, n_test=n_hold, seed=seed)
