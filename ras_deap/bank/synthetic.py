"""A test / fallback bank of *randomly* perturbed images.

These are NOT adversarial samples: nothing was optimised against any model,
so most of them are still classified correctly and the robustness they
measure is only robustness to random noise of the same L0 / Linf budget.
They exist so tests (and a run without a real bank) exercise the exact
code path of a real bank: same format, same cells, all metadata filled in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .format import NORMS, AdversarialBank

__all__ = ["PERTURBED_SOURCE", "perturbed_bank"]

PERTURBED_SOURCE = "random-perturbation"
DEFAULT_THRESHOLDS = (1, 3, 5, 10)  # the paper's Table 1 thresholds


def perturbed_bank(split, n: int, seed: int, *, dataset: str = "digits",
                   norms: Sequence[str] = NORMS,
                   thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> AdversarialBank:
    """``n`` samples from ``split`` (a ``Split`` with x, y), spread round-robin
    over every (norm, th) cell. L0: ``th`` random pixels (all channels) set
    to random 0/1 values. Linf: every value moved by +-th/255, clipped to
    [0, 1]. ``optimizer`` is 'random', ``source_pred`` -1 (no source model)."""
    if n < 1:
        raise ValueError(f"n={n}: a bank needs at least one sample")
    bad = [nm for nm in norms if nm not in NORMS]
    if bad or not norms:
        raise ValueError(f"norms={list(norms)}: choose from {list(NORMS)}")
    if not thresholds or min(thresholds) < 1:
        raise ValueError(f"thresholds={list(thresholds)}: need at least one value >= 1")
    rng = np.random.default_rng(seed)
    src = rng.choice(len(split.y), size=n, replace=n > len(split.y))
    x = split.x[src].copy()
    _, c, h, w = x.shape
    cells = [(nm, int(th)) for nm in norms for th in thresholds]
    norm = np.array([cells[i % len(cells)][0] for i in range(n)])
    th = np.array([cells[i % len(cells)][1] for i in range(n)], dtype=np.int64)
    for i in range(n):
        if norm[i] == "L0":
            k = min(int(th[i]), h * w)
            where = rng.choice(h * w, size=k, replace=False)
            values = rng.integers(0, 2, size=(c, k)).astype(np.float32)
            x[i].reshape(c, h * w)[:, where] = values
        else:
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(c, h, w))
            x[i] = np.clip(x[i] + signs * (th[i] / 255.0), 0.0, 1.0)
    return AdversarialBank(
        x=x.astype(np.float32),
        y_true=split.y[src].astype(np.int64),
        norm=norm,
        th=th,
        optimizer=np.array(["random"] * n),
        source_model=np.array([PERTURBED_SOURCE] * n),
        source_pred=np.full(n, -1, dtype=np.int64),
        manifest={"dataset": dataset, "source": PERTURBED_SOURCE, "seed": int(seed),
                  "description": "randomly perturbed validation images (test/fallback bank, "
                                 "not real adversarial samples)"},
    )
