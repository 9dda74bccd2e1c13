"""The direct (white-box) robustness measure: PGD equals ART's, JSMA's pixel
counts give every L0 threshold, the measure is deterministic, and a network that
masks its gradients is caught by a gradient-free attack."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ras_deap.data import load_dataset
from ras_deap.evaluation import TrainConfig, compile_model, train
from ras_deap.evaluation.direct import DirectConfig, direct_robustness, jsma_pixels, pgd_linf
from ras_deap.genome import Block, Layer, Model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    model = Model((Block((Layer.conv(16, 3, 1), Layer.dense(64)), ((0, 1),)),), ())
    net = compile_model(model, digits.shape, 10, digits.mean, digits.std)
    t = {k: torch.from_numpy(getattr(digits, s).x if k[0] == "x" else getattr(digits, s).y)
         for k, s in (("x", "train"), ("y", "train"), ("xv", "val"), ("yv", "val"))}
    train(net, t["x"], t["y"], t["xv"], t["yv"], TrainConfig(max_epochs=5),
          5, torch.Generator().manual_seed(0))
    return net.eval()


@pytest.mark.parametrize("eps", [1 / 16, 2 / 16])
def test_pgd_equals_art(digits, trained, eps):
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    x, y = digits.val.x[:32], digits.val.y[:32]
    clf = PyTorchClassifier(trained, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    ref = ProjectedGradientDescentPyTorch(clf, eps=eps, eps_step=eps / 4, max_iter=10,
                                          num_random_init=0, batch_size=32,
                                          verbose=False).generate(x, y=y)
    ours = pgd_linf(trained, torch.from_numpy(x), torch.from_numpy(y), eps, 10).numpy()
    assert np.abs(ours - x).max() <= eps + 1e-6
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("pixels", [4, 10])
def test_jsma_equals_art(digits, trained, pixels):
    """The torch JSMA is ART's SaliencyMapMethod (theta=1, runner-up targets)."""
    from art.attacks.evasion import SaliencyMapMethod
    from art.estimators.classification import PyTorchClassifier

    x = digits.val.x[:48]
    clf = PyTorchClassifier(trained, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    target = np.argsort(clf.predict(x), axis=1)[:, -2]
    ref = SaliencyMapMethod(clf, theta=1.0, gamma=pixels / 64, batch_size=48,
                            verbose=False).generate(x, y=np.eye(10)[target])
    ours, changed = jsma_pixels(trained, torch.from_numpy(x), pixels)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)
    diff = (np.abs(ours.numpy() - x) > 1e-6).reshape(48, -1).sum(1)
    np.testing.assert_array_equal(diff, changed.numpy())
    assert changed.max() <= pixels + 2  # pairs of pixels, the last pair may pass the budget


def test_thresholds_are_monotone_and_deterministic(digits, trained):
    x, y = torch.from_numpy(digits.val.x), torch.from_numpy(digits.val.y)
    cfg = DirectConfig(images=64)
    a = direct_robustness(trained, x, y, levels=17, config=cfg)
    b = direct_robustness(trained, x, y, levels=17, config=cfg)
    assert a == b
    assert set(a) == {"direct_Linf_th1", "direct_Linf_th2", "direct_L0_th1", "direct_L0_th3",
                      "direct_L0_th5", "direct_L0_th10", "robustness_direct"}
    assert a["direct_Linf_th1"] >= a["direct_Linf_th2"]
    assert a["direct_L0_th1"] >= a["direct_L0_th3"] >= a["direct_L0_th5"] >= a["direct_L0_th10"]
    assert all(0.0 <= v <= 1.0 for v in a.values())
    assert a["robustness_direct"] == pytest.approx(np.mean([v for k, v in a.items()
                                                            if k.startswith("direct_")]))
    assert DirectConfig().linf_for(256) == (1, 3, 5, 10)


class _Masked(nn.Module):
    """A classifier whose input gradient is zero almost everywhere (inputs are
    rounded to the 17 digits levels first): gradient attacks see nothing to follow."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 16) / 16)  # rounding: zero slope almost everywhere


def test_gradient_masking_is_caught_by_square_attack(digits, trained):
    """PGD on a masked network reports high robustness; ART's gradient-free
    SquareAttack shows it is not. The noise benchmark's masking check relies
    on this disagreement."""
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification import PyTorchClassifier

    masked = _Masked(trained).eval()
    x, y = torch.from_numpy(digits.val.x[:48]), torch.from_numpy(digits.val.y[:48])
    eps = 2 / 16
    with torch.no_grad():
        pgd_acc = (masked(pgd_linf(masked, x, y, eps, 10)).argmax(1) == y).float().mean().item()
    clf = PyTorchClassifier(masked, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    np.random.seed(0)
    adv = SquareAttack(clf, eps=eps, max_iter=100, batch_size=48, verbose=False).generate(
        x.numpy(), y=y.numpy())
    square_acc = float((clf.predict(adv).argmax(1) == y.numpy()).mean())
    assert pgd_acc > square_acc + 0.1
