"""Every seed the package derives or sets, in one place.

A search must give the same result whichever worker process evaluates an
individual, so seeds are derived from stable text with sha256 (Python's
``hash`` is salted per process), never drawn from shared state. Two widths
exist for historical reasons and both are kept bit for bit, because stored
runs and comparisons replay with them: 31 bits (parts joined by ``/``) for
the evolution and the comparison's methods, 63 bits (``|``) for the seed
of an evaluation. torch is imported only by :func:`seed_everything`, so the
pure-Python layers can import this module.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

__all__ = ["derive_seed", "evaluation_seed", "seed_everything"]


def derive_seed(*parts: Any, bits: int = 31, sep: str = "/") -> int:
    """A stable ``bits``-bit seed from any parts (their ``str`` joined by ``sep``)."""
    text = sep.join(str(p) for p in parts).encode()
    digest = hashlib.sha256(text).digest()[:(bits + 8) // 8]
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


def evaluation_seed(seed: int, genome_id: str, generation: int) -> int:
    """The 63-bit seed of training ``genome_id`` in ``generation`` of the search
    seeded ``seed`` (what an evaluation uses when its individual has none)."""
    return derive_seed(int(seed), genome_id, int(generation), bits=63, sep="|")


def seed_everything(seed: int) -> Any:
    """Seed python's and numpy's global RNGs (ART's DE and cma draw from
    numpy's) and torch; return a seeded CPU ``torch.Generator`` for shuffling."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
