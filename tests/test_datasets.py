"""torchvision-backed datasets, read from tiny files in the real on-disk formats."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest

from ras_deap.data import DatasetError, load_dataset

torchvision = pytest.importorskip("torchvision")


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    """Six tiny CIFAR-10 python batches. torchvision checks the md5 of the
    official files, so the test points those checksums at the tiny files;
    the loader itself runs unchanged."""
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=4).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    monkeypatch.setattr(CIFAR10, "train_list", [[n, _md5(folder / n)] for n in names[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": _md5(folder / "batches.meta")})
    return tmp_path


def _idx(data: np.ndarray) -> bytes:
    """The idx format: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, bytes."""
    return struct.pack(">BBBB", 0, 0, 0x08, data.ndim) + b"".join(
        struct.pack(">I", d) for d in data.shape) + data.astype(np.uint8).tobytes()


def _write_mnist(root, cls_name: str, compress: bool, n_train: int = 30, n_test: int = 7):
    raw = root / cls_name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test),
    }
    for name, arr in arrays.items():
        if compress:
            (raw / f"{name}.gz").write_bytes(gzip.compress(_idx(arr)))
        else:
            (raw / name).write_bytes(_idx(arr))
    return arrays


def test_cifar10_from_python_batches(cifar_dir):
    ds = load_dataset("cifar10", cifar_dir, seed=0)
    assert ds.shape == (3, 32, 32) and ds.num_classes == 10 and ds.levels == 256
    # 10 % of the 20 official training images are the bank split
    assert len(ds.bank) == 2 and len(ds.val) == 2 and len(ds.train) == 16 and len(ds.test) == 4
    assert ds.train.x.dtype == np.float32 and ds.train.x.min() >= 0 and ds.train.x.max() <= 1
    assert len(ds.mean) == 3 and all(s > 0 for s in ds.std)
    # pixel layout: first test image, channel 0 row 0 == first 32 bytes of the batch
    with open(cifar_dir / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f)
    np.testing.assert_allclose(ds.test.x[0, 0, 0], raw["data"][0, :32] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.test.x[0, 2, 31], raw["data"][0, -32:] / 255.0, rtol=1e-6)
    assert ds.test.y.tolist() == raw["labels"]
    # the split is seeded
    again = load_dataset("cifar10", cifar_dir, seed=0)
    other = load_dataset("cifar10", cifar_dir, seed=1)
    np.testing.assert_array_equal(ds.val.x, again.val.x)
    assert not np.array_equal(ds.val.x, other.val.x)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(("name", "cls_name"), [("mnist", "MNIST"),
                                                ("fashion-mnist", "FashionMNIST")])
def test_mnist_like_from_idx_files(tmp_path, name, cls_name, compress):
    arrays = _write_mnist(tmp_path, cls_name, compress)
    ds = load_dataset(name, tmp_path, seed=0)
    assert ds.name == name and ds.shape == (1, 28, 28)
    assert len(ds.bank) == 3 and len(ds.train) == 24 and len(ds.val) == 3 and len(ds.test) == 7
    np.testing.assert_allclose(ds.test.x[:, 0] * 255, arrays["t10k-images-idx3-ubyte"],
                               atol=1e-3)
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert sorted(np.concatenate([ds.train.y, ds.val.y, ds.bank.y]).tolist()) == sorted(
        arrays["train-labels-idx1-ubyte"].tolist())


@pytest.mark.parametrize("name", ["cifar10", "mnist", "fashion-mnist"])
def test_missing_folder_says_where_and_download(tmp_path, name):
    with pytest.raises(DatasetError, match="--download") as info:
        load_dataset(name, tmp_path / "nowhere")
    assert "nowhere" in str(info.value)


def test_corrupted_cifar_is_a_dataset_error(cifar_dir):
    (cifar_dir / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="corrupted"):
        load_dataset("cifar10", cifar_dir)
