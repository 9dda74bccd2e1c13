"""``assess RUN --final-training pgd-at|trades``: the winner before and after
adversarial fine-tuning, attacked alike and reported side by side.

The stored weights (or, without them, the standard re-training
:func:`~ras_deap.assess.run.build_network` does) are the first column; a copy
fine-tuned with :meth:`ras_deap.evaluation.Evaluator.harden` (the schedule of
:mod:`ras_deap.evaluation.adversarial`) is the second. Both get the same
:class:`~ras_deap.assess.assess_config.AssessConfig` and seed, so every row compares
the same attack on the same images. Writes ``assess-<kind>.md`` /
``assess-<kind>.json`` and the fine-tuned state dict ``best_model-<kind>.pt``
beside the run (the run's own ``assess.md`` is left as it is) and logs the
fine-tuned network's rows as ``assess/<kind>/<row>_accuracy``.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_atomic, write_bytes_atomic
from .assess_config import AssessConfig
from .sidebyside import SideBySide, format_side_by_side
from .target import AssessTarget, TargetError

__all__ = ["HardenedOutcome", "assess_hardened", "column_labels"]


@dataclass
class HardenedOutcome:
    result: SideBySide
    table: str
    files: dict[str, Path]
    logged_run_id: str | None


def column_labels(target: AssessTarget, kind: str) -> tuple[str, str]:
    """Column names: ``standard`` and ``kind`` for a standard network; stored
    weights of an already hardened run (``run --final-training``) say so."""
    stored = target.config.final_training if target.weights is not None else "standard"
    if stored == "standard":
        return "standard", kind
    return f"stored ({stored})", f"stored + {kind}"


def assess_hardened(target: AssessTarget, kind: str, config: AssessConfig | None = None, *,
                    mlflow: bool = True, progress: bool = True, log: Any = print,
                    heldout_bank: str | Path | None = None) -> HardenedOutcome:
    """See the module docstring."""
    import torch

    from ..evaluation import TrainingError
    from ..search import make_evaluator
    from ..seeding import derive_seed
    from .attacks import assess_network
    from .run import build_network, load_heldout_bank, log_assessment, open_journal, partial_path

    config = config or AssessConfig()
    start = time.perf_counter()
    evaluator = make_evaluator(target.config)
    evaluator.use_threads()  # the attacks too: the run's threads setting
    data = evaluator.data()  # a missing data folder or a leaking bank fails here
    heldout = None if heldout_bank is None else load_heldout_bank(heldout_bank, data.dataset)
    first, second = column_labels(target, kind)
    log(f"[assess] {target.description}: genome {target.genome.id}, dataset "
        f"{target.config.dataset} seed {target.config.seed}; "
        + ("loading its weights" if target.weights else "no weights: re-training it on the "
           "full training set") + f", then fine-tuning a copy with {kind}")
    t0, cpu0 = time.perf_counter(), time.process_time()
    net, retrained = build_network(target, evaluator)
    if retrained:
        training_extra = {"retrain_seconds": time.perf_counter() - t0,
                          "retrain_cpu_seconds": time.process_time() - cpu0}
    else:
        training_extra = {}
    try:
        hardened, training = evaluator.harden(copy.deepcopy(net), kind, seed=derive_seed(
            target.config.seed, "harden", kind, target.genome.id))
    except TrainingError as exc:
        raise TargetError(f"{kind} fine-tuning of genome {target.genome.id} failed ({exc}); "
                          "its network cannot be hardened with this schedule") from exc
    training.update(training_extra)
    log(f"[assess] {kind} fine-tuning took {training['adversarial_seconds']:.1f} s "
        f"({training['adversarial_cpu_seconds']:.1f} CPU-s); attacking both networks")
    source = {"target": target.description, "genome_id": target.genome.id,
              "weights": str(target.weights) if target.weights else None,
              "retrained": retrained, "run_id": target.run_id}
    seed = int(target.config.seed)
    partial = partial_path(target, f"assess-{kind}")  # one file, keyed by each network
    before = assess_network(net, data.dataset, data.bank, config, seed=seed,
                            bank_fallback=data.bank_fallback, progress=progress,
                            source={**source, "network": first}, heldout_bank=heldout,
                            journal=open_journal(partial, net, seed, config, log))
    after = assess_network(hardened, data.dataset, data.bank, config, seed=seed,
                           bank_fallback=data.bank_fallback, progress=progress,
                           source={**source, "network": second, "final_training": kind},
                           heldout_bank=heldout,
                           journal=open_journal(partial, hardened, seed, config, log))
    result = SideBySide(before=before, after=after, labels=(first, second), final_training=kind,
                        training=training,
                        seconds=time.perf_counter() - start)
    table = format_side_by_side(result)
    out = target.out_dir
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"best_model-{kind}.pt"
    state = {k: v.detach().clone() for k, v in hardened.state_dict().items()}
    write_bytes_atomic(weights, lambda fh: torch.save(state, fh))
    files = {"markdown": write_atomic(out / f"assess-{kind}.md", table),
             "json": write_atomic(out / f"assess-{kind}.json",
                                  json.dumps(result.to_dict(), indent=2)),
             "weights": weights}
    partial.unlink(missing_ok=True)
    logged = None
    if mlflow and target.run_id:
        from ..tracking import log_to_run

        log_assessment(before, target.tracking_uri, target.run_id, [])
        log_to_run(target.tracking_uri, target.run_id,
                   metrics={f"assess/{kind}/{k}": v for k, v in result.metrics().items()},
                   tags={f"assess.{kind}.labels": " | ".join(result.labels)},
                   artifacts=[(files["markdown"], "assess"), (files["json"], "assess")])
        logged = target.run_id
    return HardenedOutcome(result, table, files, logged)
