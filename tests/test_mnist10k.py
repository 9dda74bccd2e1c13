"""The embedded ``mnist10k`` dataset: the shipped file, its loader and a smoke
search through the command line."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from ras_deap.attacks.attack import run_attack_setting
from ras_deap.attacks.cli import format_table
from ras_deap.attacks.settings import AttackSetting
from ras_deap.bank import default_bank_path, load_bank
from ras_deap.config import DATASET_NAMES, SearchConfig
from ras_deap.data import DatasetError, load_dataset
from ras_deap.data import mnist10k as m10k

# Recorded in ras_deap/data/files/README.md.
NPZ_SHA256 = "adde2d86a6ac7be9fd79ccdd635ca20d0bab6a482b9c71b1bfe429baf4e59323"
PER_CLASS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


def test_shipped_file_has_the_recorded_digest_and_content():
    path = m10k.MNIST10K_PATH
    assert path.is_file(), "ras_deap/data/files/mnist10k.npz ships with the package"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NPZ_SHA256
    images, labels = m10k.read_mnist10k()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == PER_CLASS
    assert len(np.unique(images)) == 256  # real 8-bit data: every level occurs
    assert len(np.unique(images.reshape(len(images), -1), axis=0)) == 10000  # all distinct


def test_loader_splits_and_scales():
    ds = load_dataset("mnist10k", seed=0)
    assert ds.name == "mnist10k" and ds.shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.levels == 256
    sizes = (len(ds.train), len(ds.val), len(ds.test), len(ds.bank))
    assert sizes == (6000, m10k.N_VAL, m10k.N_TEST, m10k.BANK_SPLIT_SIZE)
    images, labels = m10k.read_mnist10k()
    for split in (*ds.splits().values(), ds.bank):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        np.testing.assert_array_equal(split.x[:, 0] * np.float32(255), images[split.index])
        np.testing.assert_array_equal(split.y, labels[split.index])
    all_idx = np.concatenate([s.index for s in (*ds.splits().values(), ds.bank)])
    assert sorted(all_idx.tolist()) == list(range(10000))
    again, other = load_dataset("mnist10k", seed=0), load_dataset("mnist10k", seed=1)
    np.testing.assert_array_equal(ds.val.index, again.val.index)
    assert not np.array_equal(ds.val.index, other.val.index)
    np.testing.assert_array_equal(ds.bank.index, other.bank.index)  # seed-independent
    assert ds.fingerprint == other.fingerprint


def test_a_changed_file_is_refused(tmp_path):
    images, labels = m10k.read_mnist10k()
    images = images.copy()
    images[0, 0, 0] ^= 1
    bad = tmp_path / "mnist10k.npz"
    np.savez_compressed(bad, images=images, labels=labels)
    with pytest.raises(DatasetError, match="content sha256"):
        m10k.read_mnist10k(bad)
    with pytest.raises(DatasetError, match="missing"):
        m10k.read_mnist10k(tmp_path / "nowhere.npz")


def test_mnist10k_is_a_config_choice_and_digits_stays_the_default():
    assert "mnist10k" in DATASET_NAMES
    assert SearchConfig().dataset == "digits"
    assert SearchConfig(dataset="mnist10k").dataset == "mnist10k"


def test_capsnet_source_is_sized_for_28x28_images():
    """A stride-2 stem on images of 16 pixels or more (392 primary capsules on
    28 x 28 instead of 1568); 8 x 8 digits keep the stride-1 network."""
    from ras_deap.attacks.source_models import make_untrained

    big = make_untrained("capsnet", (1, 28, 28), 10, (0.1,), (0.3,))
    assert big.num_primary == 8 * 7 * 7
    assert big(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert make_untrained("capsnet", (1, 8, 8), 10, (0.1,), (0.3,)).num_primary == 8 * 4 * 4


class _Brightness(torch.nn.Module):
    """Class 1 once the image is 20/255 brighter in total than ``x0``, else 0
    (a third class that never wins: ART refuses two-class models)."""

    def __init__(self, x0: np.ndarray) -> None:
        super().__init__()
        self.t = float(x0.sum() * 255) + 20.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1).sum(1, keepdim=True) * 255 - self.t
        return torch.cat([torch.zeros_like(s), s, torch.full_like(s, -50.0)], dim=1)


@pytest.mark.parametrize("optimizer", ["DE", "CMA-ES"])
def test_linf_attack_on_8bit_data_can_brighten_by_one_step(optimizer):
    """ART truncates candidates to integers: on the raw 8-bit box a zero pixel
    can never move at th=1. The attack works on the centred box, so it can
    brighten the background by 1/255; results stay on the 1/255 grid."""
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 10:18, 12:16] = np.float32(200) / np.float32(255)
    model = _Brightness(x[0])
    res = run_attack_setting(model, x, np.zeros(1, np.int64), AttackSetting("Linf", 1, optimizer),
                             max_iter=5, seed=0, num_classes=3)
    assert res.success.all()
    delta = np.round((res.x_adv - x) * 255)
    np.testing.assert_allclose((res.x_adv - x) * 255, delta, atol=1e-4)  # on the grid
    assert delta.max() == 1 and delta.min() >= -1
    # a failed attack returns the input exactly (no half-step left over)
    hard = run_attack_setting(_Brightness(x[0] + 1), x, np.zeros(1, np.int64),
                              AttackSetting("Linf", 1, optimizer), max_iter=1, seed=0,
                              num_classes=3)
    assert not hard.success.any()
    np.testing.assert_array_equal(hard.x_adv, x)


def test_shipped_bank_fills_the_papers_grid():
    """Table 1's 16 attack settings at the paper's thresholds (L0 and Linf 1/3/5/10, Linf in
    steps of 1/255), DE and CMA-ES, four source models, >= 1000 samples from >= 300
    distinct base images (the last: test_shipped_bank_spans_300_base_images)."""
    path = default_bank_path("mnist10k")
    assert path is not None, "ras_deap/bank/files/mnist10k.npz + .json ship with the package"
    assert path.stat().st_size < 5 * 2**20
    bank = load_bank(path, dataset="mnist10k", shape=(1, 28, 28))
    assert bank.manifest["linf_grid"]["step_255"] == 1.0
    assert set(bank.source_model.tolist()) == {"resnet", "capsnet", "at", "fs"}
    settings = {(n, int(t), o)
                for n, t, o in zip(bank.norm, bank.th, bank.optimizer, strict=True)}
    assert settings == {(n, t, o) for n in ("L0", "Linf") for t in (1, 3, 5, 10)
                     for o in ("DE", "CMA-ES")}
    assert len(bank) >= 1000
    table = format_table(bank.manifest)
    assert "Linf th=10" in table and "1/255" in table


def test_shipped_bank_spans_300_base_images():
    bank = load_bank(default_bank_path("mnist10k"), dataset="mnist10k", shape=(1, 28, 28))
    assert len(np.unique(bank.base_index)) >= 300


@pytest.mark.slow
def test_smoke_search_on_mnist10k_through_the_cli(tmp_path):
    cmd = [sys.executable, "-m", "ras_deap.run", "--dataset", "mnist10k", "--preset", "smoke",
           "--run-dir", str(tmp_path / "runs"), "--run-name", "m10k",
           "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--experiment", "test",
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RAS search summary" in proc.stdout
    assert "mnist10k" in proc.stdout + proc.stderr
