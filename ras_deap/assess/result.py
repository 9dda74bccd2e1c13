"""The outcome of an assessment and its table (pure Python, no torch).

Every row is one attack on the same trained network: the share of images
still classified correctly (*robust accuracy*; an image the network already
misclassifies clean counts as lost) and its complement, the error rate under
attack (ER, the paper's Table 2 unit).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .assess_config import AssessConfig

__all__ = ["AttackRow", "Assessment", "METRIC_PREFIX", "format_table"]

METRIC_PREFIX = "assess/"


@dataclass(frozen=True)
class AttackRow:
    """``key`` names the row in metrics (``clean``, ``fgsm_eps1``,
    ``pgd_eps2``, ``autoattack_eps3``, ``autoattack_eps0.1``, ``pixel_th3``,
    ``bank``, ``bank_L0``, ...); the eps of ``fgsm_eps<k>``/``pgd_eps<k>``
    (an integer k) is k steps of the data's intensity grid, a decimal one
    (``autoattack_eps0.1``) is absolute on the [0, 1] scale."""

    key: str
    attack: str
    norm: str
    budget: str
    images: int
    accuracy: float
    seconds: float = 0.0

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy if not math.isnan(self.accuracy) else math.nan


@dataclass
class Assessment:
    """All rows of one assessment, plus the test accuracy on the whole
    quarantined test split and where the network came from."""

    dataset: str
    seed: int
    levels: int
    test_accuracy: float
    test_images: int
    rows: list[AttackRow]
    config: AssessConfig
    seconds: float = 0.0
    bank_fallback: bool = False
    source: dict[str, Any] = field(default_factory=dict)

    def row(self, key: str) -> AttackRow:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"no row {key!r}; rows are {[r.key for r in self.rows]}")

    def metrics(self) -> dict[str, float]:
        """Flat metrics without the ``assess/`` prefix: ``<row>_accuracy``,
        ``<row>_error``, ``test_accuracy`` and ``seconds``."""
        out: dict[str, float] = {"test_accuracy": float(self.test_accuracy),
                                 "seconds": float(self.seconds),
                                 "bank_fallback": float(self.bank_fallback)}
        for row in self.rows:
            out[f"{row.key}_accuracy"] = float(row.accuracy)
            out[f"{row.key}_error"] = float(row.error)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "seed": self.seed, "levels": self.levels,
                "test_accuracy": self.test_accuracy, "test_images": self.test_images,
                "rows": [asdict(r) for r in self.rows], "config": self.config.to_dict(),
                "seconds": self.seconds, "bank_fallback": self.bank_fallback,
                "source": dict(self.source)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assessment:
        return cls(dataset=data["dataset"], seed=int(data["seed"]), levels=int(data["levels"]),
                   test_accuracy=float(data["test_accuracy"]),
                   test_images=int(data["test_images"]),
                   rows=[AttackRow(**r) for r in data["rows"]],
                   config=AssessConfig.from_dict(data["config"]),
                   seconds=float(data.get("seconds", 0.0)),
                   bank_fallback=bool(data.get("bank_fallback", False)),
                   source=dict(data.get("source", {})))


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def format_table(assessment: Assessment) -> str:
    """The assessment as a Markdown table with a short legend."""
    a = assessment
    lines = [f"Direct attacks on the trained network ({a.dataset}, seed {a.seed}); test accuracy "
             f"{_pct(a.test_accuracy)} on all {a.test_images} quarantined test images.", "",
             "| Attack | Norm | Budget | Images | Robust accuracy | ER under attack | Time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in a.rows:
        lines.append(f"| {r.attack} | {r.norm} | {r.budget} | {r.images} | {_pct(r.accuracy)} | "
                     f"{_pct(r.error)} | {r.seconds:.1f} |")
    c = a.config
    ran = {r.key.split("_")[0] for r in a.rows}
    legend = ["Robust accuracy: share of the images classified correctly both clean and under "
              f"attack; Linf eps in steps of the data's intensity grid 1/{a.levels - 1}."]
    if ran & {"fgsm", "pgd"}:
        legend.append(f"FGSM and PGD (untargeted, white-box, ART) on the first {c.images} test "
                      f"images; PGD: {c.pgd_steps} steps of eps/4, no random start.")
    if "square" in ran:
        legend.append(f"SquareAttack (ART, gradient-free random search, {c.square_iter} "
                      f"queries per image) on the first {c.images} test images.")
    if "autoattack" in ran:
        aa = min(c.autoattack_images, c.images)
        legend.append(f"AutoAttack (standard version less FAB-T, which ART lacks: APGD-CE, then "
                      f"APGD-T on 9 target classes, {c.autoattack_iter} iterations each, then "
                      f"Square, {c.autoattack_queries} queries; ART) on the first {aa} test "
                      "images: robust = correct clean and under every attack; the rows 'after "
                      "APGD-CE/APGD-T' show how much the first attacks alone leave, with their "
                      "own time." + (" A decimal eps (0.1, 0.3: the field's MNIST budgets) is "
                                     "absolute on the [0, 1] scale."
                                     if any("." in r.budget for r in a.rows) else ""))
    if "pixel" in ran:
        legend.append(f"PixelAttack (ART, differential evolution, {c.pixel_iter} generations "
                      f"per image) on the first {min(c.l0_images, c.images)}; th = changed "
                      "pixels.")
    lines += ["", " ".join(legend)]
    if any(r.key.startswith("bank") for r in a.rows):
        lines.append("Transfer bank: stored adversarial samples crafted on other models "
                     "(the search's robustness measure)." +
                     (" **Fallback bank: randomly perturbed images, not adversarial.**"
                      if a.bank_fallback else ""))
    if any(r.key.startswith("heldout_bank") for r in a.rows):
        lines.append("Held-out transfer bank (--heldout-bank): stored samples crafted on "
                     "source models other than the fitness bank's; its manifest says which "
                     "base images, source families and attacks it shares with the fitness "
                     "(python -m ras_deap.attacks show BANK).")
    lines.append(f"Total time {a.seconds:.1f} s.")
    return "\n".join(lines) + "\n"
