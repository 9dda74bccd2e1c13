"""The methods report of a held-out assessment: one comparison folder, its
methods' winners attacked with AutoAttack and a held-out transfer bank,
paired by seed against a reference method (pure Python and scipy; no torch).

Which question is asked is fixed before the numbers exist (issue #28): is
there a method whose winners are more robust than the reference's under
AutoAttack at the pre-registered eps *and* under the held-out transfer bank,
paired by seed, without losing more than half a point of test accuracy? The
pre-registered test is the paired t-test of AutoAttack robust accuracy at
that eps, each method against the reference, Holm-corrected over the methods
compared; every other p-value on the page is exploratory and says so.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .compare_config import METHOD_LABELS
from .stats import PairedResult, mean_ci95, p_value, paired_comparison, percent_ci

__all__ = ["MAX_ACCURACY_LOSS", "PREREGISTERED_EPS", "Verdict", "holm", "paired_methods",
           "verdict", "write_methods_report"]

PREREGISTERED_EPS = 3  # AutoAttack at 3/255 (the paper's second threshold)
MAX_ACCURACY_LOSS = 0.005  # "without losing more than 0.5 points of test accuracy"
ALPHA = 0.05
# (column, label) in the order of the table
_FIXED = (("test_accuracy", "Test acc."), ("autoattack_mean", "AutoAttack L∞ (grid mean)"),
          ("square_mean", "Square L∞ (mean)"), ("heldout_bank", "Held-out bank"))


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def primary_metric(eps: int = PREREGISTERED_EPS) -> str:
    return f"autoattack_eps{eps}"


def paired_methods(rows: Sequence[dict[str, Any]], method: str, reference: str,
                   metric: str) -> PairedResult:
    """``method`` against ``reference`` on ``metric`` over the seeds both
    finished (higher is better: robust accuracies and test accuracy)."""
    def values(name: str) -> dict[int, float]:
        return {int(r["seed"]): float(r[metric]) for r in rows
                if r["method"] == name and metric in r and not math.isnan(float(r[metric]))}

    a, b = values(method), values(reference)
    seeds = sorted(set(a) & set(b))
    return paired_comparison([a[s] for s in seeds], [b[s] for s in seeds],
                             higher_is_better=True, baseline_name=reference, metric=metric)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(finite)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class Verdict:
    method: str
    more_robust: bool
    reason: str


def verdict(method: str, reference: str, autoattack: PairedResult, adjusted_p: float,
            bank: PairedResult, accuracy: PairedResult) -> Verdict:
    """More robust only on evidence: AutoAttack gain with Holm-adjusted
    p < 0.05, a held-out bank gain, and at most half a point of accuracy lost."""
    if autoattack.n < 2:
        return Verdict(method, False, f"fewer than 2 paired seeds with {reference} "
                                      f"(n = {autoattack.n}): not tested")
    gain, bank_gain, loss = autoattack.diff_mean, bank.diff_mean, -accuracy.diff_mean
    facts = (f"AutoAttack {100 * gain:+.1f} ± {100 * autoattack.diff_ci95:.1f} points "
             f"(paired t p = {p_value(autoattack.t_p)}, Holm {p_value(adjusted_p)}, "
             f"n = {autoattack.n}), "
             f"held-out bank {100 * bank_gain:+.1f} points, test accuracy "
             f"{100 * -loss:+.1f} points")
    ok = (gain > 0 and not math.isnan(adjusted_p) and adjusted_p < ALPHA
          and not math.isnan(bank_gain) and bank_gain > 0 and loss <= MAX_ACCURACY_LOSS)
    return Verdict(method, ok, ("**more robust**: " if ok else "not shown more robust: ")
                   + facts)


def _columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    grid = sorted({int(k.removeprefix("autoattack_eps")) for r in rows for k in r
                   if k.startswith("autoattack_eps") and k[14:].isdigit()})
    absolute = sorted({k for r in rows for k in r
                       if k.startswith("autoattack_eps") and "." in k[14:]})
    cols = [_FIXED[0]]
    cols += [(f"autoattack_eps{k}", f"AutoAttack {k}/255") for k in grid]
    cols += [(k, f"AutoAttack {k[14:]}") for k in absolute]
    cols += [c for c in _FIXED[1:] if any(c[0] in r for r in rows)]
    return cols


def write_methods_report(path: Path, rows: Sequence[dict[str, Any]], *, reference: str,
                         methods: Sequence[str], command: str, config: Any,
                         heldout_bank: Path, missing: Sequence[str] = (),
                         bank_notes: Sequence[str] = (), compute: str | None = None,
                         eps: int = PREREGISTERED_EPS) -> list[Path]:
    """Write ``path`` (Markdown) and ``<stem>.csv`` (one row per winner);
    ``compute``: what the assessment cost (:func:`.heldout_sessions.compute_line`)."""
    from ..atomic import write_atomic, write_csv_atomic

    columns = _columns(rows)
    primary = primary_metric(eps)
    others = [m for m in methods if m != reference]
    tests = {m: (paired_methods(rows, m, reference, primary),
                 paired_methods(rows, m, reference, "heldout_bank"),
                 paired_methods(rows, m, reference, "test_accuracy")) for m in others}
    adjusted = dict(zip(others, holm([tests[m][0].t_p for m in others]), strict=True))
    names = ", ".join(map(_label, methods))
    lines = [f"# Held-out assessment of the comparison's winners: {names}",
             "", f"Generated {datetime.now().isoformat(timespec='minutes')} on "
             f"{platform.node() or 'this machine'} ({platform.processor() or platform.machine()})"
             " by:", "", "```bash", command, "```", "",
             "Each winner (the comparison's final training of its best architecture, re-trained "
             "exactly where its weights were not kept) is attacked with AutoAttack "
             "(APGD-CE, APGD-T and Square of its standard version, from ART's parts) "
             f"on {config.autoattack_images} test images, SquareAttack on {config.images}, "
             "and a held-out transfer bank:", "",
             *(f"* {note}" for note in bank_notes), "",
             *([compute, ""] if compute else []),
             "Robust accuracy in %, mean ± 95 % CI over seeds (higher is better).", ""]
    header = ["Method", "n", *(label for _, label in columns)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        cell = [r for r in rows if r["method"] == method]
        values = [percent_ci(*mean_ci95([r[c] for r in cell if c in r])) for c, _ in columns]
        lines.append(f"| {_label(method)} | {len(cell)} | " + " | ".join(values) + " |")
    lines += ["", f"## The pre-registered question (against {_label(reference)})", "",
              f"Is a method's winner more robust than {_label(reference)}'s under AutoAttack at "
              f"{eps}/255 and under the held-out bank, paired by seed, losing at most "
              f"{100 * MAX_ACCURACY_LOSS:.1f} point of test accuracy? The test is the paired "
              f"t-test of AutoAttack robust accuracy at {eps}/255, Holm-corrected over the "
              f"{len(others)} methods compared; the held-out bank and accuracy conditions are "
              "checked, not tested.", ""]
    for m in others:
        autoattack, bank, accuracy = tests[m]
        found = verdict(m, reference, autoattack, adjusted[m], bank, accuracy)
        lines.append(f"* {_label(m)}: {found.reason}")
    lines += ["", "## Exploratory paired tests (no correction; for reading, not deciding)", "",
              "| Method | Measure | n | method - reference (points) | wins/ties/losses | "
              "Wilcoxon p | t p |", "|---|---|---|---|---|---|---|"]
    for m in others:
        for col, label in columns:
            res = paired_methods(rows, m, reference, col)
            if res.n:
                lines.append(f"| {_label(m)} | {label} | {res.n} | "
                             f"{100 * res.diff_mean:+.1f} ± {100 * res.diff_ci95:.1f} | "
                             f"{res.wins}/{res.ties}/{res.losses} | {p_value(res.wilcoxon_p)} | "
                             f"{p_value(res.t_p)} |")
    if missing:
        lines += ["", f"Not finished yet (not in the tables): {', '.join(missing)}."]
    lines.append("")
    md = write_atomic(path, "\n".join(lines))
    keys = sorted({k for r in rows for k in r} - {"arm", "method", "seed"})
    csv_path = write_csv_atomic(path.with_suffix(".csv"),
                                sorted(rows, key=lambda r: (r["method"], r["seed"])),
                                ["arm", "method", "seed", *keys])
    return [md, csv_path]
