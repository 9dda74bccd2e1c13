"""Trainer: learning, the paper's early stopping and schedule, augmentation."""

from __future__ import annotations

import pytest
import torch

from ras_deap.data import load_dataset
from ras_deap.evaluation import (
    TrainConfig,
    TrainingError,
    compile_model,
    plateaued,
    random_crop_flip,
    train,
)
from ras_deap.evaluation import trainer as trainer_module
from ras_deap.evaluation.trainer import should_stop
from ras_deap.genome import Block, Layer, Model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits", seed=0)
    t = {name: torch.from_numpy(getattr(getattr(ds, s), a))
         for name, s, a in [("x", "train", "x"), ("y", "train", "y"),
                            ("xv", "val", "x"), ("yv", "val", "y")]}
    return ds, t


def small_net(ds, seed=0):
    model = Model((Block((Layer.conv(16, 3, 1), Layer.dense(64)), ((0, 1),)),), ())
    torch.manual_seed(seed)
    return compile_model(model, ds.shape, ds.num_classes, ds.mean, ds.std)


def test_plateau_rule():
    assert not plateaued([0.5, 0.5, 0.5], patience=3, min_delta=0.001)
    assert plateaued([0.1, 0.5, 0.5, 0.5005, 0.5], patience=3, min_delta=0.001)
    assert not plateaued([0.5, 0.5, 0.502, 0.5], patience=3, min_delta=0.001)


def test_training_learns_digits(digits):
    ds, t = digits
    net = small_net(ds)
    cfg = TrainConfig(max_epochs=5, batch_size=64)
    res = train(net, t["x"][:600], t["y"][:600], t["xv"], t["yv"], cfg, 5,
                torch.Generator().manual_seed(0))
    assert res.epochs == 5 and not res.stopped_early
    assert res.val_accuracy > 0.8 and res.train_accuracy > 0.8
    assert res.samples_seen == 5 * 600 and len(res.history) == 5


def test_early_stopping_with_both_accuracies_flat(digits):
    ds, t = digits
    # min_delta = 1 means "any change counts as flat": stop after patience + 1 epochs
    cfg = TrainConfig(patience=2, min_delta=1.0)
    res = train(small_net(ds), t["x"][:128], t["y"][:128], t["xv"], t["yv"], cfg, 50,
                torch.Generator().manual_seed(0))
    assert res.stopped_early and res.epochs == 3


def test_stop_rule_is_accuracy_or_validation_accuracy():
    # section 5.3: "early stopping if accuracy or validation accuracy do not
    # change more than 0.001 in the span of 15 epochs"
    moving = [0.1, 0.2, 0.3, 0.4, 0.5]
    flat = [0.5, 0.5, 0.5005, 0.5, 0.5]
    assert should_stop(list(zip(moving, flat, strict=True)), patience=3, min_delta=0.001)
    assert should_stop(list(zip(flat, moving, strict=True)), patience=3, min_delta=0.001)
    assert should_stop(list(zip(flat, flat, strict=True)), patience=3, min_delta=0.001)
    assert not should_stop(list(zip(moving, moving, strict=True)), patience=3,
                           min_delta=0.001)
    assert not should_stop(list(zip(flat, flat, strict=True))[:3], patience=3,
                           min_delta=0.001)


def scripted_val_accuracy(monkeypatch, values):
    """Make ``train`` see the validation accuracies ``values`` (one per epoch);
    the training accuracy stays the real one."""
    values = iter(values)
    monkeypatch.setattr(trainer_module, "accuracy", lambda *args, **kwargs: next(values))


def alternating(n):
    return [0.2 if i % 2 else 0.6 for i in range(n)]


def random_labels(t, n, seed=0):
    """``n`` training images with random labels: the training accuracy keeps
    moving over the few epochs these tests run."""
    g = torch.Generator().manual_seed(seed)
    return t["x"][:n], torch.randint(0, 10, (n,), generator=g)


def test_only_the_validation_accuracy_flat_stops(digits, monkeypatch):
    ds, t = digits
    scripted_val_accuracy(monkeypatch, [0.5] * 50)
    x, y = random_labels(t, 128)
    cfg = TrainConfig(patience=2, min_delta=0.0)
    res = train(small_net(ds), x, y, t["xv"], t["yv"], cfg, 50,
                torch.Generator().manual_seed(0))
    assert res.stopped_early and res.epochs == 3
    # the training accuracy had not plateaued: requiring both would not have stopped
    assert not plateaued([h[0] for h in res.history], 2, 0.0)


def test_only_the_training_accuracy_flat_stops(digits, monkeypatch):
    ds, t = digits
    scripted_val_accuracy(monkeypatch, alternating(50))
    # 32 images, one class: the network soon predicts that class for all of them
    x, y = t["x"][:32], torch.full((32,), 3, dtype=torch.int64)
    cfg = TrainConfig(patience=2, min_delta=0.0, lr=1e-2)
    res = train(small_net(ds), x, y, t["xv"], t["yv"], cfg, 50,
                torch.Generator().manual_seed(0))
    assert res.stopped_early and res.epochs < 50
    assert plateaued([h[0] for h in res.history], 2, 0.0)
    # the validation accuracy never plateaued: requiring both would not have stopped
    assert not plateaued([h[1] for h in res.history], 2, 0.0)


def test_neither_accuracy_flat_runs_to_max_epochs(digits, monkeypatch):
    ds, t = digits
    scripted_val_accuracy(monkeypatch, alternating(6))
    x, y = random_labels(t, 128)
    cfg = TrainConfig(patience=2, min_delta=0.0)
    res = train(small_net(ds), x, y, t["xv"], t["yv"], cfg, 6,
                torch.Generator().manual_seed(0))
    assert not res.stopped_early and res.epochs == 6
    assert not any(should_stop(res.history[:i], 2, 0.0) for i in range(1, 7))


def test_single_sample_tail_batch_is_skipped(digits):
    ds, t = digits
    cfg = TrainConfig(batch_size=64)
    res = train(small_net(ds), t["x"][:65], t["y"][:65], t["xv"], t["yv"], cfg, 1,
                torch.Generator().manual_seed(0))
    assert res.samples_seen == 64


def test_non_finite_loss_raises(digits):
    ds, t = digits
    x = t["x"][:64].clone()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match="non-finite"):
        train(small_net(ds), x, t["y"][:64], t["xv"], t["yv"], TrainConfig(), 1,
              torch.Generator().manual_seed(0))


def test_same_seed_same_training_and_sgd_works(digits):
    ds, t = digits
    runs = []
    for _ in range(2):
        net = small_net(ds, seed=3)
        cfg = TrainConfig(optimizer="sgd", lr=0.05)
        res = train(net, t["x"][:256], t["y"][:256], t["xv"], t["yv"], cfg, 2,
                    torch.Generator().manual_seed(7))
        runs.append((res.history, [p.detach().clone() for p in net.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_schedule_and_config_validation():
    cfg = TrainConfig()
    assert [g for g in range(31) if cfg.is_full_generation(g)] == [10, 20, 30]
    assert cfg.epochs_for(10) == cfg.full_epochs and cfg.epochs_for(3) == cfg.max_epochs
    assert not TrainConfig(full_every=0).is_full_generation(10)
    paper = TrainConfig.paper()
    assert (paper.max_epochs, paper.full_epochs, paper.patience, paper.min_delta,
            paper.subset_size, paper.full_every) == (200, 50, 15, 0.001, 1000, 10)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({"epochs": 3})


def test_random_crop_flip_is_a_per_image_crop_of_the_padded_image():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(1), padding=2)
    again = random_crop_flip(x, torch.Generator().manual_seed(1), padding=2)
    torch.testing.assert_close(out, again)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    found = set()
    for i in range(16):
        matches = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(-1) if f else c)(
                       padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a crop of its padded image"
        found.update(matches)
    assert len({m[:2] for m in found}) > 1 and {m[2] for m in found} == {False, True}
