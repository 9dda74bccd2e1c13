"""Reproducible per-evaluation seeds."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

__all__ = ["derive_seed", "seed_everything"]


def derive_seed(seed: int, genome_id: str, generation: int) -> int:
    """A 63-bit seed from the run seed, the genome id and the generation.
    sha256 rather than ``hash()``: Python salts string hashes per process,
    which would make worker processes disagree."""
    text = f"{int(seed)}|{genome_id}|{int(generation)}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") & (2**63 - 1)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU generator for shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
