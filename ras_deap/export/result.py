"""What an export produced: its files (named here), the checks it made, and the
tolerance those checks hold it to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ATOL", "SVG", "TEST_SPLIT", "ExportResult"]

ATOL = 1e-5  # logits of the generated module and the ONNX model vs the compiled network
TEST_SPLIT = "test_split.npz"
SVG = "architecture.svg"


@dataclass
class ExportResult:
    files: dict[str, Path]
    genome_id: str
    max_diff: float                    # generated module vs compiled network
    onnx_diff: float | None = None     # onnxruntime vs compiled network (None: not run)
    test_accuracy: float | None = None  # model.py on test_split.npz (None: not written)
    test_images: int = 0
    notes: list[str] = field(default_factory=list)
