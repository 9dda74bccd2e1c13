"""Train and attack a bank build's sources in worker processes (``--workers``),
one source per item of the one executor (:class:`ras_deap.executor.ProcessPool`).

Why this is the same bank: each source's model and each (source, attack setting) go to
the shared work folder as files of their own, written atomically, so workers
never write the same file; every model and image has its own seed (see
:mod:`ras_deap.attacks.build`). The parent then assembles the bank from the
folder exactly as a resumed one-process build would, so the arrays and the
sha256 do not depend on the number of workers. An interrupted parallel build
resumes with or without workers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..executor import Crash, ProcessPool
from .build import BankBuildError, BuildConfig, setting_arrays, setting_path, train_or_load
from .settings import AttackSetting

__all__ = ["prepare_sources"]


def _log(message: str) -> None:
    """A worker's progress lines go where the CLI's own do: stderr, keeping
    stdout for the table."""
    print(message, file=sys.stderr, flush=True)


def _prepare_source(name: str, cfg: BuildConfig, work: str) -> str:
    """Worker: train (or load) one source and attack in all its attack settings."""
    import torch

    from ..data import load_dataset

    torch.set_num_threads(1)  # one process per core; more threads only contend
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    model, _ = train_or_load(name, cfg, dataset, Path(work), _log)
    for setting in cfg.attack_settings_for(dataset.levels):
        setting_arrays(name, setting, model, cfg, dataset, Path(work), False)
    return name


def _settings_done(work: Path, sources: tuple[str, ...],
                   attack_settings: Sequence[AttackSetting]) -> int:
    return sum(setting_path(work, name, setting).is_file() for name in sources
               for setting in attack_settings)


PROGRESS_SECONDS = 2.0  # how often the bar counts the finished attack settings


def prepare_sources(cfg: BuildConfig, work: Path, workers: int, *,
                    attack_settings: Sequence[AttackSetting], show_progress: bool = True,
                    log=print) -> None:
    """Fill ``work`` with every source's model and attack results, ``workers``
    sources at a time; a bar counts the finished (source, attack setting)
    pairs. A failing source stops the others (their processes are terminated)
    and its error is raised; a source whose process died twice (killed for
    memory, say) is a :class:`BankBuildError`. What was written stays for the
    resume."""
    from tqdm.auto import tqdm

    total = len(attack_settings) * len(cfg.sources)
    done = _settings_done(work, cfg.sources, attack_settings)
    with ProcessPool(workers, name="attacks-build") as pool, \
            tqdm(total=total, initial=done, desc="attack settings",
                 disable=not show_progress) as bar:
        def count() -> None:
            bar.update(_settings_done(work, cfg.sources, attack_settings) - bar.n)

        prepare = partial(_prepare_source, cfg=cfg, work=str(work))
        for index, outcome in pool.as_completed(prepare, cfg.sources, every=PROGRESS_SECONDS,
                                                idle=count):
            if isinstance(outcome, Crash):
                raise BankBuildError(
                    f"source {cfg.sources[index]}: its worker process died twice "
                    f"({outcome.reason}; killed for memory?); rerun with fewer --workers to "
                    "resume the build")
            log(f"source {outcome}: all {len(attack_settings)} attack settings done")
            count()
