"""Attack a trained network directly with IBM ART (torch).

* **FGSM** (``FastGradientMethod``) and **PGD** (``ProjectedGradientDescent``,
  Linf, ``eps_step = eps/4``, no random start) over an eps grid counted in
  steps of the data's own intensity grid (1/16 on digits, 1/255 on 8-bit).
* **SquareAttack** (opt-in; ART's gradient-free random search, Linf) over
  the same eps grid: a check no gradient masking can pass.
* **AutoAttack** (opt-in; APGD-CE, APGD-T and Square of its standard version
  from ART's parts, see :mod:`.autoattack`) over the same eps grid plus, on
  MNIST-like data, the field's absolute 0.1 and 0.3: rows
  ``autoattack_eps<k>`` / ``autoattack_eps0.1`` (worst case over the
  ensemble) and ``..._apgd-ce`` / ``..._apgd-t`` (robust after those alone).
* **PixelAttack** (L0, ``art.attacks.evasion.PixelAttack`` with differential
  evolution) at ``th`` changed pixels, through
  :func:`ras_deap.attacks.run_attack_setting`, which runs ART's pixel attacks on the
  0-255 scale they need and seeds every image on its own.
* the **transfer bank** through :func:`ras_deap.bank.robustness_metrics`, and
  optionally a second, **held-out bank** (``python -m ras_deap.attacks
  heldout``: base images, source families and attacks no fitness used).

Images are the first N of the dataset's quarantined ``test`` split (a seeded
permutation, so a random sample no search selected on).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch import nn

from ..evaluation.inference import predict
from .assess_config import AssessConfig
from .result import Assessment, AttackRow

__all__ = ["assess_network"]


def _classifier(net: nn.Module, shape: tuple[int, ...], num_classes: int) -> Any:
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(net, loss=nn.CrossEntropyLoss(), input_shape=tuple(shape),
                             nb_classes=num_classes, clip_values=(0.0, 1.0), device_type="cpu")


@contextlib.contextmanager
def _input_gradients_only(net: nn.Module) -> Iterator[None]:
    """The attacks need gradients with respect to the images only: with the
    weights' ``requires_grad`` off, every backward pass skips the weight
    gradients (a third of an mnist10k winner's gradient time, the same input
    gradients). The flags are restored after."""
    flags = [(p, p.requires_grad) for p in net.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _bank_rows(net: nn.Module, bank: Any, key: str, label: str,
               by_attack: bool = False) -> list[AttackRow]:
    """Rows ``key``, ``key_L0``, ``key_Linf``: accuracy on a stored bank;
    with ``by_attack`` also ``key_attack_<name>`` per attack algorithm (the
    bank's ``optimizer`` field: DE / CMA-ES, HopSkipJump, PGD-transfer)."""
    from ..bank import metric_name, robustness_metrics

    t0 = time.perf_counter()
    metrics = robustness_metrics(predict(net, bank.x), bank)
    rows = [AttackRow(key, label, "all", "stored samples", len(bank), metrics["robustness"],
                      time.perf_counter() - t0)]
    for norm in ("L0", "Linf"):
        mask = bank.norm == norm
        if mask.any():
            rows.append(AttackRow(f"{key}_{norm}", label, norm, "stored samples",
                                  int(mask.sum()), metrics[f"robustness_{norm}"], 0.0))
    if by_attack:
        for name in sorted(set(bank.optimizer.tolist())):
            mask = bank.optimizer == name
            norms = "/".join(sorted(set(bank.norm[mask].tolist())))
            rows.append(AttackRow(metric_name(key, "attack", name).removeprefix("robustness_"),
                                  f"{label}: {name}", norms, "stored samples", int(mask.sum()),
                                  metrics[metric_name("opt", name)], 0.0))
    return rows


def _autoattack_rows(net: nn.Module, clf: Any, x: np.ndarray, y: np.ndarray,
                     clean_ok: np.ndarray, eps: float, key: str, budget: str,
                     config: AssessConfig, seed: int, journal: Any = None) -> list[AttackRow]:
    """Rows ``<key>_apgd-ce``, ``<key>_apgd-t`` (robust after the ensemble's
    first attacks, each with its own time) and ``<key>`` (after all).

    The images run in parts of :data:`~.autoattack.PART_IMAGES`, each seeded
    by its first image's index and stored in ``journal`` as it ends: at a
    small eps one mnist10k winner costs hours, and an interruption loses at
    most the part under way. Times are the parts' own, summed, so a resumed
    assessment reports what the whole cost."""
    from ..attacks.attack import image_seed
    from .autoattack import COMPONENTS, PART_IMAGES, run_autoattack
    from .journal import valid_part

    m = len(x)
    names = [name for name, _ in COMPONENTS]
    robust_after = {name: np.zeros(m, dtype=bool) for name in names}
    ok = np.zeros(m, dtype=bool)
    seconds = dict.fromkeys(names, 0.0)
    for start in range(0, m, PART_IMAGES):
        stop = min(start + PART_IMAGES, m)
        settings = {"attack": "autoattack", "eps": float(eps), "images": [start, stop],
                    "iter": config.autoattack_iter, "queries": config.autoattack_queries}
        part = journal.part(settings) if journal is not None else None
        if not valid_part(part, stop - start):  # none, or a damaged or planted line
            part = None
        if part is None:
            result = run_autoattack(clf, x[start:stop], y[start:stop], eps,
                                    iters=config.autoattack_iter,
                                    queries=config.autoattack_queries,
                                    seed=image_seed(int(seed), 11, round(eps * 1e6), start))
            still_right = result.robust & (predict(net, result.x_adv) == y[start:stop])
            part = {"robust_after": {n: _bits(result.robust_after[n]) for n in names},
                    "ok": _bits(still_right), "seconds": result.seconds,
                    "cpu_seconds": result.cpu_seconds}
            if journal is not None:
                journal.add_part(settings, part)
        for name in names:
            robust_after[name][start:stop] = _unbits(part["robust_after"][name])
            seconds[name] += float(part["seconds"][name])
        ok[start:stop] = _unbits(part["ok"])
    rows = []
    for name, label in COMPONENTS[:-1]:
        rows.append(AttackRow(f"{key}_{name}", f"AutoAttack after {label}", "Linf", budget, m,
                              float((clean_ok & robust_after[name]).mean()), seconds[name]))
    labels = ", ".join(label for _, label in COMPONENTS)
    rows.append(AttackRow(key, f"AutoAttack ({labels})", "Linf", budget, m,
                          float((clean_ok & ok).mean()), sum(seconds.values())))
    return rows


def _bits(mask: np.ndarray) -> str:
    """A boolean mask as a JSON-friendly string of 0s and 1s."""
    return "".join("1" if v else "0" for v in np.asarray(mask, dtype=bool))


def _unbits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def _autoattack_plan(config: AssessConfig, dataset: Any, levels: int
                     ) -> list[tuple[str, float, str]]:
    """(row key, eps, budget label): the eps grid, then the absolute budgets."""
    grid = levels - 1
    plan = [(f"autoattack_eps{k}", k / grid, f"eps={k}/{grid}") for k in config.eps_for(levels)]
    plan += [(f"autoattack_eps{e:g}", e, f"eps={e:g}")
             for e in config.autoattack_eps_for(levels, tuple(dataset.shape))]
    return plan


def _attack_plan(config: AssessConfig, dataset: Any, levels: int) -> list[tuple[str, Any]]:
    """The attacks to run, in order: (name, eps steps, AutoAttack's (key, eps,
    budget) or pixel threshold)."""
    eps_steps = config.eps_for(levels)
    plan = [("fgsm", k) for k in eps_steps if "fgsm" in config.attacks]
    plan += [("pgd", k) for k in eps_steps if "pgd" in config.attacks]
    plan += [("square", k) for k in eps_steps if "square" in config.attacks]
    if "autoattack" in config.attacks:
        plan += [("autoattack", item) for item in _autoattack_plan(config, dataset, levels)]
    plan += [("pixel", th) for th in config.pixel_th if "pixel" in config.attacks]
    return plan


def _linf_row(name: str, k: int, net: nn.Module, clf: Any, x: np.ndarray, y: np.ndarray,
              clean_ok: np.ndarray, config: AssessConfig, seed: int, grid: int) -> AttackRow:
    """FGSM, PGD or SquareAttack at ``k`` steps of the intensity grid: the
    accuracy on images the network gets right clean and still gets right."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent, SquareAttack

    from ..attacks.attack import image_seed
    from ..seeding import seed_everything
    from .memo import memoised

    t0 = time.perf_counter()
    eps = k / grid
    if name == "fgsm":
        attack = FastGradientMethod(clf, eps=eps, batch_size=256)
        label = "FGSM"
    elif name == "square":
        attack = SquareAttack(memoised(clf), norm=np.inf, eps=eps, max_iter=config.square_iter,
                              nb_restarts=1, batch_size=256, verbose=False)
        label = f"SquareAttack ({config.square_iter} queries)"
        seed_everything(image_seed(int(seed), 7, int(k)))  # ART draws from np.random
    else:
        attack = ProjectedGradientDescent(
            clf, norm=np.inf, eps=eps, eps_step=eps / 4, max_iter=config.pgd_steps,
            num_random_init=0, batch_size=256, verbose=False)
        label = f"PGD ({config.pgd_steps} steps)"
    adv = attack.generate(x, y=y).astype(np.float32)
    ok = clean_ok & (predict(net, adv) == y)
    return AttackRow(f"{name}_eps{k}", label, "Linf", f"eps={k}/{grid}", len(x),
                     float(ok.mean()), time.perf_counter() - t0)


def _pixel_row(th: int, net: nn.Module, x: np.ndarray, y: np.ndarray, clean_ok: np.ndarray,
               config: AssessConfig, seed: int, num_classes: int) -> AttackRow:
    """PixelAttack (DE) changing ``th`` pixels of the first ``len(x)`` images."""
    from ..attacks.attack import run_attack_setting
    from ..attacks.settings import AttackSetting

    t0 = time.perf_counter()
    # only images the network gets right clean can be attacked; the others are lost already
    target = np.flatnonzero(clean_ok)
    resisted = np.zeros(len(x), dtype=bool)
    if len(target):
        result = run_attack_setting(net, x[target], y[target], AttackSetting("L0", int(th), "DE"),
                                    max_iter=config.pixel_iter, seed=int(seed),
                                    num_classes=num_classes, seed_parts=(int(th),))
        resisted[target] = ~result.success
    return AttackRow(f"pixel_th{th}", "PixelAttack (DE)", "L0",
                     f"th={th} pixel{'s' if th != 1 else ''}", len(x),
                     float(resisted.mean()) if len(x) else float("nan"),
                     time.perf_counter() - t0)


def assess_network(net: nn.Module, dataset: Any, bank: Any = None,
                   config: AssessConfig | None = None, *, seed: int = 0,
                   bank_fallback: bool = False, progress: bool = False,
                   source: dict[str, Any] | None = None,
                   heldout_bank: Any = None, journal: Any = None) -> Assessment:
    """Attack ``net`` (inputs in [0, 1], class scores out, on the CPU) on
    ``dataset.test`` and measure it on ``bank`` (an
    :class:`~ras_deap.bank.AdversarialBank`, or None to skip) and on
    ``heldout_bank`` (rows ``heldout_bank*``; None to skip). ``seed`` seeds
    the PixelAttack's per-image evolutions and SquareAttack's and
    AutoAttack's random draws (FGSM and PGD are deterministic). ``journal``
    (an :class:`~ras_deap.assess.journal.AttackJournal` keyed on this network,
    ``config`` and ``seed``) keeps each finished attack's rows, so an
    interrupted assessment runs only the attacks it had not finished."""
    from tqdm.auto import tqdm

    config = config or AssessConfig()
    start = time.perf_counter()
    net = net.cpu().eval()
    levels = int(dataset.levels)
    test = dataset.test
    n = min(config.images, len(test))
    if n < 1:
        raise ValueError(f"dataset {dataset.name!r} has no test images to attack")
    x, y = test.x[:n], test.y[:n]
    test_pred = predict(net, test.x)
    test_accuracy = float((test_pred == test.y).mean())
    clean_ok = test_pred[:n] == y
    rows = [AttackRow("clean", "none (clean)", "-", "-", n, float(clean_ok.mean()))]
    plan = _attack_plan(config, dataset, levels)
    bar = tqdm(total=len(plan) + bool(bank is not None and config.bank)
               + (heldout_bank is not None), desc="assess",
               unit="attack", disable=not progress, leave=False)
    clf = _classifier(net, x.shape[1:], dataset.num_classes) if n else None
    k_l0 = min(config.l0_images, n)
    k_aa = min(config.autoattack_images, n)
    try:
        with _input_gradients_only(net):  # the attacks' gradients: images only
            for name, k in plan:
                label_k = k if name != "autoattack" else k[2]
                done = journal.rows(f"{name} {label_k}") if journal is not None else None
                if done is None:  # else finished before an interruption
                    bar.set_postfix(attack=f"{name} {label_k}")
                    if name == "autoattack":
                        key, eps, budget = k
                        done = _autoattack_rows(net, clf, x[:k_aa], y[:k_aa], clean_ok[:k_aa], eps,
                                                key, budget, config, seed, journal)
                    elif name in ("fgsm", "pgd", "square"):
                        done = [_linf_row(name, k, net, clf, x, y, clean_ok, config, seed,
                                          levels - 1)]
                    else:
                        done = [_pixel_row(k, net, x[:k_l0], y[:k_l0], clean_ok[:k_l0], config,
                                           seed, dataset.num_classes)]
                    if journal is not None:
                        journal.add(f"{name} {label_k}", done)
                rows += done
                bar.update(1)
            if bank is not None and config.bank:
                rows += _bank_rows(net, bank, "bank", "transfer bank")
                bar.update(1)
            if heldout_bank is not None:
                rows += _bank_rows(net, heldout_bank, "heldout_bank", "held-out transfer bank",
                                   by_attack=True)
                bar.update(1)
    finally:
        bar.close()
    return Assessment(dataset=dataset.name, seed=int(getattr(dataset, "seed", 0)), levels=levels,
                      test_accuracy=test_accuracy, test_images=len(test), rows=rows,
                      config=config, seconds=time.perf_counter() - start,
                      bank_fallback=bool(bank_fallback), source=dict(source or {}))
