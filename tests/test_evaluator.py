"""Evaluator: fitness = accuracy + robustness, schedule, failures, determinism, pickling."""

from __future__ import annotations

import pickle
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ras_deap.bank import (
    BankError,
    fallback_bank,
    perturbed_bank,
    quarantine_record,
    save_bank,
)
from ras_deap.data import load_dataset
from ras_deap.evaluation import (
    EvaluationResult,
    Evaluator,
    TrainConfig,
    TrainingError,
    clear_cache,
    compile_model,
    predict,
)
from ras_deap.evaluation import evaluator as evaluator_module
from ras_deap.evaluation.direct import DirectConfig
from ras_deap.genome import Block, Layer, Model, random_model
from ras_deap.seeding import evaluation_seed as derive_seed

FAST = TrainConfig(max_epochs=2, full_epochs=1, subset_size=200, batch_size=64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory):
    ds = load_dataset("digits", seed=0)
    return save_bank(fallback_bank(ds, 64, seed=0), tmp_path_factory.mktemp("bank") / "digits.npz")


@pytest.fixture(scope="module")
def model():
    return Model((Block((Layer.conv(16, 3, 1), Layer.dense(64)), ((0, 1),)),
                  Block((Layer.dense(64),))), ((0, 1),))


def make(bank_path, **kw):
    return Evaluator("digits", None, bank_path, kw.pop("train_config", FAST), seed=0,
                     num_threads=1, device="cpu", **kw)


def test_metrics_and_fitness(bank_path, model):
    res = make(bank_path).evaluate(model, generation=1, with_test=True)
    assert isinstance(res, EvaluationResult) and res.failure is None
    m = res.metrics
    for key in ("accuracy", "robustness", "fitness", "epochs", "train_seconds", "parameters",
                "flops", "stopped_early", "train_samples", "test_accuracy",
                "robustness_L0_th1", "robustness_Linf_th4", "robustness_L0", "robustness_Linf",
                "robustness_model_random-perturbation", "full_training", "failed"):
        assert key in m, key
    assert all(isinstance(v, float) for v in m.values())
    assert res.fitness == pytest.approx(m["accuracy"] + m["robustness"])
    assert m["fitness"] == res.fitness and 0 <= res.fitness <= 2
    assert m["accuracy"] > 0.5  # it really trained
    assert m["train_samples"] == 200 and m["epochs"] == 2 and m["full_training"] == 0
    assert m["bank_fallback"] == 0 and m["bank_size"] == 64
    assert res.genome_id == model.id


def test_full_generations_train_on_everything(bank_path, model):
    ev = make(bank_path)
    res = ev.evaluate(model, generation=10)
    assert res.metrics["full_training"] == 1
    assert res.metrics["train_samples"] == len(ev.data().dataset.train)
    assert res.metrics["epochs"] == FAST.full_epochs


def test_same_seed_same_metrics(bank_path, model):
    timing = {"train_seconds", "eval_seconds"}
    a = make(bank_path).evaluate(model, generation=3)
    b = make(bank_path).evaluate(model, generation=3)
    c = make(bank_path).evaluate(model, generation=3, seed=a.seed)
    strip = lambda r: {k: v for k, v in r.metrics.items() if k not in timing}  # noqa: E731
    assert strip(a) == strip(b) == strip(c)
    assert a.seed == derive_seed(0, model.id, 3) != derive_seed(0, model.id, 4)
    d = make(bank_path).evaluate(model, generation=3, seed=a.seed + 1)
    assert strip(d) != strip(a)


def test_call_reads_the_individual(bank_path, model):
    ev = make(bank_path)
    ind = SimpleNamespace(genome=model, generation=2, eval_seed=11)
    res = ev(ind)
    assert res.seed == 11 and res.failure is None
    assert ev(SimpleNamespace(genome=model, generation=2)).seed == derive_seed(0, model.id, 2)


def test_failures_give_zero_fitness_and_a_reason(bank_path, model, monkeypatch):
    tiny = TrainConfig(max_epochs=1, subset_size=100, max_parameters=100)
    res = make(bank_path, train_config=tiny).evaluate(model, 1)
    assert res.fitness == 0 and res.failure.startswith("build_error") and model.id in res.failure
    assert res.metrics["failed"] == 1 and res.metrics["fitness"] == 0

    def nan(*a, **k):
        raise TrainingError("non-finite training loss in epoch 1")

    monkeypatch.setattr(evaluator_module, "train", nan)
    res = make(bank_path).evaluate(model, 1)
    assert res.fitness == 0 and res.failure.startswith("nan_loss")

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(evaluator_module, "train", oom)
    res = make(bank_path).evaluate(model, 1)
    assert res.fitness == 0 and res.failure.startswith("out_of_memory")


def test_pickles_as_configuration_only(bank_path, model):
    ev = make(bank_path)
    ev.data()
    blob = pickle.dumps(ev)
    assert len(blob) < 2000
    clone = pickle.loads(blob)
    timing = {"train_seconds", "eval_seconds"}
    a = {k: v for k, v in ev.evaluate(model, 1).metrics.items() if k not in timing}
    b = {k: v for k, v in clone.evaluate(model, 1).metrics.items() if k not in timing}
    assert a == b


def test_returned_module_reproduces_the_predictions(bank_path, model):
    ev = make(bank_path)
    res = ev.evaluate(model, 1, return_module=True)
    ds = ev.data().dataset
    fresh = compile_model(model, ds.shape, ds.num_classes, ds.mean, ds.std)
    fresh.load_state_dict(res.state_dict)
    x = torch.from_numpy(ds.val.x)
    assert torch.equal(predict(fresh, x), predict(res.module, x))
    acc = (predict(fresh, x) == torch.from_numpy(ds.val.y)).float().mean().item()
    assert acc == pytest.approx(res.metrics["accuracy"])


def test_bank_for_another_dataset_is_refused(tmp_path, model):
    ds = load_dataset("digits", seed=0)
    path = save_bank(perturbed_bank(ds.val, 8, seed=0, dataset="mnist"), tmp_path / "b.npz")
    with pytest.raises(BankError, match="built for dataset 'mnist'"):
        make(path).evaluate(model, 1)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_a_bank_made_from_search_images_is_refused(tmp_path, model, split):
    """A bank whose base images are train/validation/test images of the seed
    in use would let selection see them: the evaluator refuses it, naming
    the split and the fix."""
    ds = load_dataset("digits", seed=0)
    bank = perturbed_bank(getattr(ds, split), 8, seed=0, dataset="digits", levels=17)
    bank.manifest["quarantine"] = quarantine_record(ds, bank.base_index)
    path = save_bank(bank, tmp_path / "b.npz")
    name = {"val": "validation"}.get(split, split)
    with pytest.raises(BankError, match=f"leaks into the {name} split.*attacks build"):
        make(path).evaluate(model, 1)


def test_a_bank_of_other_data_is_refused(tmp_path, model):
    ds = load_dataset("digits", seed=0)
    bank = fallback_bank(ds, 8, seed=0)
    bank.manifest["quarantine"]["dataset_fingerprint"] = "0" * 16
    path = save_bank(bank, tmp_path / "b.npz")
    with pytest.raises(BankError, match="fingerprint"):
        make(path).evaluate(model, 1)


def test_fallback_bank_is_quarantined(monkeypatch):
    """Without a bank the fallback perturbs bank-split images, never search images."""
    monkeypatch.setattr(evaluator_module, "default_bank_path", lambda name: None)
    clear_cache()
    ev = make(None)
    data = ev.data()
    assert data.bank_fallback
    base = set(data.bank.base_index.tolist())
    assert base <= set(data.dataset.bank.index.tolist())
    for split in data.dataset.splits().values():
        assert not base & set(split.index.tolist())
    clear_cache()


def test_random_genomes_never_raise(bank_path):
    ev = make(bank_path, train_config=TrainConfig(max_epochs=1, subset_size=64))
    for seed in range(3):
        res = ev.evaluate(random_model(random.Random(seed)), 1)
        assert res.failure is None and np.isfinite(res.fitness)


@pytest.mark.parametrize("choice", ["direct", "both"])
def test_direct_robustness_in_the_fitness(bank_path, model, choice):
    """--robustness direct|both: per-threshold direct metrics, the fitness uses the
    chosen measure, and the measure is deterministic for a fixed seed."""
    small = DirectConfig(images=32)
    ev = make(bank_path, robustness=choice, direct=small)
    a, b = ev.evaluate(model, 1), ev.evaluate(model, 1)
    assert a.failure is None
    m = a.metrics
    for key in ("direct_Linf_th1", "direct_Linf_th2", "direct_L0_th1", "direct_L0_th10",
                "robustness_direct", "robustness_bank"):
        assert key in m, key
    expected = (m["robustness_direct"] if choice == "direct"
                else 0.5 * (m["robustness_direct"] + m["robustness_bank"]))
    assert m["robustness"] == pytest.approx(expected)
    assert a.fitness == pytest.approx(m["accuracy"] + expected)
    same = {k: v for k, v in m.items() if "seconds" not in k}
    assert same == {k: v for k, v in b.metrics.items() if "seconds" not in k}


def test_bank_robustness_is_the_default_and_named(bank_path, model):
    m = make(bank_path).evaluate(model, 1).metrics
    assert m["robustness"] == m["robustness_bank"]
    assert "robustness_direct" not in m


def test_unknown_robustness_choice_is_refused():
    with pytest.raises(ValueError, match="robustness='white'"):
        make(None, robustness="white")


def test_failure_reasons_have_stable_kinds():
    """The logged reason of a zero-fitness network starts with its kind; only
    an unexpected exception is logged with its traceback (not expected)."""
    import torch

    from ras_deap.errors import BuildError, TrainingError
    from ras_deap.evaluation.failure import EXPECTED_FAILURES, failure_reason

    assert failure_reason(BuildError("M-1", "too big")).startswith("build_error: ")
    assert failure_reason(TrainingError("loss nan")) == "nan_loss: loss nan"
    assert failure_reason(MemoryError()) == "out_of_memory: "
    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory.\nmore")) == (
        "out_of_memory: CUDA out of memory.")
    assert failure_reason(KeyError("x")) == "KeyError: 'x'"
    assert not isinstance(KeyError("x"), EXPECTED_FAILURES)
