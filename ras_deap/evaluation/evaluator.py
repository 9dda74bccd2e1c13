"""Fitness of a genome: train its network, then accuracy + robustness.

``Evaluator`` is a small picklable object holding only configuration; the
dataset and the adversarial bank are loaded lazily, once per process, and
cached at module level, so sending an evaluator to a worker process (DEAP's
``toolbox.map`` with multiprocessing or dask) sends a few bytes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ras_deap.bank import (
    AdversarialBank,
    check_quarantine,
    default_bank_path,
    fallback_bank,
    load_bank,
    robustness_metrics,
)
from ras_deap.constants import ROBUSTNESS
from ras_deap.data import Dataset, load_dataset
from ras_deap.genome import Model

from ..errors import TrainingError
from ..seeding import evaluation_seed, seed_everything
from .adversarial import ADVERSARIAL_KINDS, AdversarialSchedule, adversarial_train
from .augment import random_crop_flip
from .compiler import compile_model
from .cost import count_parameters, estimate_flops
from .direct import DirectConfig, direct_robustness, pgd_linf
from .failure import EXPECTED_FAILURES, failure_reason
from .inference import accuracy, predict
from .train_config import TrainConfig
from .trainer import train

__all__ = ["FALLBACK_BANK_SIZE", "ROBUSTNESS_CHOICES", "EvaluationResult", "Evaluator",
           "available_devices", "check_device", "clear_cache"]

log = logging.getLogger(__name__)

FALLBACK_BANK_SIZE = 400
# What the robustness half of the fitness is: the paper's transfer bank, a
# direct white-box attack on the trained network, or the mean of the two.
ROBUSTNESS_CHOICES = ROBUSTNESS


@dataclass
class EvaluationResult:
    """``fitness`` = validation accuracy + robustness (0..2), 0 on failure.
    ``metrics`` is a flat dict of floats ready for MLflow; ``failure`` names
    why a bad individual got fitness 0 (None on success)."""

    fitness: float
    metrics: dict[str, float]
    failure: str | None = None
    genome_id: str = ""
    seed: int = 0
    state_dict: dict[str, torch.Tensor] | None = None
    module: nn.Module | None = field(default=None, repr=False)


@dataclass
class _Data:
    dataset: Dataset
    bank: AdversarialBank
    bank_fallback: bool
    tensors: dict[str, torch.Tensor]


_CACHE: dict[tuple, _Data] = {}


def clear_cache() -> None:
    """Forget the datasets and banks loaded by this process."""
    _CACHE.clear()


def available_devices() -> list[str]:
    """The torch devices this machine can use: cpu, and cuda:N / mps when present."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def check_device(device: str) -> str:
    """``device`` if torch can use it here, else a ConfigError naming the
    devices that are available (checked before any work starts)."""
    from ..config import ConfigError

    available = available_devices()
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device={device!r} is not a torch device; available here: "
                          f"{', '.join(available)} (or leave --device out)") from None
    name = parsed.type if parsed.index is None else f"{parsed.type}:{parsed.index}"
    if name not in available:
        raise ConfigError(f"device={device!r} is not available on this machine; available "
                          f"here: {', '.join(available)} (or leave --device out)")
    return device


class Evaluator:
    """Callable fitness function (see the module docstring).

    ``bank_path``: an adversarial bank for ``dataset_name`` (see
    ``ras_deap.bank``), refused if its base images leak into the split of
    ``seed``; ``None`` uses the shipped bank if there is one and otherwise a
    *fallback* bank of randomly perturbed images of the quarantined bank
    split (not real adversarial samples; reported as metric
    ``bank_fallback`` = 1).
    ``device``: ``None`` picks 'cuda' when available, else 'cpu'.
    ``num_threads``: torch intra-op threads per evaluation (1 keeps parallel
    workers from oversubscribing the CPU).
    ``robustness``: ``'bank'`` (the paper: accuracy on the transfer bank),
    ``'direct'`` (PGD and JSMA on the trained network itself, see
    :mod:`ras_deap.evaluation.direct`, configured by ``direct``) or
    ``'both'`` (their mean, each weighing one half). The metric
    ``robustness`` is the one the fitness uses; ``robustness_bank`` and
    ``robustness_direct`` name each measure.
    ``adversarial``: how :meth:`evaluate` with ``training='pgd-at'|'trades'``
    and :meth:`harden` fine-tune a network (None: the documented
    :class:`~ras_deap.evaluation.adversarial.AdversarialSchedule`).
    """

    def __init__(self, dataset_name: str = "digits", data_dir: str | Path | None = None,
                 bank_path: str | Path | None = None, train_config: TrainConfig | None = None,
                 seed: int = 0, num_threads: int = 1, device: str | None = None,
                 *, download: bool = False, robustness: str = "bank",
                 direct: DirectConfig | None = None,
                 adversarial: AdversarialSchedule | None = None) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads={num_threads} must be >= 1")
        if robustness not in ROBUSTNESS_CHOICES:
            raise ValueError(f"robustness={robustness!r}: choose one of {ROBUSTNESS_CHOICES}")
        self.robustness = robustness
        self.direct = direct if direct is not None else DirectConfig()
        self.adversarial = adversarial if adversarial is not None else AdversarialSchedule()
        self.dataset_name = dataset_name
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.bank_path = str(bank_path) if bank_path is not None else None
        self.train_config = train_config if train_config is not None else TrainConfig()
        if not isinstance(self.train_config, TrainConfig):
            raise TypeError("train_config must be a TrainConfig (TrainConfig.from_dict(d) "
                            "builds one from a dict)")
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self.device = check_device(device) if device else (
            "cuda" if torch.cuda.is_available() else "cpu")
        self.download = download

    def __repr__(self) -> str:
        return (f"Evaluator(dataset_name={self.dataset_name!r}, bank_path={self.bank_path!r}, "
                f"seed={self.seed}, device={self.device!r}, num_threads={self.num_threads}, "
                f"robustness={self.robustness!r})")

    # -- data -------------------------------------------------------------
    def _key(self) -> tuple:
        return (self.dataset_name, self.data_dir, self.bank_path, self.seed, self.device)

    def use_threads(self) -> None:
        """Run torch on this evaluator's ``num_threads`` (the ``threads``
        setting, 1 by default). Torch's own default, every core, costs on a
        busy machine: beside a comparison's workers, a second thread made an
        mnist10k winner's forward pass 2.5 times dearer in CPU time and 1.6
        times slower."""
        if torch.get_num_threads() != self.num_threads:
            torch.set_num_threads(self.num_threads)

    def data(self) -> _Data:
        """The dataset, bank and their device tensors (loaded once per process)."""
        key = self._key()
        if key not in _CACHE:
            ds = load_dataset(self.dataset_name, self.data_dir, download=self.download,
                              seed=self.seed)
            path = self.bank_path or default_bank_path(self.dataset_name)
            if path is not None:
                bank, fallback = load_bank(path, dataset=ds.name, shape=ds.shape), False
                check_quarantine(bank, ds, where=f"bank {path}")
            else:
                log.warning("no adversarial bank for %s: robustness is measured on randomly "
                            "perturbed images of the bank split (fallback, not adversarial)",
                            ds.name)
                bank, fallback = fallback_bank(ds, FALLBACK_BANK_SIZE, seed=self.seed), True
            dev = torch.device(self.device)
            tensors = {
                "x_train": torch.from_numpy(ds.train.x).to(dev),
                "y_train": torch.from_numpy(ds.train.y).to(dev),
                "x_val": torch.from_numpy(ds.val.x).to(dev),
                "y_val": torch.from_numpy(ds.val.y).to(dev),
                "x_test": torch.from_numpy(ds.test.x).to(dev),
                "y_test": torch.from_numpy(ds.test.y).to(dev),
                "x_bank": torch.from_numpy(bank.x).to(dev),
            }
            _CACHE[key] = _Data(ds, bank, fallback, tensors)
        return _CACHE[key]

    # -- evaluation ---------------------------------------------------------
    def evaluation_seed(self, model: Model, generation: int) -> int:
        return evaluation_seed(self.seed, model.id, generation)

    def evaluate(self, model: Model, generation: int, *, seed: int | None = None,
                 with_test: bool = False, return_module: bool = False,
                 epochs: int | None = None,
                 training: str = "standard") -> EvaluationResult:
        """Train ``model``'s network with the schedule of ``generation`` and
        measure it. Never raises for a bad individual: build errors, a
        diverging loss or running out of memory give fitness 0 and a
        ``failure`` reason. ``epochs`` caps training below the schedule's
        (a screening, low-fidelity evaluation). Metric ``cost_epochs`` is the
        training done in epoch-equivalents (epochs x samples / subset size),
        the unit of a compute budget.

        ``training``: ``standard`` (every search evaluation; the paper), or
        ``pgd-at`` / ``trades`` for a final network: trained exactly as
        ``standard`` first, then fine-tuned adversarially (:meth:`harden`);
        the metrics are the hardened network's, with the standard network's
        under ``standard_*`` (see :meth:`harden` for the rest)."""
        if training != "standard" and training not in ADVERSARIAL_KINDS:
            raise ValueError(f"training={training!r}: choose standard or one of "
                             f"{', '.join(ADVERSARIAL_KINDS)}")
        eval_seed = self.evaluation_seed(model, generation) if seed is None else int(seed)
        data = self.data()  # configuration problems (missing data) do raise
        cfg = self.train_config
        full = cfg.is_full_generation(generation)
        metrics: dict[str, float] = {"full_training": float(full), "failed": 0.0,
                                     "bank_fallback": float(data.bank_fallback),
                                     "bank_size": float(len(data.bank))}
        start = time.perf_counter()
        self.use_threads()
        torch.set_flush_denormal(True)
        net: nn.Module | None = None
        try:
            generator = seed_everything(eval_seed)
            ds, t = data.dataset, data.tensors
            net = compile_model(model, ds.shape, ds.num_classes, ds.mean, ds.std,
                                max_parameters=cfg.max_parameters).to(self.device)
            metrics["parameters"] = float(count_parameters(net))
            metrics["flops"] = float(estimate_flops(net, ds.shape))
            x, y = self._training_set(t, full, eval_seed)
            augment = random_crop_flip if cfg.augment else None
            max_epochs = cfg.epochs_for(generation) if epochs is None else int(epochs)
            result = train(net, x, y, t["x_val"], t["y_val"], cfg, max_epochs, generator,
                           augment)
            if training != "standard":
                metrics.update(self._standard_metrics(net, result.val_accuracy, with_test))
                metrics.update(self._harden(net, training, x, y, generator))
                result.val_accuracy = metrics.pop("adversarial_val_accuracy")
            robust = self._robustness(net, data)
            metrics.update({
                "accuracy": result.val_accuracy,
                "train_accuracy": result.train_accuracy,
                "epochs": float(result.epochs),
                "stopped_early": float(result.stopped_early),
                "train_seconds": result.seconds,
                "train_samples": float(x.shape[0]),
                "cost_epochs": cfg.epoch_equivalents(result.epochs, x.shape[0]),
            })
            metrics.update(robust)
            if with_test:
                metrics["test_accuracy"] = accuracy(net, t["x_test"], t["y_test"],
                                                    cfg.eval_batch_size)
            fitness = metrics["accuracy"] + metrics["robustness"]
            if not math.isfinite(fitness):
                raise TrainingError(f"non-finite fitness {fitness}")
            failure = None
        except Exception as exc:  # a bad individual must never stop the search
            fitness, failure = 0.0, failure_reason(exc)
            if not isinstance(exc, EXPECTED_FAILURES):
                log.exception("evaluation of %s failed", model.id)
        if failure is not None:
            metrics.update({"failed": 1.0, "accuracy": 0.0, "robustness": 0.0})
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        metrics["fitness"] = float(fitness)
        metrics["eval_seconds"] = time.perf_counter() - start
        out = EvaluationResult(fitness=float(fitness), metrics=metrics, failure=failure,
                               genome_id=model.id, seed=eval_seed)
        if return_module and failure is None and net is not None:
            net = net.cpu().eval()
            out.state_dict = {k: v.detach().clone() for k, v in net.state_dict().items()}
            out.module = net
        return out

    def _training_set(self, tensors: dict[str, torch.Tensor], full: bool,
                      eval_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The images an evaluation trains on: the whole training split in a
        full generation, else a subset drawn with the evaluation's seed."""
        x, y = tensors["x_train"], tensors["y_train"]
        if not full and self.train_config.subset_size < len(x):
            rng = np.random.default_rng(eval_seed)
            idx = torch.from_numpy(rng.choice(len(x), self.train_config.subset_size,
                                              replace=False)).to(x.device)
            x, y = x[idx], y[idx]
        return x, y

    def _robustness(self, net: nn.Module, data: _Data) -> dict[str, float]:
        """The robustness half of the fitness and its parts: accuracy on the
        bank, and with ``robustness`` direct or both, direct attacks on the
        validation split."""
        t = data.tensors
        bank_pred = predict(net, t["x_bank"], self.train_config.eval_batch_size).cpu().numpy()
        robust = robustness_metrics(bank_pred, data.bank)
        robust["robustness_bank"] = robust["robustness"]
        if self.robustness != "bank":
            start_direct = time.perf_counter()
            robust.update(direct_robustness(net, t["x_val"], t["y_val"],
                                            levels=data.dataset.levels, config=self.direct))
            robust["direct_seconds"] = time.perf_counter() - start_direct
            robust["robustness"] = (robust["robustness_direct"] if self.robustness == "direct"
                                    else 0.5 * (robust["robustness_bank"]
                                                + robust["robustness_direct"]))
        return robust

    def _standard_metrics(self, net: nn.Module, val_accuracy: float, with_test: bool
                          ) -> dict[str, float]:
        """The standard-trained network's accuracy, bank robustness and (with
        ``with_test``) test accuracy, under ``standard_*``, before it is hardened."""
        data, cfg = self.data(), self.train_config
        t = data.tensors
        bank_pred = predict(net, t["x_bank"], cfg.eval_batch_size).cpu().numpy()
        out = {"standard_accuracy": val_accuracy,
               "standard_robustness": robustness_metrics(bank_pred, data.bank)["robustness"]}
        if with_test:
            out["standard_test_accuracy"] = accuracy(net, t["x_test"], t["y_test"],
                                                     cfg.eval_batch_size)
        return out

    def _val_pgd_accuracy(self, net: nn.Module) -> float:
        """Accuracy on the validation images under 10-step L∞ PGD at the
        adversarial training's eps (eps/4 steps, no random start: the direct
        measure's attack), a clean mistake counting as lost."""
        data = self.data()
        x, y = data.tensors["x_val"], data.tensors["y_val"]
        was_training = net.training
        net.eval()
        try:
            adv = pgd_linf(net, x, y, self.adversarial.eps_for(data.dataset.levels), 10)
            with torch.no_grad():
                ok = (net(adv).argmax(1) == y) & (net(x).argmax(1) == y)
        finally:
            net.train(was_training)
        return float(ok.float().mean().item())

    def _harden(self, net: nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator) -> dict[str, float]:
        data, cfg, schedule = self.data(), self.train_config, self.adversarial
        t = data.tensors
        before = self._val_pgd_accuracy(net)
        cpu = time.process_time()
        result = adversarial_train(net, kind, x, y, t["x_val"], t["y_val"], cfg, schedule,
                                   data.dataset.levels, generator)
        cpu = time.process_time() - cpu  # this process's: the cost on an idle core
        return {"standard_val_pgd_accuracy": before,
                "val_pgd_accuracy": self._val_pgd_accuracy(net),
                "adversarial_val_accuracy": result.val_accuracy,
                "adversarial_train_accuracy": result.train_accuracy,
                "adversarial_epochs": float(result.epochs),
                "adversarial_eps": schedule.eps_for(data.dataset.levels),
                "adversarial_seconds": result.seconds,
                "adversarial_cpu_seconds": cpu}

    def harden(self, net: nn.Module, kind: str, *, seed: int) -> tuple[nn.Module, dict[str, float]]:
        """Fine-tune a trained network ``net`` (in place) with ``kind``
        (``pgd-at`` or ``trades``) on the full training set, seeded by
        ``seed``, with :attr:`adversarial`'s schedule; return it on the CPU in
        eval mode and the metrics: ``val_pgd_accuracy`` and
        ``standard_val_pgd_accuracy`` (PGD at the training eps on the
        validation images, after and before), ``accuracy`` (clean
        validation accuracy after), ``adversarial_train_accuracy`` (robust
        accuracy on the last epoch's training batches), ``adversarial_epochs``,
        ``adversarial_eps`` (fraction of the [0, 1] range),
        ``adversarial_seconds`` and ``adversarial_cpu_seconds`` (wall and CPU
        time of the fine-tuning). Errors (a non-finite loss) raise."""
        if kind not in ADVERSARIAL_KINDS:
            raise ValueError(f"kind={kind!r}: choose one of {', '.join(ADVERSARIAL_KINDS)}")
        t = self.data().tensors
        self.use_threads()
        torch.set_flush_denormal(True)
        generator = seed_everything(int(seed))
        net = net.to(self.device)
        metrics = self._harden(net, kind, t["x_train"], t["y_train"], generator)
        metrics["accuracy"] = metrics.pop("adversarial_val_accuracy")
        return net.cpu().eval(), metrics

    def __call__(self, individual: Any) -> EvaluationResult:
        """DEAP entry point: ``individual.genome`` (Model), ``.generation``
        (int) and optional ``.eval_seed``."""
        return self.evaluate(individual.genome, int(individual.generation),
                             seed=getattr(individual, "eval_seed", None),
                             epochs=getattr(individual, "epochs", None))
