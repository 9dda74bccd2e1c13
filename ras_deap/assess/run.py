"""Rebuild the network of a target, attack it, write and log the table."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from .assess_config import AssessConfig
from .result import METRIC_PREFIX, Assessment, format_table
from .target import AssessTarget, TargetError

__all__ = ["AssessOutcome", "assess_target", "build_network", "load_heldout_bank",
           "log_assessment", "open_journal", "partial_path", "write_atomic"]


@dataclass
class AssessOutcome:
    assessment: Assessment
    table: str
    files: dict[str, Path]
    logged_run_id: str | None
    retrained: bool


def build_network(target: AssessTarget, evaluator: Any) -> tuple[Any, bool]:
    """The target's network on the CPU in eval mode, and whether it was
    re-trained (no weights) rather than loaded."""
    import torch

    from ..evaluation import compile_model
    from ..seeding import derive_seed

    ds = evaluator.data().dataset
    if target.weights is not None:
        net = compile_model(target.genome, ds.shape, ds.num_classes, ds.mean, ds.std)
        try:
            state = torch.load(target.weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except (RuntimeError, OSError, ValueError) as exc:
            raise TargetError(f"weights {target.weights} do not fit genome {target.genome.id} "
                              f"({str(exc).splitlines()[0]}); pass the best_model.pt written "
                              "with this best_genome.json, or leave --weights out to "
                              "re-train") from exc
        return net.cpu().eval(), False
    cfg = target.config
    generation = cfg.full_every if cfg.full_every > 0 else 0
    result = evaluator.evaluate(target.genome, generation,
                                seed=derive_seed(cfg.seed, "assess", target.genome.id),
                                with_test=True, return_module=True)
    if result.failure is not None or result.module is None:
        raise TargetError(f"re-training genome {target.genome.id} failed: {result.failure}")
    return result.module.cpu().eval(), True


def log_assessment(assessment: Assessment, tracking_uri: str | None, run_id: str,
                   files: list[Path]) -> None:
    """Metrics ``assess/<row>_accuracy`` etc. and the table files as
    artifacts ``assess/`` of run ``run_id``."""
    from ..tracking import log_to_run

    log_to_run(tracking_uri, run_id,
               metrics={f"{METRIC_PREFIX}{k}": v for k, v in assessment.metrics().items()},
               tags={"assess.dataset": assessment.dataset, "assess.seed": assessment.seed},
               artifacts=[(p, "assess") for p in files])


def load_heldout_bank(path: str | Path, dataset: Any) -> Any:
    """The bank at ``path``, refused (:class:`~ras_deap.bank.BankError`)
    unless it was built for ``dataset`` and is held out from its splits
    (:func:`ras_deap.bank.check_heldout`)."""
    from ..bank import check_heldout, load_bank

    bank = load_bank(path, dataset=dataset.name, shape=tuple(dataset.shape))
    check_heldout(bank, dataset, where=f"held-out bank {path}")
    return bank


def partial_path(target: AssessTarget, name: str) -> Path:
    """Where an assessment named ``name`` keeps its finished attacks until it ends."""
    return target.out_dir / f"{name}.partial.jsonl"


def open_journal(path: Path, net: Any, seed: int, config: AssessConfig,
                 log: Any = print) -> Any:
    """The journal of ``net``'s attacks at ``path`` (its AutoAttack parts in
    :data:`~.journal.PARTS_NAME` beside it): an assessment stopped by Ctrl-C
    or ``kill`` (AutoAttack on an 8-bit winner runs for hours) goes on from
    its finished attacks when the same command runs again."""
    from .journal import AttackJournal

    journal = AttackJournal.for_network(path, net, seed, config)
    if len(journal):
        log(f"[assess] {len(journal)} attack(s) finished before, resumed from {path}")
    return journal


def assess_target(target: AssessTarget, config: AssessConfig | None = None, *,
                  mlflow: bool = True, progress: bool = True, log: Any = print,
                  heldout_bank: str | Path | None = None,
                  name: str = "assess") -> AssessOutcome:
    """Rebuild ``target``'s network (its weights, or a re-training), attack it
    on its dataset's quarantined test images, write ``<name>.md`` and
    ``<name>.json`` to ``target.out_dir`` and, with ``mlflow`` and a run
    id, log them under that run. ``heldout_bank``: a second bank's path
    (see :func:`load_heldout_bank`)."""
    from ..search import make_evaluator
    from .attacks import assess_network

    config = config or AssessConfig()
    start = time.perf_counter()
    evaluator = make_evaluator(target.config)
    evaluator.use_threads()  # the attacks too: the run's threads setting
    data = evaluator.data()  # a missing data folder or a leaking bank fails here
    heldout = None if heldout_bank is None else load_heldout_bank(heldout_bank, data.dataset)
    log(f"[assess] {target.description}: genome {target.genome.id}, dataset "
        f"{target.config.dataset} seed {target.config.seed}; "
        + ("loading its weights" if target.weights else "no weights: re-training it on the "
           "full training set"))
    net, retrained = build_network(target, evaluator)
    source = {"target": target.description, "genome_id": target.genome.id,
              "weights": str(target.weights) if target.weights else None,
              "retrained": retrained, "run_id": target.run_id}
    seed = int(target.config.seed)
    journal = open_journal(partial_path(target, name), net, seed, config, log)
    assessment = assess_network(net, data.dataset, data.bank, config,
                                seed=seed, bank_fallback=data.bank_fallback,
                                progress=progress, source=source, heldout_bank=heldout,
                                journal=journal)
    assessment.seconds = time.perf_counter() - start
    table = format_table(assessment)
    files = {"markdown": write_atomic(target.out_dir / f"{name}.md", table),
             "json": write_atomic(target.out_dir / f"{name}.json",
                                  json.dumps(assessment.to_dict(), indent=2))}
    journal.path.unlink(missing_ok=True)
    logged = None
    if mlflow and target.run_id:
        log_assessment(assessment, target.tracking_uri, target.run_id, list(files.values()))
        logged = target.run_id
    return AssessOutcome(assessment, table, files, logged, retrained)
