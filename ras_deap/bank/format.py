"""The adversarial bank: stored adversarial images plus per-sample metadata.

The paper (section 4.1) measures robustness by *transfer*: adversarial
samples found earlier against other models are replayed against the model
under evaluation. The bank is that stored set. It is numpy-only so the
attack side (which builds it) and the evaluation side (which replays it)
share one format without either importing the other.

On disk a bank is two files: ``NAME.npz`` (compressed arrays) and
``NAME.json`` beside it (the manifest: dataset, image shape, counts per
(norm, threshold), a sha256 of the arrays, the Linf grid and the quarantine
record, so a corrupted, edited or leaking bank is refused instead of silently
giving wrong fitness values).

Format 2 adds ``base_index`` (the dataset index of the clean image each
sample was made from) and the manifest's ``quarantine`` (the dataset
fingerprint and the base indices), checked by
:func:`ras_deap.bank.check_quarantine` against the split in use.

Three manifest keys keep the word "cell" from before the code said *attack
setting* (one (norm, threshold, optimizer) of Table 1, :mod:`ras_deap.attacks.settings`);
they are stored keys, kept as stored so shipped banks and work folders stay as
they are: ``counts["cells"]`` (samples per (norm, threshold) group, written
by :meth:`AdversarialBank.counts`), ``attack_cells`` (results per source and
attack setting, or per source and attack in a held-out bank) and, in the
``build`` record, ``images_per_cell`` / ``linf_images_per_cell`` (the build
options ``images_per_setting`` / ``linf_images_per_setting``, mapped in
:meth:`ras_deap.attacks.BuildConfig.to_json`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_bytes_atomic, write_json_atomic
from ..constants import ATTACK_OPTIMIZERS as OPTIMIZERS
from ..constants import NORMS
from ..data.layout import canonical
from ..errors import BankError

__all__ = [
    "BANK_FORMAT",
    "NORMS",
    "OPTIMIZERS",
    "AdversarialBank",
    "bank_checksum",
    "load_bank",
    "save_bank",
]

BANK_FORMAT = "ras_deap.bank/2"
# OPTIMIZERS: the optimisers of the paper's black-box attacks. Other labels
# (e.g. the "random" of the test bank) are accepted so fallback banks stay honest.
_ARRAYS = ("x", "y_true", "norm", "th", "optimizer", "source_model", "source_pred",
           "base_index")


def _str_array(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in ("U", "O", "S"):
        raise BankError(f"bank field {name!r} must hold strings, got dtype {arr.dtype}")
    return arr.astype(np.str_)


@dataclass
class AdversarialBank:
    """Adversarial images ``x`` (float32 N x C x H x W in [0, 1]) with their
    true labels and where each came from.

    ``norm`` is 'L0' or 'Linf', ``th`` the attack threshold (pixels for L0,
    steps of the data's intensity grid for Linf: ``manifest['linf_grid']``,
    1/255 for 8-bit data), ``optimizer`` the attack's search algorithm,
    ``source_model`` the model it was found against, ``source_pred`` that
    model's (wrong) prediction (-1 when unknown) and ``base_index`` the
    dataset index of the clean image the sample was made from.
    ``manifest`` must name the ``dataset``; the image shape is taken from x.
    """

    x: np.ndarray
    y_true: np.ndarray
    norm: np.ndarray
    th: np.ndarray
    optimizer: np.ndarray
    source_model: np.ndarray
    source_pred: np.ndarray
    base_index: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = canonical(self.x)  # see ras_deap.data.layout
        if self.x.ndim != 4 or self.x.dtype != np.float32:
            raise BankError(f"bank images x must be float32 N x C x H x W, got "
                            f"{self.x.dtype} with shape {self.x.shape}")
        n = self.x.shape[0]
        if n and (not np.isfinite(self.x).all() or self.x.min() < 0.0 or self.x.max() > 1.0):
            raise BankError("bank images x must be finite and in [0, 1]; scale pixel values "
                            "by 1/255 (the network normalises internally)")
        self.y_true = np.asarray(self.y_true).astype(np.int64, copy=False)
        self.th = np.asarray(self.th).astype(np.int64, copy=False)
        self.source_pred = np.asarray(self.source_pred).astype(np.int64, copy=False)
        self.base_index = np.asarray(self.base_index).astype(np.int64, copy=False)
        self.norm = _str_array(self.norm, "norm")
        self.optimizer = _str_array(self.optimizer, "optimizer")
        self.source_model = _str_array(self.source_model, "source_model")
        for name in _ARRAYS[1:]:
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise BankError(f"bank field {name!r} has shape {arr.shape}; expected ({n},), "
                                "one entry per image")
        bad = sorted(set(self.norm.tolist()) - set(NORMS))
        if bad:
            raise BankError(f"bank field 'norm' has values {bad}; allowed are {list(NORMS)}")
        if n and self.th.min() < 1:
            raise BankError("bank field 'th' must be >= 1 (the attack threshold)")
        if n and self.y_true.min() < 0:
            raise BankError("bank field 'y_true' must hold class indices >= 0")
        if n and self.base_index.min() < 0:
            raise BankError("bank field 'base_index' must hold dataset indices >= 0")
        self.manifest = dict(self.manifest)
        if not isinstance(self.manifest.get("dataset"), str):
            raise BankError("bank manifest must name the 'dataset' it was built for, "
                            "e.g. manifest={'dataset': 'digits'}")
        self.manifest["shape"] = list(self.shape)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def dataset(self) -> str:
        return str(self.manifest["dataset"])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]

    def by_threshold(self) -> dict[tuple[str, int], np.ndarray]:
        """Indices of the samples of every (norm, th) group, ordered by norm
        (L0 first) then threshold; groups without samples are absent."""
        out: dict[tuple[str, int], np.ndarray] = {}
        for norm in NORMS:
            for th in sorted(set(self.th[self.norm == norm].tolist())):
                out[(norm, int(th))] = np.flatnonzero((self.norm == norm) & (self.th == th))
        return out

    def counts(self) -> dict[str, Any]:
        """Sample counts per (norm, threshold) (stored key ``cells``), norm,
        optimizer and source model (for the manifest and for humans)."""
        def tally(arr: np.ndarray) -> dict[str, int]:
            values, counts = np.unique(arr, return_counts=True)
            return {str(v): int(c) for v, c in zip(values, counts, strict=True)}
        return {
            "total": len(self),
            "base_images": len(np.unique(self.base_index)),
            "cells": {f"{norm}/th{th}": len(idx)
                      for (norm, th), idx in self.by_threshold().items()},
            "norm": tally(self.norm),
            "optimizer": tally(self.optimizer),
            "source_model": tally(self.source_model),
        }

    def subset(self, index: np.ndarray) -> AdversarialBank:
        """A bank of the selected samples (same manifest)."""
        return AdversarialBank(**{name: getattr(self, name)[index] for name in _ARRAYS},
                               manifest={k: v for k, v in self.manifest.items()
                                         if k in ("dataset", "description", "source",
                                                  "linf_grid", "quarantine")})


def bank_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for name in _ARRAYS:
        arr = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _npz_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_suffix(".npz")


def save_bank(bank: AdversarialBank, path: str | Path) -> Path:
    """Write ``path`` (.npz, compressed) and its manifest ``path.json``.
    Returns the .npz path."""
    npz = _npz_path(path)
    arrays = {name: getattr(bank, name) for name in _ARRAYS}
    write_bytes_atomic(npz, lambda fh: np.savez_compressed(fh, **arrays))
    manifest = dict(bank.manifest)
    manifest.update({
        "format": BANK_FORMAT,
        "dataset": bank.dataset,
        "shape": list(bank.shape),
        "sha256": bank_checksum(arrays),
        "counts": bank.counts(),
    })
    write_json_atomic(npz.with_suffix(".json"), manifest, sort_keys=True, newline=True)
    return npz


def _read_arrays(npz: Path, also: str = "") -> dict[str, np.ndarray]:
    """The bank's arrays, or :class:`BankError` for a file that is not a bank
    archive: empty, truncated, random bytes, a pickle, a bare ``.npy``, a
    zip without the arrays (``also`` adds to the message)."""
    try:
        data = np.load(npz, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive of the bank's arrays")
        with data:
            return {name: data[name] for name in _ARRAYS}
    except Exception as exc:  # whatever breaks the reading, the file is not a bank
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise BankError(f"bank {npz} is not a readable bank archive ({detail}){also}; rebuild "
                        "it") from exc


def load_bank(path: str | Path, dataset: str | None = None,
              shape: tuple[int, ...] | None = None) -> AdversarialBank:
    """Read a bank written by :func:`save_bank`, verifying its checksum and,
    when given, that it was built for ``dataset`` and images of ``shape``."""
    npz = _npz_path(path)
    meta_path = npz.with_suffix(".json")
    if npz.is_dir():
        raise BankError(f"adversarial bank {npz} is a directory, not a bank file; pass the "
                        ".npz file the attack command wrote")
    if not npz.is_file():
        raise BankError(f"adversarial bank {npz} does not exist; build one with the attack "
                        "command or pass a different bank path")
    if not meta_path.is_file():
        _read_arrays(npz, f" and has no manifest {meta_path}")  # unreadable: say so too
        raise BankError(f"adversarial bank {npz} has no manifest {meta_path}; both files are "
                        "written by save_bank and must be kept together")
    try:
        manifest = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BankError(f"bank manifest {meta_path} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise BankError(f"bank manifest {meta_path} cannot be read ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BankError(f"bank manifest {meta_path} holds a JSON {type(manifest).__name__}, "
                        "not the object save_bank writes; rebuild the bank")
    if manifest.get("format") == "ras_deap.bank/1":
        raise BankError(f"bank {npz} was built by an older ras_deap (format 1) from images "
                        "that the train/validation/test splits may contain; rebuild it with "
                        "`python -m ras_deap.attacks build` (see ras_deap/bank/files/README.md)")
    if manifest.get("format") != BANK_FORMAT:
        raise BankError(f"bank manifest {meta_path} has format {manifest.get('format')!r}; "
                        f"expected {BANK_FORMAT!r}")
    arrays = _read_arrays(npz)
    if bank_checksum(arrays) != manifest.get("sha256"):
        raise BankError(f"bank {npz} does not match the sha256 in {meta_path}: the arrays were "
                        "modified or corrupted; rebuild the bank")
    bank = AdversarialBank(**arrays, manifest=manifest)
    if list(bank.shape) != list(manifest.get("shape", [])):
        raise BankError(f"bank {npz} holds images of shape {bank.shape} but its manifest says "
                        f"{manifest.get('shape')}")
    if dataset is not None and bank.dataset != dataset:
        raise BankError(f"bank {npz} was built for dataset {bank.dataset!r}, not {dataset!r}; "
                        f"use a bank built for {dataset!r}")
    if shape is not None and tuple(bank.shape) != tuple(shape):
        raise BankError(f"bank {npz} holds images of shape {bank.shape}, but the dataset's "
                        f"images are {tuple(shape)}; use a bank built for this dataset")
    return bank
