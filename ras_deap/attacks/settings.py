"""The attack settings of the paper's Table 1: norm x threshold x optimizer.

An *attack setting* is one (norm, threshold, optimizer) of that grid: what
one run of ART's Pixel / Threshold attack is configured with. (A *cell* is
the comparison's (method, seed) pair, :mod:`ras_deap.compare`.)"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import ATTACK_OPTIMIZERS as OPTIMIZERS
from ..constants import NORMS
from ..errors import UsageError

__all__ = ["ALL_ATTACK_SETTINGS", "NORMS", "OPTIMIZERS", "THRESHOLDS", "AttackSetting",
           "AttackSettingError", "parse_attack_setting"]

THRESHOLDS = (1, 3, 5, 10)
# ART's ``es`` flag of each optimizer: 0 = CMA-ES, 1 = DE.
_ES_FLAG = {"DE": 1, "CMA-ES": 0}


class AttackSettingError(UsageError, ValueError):
    """An attack setting with an unknown norm / optimizer or a non-positive
    threshold."""


@dataclass(frozen=True, order=True)
class AttackSetting:
    """One attack setting. ``th`` is the number of changed pixels for L0 and
    the largest change per value on the 0-255 scale for Linf."""

    norm: str
    th: int
    optimizer: str

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise AttackSettingError(f"norm {self.norm!r} is not one of {NORMS}")
        if not isinstance(self.th, int) or self.th < 1:
            raise AttackSettingError(f"th must be a positive int, got {self.th!r}")
        if self.optimizer not in OPTIMIZERS:
            raise AttackSettingError(f"optimizer {self.optimizer!r} is not one of "
                                     f"{tuple(OPTIMIZERS)}")

    @property
    def key(self) -> str:
        """File-name safe id, e.g. ``L0-th3-CMA-ES``."""
        return f"{self.norm}-th{self.th}-{self.optimizer}"

    @property
    def es(self) -> int:
        return _ES_FLAG[self.optimizer]


def parse_attack_setting(key: str) -> AttackSetting:
    """Inverse of :attr:`AttackSetting.key`."""
    try:
        norm, th, optimizer = key.split("-", 2)
        return AttackSetting(norm, int(th.removeprefix("th")), optimizer)
    except (ValueError, AttackSettingError) as exc:
        raise AttackSettingError(f"bad attack setting key {key!r}; expected e.g. 'L0-th3-DE' "
                                 f"({exc})") from exc


# Same order as Table 1: optimizer rows, then L0 / Linf columns by threshold.
ALL_ATTACK_SETTINGS = tuple(AttackSetting(n, t, o) for o in OPTIMIZERS for n in NORMS
                            for t in THRESHOLDS)
