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

from ..errors import ConfigError
from ..options import check_options, option, options_of

__all__ = ["ASSESS_OPTIONS", "ATTACKS", "AUTOATTACK_COMPONENTS", "AUTOATTACK_FIELD_EPS",
           "AUTOATTACK_PARTIAL", "DEFAULT_ATTACKS", "AssessConfig", "default_eps_steps",
           "mnist_like"]

ATTACKS = ("fgsm", "pgd", "square", "autoattack", "pixel")
# What an assessment runs unless told otherwise. SquareAttack is opt-in: it is the
# gradient-free L-inf check that no fitness uses (held-out comparisons, masking checks).
# AutoAttack is opt-in too: the field's reference (RobustBench), minutes per eps on digits,
# up to a CPU-hour per eps on an 8-bit winner.
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
_A = "assessment"


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

    images: int = option(200, "test images for clean accuracy and the Linf attacks "
                              "(FGSM, PGD, SquareAttack)", _A, minimum=1,
                         hint="option --assess-images / --images")
    l0_images: int = option(50, "test images for PixelAttack, the costly one", _A, minimum=1,
                            hint="option --l0-images / --assess-l0-images")
    eps_steps: tuple[int, ...] | None = option(
        None, "Linf budgets in intensity steps of the data", _A, minimum=1, nonempty=True,
        none_means="1,2,3 on digits = 1/16, 2/16, 3/16; 1,3,5,10 on 8-bit data = x/255",
        hint="option --eps-steps, e.g. 1,2,3")
    pgd_steps: int = option(10, "PGD iterations, each a step of eps/4", _A, minimum=1,
                            hint="option --pgd-steps")
    pixel_th: tuple[int, ...] = option(PIXEL_TH, "PixelAttack budgets in changed pixels", _A,
                                       minimum=1, nonempty=True,
                                       hint="option --pixel-th, e.g. 1,3,5,10")
    pixel_iter: int = option(20, "DE generations per image, as the bank", _A, minimum=1,
                             hint="option --pixel-iter / --assess-pixel-iter")
    attacks: tuple[str, ...] = option(DEFAULT_ATTACKS, "the attacks to run", _A,
                                      choices=ATTACKS, hint="option --attacks / --assess-attacks")
    bank: bool = option(True, "also measure accuracy on the transfer bank", _A)
    square_iter: int = option(SQUARE_ITER, "SquareAttack queries per image", _A, minimum=1,
                              hint="option --square-iter")
    autoattack_images: int = option(AUTOATTACK_IMAGES, "test images for AutoAttack, the first "
                                    "of those for FGSM and PGD", _A, minimum=1,
                                    hint="option --autoattack-images / "
                                         "--assess-autoattack-images")
    autoattack_iter: int = option(AUTOATTACK_ITER, "APGD-CE and APGD-T iterations, the "
                                  "standard version's", _A, minimum=1,
                                  hint="option --autoattack-iter")
    autoattack_queries: int = option(AUTOATTACK_QUERIES, "Square queries per image, the "
                                     "standard version's", _A, minimum=1,
                                     hint="option --autoattack-queries")
    autoattack_eps: tuple[float, ...] | None = option(
        None, "absolute L-inf budgets for AutoAttack beside the eps grid, on the [0, 1] pixel "
        "scale", _A, minimum=0, closed=False, below=1,
        none_means="0.1,0.3 on 28x28 8-bit data, none elsewhere",
        hint="option --autoattack-eps, e.g. 0.1,0.3, or none")

    def __post_init__(self) -> None:
        check_options(self, ASSESS_OPTIONS)
        # one spelling per setting: sorted budgets, attacks in the order they run
        for name in ("eps_steps", "pixel_th"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))
        if self.autoattack_eps is not None:
            object.__setattr__(self, "autoattack_eps",
                               tuple(sorted({float(v) for v in self.autoattack_eps})))
        object.__setattr__(self, "attacks", tuple(a for a in ATTACKS if a in self.attacks))
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
            raise ConfigError(f"unknown assess settings {unknown}; valid: {sorted(known)}")
        values = dict(data)
        for key in ("eps_steps", "pixel_th", "attacks", "autoattack_eps"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


ASSESS_OPTIONS = options_of(AssessConfig)
