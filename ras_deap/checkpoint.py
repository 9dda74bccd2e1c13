"""Atomic checkpoints of a search, so a killed run resumes where it stopped.

A checkpoint is *data*, not code: one JSON document (``checkpoint.json``)
holding the search state (RNG state, gene pool, cluster representatives,
offspring with the fitness of those already evaluated, logbook, hall of fame,
genomes in their JSON form, MLflow run ids) together with the config that
produced it and the per-generation history. Loading it parses JSON and
rebuilds the records through their validating constructors; nothing in it
is ever executed, so a hostile file can at worst be refused. Pickle
checkpoints of earlier versions (``checkpoint.pkl``) are refused with a
message, never unpickled.

It is written to a temporary file and renamed over the old one, so a kill at
any moment leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from deap import tools

from . import __version__
from .atomic import read_json_if_valid, write_atomic
from .errors import UsageError
from .evolution import SearchState
from .evolution.individual import make_individual
from .evolution.state import same_genome
from .genome import Block, GenePool, GenomeError, Layer, Model

__all__ = ["CHECKPOINT_NAME", "LEGACY_CHECKPOINT_NAME", "CheckpointError", "Checkpoint",
           "save_checkpoint", "load_checkpoint", "checkpoint_text", "checkpoint_to_dict",
           "checkpoint_from_dict", "checkpoint_evaluations", "checkpoint_timings"]

CHECKPOINT_NAME = "checkpoint.json"
LEGACY_CHECKPOINT_NAME = "checkpoint.pkl"  # formats 1 and 2: pickles, refused unread
# 3: JSON data instead of a pickle (format 2's state, same search semantics).
FORMAT = "ras_deap.checkpoint/3"
_MAX_BYTES = 512 * 1024 * 1024  # a checkpoint of a sane search is a few MB at most


class CheckpointError(UsageError):
    """A checkpoint that is missing, corrupt or from an incompatible version."""


@dataclass
class Checkpoint:
    config: dict[str, Any]
    state: SearchState
    history: list[dict[str, Any]]
    format: str = FORMAT
    version: str = __version__
    # set once the search ended (its summary): a resume then has nothing to do
    completed: dict[str, Any] | None = None


# -------------------------------------------------------------------- writing
def _plain(value: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays as Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON data and cannot be checkpointed")


class _Writer:
    """Turns a SearchState into JSON data; genomes and individuals are
    stored once each (by object identity) and referenced by index, so the
    restored state shares objects exactly where the saved one did."""

    def __init__(self) -> None:
        self.genomes: list[dict[str, Any]] = []
        self._genome_index: dict[int, int] = {}
        self.individuals: list[dict[str, Any]] = []
        self._ind_index: dict[int, int] = {}
        self._keep: list[Any] = []  # keeps ids stable while writing

    def genome(self, model: Model) -> int:
        key = id(model)
        if key not in self._genome_index:
            self._keep.append(model)
            self._genome_index[key] = len(self.genomes)
            self.genomes.append(model.to_dict())
        return self._genome_index[key]

    def individual(self, ind: Any) -> int:
        key = id(ind)
        if key not in self._ind_index:
            self._keep.append(ind)
            attrs = {k: v for k, v in vars(ind).items() if k not in ("fitness", "genome")}
            record = {"genome": self.genome(ind.genome),
                      "fitness": list(ind.fitness.values) if ind.fitness.valid else None,
                      "attrs": attrs}
            self._ind_index[key] = len(self.individuals)
            self.individuals.append(record)
        return self._ind_index[key]


def _pool_to_dict(pool: GenePool) -> dict[str, Any]:
    return {"layers": [layer.to_dict() for layer in pool.layers.values()],
            "blocks": [block.to_dict() for block in pool.blocks.values()],
            "new_layers": pool.new_layers, "new_blocks": pool.new_blocks}


def _logbook_to_dict(logbook: tools.Logbook) -> dict[str, Any]:
    if logbook.chapters:
        raise CheckpointError("a logbook with chapters cannot be checkpointed")
    return {"header": list(logbook.header) if logbook.header is not None else None,
            "records": [dict(r) for r in logbook], "buffindex": logbook.buffindex,
            "log_header": logbook.log_header}


def state_to_dict(state: SearchState) -> dict[str, Any]:
    w = _Writer()
    out = {
        "seed": state.seed,
        "rng": list(state.rng.getstate()),
        "generation": state.generation,
        "phase": state.phase,
        "evaluations": state.evaluations,
        "population": [w.individual(i) for i in state.population],
        "offspring": [w.individual(i) for i in state.offspring],
        "halloffame": {"maxsize": state.halloffame.maxsize,
                       "items": [w.individual(i) for i in state.halloffame.items]},
        "pool": _pool_to_dict(state.pool),
        "logbook": _logbook_to_dict(state.logbook),
        "extra": state.extra,
    }
    out["genomes"] = w.genomes
    out["individuals"] = w.individuals
    return out


def checkpoint_to_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    return {"format": checkpoint.format, "version": checkpoint.version,
            "config": checkpoint.config, "history": checkpoint.history,
            "completed": checkpoint.completed, "state": state_to_dict(checkpoint.state)}


def checkpoint_text(checkpoint: Checkpoint) -> str:
    """``checkpoint`` as JSON text: taken at once, written later (the search
    hands the writing to its MLflow writer thread, after the runs it names)."""
    return json.dumps(checkpoint_to_dict(checkpoint), default=_plain, separators=(",", ":"))


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` as JSON to ``path`` atomically."""
    write_atomic(path, checkpoint_text(checkpoint))


# -------------------------------------------------------------------- reading
class _Bad(Exception):
    """Malformed checkpoint data (turned into a CheckpointError with the path)."""


def _get(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise _Bad(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Bad(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, "
                   f"got {type(value).__name__}")
    return value


def _ref(index: Any, table: list[Any], where: str) -> Any:
    if type(index) is not int or not 0 <= index < len(table):
        raise _Bad(f"{where}: reference {index!r} is out of range")
    return table[index]


_TUPLE_ATTRS = ("mutations", "measurements")
_NUMBER_ATTRS = ("generation", "cluster", "eval_seed", "reevaluation_of", "epochs",
                 "promoted_from")
_TEXT_ATTRS = ("parent_id", "schedule", "failure", "tracking_key")
# every attribute an Individual has; a record may omit one (format 3 writes an
# attribute once it was set: absent means the constructor's default), never add one
_ATTRS = frozenset((*_TUPLE_ATTRS, *_NUMBER_ATTRS, *_TEXT_ATTRS, "metrics"))


def _individual(record: Any, genomes: list[Model], where: str) -> Any:
    genome = _ref(_get(record, "genome", int, where), genomes, f"{where}.genome")
    attrs = _get(record, "attrs", dict, where)
    unknown = sorted(set(attrs) - _ATTRS)
    if unknown:  # setattr of a hostile name (fitness, genome) would corrupt the search
        raise _Bad(f"{where}: unknown attributes {unknown}")
    for name in _NUMBER_ATTRS:
        if attrs.get(name) is not None and type(attrs[name]) is not int:
            raise _Bad(f"{where}.{name}: expected an integer, got {attrs[name]!r}")
    for name in _TEXT_ATTRS:
        if attrs.get(name) is not None and not isinstance(attrs[name], str):
            raise _Bad(f"{where}.{name}: expected text, got {attrs[name]!r}")
    mutations = attrs.get("mutations", [])
    if not isinstance(mutations, list) or not all(isinstance(m, str) for m in mutations):
        raise _Bad(f"{where}.mutations: expected a list of names")
    measurements = attrs.get("measurements", [])
    if not isinstance(measurements, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in measurements):
        raise _Bad(f"{where}.measurements: expected a list of numbers")
    metrics = attrs.get("metrics", {})
    if not isinstance(metrics, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
        raise _Bad(f"{where}.metrics: expected an object of numbers")
    ind = make_individual(genome)
    for name, value in attrs.items():
        setattr(ind, name, tuple(value) if name in _TUPLE_ATTRS else value)
    fitness = record.get("fitness")
    if fitness is not None:
        if not isinstance(fitness, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in fitness):
            raise _Bad(f"{where}.fitness: expected a list of numbers")
        ind.fitness.values = tuple(float(v) for v in fitness)
    return ind


def _pool(data: Any) -> GenePool:
    pool = GenePool(new_layers=_get(data, "new_layers", int, "pool"),
                    new_blocks=_get(data, "new_blocks", int, "pool"))
    for spec in _get(data, "layers", list, "pool"):
        layer = Layer.from_dict(spec)
        pool.layers[layer.id] = layer
    for i, spec in enumerate(_get(data, "blocks", list, "pool")):
        ids = _get(spec, "layers", list, f"pool.blocks[{i}]")
        missing = [lid for lid in ids if not isinstance(lid, str) or lid not in pool.layers]
        if missing:
            raise _Bad(f"pool.blocks[{i}]: unknown layers {missing}")
        edges = _get(spec, "edges", list, f"pool.blocks[{i}]")
        block = Block(tuple(pool.layers[lid] for lid in ids),
                      tuple(tuple(e) if isinstance(e, list) else e for e in edges))
        pool.blocks[block.id] = block
    return pool


def _logbook(data: Any) -> tools.Logbook:
    logbook = tools.Logbook()
    header = data.get("header") if isinstance(data, dict) else None
    logbook.header = list(header) if isinstance(header, list) else None
    for record in _get(data, "records", list, "logbook"):
        if not isinstance(record, dict):
            raise _Bad("logbook.records: expected objects")
        logbook.append(dict(record))
    logbook.buffindex = _get(data, "buffindex", int, "logbook")
    logbook.log_header = bool(data.get("log_header", True))
    return logbook


def _rng(data: Any) -> random.Random:
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[1], list)
            and all(type(x) is int for x in data[1])):
        raise _Bad("rng: not a random.Random state")
    rng = random.Random()
    gauss = data[2]
    if gauss is not None and not isinstance(gauss, float):
        raise _Bad("rng: bad gauss_next")
    try:
        rng.setstate((data[0], tuple(data[1]), gauss))
    except (TypeError, ValueError) as exc:
        raise _Bad(f"rng: {exc}") from exc
    return rng


def state_from_dict(data: Any) -> SearchState:
    genomes = [Model.from_dict(g) for g in _get(data, "genomes", list, "state")]
    inds = [_individual(r, genomes, f"individuals[{i}]")
            for i, r in enumerate(_get(data, "individuals", list, "state"))]
    phase = _get(data, "phase", str, "state")
    if phase not in ("evaluate", "done"):
        raise _Bad(f"state.phase: {phase!r} is not 'evaluate' or 'done'")
    hof_data = _get(data, "halloffame", dict, "state")
    hof = tools.HallOfFame(_get(hof_data, "maxsize", int, "halloffame"), similar=same_genome)
    hof.items = [_ref(i, inds, "halloffame") for i in _get(hof_data, "items", list,
                                                            "halloffame")]
    hof.keys = [ind.fitness for ind in reversed(hof.items)]  # ascending, as DEAP keeps them
    extra = _get(data, "extra", dict, "state")
    return SearchState(
        seed=_get(data, "seed", int, "state"), rng=_rng(_get(data, "rng", list, "state")),
        pool=_pool(_get(data, "pool", dict, "state")),
        population=[_ref(i, inds, "population") for i in _get(data, "population", list,
                                                               "state")],
        generation=_get(data, "generation", int, "state"),
        offspring=[_ref(i, inds, "offspring") for i in _get(data, "offspring", list, "state")],
        phase=phase, logbook=_logbook(_get(data, "logbook", dict, "state")), halloffame=hof,
        evaluations=_get(data, "evaluations", int, "state"), extra=extra)


def checkpoint_from_dict(data: Any) -> Checkpoint:
    history = _get(data, "history", list, "checkpoint")
    if not all(isinstance(h, dict) for h in history):
        raise _Bad("checkpoint.history: expected objects")
    completed = data.get("completed")
    if completed is not None and not isinstance(completed, dict):
        raise _Bad("checkpoint.completed: expected an object")
    return Checkpoint(config=_get(data, "config", dict, "checkpoint"),
                      state=state_from_dict(_get(data, "state", dict, "checkpoint")),
                      history=history, format=data["format"],
                      version=str(data.get("version", "?")), completed=completed)


def _legacy_message(path: Path) -> str:
    return (f"{path} is a pickle checkpoint of an older ras_deap (checkpoint format 1 or 2). "
            "Pickles can run arbitrary code when loaded, so this version never opens them: "
            "finish that run with the version that wrote it, or start a new run (without "
            "--resume, or with another --run-name)")


def _peek_state(run_dir: Path) -> dict[str, Any]:
    data = read_json_if_valid(Path(run_dir) / CHECKPOINT_NAME)
    state = data.get("state") if isinstance(data, dict) else None
    return state if isinstance(state, dict) else {}


def checkpoint_evaluations(run_dir: Path) -> int | None:
    """The evaluations the checkpoint in ``run_dir`` records, read without
    rebuilding its state (for progress views and journal repairs); None if
    there is none or it is unreadable."""
    value = _peek_state(run_dir).get("evaluations")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def checkpoint_timings(run_dir: Path) -> dict[str, float]:
    """The wall seconds the search in ``run_dir`` spent per phase, summed over
    the sessions of a resumed search (``evaluation``, ``checkpoint``, ...), read
    without rebuilding its state; empty if there is no readable checkpoint."""
    extra = _peek_state(run_dir).get("extra")
    timings = extra.get("timings") if isinstance(extra, dict) else None
    if not isinstance(timings, dict):
        return {}
    return {str(k): float(v) for k, v in timings.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def load_checkpoint(path: Path) -> Checkpoint:
    """Read the checkpoint of run folder (or file) ``path``: parsed as JSON
    and validated, never unpickled. Raises :class:`CheckpointError` with a
    message saying what to do for anything else."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file() and (path / LEGACY_CHECKPOINT_NAME).is_file():
            raise CheckpointError(_legacy_message(path / LEGACY_CHECKPOINT_NAME))
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: pass the folder of a run started with "
                              "`python -m ras_deap.run` (runs/<name>/)")
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
            raw = head + fh.read(_MAX_BYTES)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc})") from exc
    if head[:1] == b"\x80" or path.suffix == ".pkl":  # pickle protocol 2+ starts with 0x80
        raise CheckpointError(_legacy_message(path))
    if len(raw) > _MAX_BYTES:
        raise CheckpointError(f"checkpoint {path} is larger than {_MAX_BYTES // 2**20} MB: not "
                              "a ras_deap checkpoint")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be read ({exc}); start "
                              "a new run, or restore the file from a backup") from exc
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt != FORMAT:
        raise CheckpointError(f"{path} is not a ras_deap checkpoint of format {FORMAT} (format "
                              f"{fmt!r}); it was written by another program or version")
    try:
        return checkpoint_from_dict(data)
    except (_Bad, GenomeError, TypeError, ValueError, KeyError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({exc}); start a new run, or "
                              "restore the file from a backup") from exc

