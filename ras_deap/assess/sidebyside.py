"""Two assessments of one architecture side by side (pure Python, no torch).

``python -m ras_deap.assess RUN --final-training pgd-at|trades`` attacks the
winner as it was trained and after adversarial fine-tuning with the same
attacks on the same images; this is their one table. It is generic over the
rows: whatever attacks an assessment ran (clean, FGSM, PGD, Square, Pixel,
the banks, any attack added later) appear in the order of the first
assessment, a row only one of them has with ``n/a`` in the other column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .result import Assessment, AttackRow, format_table

__all__ = ["SideBySide", "format_side_by_side"]


@dataclass
class SideBySide:
    """``before`` and ``after`` assessed alike; ``labels`` name their columns;
    ``final_training``: what turned one into the other; ``training``: the
    fine-tuning's metrics (``adversarial_seconds``, ``adversarial_cpu_seconds``,
    ``val_pgd_accuracy``, ...; ``retrain_seconds`` and ``retrain_cpu_seconds``
    when the first network was re-trained for want of weights);
    ``seconds``: the whole command's wall time."""

    before: Assessment
    after: Assessment
    labels: tuple[str, str]
    final_training: str
    training: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def row_keys(self) -> list[str]:
        """Row keys: the first assessment's order, then rows only the second has."""
        keys = [r.key for r in self.before.rows]
        return keys + [r.key for r in self.after.rows if r.key not in keys]

    def metrics(self) -> dict[str, float]:
        """Flat metrics of the fine-tuned network (``<row>_accuracy``,
        ``<row>_error``, ``test_accuracy``) and of its training (``train/...``)."""
        out = {k: v for k, v in self.after.metrics().items() if k != "seconds"}
        out.update({f"train/{k}": float(v) for k, v in self.training.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"final_training": self.final_training, "labels": list(self.labels),
                "before": self.before.to_dict(), "after": self.after.to_dict(),
                "training": dict(self.training), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SideBySide:
        return cls(before=Assessment.from_dict(data["before"]),
                   after=Assessment.from_dict(data["after"]),
                   labels=tuple(data["labels"]),  # type: ignore[arg-type]
                   final_training=str(data["final_training"]),
                   training={k: float(v) for k, v in data.get("training", {}).items()},
                   seconds=float(data.get("seconds", 0.0)))


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def _points(after: float, before: float) -> str:
    if math.isnan(after) or math.isnan(before):
        return "n/a"
    return f"{100 * (after - before):+.1f}"


def _time(training: dict[str, float], key: str) -> str:
    """``<wall> s (<cpu> CPU-s)`` of ``key`` (``adversarial``, ``retrain``)."""
    wall = training.get(f"{key}_seconds", math.nan)
    cpu = training.get(f"{key}_cpu_seconds")
    return f"{wall:.1f} s" + (f" ({cpu:.1f} CPU-s)" if cpu is not None else "")


def _legend(assessment: Assessment) -> list[str]:
    """The legend :func:`format_table` writes under its table (what each
    attack was), without the table and the total time."""
    lines = format_table(assessment).splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("|"))
    return [line for line in lines[last + 1:] if line and not line.startswith("Total time")]


def format_side_by_side(s: SideBySide) -> str:
    """One Markdown table: robust accuracy of both networks per attack, and
    the change in points; the test accuracy on all test images; the training
    time and the attacks' legend."""
    a, b = s.before, s.after
    rows_a: dict[str, AttackRow] = {r.key: r for r in a.rows}
    rows_b: dict[str, AttackRow] = {r.key: r for r in b.rows}
    first, second = s.labels
    lines = [f"Direct attacks on {first} and {second} ({a.dataset}, seed {a.seed}): robust "
             "accuracy, the same attacks on the same images.", "",
             f"| Attack | Norm | Budget | Images | {first} | {second} | change (points) |",
             "|---|---|---|---|---|---|---|",
             f"| test accuracy (all {a.test_images} test images) | - | - | {a.test_images} | "
             f"{_pct(a.test_accuracy)} | {_pct(b.test_accuracy)} | "
             f"{_points(b.test_accuracy, a.test_accuracy)} |"]
    for key in s.row_keys():
        ra, rb = rows_a.get(key), rows_b.get(key)
        r = ra or rb
        assert r is not None
        acc_a = ra.accuracy if ra is not None else math.nan
        acc_b = rb.accuracy if rb is not None else math.nan
        lines.append(f"| {r.attack} | {r.norm} | {r.budget} | {r.images} | {_pct(acc_a)} | "
                     f"{_pct(acc_b)} | {_points(acc_b, acc_a)} |")
    t = s.training
    lines += [""]
    if t:
        eps = t.get("adversarial_eps", math.nan)
        grid = a.levels - 1
        lines.append(
            f"{second}: {first} fine-tuned with {s.final_training} for "
            f"{int(t.get('adversarial_epochs', 0))} epochs on the full training set at L∞ eps "
            f"{round(eps * grid)}/{grid} (see docs/guide/comparison.md, \"Adversarial "
            f"fine-tuning of the winner\"); training time {_time(t, 'adversarial')}"
            + (f" (after a standard re-training of {_time(t, 'retrain')}, no weights)"
               if "retrain_seconds" in t else "") + ". Validation accuracy under "
            f"10-step PGD at that eps: {_pct(t.get('standard_val_pgd_accuracy', math.nan))} "
            f"-> {_pct(t.get('val_pgd_accuracy', math.nan))}.")
    lines += _legend(a)
    lines.append(f"Attack time {a.seconds:.1f} s ({first}) and {b.seconds:.1f} s ({second}); "
                 f"total {s.seconds:.1f} s.")
    return "\n".join(lines) + "\n"
