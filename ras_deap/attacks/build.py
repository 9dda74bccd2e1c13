"""Build an adversarial bank: train the source models, attack in every attack
setting (:mod:`ras_deap.attacks.settings`), keep the successes, save with
:func:`ras_deap.bank.save_bank`.

Resumable: a work folder ``<out>.partial/`` next to the output holds the
trained source models and every finished (source, attack setting), each
written atomically (:mod:`ras_deap.atomic`). An interrupted build started
again with the same settings skips what is there; nothing found is lost.
Every image gets its own seed derived from (seed, source, attack setting,
image), so the result does not depend on where a build was interrupted.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic, write_bytes_atomic
from ..bank import AdversarialBank, linf_grid, quarantine_record, save_bank
from ..errors import UsageError
from .build_config import BuildConfig
from .samples import SampleParts
from .settings import NORMS, AttackSetting
from .source_models import SOURCE_NAMES

__all__ = [
    "BankBuildError",
    "build_bank",
    "parse_int_list",
    "parse_name_list",
    "setting_arrays",
    "setting_path",
    "table_rows",
    "work_dir_for",
]


class BankBuildError(UsageError, ValueError):
    """Bad build input (an output path, a work folder left by a build with
    other settings, a dataset without the split): one line and exit 2. Not the
    evaluation's ``BuildError``, a genome that does not compile."""


# The work folder's sub-folder of finished (source, attack setting) results: its
# stored name, so work folders of earlier builds resume.
_SETTINGS_DIR = "cells"


def _has_progress(work: Path) -> bool:
    """Whether a work folder holds a trained source model or a finished attack
    setting."""
    return any(p.is_file() for sub in ("models", _SETTINGS_DIR) if (work / sub).is_dir()
               for p in (work / sub).iterdir())


def work_dir_for(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".partial")


def _atomic_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _seed_parts(source: str, setting: AttackSetting) -> tuple[int, ...]:
    return (SOURCE_NAMES.index(source), NORMS.index(setting.norm), setting.th, setting.es)


def train_or_load(name: str, cfg: BuildConfig, dataset, work: Path, log) -> tuple[Any, dict]:
    import torch

    from ..evaluation.inference import accuracy
    from ..seeding import seed_everything
    from .attack import image_seed
    from .source_models import build_source, make_untrained

    pt, meta = work / "models" / f"{name}.pt", work / "models" / f"{name}.json"
    model = make_untrained(name, dataset.shape, dataset.num_classes, dataset.mean, dataset.std,
                           cfg.source)
    if pt.is_file() and meta.is_file():
        model.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
        return model.eval(), json.loads(meta.read_text())
    torch.set_num_threads(1)
    seed_everything(cfg.seed)
    start = time.perf_counter()
    model = build_source(name, dataset, image_seed(cfg.seed, SOURCE_NAMES.index(name)), cfg.source)
    info = {
        "test_accuracy": accuracy(model, dataset.test.x, dataset.test.y,
                                  empty=float("nan")),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    write_bytes_atomic(pt, lambda fh: torch.save(model.state_dict(), fh))
    _atomic_json(meta, info)
    log(f"trained {name}: test accuracy {info['test_accuracy']:.4f} "
        f"({info['train_seconds']:.1f} s)")
    return model.eval(), info


def _margins(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true class's probability minus the largest other one, under the
    softmax of the model's outputs (what ART's attacks minimise)."""
    import torch

    with torch.no_grad():
        probs = torch.cat([model(torch.from_numpy(np.ascontiguousarray(x[i:i + 256])))
                           .softmax(dim=1) for i in range(0, len(x), 256)]).numpy()
    true = probs[np.arange(len(y)), y]
    probs[np.arange(len(y)), y] = -np.inf
    return true - probs.max(axis=1)


def _images_for(name: str, setting: AttackSetting, model, cfg: BuildConfig,
                dataset) -> np.ndarray:
    """Positions in the bank split to attack in one (source, attack setting),
    among the images the source classifies correctly (attacks start from
    correct predictions); each setting draws its own, which spreads the bank
    over many distinct base images.

    ``select="random"``: a seeded order of its own, first ``images_per_setting``
    (``linf_images_per_setting`` in Linf settings, if set).
    ``select="margin"``: a seeded draw without replacement (Gumbel top-k)
    where the image of margin rank r (0 = the smallest margin between the true
    class and the next, see :func:`_margins`) has weight 1 / (r + 1), among
    the ``pool`` lowest ranks if set. A confident source gives most images a
    true-class probability of 1.0 in float32, a flat objective for DE /
    CMA-ES. On mnist10k (probe on a 1000-image split) the ResNet's L0 attacks
    (DE, 20 iterations) succeeded on nearly every image of rank < 25, on most
    of rank 25-100 and on almost none of rank > 300, and white-box PGD
    flipped only 3 of 988 images at 1/255 (ranks 0, 1 and 3). Random draws
    would almost never attack those; this draw nearly always does, and each
    setting still draws its own."""
    from ..evaluation.inference import predict
    from .attack import image_seed

    rng = np.random.default_rng(image_seed(cfg.seed, 1000, *_seed_parts(name, setting)))
    x, y = dataset.bank.x, dataset.bank.y
    if cfg.select == "random":
        order = rng.permutation(len(dataset.bank))
        correct = predict(model, x[order]) == y[order]
        return order[correct][: cfg.images_for(setting)]
    candidates = np.flatnonzero(predict(model, x) == y)
    by_margin = candidates[np.argsort(_margins(model, x[candidates], y[candidates]),
                                      kind="stable")][: cfg.pool]  # least sure first
    keys = -np.log1p(np.arange(len(by_margin))) + rng.gumbel(size=len(by_margin))
    return by_margin[np.argsort(-keys, kind="stable")][: cfg.images_for(setting)]


def _run_setting(name: str, setting: AttackSetting, model, idx: np.ndarray, cfg: BuildConfig,
                 dataset, path: Path, show_progress: bool) -> dict[str, np.ndarray]:
    from tqdm.auto import tqdm

    from ..data.assessment import fitness_positions
    from .attack import run_attack_setting

    x, y = dataset.bank.x[idx], dataset.bank.y[idx]
    step255 = linf_grid(dataset.levels)["step_255"]
    with tqdm(total=len(idx), desc=f"{name} {setting.key}", leave=False,
              disable=not show_progress) as bar:
        # images of the assessment split keep their place (and so every other image
        # its seed) but are not attacked: no fitness bank may be built from them
        res = run_attack_setting(model, x, y, setting, max_iter=cfg.max_iter, seed=cfg.seed,
                                 num_classes=dataset.num_classes,
                                 seed_parts=_seed_parts(name, setting), progress=bar,
                                 linf_step255=step255, skip=~fitness_positions(dataset)[idx])
    limit = (setting.th if setting.norm == "L0" else setting.th * step255) + 1e-3
    if res.success.any() and res.max_change[res.success].max() > limit:
        raise RuntimeError(f"{name} {setting.key}: a sample exceeds its threshold "
                           f"({res.max_change[res.success].max()} > {setting.th}); ART output "
                           "was not projected correctly")
    arrays = {"index": idx.astype(np.int64), "x_adv": res.x_adv, "success": res.success,
              "pred": res.pred, "max_change": res.max_change,
              "seconds": np.float64(res.seconds)}
    write_bytes_atomic(path, lambda fh: np.savez_compressed(fh, **arrays))
    return arrays


def setting_path(work: Path, name: str, setting: AttackSetting) -> Path:
    """Where one (source, attack setting)'s finished attack results live in the
    work folder."""
    return work / _SETTINGS_DIR / f"{name}__{setting.key}.npz"


def setting_arrays(name: str, setting: AttackSetting, model, cfg: BuildConfig, dataset,
                   work: Path, show_progress: bool) -> dict[str, np.ndarray]:
    """One (source, attack setting)'s attack results: read from the work
    folder, or attacked now and written there."""
    path = setting_path(work, name, setting)
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    idx = _images_for(name, setting, model, cfg, dataset)
    return _run_setting(name, setting, model, idx, cfg, dataset, path, show_progress)


def table_rows(manifest: dict) -> list[tuple[str, str, dict[str, int], int]]:
    """(source, optimizer, {column: count}, total) rows of the Table-1 analog, a
    column per (norm, threshold)."""
    rows = []
    # The JSON manifest is written with sorted keys: restore Table 1's order.
    sources = sorted(manifest["attack_cells"],
                     key=lambda s: SOURCE_NAMES.index(s) if s in SOURCE_NAMES else 99)
    for src in sources:
        results = sorted(manifest["attack_cells"][src].values(),
                         key=lambda c: (NORMS.index(c["norm"]), c["th"]))
        for opt in manifest["build"]["optimizers"]:
            cols = {f"{c['norm']} th={c['th']}": c["succeeded"] for c in results
                    if c["optimizer"] == opt}
            rows.append((src, opt, cols, sum(cols.values())))
    return rows


def _check_output(out: Path) -> None:
    if out.suffix != ".npz":
        raise BankBuildError(f"output {out} must end in .npz (the manifest goes next to it as "
                             ".json)")


def _resuming(work: Path, cfg: BuildConfig) -> bool:
    """Whether ``work`` holds a build with ``cfg``'s settings to resume. A work
    folder of other settings is refused once it holds progress (nothing found
    is thrown away), and forgotten if it holds none."""
    cfg_path = work / "config.json"
    if not cfg_path.is_file():
        return False
    try:
        old = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        old = None
    if old == cfg.to_json():
        return True
    if _has_progress(work):
        raise BankBuildError(f"work folder {work} holds a build with other settings; rerun "
                             "with the same settings to resume, or delete the folder to "
                             "start over")
    cfg_path.unlink()  # settings of a build that never started: nothing to keep
    return False


def _setting_info(setting: AttackSetting, arrays: dict[str, Any], ok: np.ndarray,
                  skipped: int) -> dict[str, Any]:
    """The manifest's record of one (source, attack setting)."""
    n_ok, seconds = int(ok.sum()), float(arrays["seconds"])
    info = {"norm": setting.norm, "th": setting.th, "optimizer": setting.optimizer,
            "attacked": len(ok), "succeeded": n_ok,
            "success_rate": round(n_ok / len(ok), 4) if len(ok) else 0.0,
            "seconds": round(seconds, 2),
            "seconds_per_image": round(seconds / max(1, len(ok)), 4)}
    if skipped:  # drawn, but in the assessment split: not attacked, not stored
        info["assessment_skipped"] = skipped
    return info


def _attack_sources(cfg: BuildConfig, dataset: Any, work: Path,
                    attack_settings: list[AttackSetting], show_progress: bool,
                    log: Any) -> tuple[SampleParts, dict[str, dict], dict[str, dict]]:
    """Train (or load) every source and attack it in every setting (or read
    the finished settings back): the successes, and the manifest's records
    of the sources and of each (source, setting)."""
    from ..data.assessment import fitness_positions

    usable = fitness_positions(dataset)
    parts = SampleParts()
    models_info: dict[str, dict] = {}
    settings_info: dict[str, dict] = {}
    for name in cfg.sources:
        model, models_info[name] = train_or_load(name, cfg, dataset, work, log)
        settings_info[name] = {}
        for setting in attack_settings:
            arrays = setting_arrays(name, setting, model, cfg, dataset, work, show_progress)
            # never store a sample of the assessment split (also for results a work
            # folder kept from before the split existed)
            ok = arrays["success"].astype(bool) & usable[arrays["index"]]
            skipped = int((~usable[arrays["index"]]).sum())
            settings_info[name][setting.key] = _setting_info(setting, arrays, ok, skipped)
            parts.add(x=arrays["x_adv"][ok], y_true=dataset.bank.y[arrays["index"][ok]],
                      base_index=dataset.bank.index[arrays["index"][ok]],
                      source_pred=arrays["pred"][ok], th=setting.th, norm=setting.norm,
                      optimizer=setting.optimizer, source_model=name)
    return parts, models_info, settings_info


def _bank_manifest(cfg: BuildConfig, dataset: Any, models_info: dict[str, dict],
                   settings_info: dict[str, dict], wall: float) -> dict[str, Any]:
    import art
    import torch

    from .. import __version__
    from ..evaluation.machine import machine_record

    total_attack = sum(c["seconds"] for s in settings_info.values() for c in s.values())
    total_train = sum(m["train_seconds"] for m in models_info.values())
    manifest = {
        "dataset": cfg.dataset,
        "split": "bank",
        "linf_grid": linf_grid(dataset.levels),
        "ras_deap_version": __version__,
        "seed": cfg.seed,
        "build": cfg.to_json(),
        "attack_library": f"adversarial-robustness-toolbox {art.__version__}",
        "torch_version": torch.__version__,
        # the CPU and kernels that trained the sources: the bank's bytes depend on them
        "machine": machine_record(),
        "source_models": models_info,
        "attack_cells": settings_info,  # the stored key (see ras_deap.bank.format)
        "seconds": {"train": round(total_train, 1), "attack": round(total_attack, 1),
                    "this_run_wall": round(time.perf_counter() - wall, 1)},
        "description": "transferable adversarial samples (paper section 4.1, Table 1): "
                       "successful untargeted ART Pixel (L0) / Threshold (Linf) attacks "
                       "with DE / CMA-ES on correctly classified images of the dataset's "
                       "quarantined bank split (never train/validation/test images, nor "
                       "images of its assessment split)",
    }
    manifest["table1"] = [{"source": s, "optimizer": o, "counts": c, "total": t}
                          for s, o, c, t in table_rows(manifest)]
    return manifest


def build_bank(cfg: BuildConfig, out: str | Path, *, show_progress: bool = True,
               keep_work: bool = False, log=print, workers: int = 1) -> AdversarialBank:
    """Build (or resume building) the bank described by ``cfg`` into ``out``;
    ``workers`` > 1 trains and attacks that many sources at once (the same
    bank: see :mod:`ras_deap.attacks.build_parallel`)."""
    from ..data import load_dataset

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BankBuildError(f"workers {workers!r}: must be an int >= 1 (processes, one source "
                         "each at a time)")
    out = Path(out)
    _check_output(out)
    work = work_dir_for(out)
    resuming = _resuming(work, cfg)
    wall = time.perf_counter()
    # validate everything before the work folder exists, so a corrected command is not
    # refused because of a folder left by a mistyped one
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    if dataset.bank is None or not len(dataset.bank):
        raise BankBuildError(f"dataset {cfg.dataset!r} has no bank split to attack")
    attack_settings = cfg.attack_settings_for(dataset.levels)
    (work / "models").mkdir(parents=True, exist_ok=True)
    (work / _SETTINGS_DIR).mkdir(exist_ok=True)
    if resuming:
        log(f"resuming the build in {work}")
    else:
        _atomic_json(work / "config.json", cfg.to_json())
    if workers > 1 and len(cfg.sources) > 1:
        from .build_parallel import prepare_sources

        prepare_sources(cfg, work, min(workers, len(cfg.sources)),
                        attack_settings=attack_settings,
                        show_progress=show_progress, log=log)
    parts, models_info, settings_info = _attack_sources(cfg, dataset, work, attack_settings,
                                                        show_progress, log)
    bank = parts.to_bank(dataset.shape,
                         _bank_manifest(cfg, dataset, models_info, settings_info, wall))
    bank.manifest["quarantine"] = quarantine_record(dataset, bank.base_index)
    save_bank(bank, out)
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return bank


def parse_int_list(text: str, name: str) -> tuple[int, ...]:
    """'1,3,5' -> (1, 3, 5); BankBuildError naming ``name`` otherwise."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise BankBuildError(f"{name} {text!r}: expected comma-separated integers, e.g. 1,3,5,10") \
            from exc
    return values


def parse_name_list(text: str) -> tuple[str, ...]:
    """'resnet, fs' -> ('resnet', 'fs')."""
    return tuple(v.strip() for v in text.split(",") if v.strip())

