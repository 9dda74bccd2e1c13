"""The attack grid of the paper's Table 1: norm x threshold x optimizer."""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import ATTACK_OPTIMIZERS as OPTIMIZERS
from ..constants import NORMS
from ..errors import UsageError

__all__ = ["ALL_CELLS", "NORMS", "OPTIMIZERS", "THRESHOLDS", "Cell", "CellError", "parse_cell"]

THRESHOLDS = (1, 3, 5, 10)
# ART's ``es`` flag of each optimizer: 0 = CMA-ES, 1 = DE.
_ES_FLAG = {"DE": 1, "CMA-ES": 0}


class CellError(UsageError, ValueError):
    """A cell with an unknown norm / optimizer or a non-positive threshold."""


@dataclass(frozen=True, order=True)
class Cell:
    """One attack configuration. ``th`` is the number of changed pixels for
    L0 and the largest change per value on the 0-255 scale for Linf."""

    norm: str
    th: int
    optimizer: str

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise CellError(f"norm {self.norm!r} is not one of {NORMS}")
        if not isinstance(self.th, int) or self.th < 1:
            raise CellError(f"th must be a positive int, got {self.th!r}")
        if self.optimizer not in OPTIMIZERS:
            raise CellError(f"optimizer {self.optimizer!r} is not one of {tuple(OPTIMIZERS)}")

    @property
    def key(self) -> str:
        """File-name safe id, e.g. ``L0-th3-CMA-ES``."""
        return f"{self.norm}-th{self.th}-{self.optimizer}"

    @property
    def es(self) -> int:
        return _ES_FLAG[self.optimizer]


def parse_cell(key: str) -> Cell:
    """Inverse of :attr:`Cell.key`."""
    try:
        norm, th, optimizer = key.split("-", 2)
        return Cell(norm, int(th.removeprefix("th")), optimizer)
    except (ValueError, CellError) as exc:
        raise CellError(f"bad cell key {key!r}; expected e.g. 'L0-th3-DE' ({exc})") from exc


# Same order as Table 1: optimizer rows, then L0 / Linf columns by threshold.
ALL_CELLS = tuple(Cell(n, t, o) for o in OPTIMIZERS for n in NORMS for t in THRESHOLDS)
