"""AutoAttack (Croce & Hein 2020), the assessment RobustBench reports, from
IBM ART's parts.

The standard version runs, on the images still classified correctly after
the previous attack, **APGD-CE** (untargeted, cross-entropy), **APGD-T**
(targeted DLR-type loss against each of the 9 classes with the highest clean
logits, as RobustBench's ``n_target_classes=9``), **FAB-T** and **Square**
(5000 queries); an image counts as robust only if no attack of the ensemble
finds an adversarial within the L-inf ball (the worst case per image).

ART 1.20 has no FAB, so **FAB-T is left out**; FAB-T is a minimal-norm attack
that rarely breaks an image APGD-T left intact (``benchmarks/
autoattack_crosscheck.py`` measures the gap against torchattacks, which has
it). The rest are ART's own: ``AutoProjectedGradientDescent`` (``loss_type``
``cross_entropy``, and ``difference_logits_ratio`` with ``targeted=True``:
ART's targeted DLR, ``-(z_t - max_{i != t} z_i) / (z_1 - z_3)``, not the
original's ``z_1 - (z_3 + z_4) / 2`` denominator), ``SquareAttack`` (``p_init
= 0.8``, one restart) and the per-image bookkeeping of ``AutoAttack.generate``,
``art.attacks.evasion.auto_attack.run_attack`` (attack only the robust images,
keep an adversarial only if misclassified and within eps). ART's
``AutoAttack`` class itself cannot express the standard version: with
``targeted=True`` it reruns every attack of its list (Square included) against
all n-1 classes after an untargeted pass of each, and its ``generate`` imports
``multiprocess`` (not an ART requirement, not installed here) even for a
serial run.

ART draws its random starts and squares from numpy's and python's global
RNGs; :func:`run_autoattack` seeds them, so a result is reproducible.
Square gets the classifier through :func:`~ras_deap.assess.memo.memoised`:
it spends most of AutoAttack's time at small eps, and two of its three
forward passes per query are of images it ran the query before. APGD gets
its classifier through :func:`~ras_deap.assess.memo.memoised_gradients`:
each step's loss pass also gives the next step's gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .assess_config import AUTOATTACK_COMPONENTS as COMPONENTS
from .memo import memoised, memoised_gradients

__all__ = ["COMPONENTS", "PART_IMAGES", "AutoAttackResult", "run_autoattack",
           "targets_by_logit"]

N_TARGET_CLASSES = 9  # RobustBench's APGD-T: the 9 highest non-true classes
BATCH = 256
# images per seeded, journalled part of an assessment: about 40 CPU-min at 1/255 on a
# conv-heavy mnist10k winner, so an interruption loses little; a part's result does not
# depend on how many images the assessment asks for
PART_IMAGES = 50


@dataclass
class AutoAttackResult:
    """``robust``: per image, correct clean and under every attack;
    ``robust_after``: the same after each component in turn (``COMPONENTS``
    order; the last equals ``robust``); ``seconds`` and ``cpu_seconds``: each
    component's wall and CPU time (this process's, all its threads)."""

    x_adv: np.ndarray
    robust: np.ndarray
    robust_after: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


def targets_by_logit(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per image, the ``k`` classes other than its label with the highest
    logits, highest first (APGD-T's target order)."""
    order = np.argsort(-logits, axis=1, kind="stable")
    others = order[order != labels[:, None]].reshape(len(labels), -1)
    return others[:, :k]


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _apgd_t(clf: Any, eps: float, iters: int, targets: int) -> Callable[..., np.ndarray]:
    """APGD-T as an untargeted attack: for each target in turn, targeted APGD
    with ART's DLR loss on the images no earlier target fooled; success is
    any wrong class, as in the original."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    attack = memoised_gradients(AutoProjectedGradientDescent(
        clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=iters, targeted=True,
        nb_random_init=1, batch_size=BATCH, loss_type="difference_logits_ratio", verbose=False))

    def generate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        labels = y.argmax(1)
        order = targets_by_logit(clf.predict(x, batch_size=BATCH), labels, targets)
        x_adv, robust = x.copy(), np.ones(len(x), dtype=bool)
        for t in range(order.shape[1]):
            idx = np.flatnonzero(robust)
            if not len(idx):
                break
            adv = attack.generate(x[idx], y=_one_hot(order[idx, t], clf.nb_classes))
            fooled = clf.predict(adv, batch_size=BATCH).argmax(1) != labels[idx]
            x_adv[idx[fooled]] = adv[fooled]
            robust[idx[fooled]] = False
        return x_adv

    return generate


def _components(clf: Any, eps: float, iters: int, queries: int
                ) -> list[tuple[str, Callable[..., np.ndarray]]]:
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    # each APGD step's loss pass also gives the next step's gradient: remembered
    apgd_ce = memoised_gradients(AutoProjectedGradientDescent(
        clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=iters, targeted=False,
        nb_random_init=1, batch_size=BATCH, loss_type="cross_entropy", verbose=False))
    # Square re-reads the logits of images it queried one step before: remembered
    square = SquareAttack(memoised(clf), norm=np.inf, eps=eps, max_iter=queries, p_init=0.8,
                          nb_restarts=1, batch_size=BATCH, verbose=False)
    targets = min(N_TARGET_CLASSES, clf.nb_classes - 1)
    return [("apgd-ce", lambda x, y: apgd_ce.generate(x, y=y)),
            ("apgd-t", _apgd_t(clf, eps, iters, targets)),
            ("square", lambda x, y: square.generate(x, y=y))]


class _Component:
    """An attack as ``run_attack`` calls it (``generate``, untargeted)."""

    targeted = False

    def __init__(self, generate: Callable[..., np.ndarray]) -> None:
        self._generate = generate

    def generate(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self._generate(x, y).astype(np.float32)


def run_autoattack(clf: Any, x: np.ndarray, y: np.ndarray, eps: float, *, iters: int = 100,
                   queries: int = 5000, seed: int = 0) -> AutoAttackResult:
    """AutoAttack's standard version (less FAB-T) on ART classifier ``clf``
    (logits out, inputs in [0, 1]) at L-inf ``eps``: images ``x``, int labels
    ``y``. Seeds numpy's, python's and torch's global RNGs from ``seed``."""
    from art.attacks.evasion.auto_attack import run_attack

    from ..seeding import seed_everything

    seed_everything(int(seed))
    y_hot = _one_hot(np.asarray(y), clf.nb_classes)
    x_adv = np.asarray(x, dtype=np.float32).copy()
    robust = clf.predict(x_adv, batch_size=BATCH).argmax(1) == np.asarray(y)
    result = AutoAttackResult(x_adv, robust)
    for key, generate in _components(clf, float(eps), iters, queries):
        t0, c0 = time.perf_counter(), time.process_time()
        if robust.any():
            x_adv, robust = run_attack(x_adv, y_hot, robust, _Component(generate), clf,
                                       norm=np.inf, eps=float(eps))
        result.robust_after[key] = robust.copy()
        result.seconds[key] = time.perf_counter() - t0
        result.cpu_seconds[key] = time.process_time() - c0
    result.x_adv, result.robust = x_adv, robust
    return result
