"""The fitness-choice report: held-out robustness per (fitness, method) with
95 % CIs over seeds, paired tests of each fitness against the reference
(seed by seed, per method and pooled), and the decision rule for the default
(pure Python and scipy; no torch).
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

__all__ = ["COLUMNS", "Decision", "choose_default", "paired_arms", "write_report"]

# (column, label): robust accuracies (higher is better) and the test accuracy
COLUMNS: tuple[tuple[str, str], ...] = (
    ("test_accuracy", "Test acc."),
    ("autoattack_mean", "AutoAttack L∞ (mean)"),  # only when it ran (--autoattack)
    ("square_mean", "Square L∞ (mean)"),
    ("pixel_mean", "Pixel L0 (mean)"),
    ("heldout_bank", "Held-out bank"),
    ("heldout_mean", "**Held-out robustness**"),
    ("square_bank_mean", "Square + held-out bank"),
    ("fitness_bank", "Fitness bank (held in for bank)"),
    ("pgd_mean", "PGD L∞ (held in for direct)"),
)
TESTED = ("heldout_mean", "autoattack_mean", "square_mean", "pixel_mean", "heldout_bank",
          "square_bank_mean", "test_accuracy")
ATTACK_PREFIX = "heldout_bank_attack_"
MAX_ACCURACY_LOSS = 0.01  # the "without losing more than 1 point of test accuracy"
ALPHA = 0.05


def paired_arms(rows: Sequence[dict[str, Any]], arm: str, reference: str, metric: str,
                method: str | None = None) -> PairedResult:
    """``arm`` against ``reference`` on ``metric`` over the (method, seed)
    pairs both finished (one method, or all of them pooled)."""
    def values(name: str) -> dict[tuple[str, int], float]:
        return {(r["method"], r["seed"]): float(r[metric]) for r in rows
                if r["arm"] == name and (method is None or r["method"] == method)
                and metric in r and not math.isnan(float(r[metric]))}

    a, b = values(arm), values(reference)
    keys = sorted(set(a) & set(b))
    return paired_comparison([a[k] for k in keys], [b[k] for k in keys], higher_is_better=True,
                             baseline_name=reference, metric=metric)


@dataclass(frozen=True)
class Decision:
    choice: str
    reason: str


def choose_default(robust: PairedResult, accuracy: PairedResult, arm: str, reference: str,
                   *, alpha: float = ALPHA, max_loss: float = MAX_ACCURACY_LOSS,
                   label: str = "held-out robustness") -> Decision:
    """``arm`` becomes the default only on evidence: its pooled held-out
    robustness is higher than ``reference``'s with a two-sided Wilcoxon
    p < ``alpha`` and it loses at most ``max_loss`` test accuracy on
    average; otherwise ``reference`` (the paper's measure) stays."""
    if robust.n < 2:
        return Decision(reference, f"fewer than 2 paired winners (n = {robust.n}); nothing to "
                                   f"decide on, {reference} stays")
    gain, loss = robust.diff_mean, -accuracy.diff_mean
    facts = (f"{label} {arm} - {reference} = {100 * gain:+.1f} ± "
             f"{100 * robust.diff_ci95:.1f} points (Wilcoxon p = {p_value(robust.wilcoxon_p)}, "
             f"n = {robust.n} pairs), test accuracy {100 * -loss:+.1f} points")
    significant = not math.isnan(robust.wilcoxon_p) and robust.wilcoxon_p < alpha
    if gain > 0 and significant and loss <= max_loss:
        return Decision(arm, f"{arm}: {facts}")
    if gain > 0 and significant:
        return Decision(reference, f"{reference}: {arm} is more robust but costs more than "
                                   f"{100 * max_loss:.0f} point of test accuracy; {facts}")
    return Decision(reference, f"{reference}: no significant gain for {arm}; {facts}")


def _columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """COLUMNS, with one column per attack of the held-out bank (rows of
    ``assess``'s by-attack breakdown) after the held-out bank's, and the
    ``autoattack_mean`` and ``square_bank_mean`` only where rows carry them."""
    attacks = sorted({k for r in rows for k in r if k.startswith(ATTACK_PREFIX)})
    out: list[tuple[str, str]] = []
    for col, label in COLUMNS:
        if col in ("autoattack_mean", "square_bank_mean") and not any(col in r for r in rows):
            continue
        out.append((col, label))
        if col == "heldout_bank":
            out += [(a, f"Held-out bank: {a.removeprefix(ATTACK_PREFIX)}") for a in attacks]
    return out


def _aggregate(rows: Sequence[dict[str, Any]], arm: str, method: str,
               columns: Sequence[tuple[str, str]] = COLUMNS) -> dict[str, Any]:
    cell = [r for r in rows if r["arm"] == arm and r["method"] == method]
    out: dict[str, Any] = {"arm": arm, "method": method, "n": len(cell)}
    for col, _ in columns:
        out[col] = mean_ci95([r[col] for r in cell if col in r])
    return out


def _intro(rows: Sequence[dict[str, Any]], arms: Sequence[str], command: str, config: Any,
           heldout_bank: Path) -> list[str]:
    """The title, the command and what every winner was attacked with."""
    ran = {k for r in rows for k in r}
    autoattack = ""
    if "autoattack_mean" in ran:
        autoattack = (f"AutoAttack (APGD-CE, APGD-T, Square of its standard version from "
                      f"ART's parts, FAB-T missing in ART; {config.autoattack_iter} iterations, "
                      f"{config.autoattack_queries} queries, first "
                      f"{min(config.autoattack_images, config.images)} images; its column is "
                      "the mean over the eps grid), ")
    eps = "/".join(sorted({k.removeprefix("square_eps") for r in rows for k in r
                           if k.startswith("square_eps")}, key=int)) or "n/a"
    return [f"# Which fitness finds robust architectures? ({', '.join(arms)})", "",
            f"Generated {datetime.now().isoformat(timespec='seconds')} on "
            f"{platform.platform()} by", "", f"    {command}", "",
            "Each arm is a `python -m ras_deap.compare` run whose searches used one "
            "`--robustness` choice, with otherwise identical settings, so the seeds pair the "
            "arms. Every winner (the re-trained best model of a (method, seed) cell) is "
            f"attacked with: {autoattack}ART's gradient-free SquareAttack (L∞, "
            f"{config.square_iter} queries, first {config.images} quarantined test images, "
            f"eps {eps} steps of the data's intensity grid; no fitness runs it), ART's "
            "PixelAttack (L0, DE, on the model itself, from the cell's assessment; the same "
            "algorithm family as the L0 half of the fitness bank, which runs it on other "
            f"models) and the held-out transfer bank `{heldout_bank}`. Numbers are robust "
            "accuracy in % (correct both clean and under attack), mean ± 95 % t-interval "
            "over seeds. **Held-out robustness** is the mean of the Square, Pixel and "
            "held-out-bank columns.", ""]


def _networks(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Which winners were re-trained, and whether they reproduced their cells."""
    retrained = [r for r in rows if "reproduced" in r]
    if not retrained:
        return []
    bad = [f"{r['arm']}/{r['method']}-seed{r['seed']}" for r in retrained
           if not r["reproduced"]]
    return [f"**Networks:** {len(retrained)} of {len(rows)} winners had no stored weights "
            "and were re-trained as their comparison's final training was (same "
            "schedule and seed); "
            + (f"{len(retrained) - len(bad)} reproduced every stored final metric, "
               f"these did not: {', '.join(bad)}. Those are other networks of the same "
               "architecture, trained the same way: every column is measured on them, "
               "except Pixel and PGD, which their comparison measured on the original "
               "networks and are left out (n/a); the fitness bank is the re-training's "
               "own measure." if bad else
               "each reproduced every stored final metric (test accuracy, fitness-bank "
               "robustness per cell, ...), so they are the networks the comparison "
               "measured."), ""]


def _robustness_table(rows: Sequence[dict[str, Any]], arms: Sequence[str],
                      methods: Sequence[str], columns: Sequence[tuple[str, str]]) -> list[str]:
    lines = ["## Robustness of the winners", "",
             "| fitness | method | n | " + " | ".join(label for _, label in columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for method in methods:
        for arm in arms:
            agg = _aggregate(rows, arm, method, columns)
            if agg["n"]:
                lines.append(f"| {arm} | {METHOD_LABELS.get(method, method)} | {agg['n']} | "
                             + " | ".join(percent_ci(*agg[c]) for c, _ in columns) + " |")
    return lines


def _paired(rows: Sequence[dict[str, Any]], others: Sequence[str], reference: str,
            methods: Sequence[str], columns: Sequence[tuple[str, str]],
            primary: str) -> tuple[list[str], list[Decision]]:
    """The paired tests of each arm against ``reference`` (per method and
    pooled), and each arm's decision on ``primary``."""
    lines = ["", f"## Paired by seed: each fitness - {reference}", "",
             "Differences in points; W/T/L = wins/ties/losses; p from the two-sided Wilcoxon "
             "signed-rank and paired t tests. *pooled* takes every (method, seed) pair "
             "(pairs of one seed share its data split, so the pooled p is optimistic).", "",
             "| fitness | method | metric | n | difference | W/T/L | Wilcoxon p | t-test p |",
             "|---|---|---|---|---|---|---|---|"]
    labels = dict(columns)
    tested = [m for m in TESTED if m in labels]
    attack_cols = [c for c, _ in columns if c.startswith(ATTACK_PREFIX)]
    tested[tested.index("heldout_bank") + 1:tested.index("heldout_bank") + 1] = attack_cols
    decisions = []
    for arm in others:
        for method in [*methods, None]:
            for metric in tested:
                res = paired_arms(rows, arm, reference, metric, method)
                name = METHOD_LABELS.get(method, method) if method else "*pooled*"
                if res.n:
                    lines.append(f"| {arm} | {name} | {labels[metric]} | {res.n} | "
                                 f"{percent_ci(res.diff_mean, res.diff_ci95)} | "
                                 f"{res.wins}/{res.ties}/{res.losses} | "
                                 f"{p_value(res.wilcoxon_p)} | {p_value(res.t_p)} |")
        decisions.append(choose_default(paired_arms(rows, arm, reference, primary),
                                        paired_arms(rows, arm, reference, "test_accuracy"),
                                        arm, reference,
                                        label="held-out robustness" if primary == "heldout_mean"
                                        else "Square + held-out bank"))
    return lines, decisions


def write_report(path: Path, rows: Sequence[dict[str, Any]], *, reference: str,
                 arms: Sequence[str], methods: Sequence[str], command: str, config: Any,
                 heldout_bank: Path, missing: Sequence[str] = (),
                 bank_notes: Sequence[str] = (), compute: str | None = None) -> list[Path]:
    """Write ``path`` (Markdown) and ``<stem>.csv`` (one row per winner).
    ``bank_notes``: what each held-out bank holds and shares with the
    fitness (:func:`ras_deap.compare.heldout.describe_bank`); ``compute``: what
    the assessment cost (:func:`.heldout_sessions.compute_line`)."""
    from ..atomic import write_atomic, write_csv_atomic

    others = [a for a in arms if a != reference]
    # the decision's metric: held-out robustness, or, where PixelAttack was not
    # measured on the assessed networks, Square + held-out bank
    primary = ("heldout_mean" if any(not math.isnan(float(r.get("heldout_mean", math.nan)))
                                     for r in rows) or not rows else "square_bank_mean")
    columns = _columns(rows)
    lines = _intro(rows, arms, command, config, heldout_bank)
    if bank_notes:
        lines += ["**The held-out bank:**", "", *[f"* {n}" for n in bank_notes], ""]
    if compute:
        lines += [compute, ""]
    lines += _networks(rows)
    if missing:
        lines += [f"**Incomplete:** {len(missing)} cells have not finished yet "
                  f"({', '.join(missing)}); the tables use the finished ones.", ""]
    lines += _robustness_table(rows, arms, methods, columns)
    paired, decisions = _paired(rows, others, reference, methods, columns, primary)
    measure = ("held-out robustness" if primary == "heldout_mean" else
               "robustness under Square + the held-out bank (PixelAttack not measured on these "
               "networks)")
    lines += [*paired, "", "## Decision", "",
              f"Rule: an arm replaces `{reference}` as the default only if its pooled "
              f"{measure} is higher with Wilcoxon p < {ALPHA} and it loses at most "
              f"{100 * MAX_ACCURACY_LOSS:.0f} point of test accuracy on average.", ""]
    lines += [f"* **{d.choice}** ({d.reason})" for d in decisions]
    md = write_atomic(path, "\n".join(lines) + "\n")
    csv_path = path.with_suffix(".csv")
    keys = sorted({k for r in rows for k in r} - {"arm", "method", "seed"})
    write_csv_atomic(csv_path, sorted(rows, key=lambda r: (r["arm"], r["method"], r["seed"])),
                     ["arm", "method", "seed", *keys])
    return [md, csv_path]
