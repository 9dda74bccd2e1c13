"""One comparison winner's held-out assessment (``compare.heldout``): the
attacks no fitness used, stored in its cell folder as ``<name>.json`` so a
rerun only attacks new cells, and its flat row for the reports.

A cell whose weights (``best_model.pt``) are not kept is re-trained exactly
as its comparison's final training did (same generation's schedule, same
seed), and the record says whether that reproduced the stored final metrics.
The re-trained network is kept beside the cell (``retrained_model.pt`` and
``retrained.json``, local files): an mnist10k winner's re-training takes up
to an hour, and an assessment cut during its attacks, or one with another
``--name``, then resumes on the same network instead of re-training it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..assess.assess_config import AssessConfig
from ..errors import UsageError

__all__ = ["HELDOUT_FORMAT", "HELDOUT_NAME", "RETRAINED_NAME", "HeldoutError", "assess_cell",
           "cell_rows", "is_assessed"]

HELDOUT_NAME = "heldout"
# a winner re-trained for want of best_model.pt: its weights and its record
RETRAINED_NAME = "retrained_model.pt"
RETRAINED_RECORD = "retrained.json"
HELDOUT_FORMAT = "ras_deap.heldout/1"
# AutoAttack's own rows (not the ones after its first attacks); a grid step or a decimal
_AUTOATTACK_ROW = re.compile(r"^autoattack_eps(\d+(?:\.\d+)?)$")


class HeldoutError(UsageError, ValueError):
    """Bad arms or files; the message names the option and the fix."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# final metrics that measure time, not the network
_TIMING = ("train_seconds", "eval_seconds", "direct_seconds")


def _reproduces(stored: dict[str, Any], metrics: dict[str, float]) -> list[str]:
    """The final metrics a re-training did not reproduce (empty: all did)."""
    differ = []
    for key, value in stored.items():
        if key in _TIMING or key.endswith("_seconds"):
            continue
        new = metrics.get(key)
        if new is None or not (math.isclose(float(new), float(value), rel_tol=0, abs_tol=1e-9)
                               or (math.isnan(float(new)) and math.isnan(float(value)))):
            differ.append(key)
    return differ


def _kept_network(folder: Path, target: Any, evaluator: Any,
                  retrain_generation: int) -> tuple[Any, dict[str, float]] | None:
    """The network an earlier assessment re-trained for this winner and
    generation, and its final metrics, if it kept one (None: re-train)."""
    import dataclasses

    from ..assess.run import build_network
    from ..assess.target import TargetError
    from ..atomic import read_json_if_valid

    record = read_json_if_valid(folder / RETRAINED_RECORD)
    weights = folder / RETRAINED_NAME
    if not (isinstance(record, dict) and weights.is_file()
            and record.get("genome_id") == target.genome.id
            and record.get("generation") == retrain_generation
            and isinstance(record.get("final_metrics"), dict)):
        return None
    try:
        net, _ = build_network(dataclasses.replace(target, weights=weights), evaluator)
    except TargetError:  # torn or foreign weights: re-train
        return None
    return net, record["final_metrics"]


def _final_network(folder: Path, target: Any, evaluator: Any,
                   retrain_generation: int) -> tuple[Any, dict[str, Any]]:
    """The cell's winner re-trained as its comparison's final training did
    (:func:`ras_deap.compare.cells.run_cell`), and whether that reproduced
    the final metrics stored in ``result.json``; kept beside the cell, and
    taken from there when an earlier assessment re-trained it."""
    import torch

    from ..atomic import write_bytes_atomic, write_json_atomic
    from ..seeding import derive_seed

    kept = _kept_network(folder, target, evaluator, retrain_generation)
    if kept is not None:
        net, metrics = kept
    else:
        final = evaluator.evaluate(target.genome, retrain_generation,
                                   seed=derive_seed(target.config.seed, "final",
                                                    target.genome.id),
                                   with_test=True, return_module=True)
        if final.failure is not None or final.module is None:
            raise HeldoutError(f"{folder}: re-training the winner failed ({final.failure})")
        net = final.module.cpu().eval()
        metrics = {k: float(v) for k, v in final.metrics.items()}
        # the weights first: a record without its weights is ignored
        write_bytes_atomic(folder / RETRAINED_NAME, lambda fh: torch.save(net.state_dict(), fh))
        write_json_atomic(folder / RETRAINED_RECORD, {
            "genome_id": target.genome.id, "generation": retrain_generation,
            "final_metrics": metrics})
    stored = json.loads((folder / "result.json").read_text()).get("final_metrics") or {}
    differ = _reproduces(stored, metrics)
    return net, {
        "weights": "re-trained (best_model.pt not kept)", "generation": retrain_generation,
        "reproduces_final_metrics": not differ, "differing_metrics": differ,
        "test_accuracy": float(metrics.get("test_accuracy", float("nan"))),
        "stored_test_accuracy": float(stored.get("test_accuracy", float("nan"))),
        "final_metrics": metrics}


def _stored(folder: Path, config: AssessConfig, bank_sha: str,
            name: str = HELDOUT_NAME) -> dict[str, Any] | None:
    from ..atomic import read_json_if_valid

    data = read_json_if_valid(folder / f"{name}.json")
    if not isinstance(data, dict):
        return None
    same = (data.get("format") == HELDOUT_FORMAT and data.get("heldout_bank_sha256") == bank_sha
            and data.get("assessment", {}).get("config") == config.to_dict())
    return data if same else None


def is_assessed(folder: Path, config: AssessConfig, heldout_bank: Path,
                name: str = HELDOUT_NAME) -> bool:
    """Whether :func:`assess_cell` would return a stored result without attacking."""
    return _stored(folder, config, _sha256(heldout_bank), name) is not None


def assess_cell(folder: Path, config: AssessConfig, heldout_bank: Path, *,
                mlflow: bool = True, name: str = HELDOUT_NAME,
                retrain_generation: int | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """The held-out assessment of the winner stored in cell ``folder``
    (``<name>.json``, computed and stored if missing or made with other
    settings or another bank). Without ``best_model.pt`` the winner is
    re-trained as the final training of generation ``retrain_generation``
    was (an error when it is None). ``threads``: torch threads for the
    re-training and the attacks (default: the cell's setting)."""
    from ..assess.attacks import assess_network
    from ..assess.journal import AttackJournal
    from ..assess.result import format_table
    from ..assess.run import build_network, load_heldout_bank
    from ..assess.target import resolve_target
    from ..atomic import write_atomic
    from ..search import make_evaluator
    from ..seeding import derive_seed

    bank_sha = _sha256(heldout_bank)
    stored = _stored(folder, config, bank_sha, name)
    if stored is not None:
        return stored
    target = resolve_target(str(folder), threads=threads)
    if target.weights is None and retrain_generation is None:
        raise HeldoutError(f"{folder} has no best_model.pt: the cell's final training did not "
                           "finish; rerun its comparison to finish it")
    evaluator = make_evaluator(target.config)
    evaluator.use_threads()  # the attacks too: the cell's threads setting or --threads
    data = evaluator.data()
    bank = load_heldout_bank(heldout_bank, data.dataset)
    if target.weights is not None:
        net, _ = build_network(target, evaluator)
        network = {"weights": "best_model.pt"}
    else:
        net, network = _final_network(folder, target, evaluator, retrain_generation)
    source = {"target": str(folder), "genome_id": target.genome.id,
              "heldout_bank": str(heldout_bank)}
    # the seed of the Square and Pixel draws: the same for every --name, so a
    # re-trained network that reproduces the original gives the same numbers
    seed = derive_seed(target.config.seed, HELDOUT_NAME, target.genome.id)
    # finished attacks survive an interruption (tens of CPU-minutes with AutoAttack)
    partial = folder / f"{name}.partial.jsonl"
    journal = AttackJournal.for_network(partial, net, seed, config)
    if len(journal):
        print(f"[heldout] {folder.name}: {len(journal)} attack(s) finished before, resumed",
              flush=True)
    assessment = assess_network(net, data.dataset, None, config, seed=seed,
                                heldout_bank=bank, source=source, journal=journal)
    record = {"format": HELDOUT_FORMAT, "heldout_bank": str(heldout_bank),
              "heldout_bank_sha256": bank_sha, "assessment": assessment.to_dict()}
    if network["weights"] != "best_model.pt":
        record["network"] = network
    write_atomic(folder / f"{name}.md", format_table(assessment))
    write_atomic(folder / f"{name}.json", json.dumps(record, indent=2))
    partial.unlink(missing_ok=True)
    if mlflow and target.run_id:
        from ..tracking import log_to_run

        log_to_run(target.tracking_uri, target.run_id,
                   metrics={f"{name}/{k}": v for k, v in assessment.metrics().items()},
                   artifacts=[(folder / f"{name}.md", name), (folder / f"{name}.json", name)])
    return record


def _accuracies(assessment: dict[str, Any]) -> dict[str, float]:
    return {r["key"]: float(r["accuracy"]) for r in assessment.get("rows", [])}


def cell_rows(result: dict[str, Any], heldout: dict[str, Any], arm: str) -> dict[str, Any]:
    """One flat row per (arm, method, seed): robust accuracies of the held-out
    attacks (``square_*``, ``autoattack_eps*`` if it ran, ``pixel_*``,
    ``heldout_bank*``), their means (``autoattack_mean`` over the eps grid,
    not the absolute budgets), the
    primary ``heldout_mean`` (mean of the Square, Pixel and held-out bank
    means), ``square_bank_mean`` (Square and the held-out bank only), and
    the held-in measures (the fitness bank, PGD) for contrast. For a
    re-trained network that did not reproduce the comparison's, the cell's
    own assessment (Pixel, PGD) is of another network and is left out; the
    fitness bank is then the re-training's own measure."""
    import statistics

    network = heldout.get("network")
    # the cell's own assessment measured the network its comparison trained; a
    # re-training that did not reproduce it is another network: leave it out
    other = network is not None and not network.get("reproduces_final_metrics")
    own = {} if other else _accuracies(result.get("assessment") or {})
    held = _accuracies(heldout["assessment"])
    row: dict[str, Any] = {"arm": arm, "method": result["method"], "seed": int(result["seed"]),
                           "test_accuracy": float(heldout["assessment"]["test_accuracy"])}
    for key, value in held.items():
        if key.startswith(("square_", "heldout_bank")) or _AUTOATTACK_ROW.match(key):
            row[key] = value
    for key, value in own.items():
        if key.startswith(("pixel_", "pgd_")) or key == "bank":
            row[key if key != "bank" else "fitness_bank"] = value
    if other and "robustness_bank" in network.get("final_metrics", {}):
        row["fitness_bank"] = float(network["final_metrics"]["robustness_bank"])

    def mean_of(prefix: str) -> float:
        values = [v for k, v in row.items() if k.startswith(prefix)]
        return statistics.fmean(values) if values else float("nan")

    row["square_mean"] = mean_of("square_eps")
    grid = [v for k, v in row.items() if (m := _AUTOATTACK_ROW.match(k)) and "." not in m[1]]
    if grid:
        row["autoattack_mean"] = statistics.fmean(grid)
    row["pixel_mean"] = mean_of("pixel_th")
    row["pgd_mean"] = mean_of("pgd_eps")
    parts = [row["square_mean"], row["pixel_mean"], row.get("heldout_bank", float("nan"))]
    row["heldout_mean"] = statistics.fmean(parts)
    # without PixelAttack, the algorithm family of the fitness bank's L0 half
    row["square_bank_mean"] = statistics.fmean(parts[::2])
    if network is not None:  # re-trained: did it reproduce the comparison's final training?
        row["reproduced"] = float(bool(network.get("reproduces_final_metrics")))
    return row
