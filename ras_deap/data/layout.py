"""Canonical memory layout for image arrays.

Why: an N x 1 x H x W array made with ``x[:, None]`` and then indexed has
strides that both row-major (NCHW) and channels-last describe, because a
size-1 axis may have any stride. numpy's and torch's ``contiguous`` accept it
as it is, torch reads it as channels-last, and oneDNN's AVX2 1x1-convolution
weight-gradient kernel for channels-last inputs with 1-4 channels writes past
its buffer (oneDNN #6035: crashes, or silently wrong gradients). Arrays that
leave a loader therefore carry the exact row-major strides, size-1 axes
included; :func:`ras_deap.evaluation.inference.canonical_layout` does the same
for tensors at every network's input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["canonical", "canonical_strides", "is_canonical"]


def canonical_strides(shape: tuple[int, ...], itemsize: int = 1) -> tuple[int, ...]:
    """Row-major strides of ``shape`` (in units of ``itemsize``), with the
    stride a size-1 axis would get in a freshly allocated array."""
    strides, step = [], itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= max(int(size), 1)
    return tuple(reversed(strides))


def is_canonical(a: np.ndarray) -> bool:
    """True when ``a`` is row-major on every axis, size-1 axes included."""
    return a.strides == canonical_strides(a.shape, a.itemsize)


def canonical(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it is already canonical (no copy, so this costs
    nothing on well-formed data), else a row-major copy."""
    a = np.asarray(a)
    return a if is_canonical(a) else np.array(a, order="C", copy=True)
