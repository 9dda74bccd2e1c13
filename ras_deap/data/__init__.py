"""Datasets as numpy arrays: images float32 N x C x H x W in [0, 1], labels int64.

Every consumer (trainer, evaluator, attacks, bank) sees the same [0, 1] range;
per-dataset normalisation happens inside the compiled network, so adversarial
images stored in [0, 1] need no extra bookkeeping.
"""

from .splits import DATASETS, Dataset, DatasetError, Split, load_dataset

__all__ = ["DATASETS", "Dataset", "DatasetError", "Split", "load_dataset"]
