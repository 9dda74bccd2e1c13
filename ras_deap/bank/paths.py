"""Where the shipped banks live."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BANKS_DIR", "default_bank_path"]

# ras_deap/bank/files/<dataset>.npz (+ .json), shipped as package data.
BANKS_DIR = Path(__file__).resolve().parent / "files"


def default_bank_path(dataset_name: str) -> Path | None:
    """The shipped bank for ``dataset_name`` if it exists (both files), else None."""
    npz = BANKS_DIR / f"{dataset_name}.npz"
    return npz if npz.is_file() and npz.with_suffix(".json").is_file() else None
