"""Run IBM ART's Pixel (L0) / Threshold (Linf) attack in one attack setting on a model.

ART's ``PixelThreshold`` attacks work on 8-bit images: candidate values are
cast with ``astype(int)`` and bounds are 0..255. So the model is wrapped to
take images on the 0-255 scale (``clip_values=(0, 255)``, ART then does no
rescaling) and ``th`` is exactly the paper's threshold on that scale. Results
come back to [0, 1] as ``x255 / 255``.

Three details of ART 1.20 handled here, each with a reason:

* ``ThresholdAttack`` truncates every value to an integer, so on images whose
  values are not integers on the 0-255 scale (digits: k/16 * 255) a value can
  move by up to ``th + 1``. Every Linf result is projected back onto the exact
  ``th`` box around the original and re-checked; only successes are kept.
* ``ThresholdAttack`` truncates toward zero (``astype(int)``), so on 8-bit
  data the integer box ``[v - th, v + th]`` yields ``v - th .. v + th - 1``
  and ``v + th`` only at the bound's exact edge: at ``th = 1`` a pixel can
  only darken, and a zero background pixel cannot move at all. On data whose
  values are integers on the 0-255 scale the attack is given ``v + 0.5``
  (at most 255) instead, so truncation reaches ``v - th .. v + th`` both
  ways; ``floor`` maps its output back (a failed attack returns its input,
  ``v + 0.5``, which floors to the original).
* ART builds its ``cma.CMAOptions`` without a seed, and cma then seeds
  numpy's global RNG from the clock: CMA-ES runs are not reproducible. While
  an attack runs, ``cma.CMAOptions`` is replaced by a subclass with
  ``seed=nan`` (cma's documented "leave the RNG alone"), so both optimisers
  draw from numpy's global RNG, which is seeded per image.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..evaluation.inference import predict
from ..seeding import seed_everything
from .settings import AttackSetting

__all__ = ["AttackError", "AttackSettingResult", "art_classifier", "image_seed",
           "run_attack_setting"]


class AttackError(UsageError, ValueError):
    """Bad attack input (shape, range, iteration limit)."""


class _Scale255(nn.Module):
    """0-255 images in, class probabilities out: ART's pixel attacks minimise
    the true class's score, and the original attacks use probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x / 255.0)
        return out.softmax(dim=1)


def art_classifier(model: nn.Module, shape: tuple[int, int, int], num_classes: int):
    """``model`` (inputs in [0, 1]) as an ART ``PyTorchClassifier`` on 0-255 inputs."""
    from art.estimators.classification import PyTorchClassifier

    model.eval()
    return PyTorchClassifier(
        model=_Scale255(model).eval(),
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(shape),
        nb_classes=num_classes,
        channels_first=True,
        clip_values=(0.0, 255.0),
        device_type="cpu",
    )


@contextlib.contextmanager
def _cma_without_clock_seed() -> Iterator[None]:
    import cma

    original = cma.CMAOptions

    class _NoSeedOptions(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self["seed"] = float("nan")

    cma.CMAOptions = _NoSeedOptions
    try:
        with warnings.catch_warnings():
            # ART's objective returns 1-element arrays; cma warns once per run.
            warnings.filterwarnings("ignore", message=r"(?s).*non-scalar type")
            yield
    finally:
        cma.CMAOptions = original


def image_seed(seed: int, *parts: int) -> int:
    """Independent per-image seed, so an attack setting's result does not
    depend on the order the settings run in or on where an interrupted build
    resumed."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


@dataclass
class AttackSettingResult:
    """Everything one attack setting produced for the images it attacked."""

    x_adv: np.ndarray  # float32 N x C x H x W in [0, 1] (original image where it failed)
    success: np.ndarray  # bool N: fools the source model (re-predicted)
    pred: np.ndarray  # int64 N: source model's prediction on x_adv
    seconds: float  # wall time of the whole run
    max_change: np.ndarray  # per image: changed pixels (L0) or max |delta| on 0-255 (Linf)


def _perturbation(x255: np.ndarray, a255: np.ndarray, norm: str) -> float:
    diff = np.abs(a255.astype(np.float64) - x255.astype(np.float64))
    if norm == "L0":
        return float((diff.max(axis=0) > 1e-3).sum())  # pixels (any channel) changed
    return float(diff.max())


def run_attack_setting(model: nn.Module, x: np.ndarray, y: np.ndarray, setting: AttackSetting,
                       *, max_iter: int, seed: int, num_classes: int,
                       seed_parts: tuple[int, ...] = (), progress=None,
                       linf_step255: float = 1.0,
                       skip: np.ndarray | None = None) -> AttackSettingResult:
    """Untargeted ART attack in ``setting`` on each image of ``x`` (in [0, 1]).

    A Linf ``setting.th`` counts steps of ``linf_step255`` on the 0-255 scale
    (1 for 8-bit data, 255/16 for digits): ART searches the integer box
    ``ceil(th * step)`` and the result is projected onto the exact box.
    ``progress`` (e.g. a tqdm bar) gets ``update(1)`` per image. ``skip``
    (bool per image): images left unattacked (returned unchanged, never a
    success); every other image keeps the seed of its position, so its
    result is the same as without ``skip``.
    """
    from art.attacks.evasion import PixelAttack, ThresholdAttack

    if x.ndim != 4 or x.dtype != np.float32 or len(x) != len(y):
        raise AttackError(f"x must be float32 N x C x H x W with one label each, got {x.dtype} "
                          f"{x.shape} and {len(y)} labels")
    if len(x) and (x.min() < 0 or x.max() > 1):
        raise AttackError("x must be in [0, 1]")
    if max_iter < 1:
        raise AttackError(f"max_iter must be >= 1, got {max_iter}")
    torch.set_num_threads(1)  # tiny models: threads only add overhead / contention
    clf = art_classifier(model, x.shape[1:], num_classes)
    cls = PixelAttack if setting.norm == "L0" else ThresholdAttack
    if linf_step255 <= 0:
        raise AttackError(f"linf_step255 must be > 0, got {linf_step255}")
    box = setting.th * linf_step255 if setting.norm == "Linf" else setting.th
    art_th = setting.th if setting.norm == "L0" else int(np.ceil(box - 1e-9))
    attack = cls(clf, th=art_th, es=setting.es, max_iter=max_iter, targeted=False, verbose=False)
    x255 = x.astype(np.float32) * np.float32(255.0)
    # 8-bit data (integer values and steps on 0-255): centre ART's truncated box
    centre = (setting.norm == "Linf" and float(linf_step255).is_integer()
              and np.array_equal(x255, np.round(x255)))
    x_in = np.minimum(x255 + np.float32(0.5), np.float32(255.0)) if centre else x255
    out = np.empty_like(x255)
    skip = np.zeros(len(x), dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    if skip.shape != (len(x),):
        raise AttackError(f"skip must hold one bool per image, got shape {skip.shape}")
    start = time.perf_counter()
    with _cma_without_clock_seed():
        for i in range(len(x)):
            if skip[i]:
                out[i] = x255[i]
                if progress is not None:
                    progress.update(1)
                continue
            seed_everything(image_seed(seed, *seed_parts, i))
            adv = attack.generate(x_in[i:i + 1], y=np.asarray(y[i:i + 1]))[0]
            if centre:
                adv = np.floor(adv)
            if setting.norm == "Linf":
                lo = np.clip(x255[i] - np.float32(box), 0, 255)
                hi = np.clip(x255[i] + np.float32(box), 0, 255)
                adv = np.clip(adv, lo, hi)
            out[i] = adv
            if progress is not None:
                progress.update(1)
    seconds = time.perf_counter() - start
    x_adv = np.clip(out / np.float32(255.0), 0.0, 1.0).astype(np.float32)
    pred = predict(model, x_adv)
    success = (pred != np.asarray(y)) & ~skip
    change = np.array([_perturbation(x255[i], x_adv[i] * 255.0, setting.norm)
                       for i in range(len(x))])
    return AttackSettingResult(x_adv=x_adv, success=success, pred=pred, seconds=seconds,
                               max_change=change)
