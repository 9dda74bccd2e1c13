"""The adversarial bank format: round trip, validation, (norm, threshold) groups and
metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ras_deap.bank import (
    AdversarialBank,
    BankError,
    default_bank_path,
    default_linf_thresholds,
    fallback_bank,
    linf_grid,
    load_bank,
    perturbed_bank,
    robustness_metrics,
    save_bank,
)
from ras_deap.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def bank(digits):
    return perturbed_bank(digits.val, 40, seed=3, dataset="digits")


def test_perturbed_bank_fills_every_threshold_and_field(bank, digits):
    assert len(bank) == 40
    assert bank.shape == digits.shape
    assert bank.x.dtype == np.float32 and bank.x.min() >= 0 and bank.x.max() <= 1
    groups = bank.by_threshold()
    assert list(groups) == [("L0", 1), ("L0", 3), ("L0", 5), ("L0", 10),
                            ("Linf", 1), ("Linf", 3), ("Linf", 5), ("Linf", 10)]
    assert sum(len(i) for i in groups.values()) == 40
    assert set(bank.source_model.tolist()) == {"random-perturbation"}
    assert (bank.source_pred == -1).all()


def test_perturbations_respect_their_budget(digits):
    bank = perturbed_bank(digits.val, 80, seed=1, dataset="digits")
    rng = np.random.default_rng(1)
    src = rng.choice(len(digits.val.y), size=80, replace=False)
    clean = digits.val.x[src]
    np.testing.assert_array_equal(bank.base_index, digits.val.index[src])
    for i in range(80):
        diff = np.abs(bank.x[i] - clean[i])
        if bank.norm[i] == "L0":
            assert (diff.reshape(diff.shape[0], -1).max(axis=0) > 0).sum() <= bank.th[i]
        else:
            assert diff.max() <= bank.th[i] / 255 + 1e-6
            assert diff.max() > 0
    assert (bank.y_true == digits.val.y[src]).all()


def test_save_load_round_trip(tmp_path, bank):
    path = save_bank(bank, tmp_path / "b")
    assert path.suffix == ".npz" and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["dataset"] == "digits" and meta["shape"] == [1, 8, 8]
    # "cells": the stored key of the counts per (norm, threshold) (bank format 2)
    assert meta["counts"]["cells"]["L0/th1"] == 5 and meta["counts"]["total"] == 40
    assert len(meta["sha256"]) == 64
    loaded = load_bank(path, dataset="digits", shape=(1, 8, 8))
    for name in ("x", "y_true", "norm", "th", "optimizer", "source_model", "source_pred",
                 "base_index"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(bank, name))
    assert loaded.manifest["seed"] == 3


def test_load_refuses_corruption_and_wrong_target(tmp_path, bank):
    path = save_bank(bank, tmp_path / "b.npz")
    with pytest.raises(BankError, match="dataset 'digits', not 'cifar10'"):
        load_bank(path, dataset="cifar10")
    with pytest.raises(BankError, match="shape"):
        load_bank(path, shape=(3, 32, 32))
    # tamper with one pixel: checksum must catch it
    with np.load(path) as data:
        arrays = dict(data)
    arrays["x"][0, 0, 0, 0] = 0.5 if arrays["x"][0, 0, 0, 0] != 0.5 else 0.25
    np.savez_compressed(path, **arrays)
    with pytest.raises(BankError, match="sha256"):
        load_bank(path)
    with pytest.raises(BankError, match="does not exist"):
        load_bank(tmp_path / "missing.npz")


def test_constructor_validates(bank):
    fields = {k: getattr(bank, k) for k in ("x", "y_true", "norm", "th", "optimizer",
                                            "source_model", "source_pred", "base_index")}
    with pytest.raises(BankError, match="dataset"):
        AdversarialBank(**fields, manifest={})
    with pytest.raises(BankError, match="norm"):
        AdversarialBank(**{**fields, "norm": np.array(["L2"] * len(bank))},
                        manifest={"dataset": "digits"})
    with pytest.raises(BankError, match=r"\[0, 1\]"):
        AdversarialBank(**{**fields, "x": fields["x"] * 255}, manifest={"dataset": "digits"})
    with pytest.raises(BankError, match="th"):
        AdversarialBank(**{**fields, "th": fields["th"][:-1]}, manifest={"dataset": "digits"})
    with pytest.raises(BankError, match="base_index"):
        AdversarialBank(**{**fields, "base_index": -1 - fields["base_index"]},
                        manifest={"dataset": "digits"})


def test_linf_steps_follow_the_data_grid(digits):
    """On digits one Linf step is 1/16 (one intensity level), on 8-bit data 1/255."""
    assert linf_grid(17)["step"] == pytest.approx(1 / 16)
    assert linf_grid(256)["step_255"] == pytest.approx(1.0)
    assert default_linf_thresholds(17) == (1, 2, 3, 4)
    assert default_linf_thresholds(256) == (1, 3, 5, 10)
    bank = fallback_bank(digits, 64, seed=0)
    assert bank.manifest["linf_grid"]["levels"] == 17
    assert sorted({int(t) for t in bank.th[bank.norm == "Linf"]}) == [1, 2, 3, 4]
    linf = np.flatnonzero(bank.norm == "Linf")
    pos = {int(i): k for k, i in enumerate(digits.bank.index)}
    clean = digits.bank.x[[pos[int(i)] for i in bank.base_index[linf]]]
    steps = np.abs(bank.x[linf] - clean).reshape(len(linf), -1).max(axis=1) * 16
    assert np.all(steps <= bank.th[linf] + 1e-5) and np.all(steps > 0)


def test_old_format_is_refused_with_the_rebuild_command(tmp_path, bank):
    path = save_bank(bank, tmp_path / "b.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["format"] = "ras_deap.bank/1"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(BankError, match=r"older ras_deap.*rebuild.*attacks build"):
        load_bank(path)


def test_truncated_archive_is_a_bank_error(tmp_path, bank):
    path = save_bank(bank, tmp_path / "b.npz")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BankError, match="not a readable bank archive"):
        load_bank(path)


def test_robustness_metrics(bank):
    pred = bank.y_true.copy()
    l0 = bank.norm == "L0"
    pred[l0] = (pred[l0] + 1) % 10  # every L0 sample fooled
    m = robustness_metrics(pred, bank)
    assert m["robustness"] == pytest.approx(0.5)
    assert m["robustness_L0"] == 0.0 and m["robustness_Linf"] == 1.0
    assert m["robustness_L0_th1"] == 0.0 and m["robustness_Linf_th10"] == 1.0
    assert m["robustness_model_random-perturbation"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in m.values())
    with pytest.raises(BankError, match="pred has shape"):
        robustness_metrics(pred[:-1], bank)


def test_default_bank_path():
    assert default_bank_path("no-such-dataset") is None
    path = default_bank_path("digits")
    assert path is None or (path.is_file() and path.with_suffix(".json").is_file())
