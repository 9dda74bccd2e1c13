"""What to assess: a run folder, an MLflow run, or a saved model.

* a **run folder** (``runs/<name>`` of ``python -m ras_deap.run``, or a cell
  folder of ``python -m ras_deap.compare``): ``best_genome.json``, the
  weights ``best_model.pt`` when the final training wrote them, and the
  search settings (``config.json``, else ``checkpoint.json``), which give the
  dataset, its seed (hence the quarantined test split) and the bank;
* an **MLflow run id**: the run's folder when its ``run_dir`` tag still
  exists here, else its ``best_model/`` artifacts and its logged params;
* a **saved model**: a genome JSON (``Model.to_json``) plus, optionally, a
  state dict; the settings come from the options.

Without weights the genome is re-trained as the search's final training
does (full training set, ``full_epochs``), seeded from the run's seed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from ..checkpoint import CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAME, CheckpointError, load_checkpoint
from ..config import ConfigError, SearchConfig
from ..errors import UsageError
from ..genome import GenomeError, Model

__all__ = ["AssessTarget", "TargetError", "config_from_params", "resolve_target",
           "retrain_member"]

GENOME_NAMES = ("best_genome.json", "best_model/best_genome.json")
WEIGHT_NAMES = ("best_model.pt", "best_model/best_model.pt")
CONFIG_NAME = "config.json"
MEMBER_WEIGHTS = "best_model.pt"  # a re-trained front member's, in front/<genome id>/
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class TargetError(UsageError, ValueError):
    """The thing to assess cannot be found or read; the message says what to pass."""


@dataclass
class AssessTarget:
    """A genome with (optionally) its weights and the settings it was
    searched with; ``run_id``/``tracking_uri``: the MLflow run to log the
    assessment under (None: none); ``out_dir``: where assess.md/json go."""

    genome: Model
    config: SearchConfig
    weights: Path | None
    run_id: str | None
    tracking_uri: str | None
    out_dir: Path
    description: str


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(SearchConfig)


def _convert(text: str, hint: Any) -> Any:
    if text in ("None", ""):
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = args[0] if isinstance(hint, types.UnionType) or typing.get_origin(hint) else hint
    if kind is bool:
        return text.lower() in ("true", "1", "yes")
    if kind is int:
        return int(float(text))
    if kind is float:
        return float(text)
    return text


def config_from_params(params: dict[str, str], **overrides: Any) -> SearchConfig:
    """A SearchConfig from MLflow params (strings) of a search run; keys
    that are not SearchConfig fields (e.g. a comparison's ``method``) are
    ignored, overrides win."""
    hints = _field_types()
    values = {k: _convert(v, hints[k]) for k, v in params.items() if k in hints}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("bank") and not Path(values["bank"]).is_file():
        values["bank"] = None  # logged on another machine; the shipped bank is the default
    return _config_from_dict(values, "run params")


def _config_from_dict(data: dict[str, Any], source: str, *, stored: bool = True,
                      **overrides: Any) -> SearchConfig:
    """The config of ``data`` (settings a search stored, unless not ``stored``)
    with the user's ``overrides``."""
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    values = {k: v for k, v in data.items() if k in known}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        if stored:
            return SearchConfig.from_stored(values, source=source)
        return SearchConfig.from_dict(values, source=source)
    except ConfigError as exc:
        raise TargetError(f"{source}: {exc}") from exc


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _load_genome(path: Path) -> Model:
    try:
        return Model.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError, GenomeError) as exc:
        raise TargetError(f"{path} is not a genome JSON written by ras_deap "
                          f"(Model.to_json): {exc}") from exc


def _read_config(path: Path) -> dict[str, Any]:
    """A run folder's ``config.json``: UTF-8 JSON holding an object (its
    ``search`` settings an object too), or :class:`TargetError`. It is only
    parsed, never executed, so a planted file (a pickle, say) is refused."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TargetError(f"{path} is not UTF-8 JSON text (binary data at byte {exc.start}: "
                          "not a file ras_deap wrote); restore the run's config.json or "
                          "remove it to use the checkpoint's settings") from exc
    except json.JSONDecodeError as exc:
        raise TargetError(f"{path} is not valid JSON ({exc}); restore the run's config.json "
                          "or remove it to use the checkpoint's settings") from exc
    except OSError as exc:
        raise TargetError(f"{path} cannot be read ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("search", data), dict):
        raise TargetError(f"{path} does not hold the settings object ras_deap writes; restore "
                          "the run's config.json or remove it to use the checkpoint's settings")
    return data


def _from_folder(folder: Path, overrides: dict[str, Any], run_id: str | None = None,
                 tracking_uri: str | None = None, member: str | None = None) -> AssessTarget:
    genome_path = _first(folder, GENOME_NAMES)
    if genome_path is None and member is None:
        raise TargetError(f"run folder {folder} holds no best_genome.json: the search did not "
                          "finish (resume it with python -m ras_deap.run --resume "
                          f"{folder}) or was run without final training")
    if (folder / CONFIG_NAME).is_file():
        data = _read_config(folder / CONFIG_NAME)
        config = _config_from_dict(data.get("search", data), str(folder / CONFIG_NAME),
                                   **overrides)
        run_id = run_id or data.get("mlflow_run_id")
    elif any((folder / name).is_file() for name in (CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAME)):
        try:
            checkpoint = load_checkpoint(folder)  # JSON only; an old pickle is refused
        except CheckpointError as exc:
            raise TargetError(str(exc)) from exc
        config = _config_from_dict(checkpoint.config, f"{folder}/{CHECKPOINT_NAME}",
                                   **overrides)
        run_id = run_id or checkpoint.state.extra.get("mlflow_run_id")
    else:
        raise TargetError(f"run folder {folder} has neither {CHECKPOINT_NAME} nor config.json, "
                          "so its dataset and seed are unknown; pass the genome file with "
                          "--dataset and --seed instead")
    tracking_uri = tracking_uri or overrides.get("tracking_uri") or config.tracking_uri
    if member is not None:
        return _front_member(folder, member, config, tracking_uri)
    return AssessTarget(genome=_load_genome(genome_path), config=config,
                        weights=_first(folder, WEIGHT_NAMES), run_id=run_id,
                        tracking_uri=tracking_uri, out_dir=folder,
                        description=f"run folder {folder}")


def _front_member(folder: Path, member: str, config: SearchConfig,
                  tracking_uri: str | None) -> AssessTarget:
    """Front member ``member`` of a multi-objective search's run folder
    (its settings ``config``): its genome from ``front/<id>.json``, the
    weights :func:`retrain_member` kept in ``front/<id>/`` (else none: it is
    re-trained as the final training does), the assessment written to
    ``front/<id>/`` and logged on the member's child run."""
    front_file = folder / "front.json"
    if not front_file.is_file():
        raise TargetError(f"--member {member}: run folder {folder} has no front.json (only a "
                          "finished search with --objectives accuracy,robustness has a front)")
    try:
        front = json.loads(front_file.read_text()).get("front", [])
        ids = {m["genome_id"]: m.get("run_id") for m in front}
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise TargetError(f"{front_file} is not the front ras_deap writes ({exc})") from exc
    if member not in ids:
        raise TargetError(f"--member {member}: not in the front of {folder}; choose one of "
                          f"{', '.join(ids) or 'none (empty front)'}")
    genome_path = folder / "front" / f"{member}.json"
    if not genome_path.is_file():
        raise TargetError(f"--member {member}: {genome_path} is missing; resume the search "
                          f"(python -m ras_deap.run --resume {folder}) to write it again")
    weights = folder / "front" / member / MEMBER_WEIGHTS
    return AssessTarget(genome=_load_genome(genome_path), config=config,
                        weights=weights if weights.is_file() else None,
                        run_id=ids[member], tracking_uri=tracking_uri,
                        out_dir=folder / "front" / member,
                        description=f"front member {member} of run folder {folder}")


def retrain_member(target: AssessTarget, log: Any = print) -> AssessTarget:
    """``target`` (a front member without weights) re-trained as assess
    re-trains (the same seed, so the same network), its state dict kept as
    ``<out_dir>/best_model.pt`` for every later export or assessment."""
    import torch

    from ..search import make_evaluator
    from .run import build_network

    log(f"[front] re-training member {target.genome.id} on the full training set")
    net, _ = build_network(target, make_evaluator(target.config))
    target.out_dir.mkdir(parents=True, exist_ok=True)
    path = target.out_dir / MEMBER_WEIGHTS
    write_bytes_atomic(path, lambda fh: torch.save(net.state_dict(), fh))
    return dataclasses.replace(target, weights=path)


def _from_mlflow(run_id: str, tracking_uri: str | None, overrides: dict[str, Any],
                 out: Path | None) -> AssessTarget:
    from ..tracking import download_run_artifact, get_run_info

    try:
        info = get_run_info(tracking_uri, run_id)
    except ValueError as exc:
        raise TargetError(str(exc)) from exc
    folder = info.tags.get("run_dir")
    if folder and _first(Path(folder), GENOME_NAMES) is not None:
        target = _from_folder(Path(folder), overrides, run_id=run_id,
                              tracking_uri=info.tracking_uri)
        target.description = f"MLflow run {run_id} (folder {folder})"
        return target
    dst = out or Path("assess_out") / run_id
    genome_path = next((p for name in GENOME_NAMES
                        if (p := download_run_artifact(info.tracking_uri, run_id, name, dst))),
                       None)
    if genome_path is None:
        raise TargetError(f"MLflow run {run_id} has no best_genome.json artifact (is it a "
                          "search run that finished?); pass a run folder or a genome file")
    weights = next((p for name in WEIGHT_NAMES
                    if (p := download_run_artifact(info.tracking_uri, run_id, name, dst))), None)
    try:
        config = config_from_params(info.params, **overrides)
    except ConfigError as exc:
        raise TargetError(f"MLflow run {run_id}: its params do not form a search config "
                          f"({exc})") from exc
    return AssessTarget(genome=_load_genome(genome_path), config=config, weights=weights,
                        run_id=run_id, tracking_uri=info.tracking_uri, out_dir=dst,
                        description=f"MLflow run {run_id}")


def resolve_target(target: str, *, weights: str | None = None, tracking_uri: str | None = None,
                   out: str | None = None, log_run: str | None = None,
                   member: str | None = None, **overrides: Any) -> AssessTarget:
    """An :class:`AssessTarget` from what the user passed: a folder, a
    genome ``.json`` (with ``weights``) or an MLflow run id. ``overrides``
    are SearchConfig fields (dataset, seed, bank, data_dir, ...) that
    replace the run's (for a genome file they are the settings). ``member``:
    a genome id of a multi-objective run folder's front instead of its best."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    path = Path(target)
    if path.is_dir():
        if weights:
            raise TargetError("--weights goes with a genome file, not a run folder (the "
                              "folder's best_model.pt is used)")
        result = _from_folder(path, overrides, tracking_uri=tracking_uri, member=member)
    elif member:
        raise TargetError(f"--member {member}: give the run folder of the search whose front "
                          f"it is in, not {target!r}")
    elif path.is_file():
        if weights and not Path(weights).is_file():
            raise TargetError(f"--weights {weights}: no such file")
        config = _config_from_dict({}, "options", stored=False, **overrides)
        result = AssessTarget(genome=_load_genome(path), config=config,
                              weights=Path(weights) if weights else None, run_id=None,
                              tracking_uri=tracking_uri or config.tracking_uri,
                              out_dir=path.parent, description=f"genome {path}")
    elif _RUN_ID.match(target):
        result = _from_mlflow(target, tracking_uri, overrides, Path(out) if out else None)
    else:
        raise TargetError(f"RUN={target!r} is neither a folder, a genome JSON file nor an "
                          "MLflow run id (32 hex digits); pass runs/<name>, a best_genome.json "
                          "or the run id printed by the search")
    if out:
        result.out_dir = Path(out)
    if log_run:
        result.run_id = log_run
    return result
