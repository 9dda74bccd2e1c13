"""The assessment split: fixed, carved out of the bank split, disjoint by
content from train/validation/test of every seed and from every shipped
fitness bank's base images; adding it changed no split and no shipped bank."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ras_deap.bank import (
    BankError,
    check_heldout,
    check_quarantine,
    default_bank_path,
    fallback_bank,
    load_bank,
    perturbed_bank,
    quarantine_record,
)
from ras_deap.data import load_dataset
from ras_deap.data.assessment import (
    ASSESSMENT_RECORDS,
    assessment_split,
    choose_assessment_split,
    fitness_positions,
    make_record,
)
from ras_deap.data.splits import image_digests

SEEDS = range(10)
SIZES = {"digits": 8, "mnist10k": 500}

# sha256 (first 16 hex digits) over the index, image and label bytes of the
# train, validation, test and bank splits, per seed, recorded on main before
# the assessment split existed: the stored comparisons (digits, done; mnist10k,
# running) resume only on these very splits.
SPLIT_DIGESTS = {
    "digits": ["1ac78a525004b766", "4d22adcf21bb9696", "59a7ef8a2799cce6", "e8a628ea436c143f",
               "8a1d1ee3e4721c81", "1ae5a9d8b2548bcc", "bdc30d10528953e0", "452822fb664df8d2",
               "c522414d8c7abdc1", "03306e425187db49"],
    "mnist10k": ["9dc3450b29756af8", "edc77cc551992c30", "3d8ac7215e3eb287", "2f64b92556fbcf05",
                 "9f3d7e804c6aa8af", "d5cf723ff740d2b3", "5738d0feeef56f7d", "9d7be7fcf637d7bc",
                 "318035584c05c7ef", "3dbfea1454250900"],
}
# the shipped fitness banks' files, as on main
BANK_FILES = {
    "digits.npz": "1201326a8afb8006c51cf7cf3947b134263740db6f77947ebc901bb72062fa25",
    "digits.json": "1f9938ad2879b5161e4805cad630376614455053e71062c366fe212f525bef18",
    "mnist10k.npz": "bf3737d4410200c53b2422723af44ededc59be0ad2ae78c7ef0b905bc3dcda78",
    "mnist10k.json": "c55636817ae49eae0bc7ac0b704c4a3f1806cb15f9c6149cb8d15edb9618521e",
}


def _split_digest(ds) -> str:
    h = hashlib.sha256()
    for part in (ds.train, ds.val, ds.test, ds.bank):
        h.update(np.ascontiguousarray(part.index, dtype=np.int64).tobytes())
        h.update(b"|")
        h.update(np.ascontiguousarray(part.x).tobytes())
        h.update(np.ascontiguousarray(part.y).tobytes())
        h.update(b"#")
    return h.hexdigest()[:16]


def _contents(x: np.ndarray) -> set[str]:
    return set(image_digests(x).tolist())


@pytest.fixture(scope="module", params=sorted(SIZES))
def by_seed(request):
    return request.param, {seed: load_dataset(request.param, seed=seed) for seed in SEEDS}


def test_splits_are_byte_identical_to_main(by_seed):
    name, datasets = by_seed
    assert [_split_digest(datasets[s]) for s in SEEDS] == SPLIT_DIGESTS[name]


def test_shipped_banks_are_unchanged_and_pass_the_stricter_quarantine(by_seed):
    name, datasets = by_seed
    path = Path(default_bank_path(name))
    for file in (path, path.with_suffix(".json")):
        assert hashlib.sha256(file.read_bytes()).hexdigest() == BANK_FILES[file.name]
    bank = load_bank(path)
    for ds in datasets.values():
        check_quarantine(bank, ds)  # fitness=True: also no assessment-split base image


def test_assessment_split_is_fixed_and_quarantined(by_seed):
    name, datasets = by_seed
    first = assessment_split(datasets[0])
    assert len(first) == SIZES[name] and len(_contents(first.x)) == SIZES[name]
    fitness = load_bank(default_bank_path(name))
    for ds in datasets.values():
        held = assessment_split(ds)
        np.testing.assert_array_equal(held.index, first.index)  # seed-independent
        assert set(held.index.tolist()) <= set(ds.bank.index.tolist())
        for split_name, split in ds.splits().items():
            assert not np.intersect1d(held.index, split.index).size, split_name
            assert not _contents(held.x) & _contents(split.x), split_name
        pos = {int(i): k for k, i in enumerate(ds.bank.index)}
        base = ds.bank.x[[pos[int(i)] for i in np.unique(fitness.base_index)]]
        assert not _contents(held.x) & _contents(base)
        usable = fitness_positions(ds)
        assert usable.sum() == len(ds.bank) - len(held)
        assert not _contents(ds.bank.x[usable]) & _contents(held.x)


def test_frozen_record_follows_its_rule(by_seed):
    """Recomputing the split from its rule and the shipped banks gives the
    frozen record (scripts/make_assessment_splits.py --check)."""
    name, datasets = by_seed
    path = Path(default_bank_path(name))
    manifest = json.loads(path.with_suffix(".json").read_text())
    size = {"digits": 360, "mnist10k": 500}[name]
    record = make_record(datasets[3], {f"ras_deap/bank/files/{path.name}": manifest}, size)
    frozen = json.loads(ASSESSMENT_RECORDS.read_text())["datasets"][name]
    assert record == frozen


def _dataset_with_copies(copies: list[int], seed: int):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 17, size=(len(copies), 1, 3, 3)).astype(np.float32) / 16
    x = np.concatenate([np.repeat(base[k:k + 1], c, axis=0) for k, c in enumerate(copies)])
    return image_digests(x[rng.permutation(len(x))])


@settings(max_examples=40, deadline=None)
# percentages, not floats(): the evaluator sets torch.set_flush_denormal in-process,
# and hypothesis refuses floats() in denormals-are-zero mode (full-suite runs)
@given(copies=st.lists(st.integers(1, 3), min_size=10, max_size=60),
       bank_percent=st.integers(20, 100), excluded_percent=st.integers(0, 90),
       size=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_rule_never_picks_excluded_content_and_keeps_copies_together(copies, bank_percent,
                                                                      excluded_percent, size,
                                                                      seed):
    digests = _dataset_with_copies(copies, seed)
    rng = np.random.default_rng(seed)
    distinct = sorted(set(digests.tolist()))
    bank_contents = set(rng.choice(distinct, max(1, bank_percent * len(distinct) // 100),
                                   replace=False).tolist())
    bank_index = np.flatnonzero(np.isin(digests, list(bank_contents)))
    exclude = {d for d in bank_contents if rng.integers(100) < excluded_percent}
    chosen = choose_assessment_split(digests, bank_index, exclude, size)
    assert set(chosen.tolist()) <= set(bank_index.tolist())
    assert not set(digests[chosen].tolist()) & exclude
    # every copy of a chosen content is chosen (copies never straddle)
    assert set(np.flatnonzero(np.isin(digests, digests[chosen])).tolist()) == set(chosen.tolist())
    available = int(np.isin(digests, list(bank_contents - exclude)).sum())
    assert len(chosen) >= min(size, available)
    # the order of the bank split does not matter: the choice is by content
    again = choose_assessment_split(digests, rng.permutation(bank_index), exclude, size)
    np.testing.assert_array_equal(again, chosen)


def test_a_fitness_bank_on_assessment_images_is_refused(tmp_path):
    from ras_deap.bank import save_bank
    from ras_deap.evaluation import Evaluator

    ds = load_dataset("digits", seed=0)
    held = assessment_split(ds)
    bank = perturbed_bank(held, 16, 0, dataset="digits", levels=17)
    bank.manifest["quarantine"] = quarantine_record(ds, bank.base_index)
    with pytest.raises(BankError, match=r"assessment split .* no fitness bank may use"):
        check_quarantine(bank, ds, where="bank x.npz")
    check_quarantine(bank, ds, fitness=False)  # the bank quarantine itself holds
    path = save_bank(bank, tmp_path / "b.npz")
    with pytest.raises(BankError, match="assessment split"):  # a search refuses it
        Evaluator("digits", bank_path=path, seed=0).data()


def test_fallback_bank_avoids_the_assessment_split():
    ds = load_dataset("digits", seed=0)
    bank = fallback_bank(ds, 360, seed=0)
    assert not set(bank.base_index.tolist()) & set(assessment_split(ds).index.tolist())
    check_quarantine(bank, ds)


def test_skipped_images_leave_every_other_result_unchanged():
    """A build skips assessment-split images but keeps their place, so every
    other image keeps its seed and its result (shipped banks rebuild the same)."""
    import torch

    from ras_deap.attacks import AttackSetting, run_attack_setting
    from ras_deap.attacks.heldout_sources import HeldoutSourceConfig, build_heldout_source

    torch.set_num_threads(1)
    ds = load_dataset("digits", seed=0)
    model = build_heldout_source("mlp", ds, 0, HeldoutSourceConfig(epochs=2))
    x, y = ds.bank.x[:5], ds.bank.y[:5]
    skip = np.array([False, True, False, True, False])
    setting = AttackSetting("L0", 3, "DE")
    full = run_attack_setting(model, x, y, setting, max_iter=2, seed=4, num_classes=10)
    part = run_attack_setting(model, x, y, setting, max_iter=2, seed=4, num_classes=10,
                              skip=skip)
    np.testing.assert_array_equal(part.x_adv[~skip], full.x_adv[~skip])
    np.testing.assert_array_equal(part.success[~skip], full.success[~skip])
    np.testing.assert_array_equal(part.x_adv[skip], x[skip])
    assert not part.success[skip].any()


def test_a_heldout_bank_of_the_assessment_split_passes_for_every_seed(by_seed):
    name, datasets = by_seed
    held = assessment_split(datasets[0])
    bank = perturbed_bank(held, 12, 0, dataset=name, levels=datasets[0].levels)
    bank.manifest["quarantine"] = quarantine_record(datasets[0], bank.base_index,
                                                    heldout_split="assessment")
    for ds in datasets.values():
        check_heldout(bank, ds)
    outside = perturbed_bank(datasets[0].bank, 12, 0, dataset=name, levels=datasets[0].levels)
    outside.manifest["quarantine"] = quarantine_record(datasets[0], outside.base_index,
                                                       heldout_split="assessment")
    with pytest.raises(BankError, match="not in the assessment split"):
        check_heldout(outside, datasets[0])
