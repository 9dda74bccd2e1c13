"""The bank split is quarantined: no image content of it is in train,
validation or test, for any seed, even when the dataset holds duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ras_deap.bank import check_quarantine, default_bank_path, load_bank
from ras_deap.data import load_dataset
from ras_deap.data.splits import assemble, bank_split_indices, image_digests, quarantined_split

SEEDS = range(10)


def _contents(x: np.ndarray) -> set[str]:
    return set(image_digests(x).tolist())


def _assert_quarantined(ds) -> None:
    bank = _contents(ds.bank.x)
    seen = np.concatenate([s.index for s in ds.splits().values()])
    assert len(np.unique(seen)) == len(seen), "an image is in two splits"
    assert not np.intersect1d(seen, ds.bank.index).size
    for name, split in ds.splits().items():
        assert not bank & _contents(split.x), f"bank content inside {name}"


# dataset: (bank split size, images, shape of an image)
EMBEDDED = {"digits": (360, 1797, (1, 8, 8)), "mnist10k": (2000, 10000, (1, 28, 28))}


@pytest.fixture(scope="module", params=sorted(EMBEDDED))
def by_seed(request):
    return request.param, {seed: load_dataset(request.param, seed=seed) for seed in SEEDS}


def test_bank_split_is_fixed_and_disjoint_by_content(by_seed):
    name, datasets = by_seed
    bank_size, total, _ = EMBEDDED[name]
    first = datasets[0]
    assert len(first.bank) == bank_size
    for seed, ds in datasets.items():
        np.testing.assert_array_equal(ds.bank.index, first.bank.index)  # seed-independent
        assert ds.fingerprint == first.fingerprint
        _assert_quarantined(ds)
        assert len(ds.train) + len(ds.val) + len(ds.test) + len(ds.bank) == total, seed
    assert not np.array_equal(datasets[0].val.index, datasets[1].val.index)


def _with_duplicates(n_distinct: int, copies: list[int], seed: int = 0):
    """A dataset of ``n_distinct`` random 1x4x4 images where image k appears
    ``copies[k]`` times, shuffled so copies sit at unrelated positions."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 17, size=(n_distinct, 1, 4, 4)).astype(np.float32) / 16
    x = np.concatenate([np.repeat(base[k:k + 1], c, axis=0) for k, c in enumerate(copies)])
    y = np.concatenate([np.full(c, k % 10) for k, c in enumerate(copies)])
    order = rng.permutation(len(x))
    return x[order], y[order]


def test_exact_duplicates_never_straddle_the_quarantine():
    copies = [1 + (k % 4) for k in range(200)]  # contents with 1-4 identical copies
    x, y = _with_duplicates(200, copies)
    for seed in SEEDS:
        ds = assemble("dups", x, y, levels=17, bank_size=60, n_val=50, n_test=50, seed=seed)
        _assert_quarantined(ds)
        # every copy of a bank content is in the bank split
        digests = image_digests(x)
        chosen = set(digests[ds.bank.index].tolist())
        assert set(np.flatnonzero(np.isin(digests, list(chosen))).tolist()) == \
            set(ds.bank.index.tolist())


def test_official_test_copies_of_bank_images_leave_the_test_split():
    """Vision datasets keep the official test set; a test image identical to a
    bank-split (training) image is dropped from the test split."""
    x, _ = _with_duplicates(100, [2] * 100, seed=1)
    n_train = 150
    train, val, test, bank = quarantined_split(
        image_digests(x), bank_size=20, n_val=10, n_test=0, seed=0,
        bank_candidates=np.arange(n_train), fixed_test=np.arange(n_train, len(x)))
    assert len(test) < len(x) - n_train  # copies of bank images left the test split
    assert np.isin(bank, np.arange(n_train, len(x))).any()
    digests = image_digests(x)
    assert not set(digests[bank].tolist()) & set(digests[np.concatenate([train, val, test])]
                                                  .tolist())


@settings(max_examples=40, deadline=None)
@given(copies=st.lists(st.integers(1, 4), min_size=20, max_size=80),
       bank_size=st.integers(1, 15), seed=st.integers(0, 2**16))
def test_quarantine_holds_for_any_duplicate_pattern(copies, bank_size, seed):
    x, y = _with_duplicates(len(copies), copies, seed=seed % 7)
    n = len(x)
    n_hold = max(0, (n - bank_size - 4 * max(copies)) // 4)
    ds = assemble("prop", x, y, levels=17, bank_size=bank_size, n_val=n_hold, n_test=n_hold,
                  seed=seed)
    assert len(ds.bank) >= bank_size
    _assert_quarantined(ds)


def test_bank_split_is_independent_of_candidate_order():
    x, _ = _with_duplicates(50, [1] * 50)
    d = image_digests(x)
    a = bank_split_indices(d, 10)
    perm = np.random.default_rng(0).permutation(len(d))
    b = bank_split_indices(d[perm], 10)
    assert set(d[a].tolist()) == set(d[perm][b].tolist())


def test_shipped_bank_is_quarantined_for_seeds_0_to_9(by_seed):
    name, datasets = by_seed
    path = default_bank_path(name)
    assert path is not None, f"the {name} bank ships with the package"
    bank = load_bank(path, dataset=name, shape=EMBEDDED[name][2])
    for ds in datasets.values():
        check_quarantine(bank, ds)  # raises on any leak, by index or by content
        pos = {int(i): k for k, i in enumerate(ds.bank.index)}
        base = ds.bank.x[[pos[int(i)] for i in np.unique(bank.base_index)]]
        for split in ds.splits().values():
            assert not _contents(base) & _contents(split.x)
