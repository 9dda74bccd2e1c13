"""What ``python -m ras_deap.assess`` attacks and how hard (pure Python).

Defaults keep an assessment to about a minute on one CPU core for a digits
model: 200 test images for the gradient attacks, 50 for ART's PixelAttack
(the costly one, a differential evolution per image).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..validate import check_int

__all__ = ["ATTACKS", "DEFAULT_ATTACKS", "AssessConfig", "AssessConfigError",
           "default_eps_steps"]

ATTACKS = ("fgsm", "pgd", "square", "pixel")
# What an assessment runs unless told otherwise. SquareAttack is opt-in: it is the
# gradient-free L-inf check that no fitness uses (held-out comparisons, masking checks).
DEFAULT_ATTACKS = ("fgsm", "pgd", "pixel")
SQUARE_ITER = 200  # ART SquareAttack queries per image, as in the masking check of #18
COARSE_EPS_STEPS = (1, 2, 3)  # data with few intensity levels (digits: 1/16, 2/16, 3/16)
FINE_EPS_STEPS = (1, 3, 5, 10)  # 8-bit data: the paper's Linf grid, out of 255
PIXEL_TH = (1, 3, 5, 10)  # changed pixels: the paper's L0 grid


class AssessConfigError(ValueError):
    """A bad assessment setting; the message names the option and the fix."""


def default_eps_steps(levels: int) -> tuple[int, ...]:
    """Linf budgets in steps of the data's intensity grid, 1/(levels - 1):
    1, 2, 3 steps on coarse data (digits: 1/16, 2/16, 3/16), the paper's
    1, 3, 5, 10 (out of 255) on 8-bit data."""
    return FINE_EPS_STEPS if levels >= 256 else COARSE_EPS_STEPS


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
    image, over the same eps grid and images as FGSM/PGD. ``bank``: also
    measure accuracy on the transfer bank."""

    images: int = 200
    l0_images: int = 50
    eps_steps: tuple[int, ...] | None = None
    pgd_steps: int = 10
    pixel_th: tuple[int, ...] = PIXEL_TH
    pixel_iter: int = 20
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    bank: bool = True
    square_iter: int = SQUARE_ITER

    def __post_init__(self) -> None:
        flags = {"images": "--assess-images / --images", "l0_images": "--l0-images",
                 "pgd_steps": "--pgd-steps", "pixel_iter": "--pixel-iter",
                 "square_iter": "--square-iter"}
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings; ``square_iter`` only when SquareAttack runs or it
        was changed, so records written before SquareAttack existed (stored
        comparisons, which resume on equal settings) stay equal."""
        data = dataclasses.asdict(self)
        if "square" not in self.attacks and self.square_iter == SQUARE_ITER:
            data.pop("square_iter")
        for key in ("eps_steps", "pixel_th", "attacks"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssessConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AssessConfigError(f"unknown assess settings {unknown}; valid: {sorted(known)}")
        values = dict(data)
        for key in ("eps_steps", "pixel_th", "attacks"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)
