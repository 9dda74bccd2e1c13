"""What ``python -m ras_deap.assess`` attacks and how hard (pure Python).

Defaults keep an assessment to about a minute on one CPU core for a digits
model: 200 test images for the gradient attacks, 50 for ART's PixelAttack
(the costly one, a differential evolution per image). AutoAttack, the field's
reference assessment, is opt-in: it costs minutes (see ``autoattack.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..validate import check_int

__all__ = ["ATTACKS", "AUTOATTACK_COMPONENTS", "AUTOATTACK_FIELD_EPS", "AUTOATTACK_PARTIAL",
           "DEFAULT_ATTACKS", "AssessConfig", "AssessConfigError", "default_eps_steps",
           "mnist_like"]

ATTACKS = ("fgsm", "pgd", "square", "autoattack", "pixel")
# What an assessment runs unless told otherwise. SquareAttack is opt-in: it is the
# gradient-free L-inf check that no fitness uses (held-out comparisons, masking checks).
# AutoAttack is opt-in too: the field's reference (RobustBench), minutes per eps.
DEFAULT_ATTACKS = ("fgsm", "pgd", "pixel")
SQUARE_ITER = 200  # ART SquareAttack queries per image, as in the masking check of #18
COARSE_EPS_STEPS = (1, 2, 3)  # data with few intensity levels (digits: 1/16, 2/16, 3/16)
FINE_EPS_STEPS = (1, 3, 5, 10)  # 8-bit data: the paper's Linf grid, out of 255
PIXEL_TH = (1, 3, 5, 10)  # changed pixels: the paper's L0 grid
# AutoAttack's standard version (Croce & Hein 2020, RobustBench): 100 APGD iterations,
# 5000 Square queries
AUTOATTACK_ITER = 100
AUTOATTACK_QUERIES = 5000
AUTOATTACK_IMAGES = 200
# (row suffix, label) of AutoAttack's attacks in the order they run (FAB-T, missing in
# ART, left out); rows <key>_apgd-ce / <key>_apgd-t: robust after the first ones alone
AUTOATTACK_COMPONENTS = (("apgd-ce", "APGD-CE"), ("apgd-t", "APGD-T"), ("square", "Square"))
AUTOATTACK_PARTIAL = tuple(f"_{key}" for key, _ in AUTOATTACK_COMPONENTS[:-1])
# The L-inf budgets the literature reports on MNIST, so numbers compare with published ones
AUTOATTACK_FIELD_EPS = (0.1, 0.3)
# settings that only AutoAttack reads, and their defaults: left out of records that do
# not run it (stored comparisons resume on equal settings)
_AUTOATTACK_DEFAULTS = {"autoattack_images": AUTOATTACK_IMAGES,
                        "autoattack_iter": AUTOATTACK_ITER,
                        "autoattack_queries": AUTOATTACK_QUERIES, "autoattack_eps": None}


class AssessConfigError(UsageError, ValueError):
    """A bad assessment setting; the message names the option and the fix."""


def default_eps_steps(levels: int) -> tuple[int, ...]:
    """Linf budgets in steps of the data's intensity grid, 1/(levels - 1):
    1, 2, 3 steps on coarse data (digits: 1/16, 2/16, 3/16), the paper's
    1, 3, 5, 10 (out of 255) on 8-bit data."""
    return FINE_EPS_STEPS if levels >= 256 else COARSE_EPS_STEPS


def mnist_like(levels: int, shape: tuple[int, ...]) -> bool:
    """8-bit, one-channel 28 x 28 images (mnist10k, mnist, fashion-mnist): the
    data the field reports L-inf robustness on at eps 0.1 and 0.3."""
    return levels >= 256 and tuple(shape) == (1, 28, 28)


@dataclass(frozen=True)
class AssessConfig:
    """``images``: the first N quarantined test images for clean accuracy,
    FGSM and PGD; ``l0_images``: the first N of those for PixelAttack.
    ``eps_steps``: Linf budgets in intensity steps (None: the data's default,
    :func:`default_eps_steps`). PGD: ``pgd_steps`` steps of eps/4, no random
    start (deterministic). PixelAttack: ART's DE (``es=1``) with
    ``pixel_iter`` generations per image, at each of ``pixel_th`` changed
    pixels. SquareAttack (``"square"`` in ``attacks``, opt-in): ART's
    gradient-free random-search L-inf attack, ``square_iter`` queries per
    image, over the same eps grid and images as FGSM/PGD. AutoAttack
    (``"autoattack"``, opt-in): APGD-CE, APGD-T and Square of its standard
    version (``autoattack_iter`` APGD iterations, ``autoattack_queries``
    Square queries) on the first ``autoattack_images`` of those images, over
    the eps grid and the absolute budgets ``autoattack_eps`` (None: the
    field's 0.1 and 0.3 on MNIST-like data, :func:`mnist_like`, else none;
    ``()``: none). ``bank``: also measure accuracy on the transfer bank."""

    images: int = 200
    l0_images: int = 50
    eps_steps: tuple[int, ...] | None = None
    pgd_steps: int = 10
    pixel_th: tuple[int, ...] = PIXEL_TH
    pixel_iter: int = 20
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    bank: bool = True
    square_iter: int = SQUARE_ITER
    autoattack_images: int = AUTOATTACK_IMAGES
    autoattack_iter: int = AUTOATTACK_ITER
    autoattack_queries: int = AUTOATTACK_QUERIES
    autoattack_eps: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        flags = {"images": "--assess-images / --images", "l0_images": "--l0-images",
                 "pgd_steps": "--pgd-steps", "pixel_iter": "--pixel-iter",
                 "square_iter": "--square-iter",
                 "autoattack_images": "--autoattack-images / --assess-autoattack-images",
                 "autoattack_iter": "--autoattack-iter",
                 "autoattack_queries": "--autoattack-queries"}
        for name, flag in flags.items():
            check_int(name, getattr(self, name), error=AssessConfigError, hint=f"option {flag}")
        for name in ("eps_steps", "pixel_th"):
            values = getattr(self, name)
            if values is None:
                continue
            values = tuple(values)
            if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1
                                 for v in values):
                raise AssessConfigError(f"{name}={list(values)}: give one or more positive "
                                        "integers, e.g. 1,2,3")
            object.__setattr__(self, name, tuple(sorted(set(values))))
        if self.autoattack_eps is not None:
            values = tuple(self.autoattack_eps)
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1
                   for v in values):
                raise AssessConfigError(
                    f"autoattack_eps={list(values)}: give L-inf budgets between 0 and 1 on the "
                    "[0, 1] pixel scale, e.g. --autoattack-eps 0.1,0.3 (or none)")
            object.__setattr__(self, "autoattack_eps", tuple(sorted({float(v)
                                                                      for v in values})))
        attacks = tuple(self.attacks)
        bad = [a for a in attacks if a not in ATTACKS]
        if bad:
            raise AssessConfigError(f"attacks={list(attacks)}: unknown {bad}; choose from "
                                    f"{list(ATTACKS)}")
        object.__setattr__(self, "attacks", tuple(a for a in ATTACKS if a in attacks))
        if self.l0_images > self.images:
            object.__setattr__(self, "l0_images", self.images)

    def eps_for(self, levels: int) -> tuple[int, ...]:
        return tuple(self.eps_steps) if self.eps_steps is not None else default_eps_steps(levels)

    def autoattack_eps_for(self, levels: int, shape: tuple[int, ...]) -> tuple[float, ...]:
        """AutoAttack's absolute budgets beside the eps grid: ``autoattack_eps``,
        or by default the field's 0.1 and 0.3 on MNIST-like data."""
        if self.autoattack_eps is not None:
            return self.autoattack_eps
        return AUTOATTACK_FIELD_EPS if mnist_like(levels, shape) else ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings; ``square_iter`` only when SquareAttack runs or it
        was changed, so records written before SquareAttack existed (stored
        comparisons, which resume on equal settings) stay equal; the same for
        AutoAttack's settings."""
        data = dataclasses.asdict(self)
        if "square" not in self.attacks and self.square_iter == SQUARE_ITER:
            data.pop("square_iter")
        if "autoattack" not in self.attacks:
            for key, default in _AUTOATTACK_DEFAULTS.items():
                if data[key] == default:
                    data.pop(key)
        for key in ("eps_steps", "pixel_th", "attacks", "autoattack_eps"):
            if data.get(key) is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssessConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AssessConfigError(f"unknown assess settings {unknown}; valid: {sorted(known)}")
        values = dict(data)
        for key in ("eps_steps", "pixel_th", "attacks", "autoattack_eps"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)
