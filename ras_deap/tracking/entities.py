"""Turning search data into MLflow params, metrics and tags that MLflow accepts.

MLflow rejects names with characters outside ``[/\\w.\\- :]``, param values
over 6000 characters, tag values over 8000, and batches over 100 params+tags
or 1000 entities. The tracker must never crash a long search over a config
value, so everything is made valid here, in one place.
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from mlflow.entities import Metric, Param, RunTag

__all__ = [
    "IndividualRecord",
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "batches",
    "clean_name",
    "flatten_config",
    "to_metrics",
    "to_params",
    "to_tags",
]

MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
_MAX_PARAMS_TAGS = 100
_MAX_ENTITIES = 1000
_MAX_NAME = 250
_BAD_CHARS = re.compile(r"[^/\w.\- :]")


@dataclass
class IndividualRecord:
    """Everything logged about one evaluated individual (one child run).

    ``key`` is unique within a search (e.g. ``"g3-i7"``) and is what makes
    logging idempotent across a resume; ``genome`` is ``Model.to_dict()``;
    ``parent_id`` is the genome id of the genetic parent (the representative
    it was mutated from) and ``parent_run_id`` that parent's run, when known;
    ``started_at``/``ended_at`` are the evaluation's wall-clock start and end
    (epoch seconds), which become the run's start and end times;
    ``parent_key`` is the genetic parent's key, which the tracker turns into
    ``parent_run_id`` when it writes the record.
    """

    key: str
    genome_id: str
    generation: int
    index: int
    cluster: int | None
    parent_id: str | None
    mutations: list[str]
    fitness: float
    metrics: dict[str, float]
    spectrum: dict[str, float]
    genome: dict[str, Any]
    failure: str | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    # the genetic parent's ``key``: resolved to ``parent_run_id`` when the record is
    # written (by then, in order, the parent's run exists)
    parent_key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValueError(f"IndividualRecord.key must be a non-empty string, got {self.key!r}")
        if not isinstance(self.genome, dict):
            raise TypeError("IndividualRecord.genome must be Model.to_dict() (a dict), got "
                            f"{type(self.genome).__name__}")


def clean_name(name: Any) -> str:
    """A valid MLflow param/metric/tag name for ``name`` (bad characters
    become ``_``; names that would resolve to another path are flattened)."""
    text = _BAD_CHARS.sub("_", str(name))[:_MAX_NAME] or "_"
    if posixpath.normpath(text) != text or text.startswith(("/", "..")) or text == ".":
        text = text.replace("/", "_")
        if text in (".", "..") or text.startswith(".."):
            text = "_" + text
    return text


def _stringify(value: Any) -> str:
    """Containers as JSON (readable and parseable back), anything else as str()."""
    if isinstance(value, list | tuple | dict | set | frozenset):
        if isinstance(value, set | frozenset):
            value = sorted(value, key=str)
        try:
            return json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = "...[truncated]"
    return text[: limit - len(marker)] + marker


def flatten_config(config: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts (or dataclasses) become dotted keys (``{"a": {"b": 1}}`` ->
    ``{"a.b": "1"}``); leaves are stringified (lists as JSON) and cut to
    MLflow's 6000 characters."""
    if is_dataclass(config) and not isinstance(config, type):
        config = asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict or a dataclass instance, got "
                        f"{type(config).__name__}")
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, prefix=f"{name}."))
        else:
            flat[clean_name(name)] = _truncate(_stringify(value), MAX_PARAM_LENGTH)
    return flat


def to_params(values: Mapping[str, Any]) -> list[Param]:
    return [Param(clean_name(k), _truncate(_stringify(v), MAX_PARAM_LENGTH))
            for k, v in values.items()]


def to_tags(values: Mapping[str, Any]) -> list[RunTag]:
    return [RunTag(clean_name(k), _truncate(_stringify(v), MAX_TAG_LENGTH))
            for k, v in values.items()]


def to_metrics(values: Mapping[str, Any], step: int = 0,
               timestamp: int | None = None) -> list[Metric]:
    """Metrics from a name -> number mapping. NaN and infinities are kept
    (MLflow stores them); None is skipped (a value that was not measured);
    anything else non-numeric is an error that names the key."""
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    metrics = []
    for key, value in values.items():
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metric {key!r} has the non-numeric value {value!r}; metrics must "
                             "be numbers (log text as a param or tag instead)") from exc
        metrics.append(Metric(clean_name(key), number, stamp, int(step)))
    return metrics


def batches(metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
            tags: Sequence[RunTag] = ()) -> Iterator[tuple[list[Metric], list[Param],
                                                           list[RunTag]]]:
    """Split entities into ``log_batch``-sized chunks (at most 100 params+tags
    and 1000 entities each); usually there is exactly one chunk."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p = params[:_MAX_PARAMS_TAGS]
        t = tags[: _MAX_PARAMS_TAGS - len(p)]
        m = metrics[: _MAX_ENTITIES - len(p) - len(t)]
        params, tags, metrics = params[len(p):], tags[len(t):], metrics[len(m):]
        yield m, p, t
