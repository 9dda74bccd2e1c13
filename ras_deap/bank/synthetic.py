"""A test / fallback bank of *randomly* perturbed images.

These are NOT adversarial samples: nothing was optimised against any model,
so most of them are still classified correctly and the robustness they
measure is only robustness to random noise of the same L0 / Linf budget.
They exist so tests (and a run without a real bank) exercise the exact
code path of a real bank: same format, same (norm, threshold) groups, all
metadata filled in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .format import NORMS, AdversarialBank

__all__ = ["PERTURBED_SOURCE", "fallback_bank", "linf_grid", "perturbed_bank"]

PERTURBED_SOURCE = "random-perturbation"
DEFAULT_THRESHOLDS = (1, 3, 5, 10)  # the paper's Table 1 thresholds


def linf_grid(levels: int) -> dict[str, Any]:
    """The Linf threshold unit of data with ``levels`` intensity levels: one
    step of the data's own grid, 1/(levels - 1). For 8-bit data that is the
    paper's 1/255; for digits (17 levels) 1/16, since a change below one
    step only moves a pixel between the levels the data never takes."""
    if levels < 2:
        raise ValueError(f"levels={levels}: data needs at least 2 intensity levels")
    steps = levels - 1
    return {"levels": int(levels), "step": 1.0 / steps, "step_255": 255.0 / steps,
            "unit": f"1/{steps} (one intensity step of the data)"}


def default_linf_thresholds(levels: int) -> tuple[int, ...]:
    """The paper's 1/3/5/10 out of 255 on 8-bit data; 1-4 steps on coarse
    grids (digits: 1/16 .. 4/16), where 10 steps would erase the image."""
    return DEFAULT_THRESHOLDS if levels >= 256 else (1, 2, 3, 4)


def perturbed_bank(split, n: int, seed: int, *, dataset: str = "digits",
                   norms: Sequence[str] = NORMS,
                   thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
                   linf_thresholds: Sequence[int] | None = None,
                   levels: int = 256) -> AdversarialBank:
    """``n`` samples from ``split`` (a ``Split`` with x, y and optionally the
    dataset ``index``), spread round-robin over every (norm, th) pair. L0:
    ``th`` random pixels (all channels) set to random 0/1 values. Linf: every
    value moved by +-th steps of the data's grid (:func:`linf_grid`), clipped
    to [0, 1]. ``optimizer`` is 'random', ``source_pred`` -1 (no source
    model)."""
    if n < 1:
        raise ValueError(f"n={n}: a bank needs at least one sample")
    bad = [nm for nm in norms if nm not in NORMS]
    if bad or not norms:
        raise ValueError(f"norms={list(norms)}: choose from {list(NORMS)}")
    linf_thresholds = thresholds if linf_thresholds is None else linf_thresholds
    if not thresholds or min(thresholds) < 1 or min(linf_thresholds, default=0) < 1:
        raise ValueError(f"thresholds={list(thresholds)}, linf_thresholds="
                         f"{list(linf_thresholds)}: need at least one value >= 1 each")
    grid = linf_grid(levels)
    rng = np.random.default_rng(seed)
    src = rng.choice(len(split.y), size=n, replace=n > len(split.y))
    x = split.x[src].copy()
    _, c, h, w = x.shape
    ths = {"L0": thresholds, "Linf": linf_thresholds}
    pairs = [(nm, int(th)) for nm in norms for th in ths[nm]]
    norm = np.array([pairs[i % len(pairs)][0] for i in range(n)])
    th = np.array([pairs[i % len(pairs)][1] for i in range(n)], dtype=np.int64)
    for i in range(n):
        if norm[i] == "L0":
            k = min(int(th[i]), h * w)
            where = rng.choice(h * w, size=k, replace=False)
            values = rng.integers(0, 2, size=(c, k)).astype(np.float32)
            x[i].reshape(c, h * w)[:, where] = values
        else:
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(c, h, w))
            x[i] = np.clip(x[i] + signs * np.float32(th[i] * grid["step"]), 0.0, 1.0)
    index = split.index if getattr(split, "index", None) is not None else np.arange(len(split))
    return AdversarialBank(
        x=x.astype(np.float32),
        y_true=split.y[src].astype(np.int64),
        norm=norm,
        th=th,
        optimizer=np.array(["random"] * n),
        source_model=np.array([PERTURBED_SOURCE] * n),
        source_pred=np.full(n, -1, dtype=np.int64),
        base_index=index[src],
        manifest={"dataset": dataset, "source": PERTURBED_SOURCE, "seed": int(seed),
                  "linf_grid": grid,
                  "description": "randomly perturbed clean images (test/fallback bank, "
                                 "not real adversarial samples)"},
    )


def fallback_bank(dataset, n: int, seed: int) -> AdversarialBank:
    """The bank used when a dataset has none: randomly perturbed images of the
    dataset's quarantined bank split (never train/validation/test images, nor
    images of its assessment split), on the data's own Linf grid, with its
    quarantine record."""
    from ..data.assessment import fitness_positions
    from ..data.splits import Split
    from .quarantine import quarantine_record

    split = dataset.bank
    usable = fitness_positions(dataset)
    if not usable.all():
        split = Split(split.x[usable], split.y[usable],
                      None if split.index is None else split.index[usable])
    bank = perturbed_bank(split, n, seed, dataset=dataset.name, levels=dataset.levels,
                          linf_thresholds=default_linf_thresholds(dataset.levels))
    bank.manifest["quarantine"] = quarantine_record(dataset, bank.base_index)
    return bank
