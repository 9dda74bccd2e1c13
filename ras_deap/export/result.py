"""What an export produced: its files (named here), the checks it made, and the
tolerance those checks hold it to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ATOL", "ONNX_ATOL", "SVG", "TEST_SPLIT", "ExportResult", "logit_error"]

# the largest logit difference, in units of the logits' scale (see logit_error): the
# generated module vs the compiled network, and the ONNX model under onnxruntime vs it
ATOL = 1e-5
ONNX_ATOL = 1e-4
TEST_SPLIT = "test_split.npz"
SVG = "architecture.svg"


def logit_error(actual: Any, expected: Any) -> float:
    """The largest difference between two batches of logits, in units of
    ``max(1, largest |expected logit|)``. Summing in another order, float32 is
    exact to a few ulp of the largest term, not of each logit; and the check's
    inputs are uniform noise, far from any training data, on which a real
    network's BatchNorm statistics can drive logits to 1e6 (an mnist10k RAS
    winner did: 0.94 apart there is 9e-7 of its scale)."""
    a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))


@dataclass
class ExportResult:
    files: dict[str, Path]
    genome_id: str
    max_diff: float                    # generated module vs compiled network (logit_error)
    onnx_diff: float | None = None     # onnxruntime vs compiled network (None: not run)
    test_accuracy: float | None = None  # model.py on test_split.npz (None: not written)
    onnx_test_accuracy: float | None = None  # model.onnx there, under onnxruntime
    test_images: int = 0
    notes: list[str] = field(default_factory=list)
