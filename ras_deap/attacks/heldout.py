"""Build a held-out transfer set: a bank that shares nothing with any fitness.

    python -m ras_deap.attacks heldout --dataset digits --split test --seed 0 \\
        --out docs/results/heldout-test-digits-seed0.npz

What makes it held out, each by construction and recorded in its manifest:

* **base images**: the dataset's *assessment split* (``--split assessment``:
  fixed, disjoint by content from train/validation/test of every seed and
  from every fitness bank's base images, :mod:`ras_deap.data.assessment`),
  or the *test split of one seed* (``--split test``: disjoint from that
  seed's train and validation splits and from the whole bank split, so from
  everything the searches of that seed trained, selected or measured
  robustness on; for datasets whose assessment split is too small, digits);
* **source models**: families no fitness bank was crafted on
  (:mod:`ras_deap.attacks.heldout_sources`: an MLP and a plain VGG-style CNN
  by default, optionally a linear softmax model, where the fitness banks
  used ResNets and a CapsNet);
* **attacks**: algorithms that built no fitness bank (those used ART's
  PixelAttack and ThresholdAttack with DE / CMA-ES): ART's decision-based
  ``HopSkipJump`` (Linf, minimal perturbation; a sample is kept at the
  smallest threshold of the data's Linf grid that holds it) and ART's
  ``ProjectedGradientDescent`` run on the held-out sources and transferred
  (Linf, at each threshold of the grid). The direct fitness runs white-box
  PGD on the network itself; the transferred PGD is reported apart so that
  either reading can be taken.

Which base images each source attacks (``--select``): ``first``, the first
``--images`` of the split in its own order (the default, how the digits
banks were built); or ``margin``, the ``--candidates`` images of the split
(of its first ``--images``, if given) that the source classifies correctly
with the smallest *logit margin* (true-class logit minus the largest other
one), smallest first. On 8-bit data (mnist10k) the sources are confident on
almost every image, and random images almost never flip at <= 10/255, so a
bank of the first images comes out nearly empty; the smallest-margin images
are the ones that flip at the grid's small thresholds. The margin is read
from the held-out sources only, never from a searched network or a fitness
source, so the selection shares nothing with any fitness either. What it
does change is the population: the set is made of images near the
*sources'* decision boundaries, which tend to be hard images for any
classifier, so its error rates are not those of random images. Every
network assessed on it sees the same samples, so comparisons between
networks (paired by seed) stay fair; absolute rates must be read as "on
boundary images" (the manifest records the rule, the candidates and the
largest margin taken per source).

The result is an ordinary bank (:func:`ras_deap.bank.save_bank`, samples
that fool their source only), so ``assess --heldout-bank`` and
``compare.heldout --heldout-bank`` take it; they check it with
:func:`ras_deap.bank.check_heldout`, and a search refuses it as a fitness
bank. Every image has its own seed (also ART's HopSkipJump noise, which it
would otherwise draw from the OS); the same command gives the same arrays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..bank import (
    AdversarialBank,
    default_linf_thresholds,
    linf_grid,
    quarantine_record,
    save_bank,
)
from .build import BankBuildError
from .heldout_config import HELDOUT_ATTACKS, HeldoutConfig
from .samples import SampleParts

__all__ = ["build_heldout_bank", "heldout_table", "logit_margins"]

class _Float32(nn.Module):
    """ART's HopSkipJump queries in float64; the sources take float32."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.float())


def _classifier(model: nn.Module, shape: tuple[int, ...], num_classes: int):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=_Float32(model).eval(), loss=nn.CrossEntropyLoss(),
                             input_shape=tuple(shape), nb_classes=num_classes,
                             clip_values=(0.0, 1.0), device_type="cpu")


def _base_images(cfg: HeldoutConfig, dataset):
    """The split the held-out samples start from (first ``cfg.images``)."""
    from ..data.assessment import assessment_split

    if cfg.split == "assessment":
        split = assessment_split(dataset)
        if split is None:
            raise BankBuildError(f"dataset {cfg.dataset!r} has no assessment split (only the "
                             "embedded digits and mnist10k have one); use --split test")
    else:
        split = dataset.test
    n = len(split) if cfg.images is None else min(cfg.images, len(split))
    return split.x[:n], split.y[:n], split.index[:n]


def logit_margins(model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True-class logit minus the largest other logit, per image (negative
    where the model is wrong). Logits, not probabilities: a confident source
    gives most 8-bit images a softmax of exactly 1.0 in float32, which would
    leave them tied."""
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(np.ascontiguousarray(x[i:i + 256])))
                            for i in range(0, len(x), 256)]).double().numpy()
    rows = np.arange(len(y))
    true = logits[rows, y].copy()
    logits[rows, y] = -np.inf
    return true - logits.max(axis=1)


def _select(model: nn.Module, x: np.ndarray, y: np.ndarray, correct: np.ndarray,
            cfg: HeldoutConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Positions (into the offered images ``x``) that a source attacks, and
    what the manifest records of the choice. ``first``: every correctly
    classified one (``correct``), in split order. ``margin``: the
    ``candidates`` correctly classified ones with the smallest logit margin
    on this source, smallest first."""
    if cfg.select == "first":
        return correct, {}
    margin = logit_margins(model, x[correct], y[correct])
    order = np.argsort(margin, kind="stable")[: cfg.candidates]

    def stats(m: np.ndarray) -> dict[str, float] | None:
        return {k: round(float(f(m)), 4) for k, f in
                (("min", np.min), ("median", np.median), ("max", np.max))} if len(m) else None

    return correct[order], {"selected": "smallest logit margin on this source",
                            "candidates": len(order),
                            "logit_margin_selected": stats(margin[order]),
                            "logit_margin_all_correct": stats(margin)}


def _bin(dist: np.ndarray, ths: tuple[int, ...], step: float) -> np.ndarray:
    """The smallest threshold (in grid steps) holding each Linf distance, 0
    where none does."""
    out = np.zeros(len(dist), dtype=np.int64)
    for t in sorted(ths, reverse=True):
        out[dist <= t * step + 1e-6] = t
    return out


@contextlib.contextmanager
def _seeded_random_state(seed: int) -> Iterator[None]:
    """ART's HopSkipJump draws its starting noise from a fresh
    ``np.random.RandomState()``, seeded from the OS, so two runs differ.
    While it runs, an unseeded RandomState gets ``seed`` instead."""
    original = np.random.RandomState

    class _Seeded(original):  # type: ignore[misc, valid-type]
        def __init__(self, seed_: Any = None) -> None:
            super().__init__(seed if seed_ is None else seed_)

    np.random.RandomState = _Seeded
    try:
        yield
    finally:
        np.random.RandomState = original


def _hsj(model, x, y, cfg: HeldoutConfig, dataset, ths, step, src: int, log_bar):
    """HopSkipJump (Linf, untargeted) per image, each with its own seed."""
    from art.attacks.evasion import HopSkipJump

    from ..evaluation.inference import predict
    from ..seeding import seed_everything
    from .attack import image_seed

    clf = _classifier(model, dataset.shape, dataset.num_classes)
    attack = HopSkipJump(clf, targeted=False, norm=np.inf, max_iter=cfg.hsj_max_iter,
                         max_eval=cfg.hsj_max_eval, init_eval=cfg.hsj_init_eval, verbose=False)
    adv = np.empty_like(x)
    for i in range(len(x)):
        seed = image_seed(cfg.seed, 3000, src, i)
        seed_everything(seed)
        with _seeded_random_state(seed):
            adv[i] = np.clip(attack.generate(x[i:i + 1].astype(np.float32)), 0, 1)[0]
        log_bar.update(1)
    dist = np.abs(adv - x).reshape(len(x), -1).max(axis=1)
    pred = predict(model, adv)
    th = _bin(dist, ths, step)
    ok = (pred != y) & (th > 0)
    return [(adv[ok], pred[ok], th[ok], np.flatnonzero(ok))], len(x), dist


def _pgd(model, x, y, cfg: HeldoutConfig, dataset, ths, step):
    """ART's PGD (Linf, eps = th grid steps) on the source, batched."""
    from art.attacks.evasion import ProjectedGradientDescent

    from ..evaluation.inference import predict

    clf = _classifier(model, dataset.shape, dataset.num_classes)
    out = []
    for t in ths:
        eps = t * step
        attack = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=eps / 4,
                                          max_iter=cfg.pgd_steps, num_random_init=0,
                                          batch_size=256, verbose=False)
        adv = np.clip(attack.generate(x, y=y).astype(np.float32), x - eps, x + eps)
        adv = np.clip(adv, 0, 1)
        pred = predict(model, adv)
        ok = pred != y
        out.append((adv[ok], pred[ok], np.full(int(ok.sum()), t, dtype=np.int64),
                    np.flatnonzero(ok)))
    return out


def _attack_source(k: int, name: str, cfg: HeldoutConfig, dataset: Any, base: tuple,
                   grid: tuple[tuple[int, ...], float], parts: SampleParts, show_progress: bool,
                   log: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train held-out source ``k`` (``name``), choose its base images and run
    every held-out attack on it at ``grid`` (the thresholds, in grid steps,
    and the step in [0, 1]); the successes go to ``parts``. Returns the
    manifest's records of the source and of its attacks."""
    from tqdm.auto import tqdm

    from ..evaluation.inference import accuracy, predict
    from .attack import image_seed
    from .heldout_sources import build_heldout_source

    x_all, y_all, index_all = base
    ths, step = grid
    t0 = time.perf_counter()
    model = build_heldout_source(name, dataset, image_seed(cfg.seed, 2000, k), cfg.source)
    train_s = time.perf_counter() - t0
    correct = predict(model, x_all) == y_all
    pos, selection = _select(model, x_all, y_all, np.flatnonzero(correct), cfg)
    x, y, index = x_all[pos], y_all[pos], index_all[pos]
    source = {"family": type(model).__name__,
              "test_accuracy": accuracy(model, dataset.test.x, dataset.test.y,
                                        empty=float("nan")),
              "parameters": int(sum(p.numel() for p in model.parameters())),
              "train_seconds": round(train_s, 2),
              "trained_on": f"train split of seed {cfg.seed} ({len(dataset.train)} images)",
              "base_images_correct": int(correct.sum()),
              **selection}
    log(f"trained {name}: test accuracy {source['test_accuracy']:.4f} "
        f"({train_s:.1f} s); attacking {len(x)} of {len(x_all)} base images")
    attacks: dict[str, Any] = {}
    for attack in cfg.attacks:
        t0 = time.perf_counter()
        if attack == "hsj":
            with tqdm(total=len(x), desc=f"{name} HopSkipJump", leave=False,
                      disable=not show_progress) as bar:
                found, attacked, dist = _hsj(model, x, y, cfg, dataset, ths, step, k, bar)
            extra = {"median_linf_steps": round(float(np.median(dist) / step), 3)
                     if len(dist) else None}
        else:
            found, attacked, extra = _pgd(model, x, y, cfg, dataset, ths, step), len(x), {}
        label = HELDOUT_ATTACKS[attack]
        for adv, pred, th, at in found:
            parts.add(x=adv, y_true=y[at], base_index=index[at], source_pred=pred, th=th,
                      norm="Linf", optimizer=label, source_model=name)
        kept = np.concatenate([f[2] for f in found]) if found else np.zeros(0, np.int64)
        attacks[label] = {"attacked": attacked, "kept": len(kept),
                          "by_th": {str(t): int((kept == t).sum()) for t in ths},
                          "seconds": round(time.perf_counter() - t0, 2), **extra}
        log(f"  {name} {label}: {len(kept)} samples ({attacks[label]['seconds']:.1f} s)")
    return source, attacks


def _heldout_description(cfg: HeldoutConfig, sources: dict[str, Any]) -> str:
    """The manifest's sentence on what was held out, and how the images were chosen."""
    split_text = ("the assessment split (fixed; disjoint by content from train/validation/test "
                  "of every seed and from every fitness bank's base images)"
                  if cfg.split == "assessment" else
                  f"the test split of seed {cfg.seed} (disjoint by content from that seed's "
                  "train and validation splits and from the bank split that fitness banks are "
                  "built from)")
    return ("held-out transfer samples: untargeted Linf attacks ("
            + ", ".join(f"ART {HELDOUT_ATTACKS[a]}" for a in cfg.attacks)
            + ") on source models of families no fitness bank used ("
            + ", ".join(f"{s}: {sources[s]['family']}" for s in cfg.sources)
            + f"), from correctly classified images of {split_text}"
            + ("" if cfg.select == "first" else
               f", on each source the {cfg.candidates} of them with the smallest logit margin "
               "(true-class logit minus the largest other) on that source: only held-out "
               "sources choose, never a searched network, so the choice shares nothing with "
               "any fitness, but the samples are images near the sources' decision "
               "boundaries, not random ones")
            + "; only samples that fool "
            "their source are kept, each at the smallest Linf threshold of the data's grid "
            "that holds it")


def build_heldout_bank(cfg: HeldoutConfig, out: str | Path, *, show_progress: bool = True,
                       log=print) -> AdversarialBank:
    """Build the held-out bank described by ``cfg`` into ``out`` (.npz and
    its .json manifest)."""
    import art

    from .. import __version__
    from ..data import load_dataset
    from ..evaluation.machine import machine_record

    out = Path(out)
    if out.suffix != ".npz":
        raise BankBuildError(f"output {out} must end in .npz (the manifest goes next to it as "
                             ".json)")
    wall = time.perf_counter()
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    base = _base_images(cfg, dataset)
    grid = linf_grid(dataset.levels)
    ths_step = (cfg.thresholds(dataset.levels), grid["step_255"] / 255.0)
    torch.set_num_threads(1)
    parts = SampleParts()
    sources: dict[str, Any] = {}
    attacks_info: dict[str, Any] = {}  # per source, per attack
    for k, name in enumerate(cfg.sources):
        sources[name], attacks_info[name] = _attack_source(k, name, cfg, dataset, base,
                                                           ths_step, parts, show_progress, log)
    manifest = {
        "dataset": cfg.dataset,
        "split": cfg.split,
        "seed": cfg.seed,
        "linf_grid": grid,
        "ras_deap_version": __version__,
        "heldout": cfg.to_json(),
        "attack_library": f"adversarial-robustness-toolbox {art.__version__}",
        "torch_version": torch.__version__,
        # the CPU and kernels that trained the sources: the bank's bytes depend on them
        "machine": machine_record(),
        "source_models": sources,
        "attack_cells": attacks_info,  # the stored key (see ras_deap.bank.format)
        "base_images_offered": len(base[0]),
        "seconds": {"this_run_wall": round(time.perf_counter() - wall, 1)},
        "description": _heldout_description(cfg, sources),
    }
    bank = parts.to_bank(dataset.shape, manifest)
    bank.manifest["quarantine"] = quarantine_record(dataset, bank.base_index,
                                                    heldout_split=cfg.split)
    save_bank(bank, out)
    bank.manifest["counts"] = bank.counts()  # as written to the manifest file
    return bank


def heldout_table(manifest: dict) -> str:
    """Samples per (source, attack) and Linf threshold, for ``attacks show``."""
    ths = [str(t) for t in (manifest["heldout"]["linf_th"]
                            or default_linf_thresholds(manifest["linf_grid"]["levels"]))]
    head = ["source", "attack", "attacked", *[f"Linf th={t}" for t in ths], "total", "seconds"]
    body = [[src, label, str(c["attacked"]), *[str(c["by_th"].get(t, 0)) for t in ths],
             str(c["kept"]), f"{c['seconds']:.1f}"]
            for src, by_attack in manifest["attack_cells"].items()
            for label, c in by_attack.items()]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    counts = manifest.get("counts", {})
    lines = [fmt.format(*head), *(fmt.format(*r) for r in body),
             f"held-out bank: {counts.get('total', '?')} samples from "
             f"{counts.get('base_images', '?')} distinct base images of the {manifest['split']} "
             f"split (seed {manifest['seed']}; {manifest.get('base_images_offered', '?')} offered)",
             *([f"base images: per source the {manifest['heldout']['candidates']} correctly "
                "classified ones with the smallest logit margin on that source"]
               if manifest["heldout"].get("select") == "margin" else []),
             f"Linf th unit: {manifest['linf_grid']['unit']}",
             "clean test accuracy: " + ", ".join(
                 f"{k} ({v['family']}) {v['test_accuracy']:.4f}"
                 for k, v in manifest["source_models"].items())]
    return "\n".join(lines)
