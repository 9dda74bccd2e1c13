"""Immutable, content-identified genome records: Layer, Block and Model.

Identity is a hash of the content, so two identical layers (or blocks) are
the same member of their subpopulation wherever they were created, caches
can be keyed on ``id``, and a model's JSON form names every record it uses.
A block's (model's) id hashes its graph with the layer (block) ids as node
labels and ignores how the nodes are numbered (:func:`~.dag.graph_hash`):
the same DAG numbered two ways is one member, one gene-pool entry, one
spectrum-cache entry and one hall-of-fame entry. The records keep the node
order and edges they were given (after the topological canonicalisation of
:mod:`.dag`), so the JSON round trip is exact. Records validate themselves
in their constructor (as NASBench does) so an invalid genome cannot exist
in memory.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..errors import GenomeError
from . import choices as C
from .dag import Edge, canonical_order, graph_hash, validate_dag

__all__ = ["Layer", "Block", "Model", "MODEL_FORMAT"]

MODEL_FORMAT = "ras_deap.model/2"
# Format 1 is the same document with ids that hashed the node numbering too;
# it still loads (its ids are checked with that older hash).
_LEGACY_FORMAT = "ras_deap.model/1"


def _digest(prefix: str, payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _is_index(value: Any) -> bool:
    """An integer (Python or numpy), not a bool and not a float such as 8.0:
    ``8.0 in (8, 16)`` is true, but a float width breaks the compiler and
    hashes differently from 8, so it must not pass as a valid choice."""
    return type(value) is int or (isinstance(value, numbers.Integral)
                                  and not isinstance(value, bool))


def _check_choice(name: str, value: Any, allowed: tuple[int, ...], where: str) -> int:
    """Return ``value`` as a plain ``int`` if it is one of ``allowed``."""
    if not _is_index(value) or value not in allowed:
        raise GenomeError(f"{where}: {name}={value!r} is outside its choices {list(allowed)} "
                          "(use one of those integers)")
    return int(value)


def _as_edges(edges: Any, where: str) -> tuple[Edge, ...]:
    """Edges as a tuple of ``(int, int)`` pairs; rejects (rather than
    truncates) non-integer indices such as ``1.7`` or ``"1"``."""
    if type(edges) is tuple and all(type(e) is tuple and len(e) == 2 and type(e[0]) is int
                                    and type(e[1]) is int for e in edges):
        return edges  # already clean (what the mutations produce): skip the slow checks
    try:
        pairs = [tuple(edge) for edge in edges]
    except TypeError as exc:
        raise GenomeError(f"{where}: edges must be a list of [source, target] pairs of node "
                          f"indices, got {edges!r}") from exc
    for pair in pairs:
        if len(pair) != 2 or not all(_is_index(x) for x in pair):
            raise GenomeError(f"{where}: edge {list(pair)!r} must be a [source, target] pair of "
                              "integer node indices")
    return tuple((int(u), int(v)) for u, v in pairs)


def _section(data: Any, key: str, where: str, kind: type = dict) -> Any:
    """``data[key]`` checked to be a ``kind`` (clear errors for malformed JSON)."""
    if not isinstance(data, dict) or key not in data:
        raise GenomeError(f"{where} is missing the {key!r} entry")
    value = data[key]
    if not isinstance(value, kind):
        raise GenomeError(f"{where}: {key!r} must be a JSON {'object' if kind is dict else 'array'}"
                          f", got {type(value).__name__}")
    return value


@dataclass(frozen=True, eq=False)
class Layer:
    """A convolution (filters, kernel, stride) or dense (units) layer. Every
    layer is followed by ReLU and BatchNorm when compiled."""

    kind: str
    filters: int | None = None
    kernel: int | None = None
    stride: int | None = None
    units: int | None = None

    def __post_init__(self) -> None:
        where = f"layer {self.to_dict()}"
        if self.kind == C.CONV:
            # Normalise numpy integers to int so equal layers serialise identically.
            object.__setattr__(self, "filters",
                               _check_choice("filters", self.filters, C.CONV_FILTERS, where))
            object.__setattr__(self, "kernel",
                               _check_choice("kernel", self.kernel, C.CONV_KERNELS, where))
            object.__setattr__(self, "stride",
                               _check_choice("stride", self.stride, C.CONV_STRIDES, where))
            if self.units is not None:
                raise GenomeError(f"{where}: a conv layer has no units")
        elif self.kind == C.DENSE:
            object.__setattr__(self, "units",
                               _check_choice("units", self.units, C.DENSE_UNITS, where))
            if (self.filters, self.kernel, self.stride) != (None, None, None):
                raise GenomeError(f"{where}: a dense layer has no filters, kernel or stride")
        else:
            raise GenomeError(f"{where}: kind={self.kind!r} is not one of {list(C.LAYER_KINDS)}")

    @classmethod
    def conv(cls, filters: int, kernel: int, stride: int) -> Layer:
        return cls(C.CONV, filters=filters, kernel=kernel, stride=stride)

    @classmethod
    def dense(cls, units: int) -> Layer:
        return cls(C.DENSE, units=units)

    @property
    def is_conv(self) -> bool:
        return self.kind == C.CONV

    def to_dict(self) -> dict[str, Any]:
        if self.kind == C.CONV:
            return {"kind": self.kind, "filters": self.filters, "kernel": self.kernel,
                    "stride": self.stride}
        if self.kind == C.DENSE:
            return {"kind": self.kind, "units": self.units}
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layer:
        if not isinstance(data, dict) or "kind" not in data:
            raise GenomeError(f"layer {data!r}: expected an object with a 'kind'")
        unknown = set(data) - {"kind", "filters", "kernel", "stride", "units"}
        if unknown:
            raise GenomeError(f"layer {data!r}: unknown fields {sorted(unknown)}")
        return cls(**data)

    @cached_property
    def id(self) -> str:
        return _digest("L", self.to_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layer) and other.id == self.id

    def __copy__(self) -> Layer:
        return self  # immutable: copies (DEAP's toolbox.clone deep-copies) share the record

    def __deepcopy__(self, memo: dict) -> Layer:
        return self

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        if self.kind == C.CONV:
            return f"Conv({self.filters}f k{self.kernel} s{self.stride})"
        return f"Dense({self.units})"


class _Graph:
    """Shared behaviour of Block and Model: a canonical single-entry,
    single-exit DAG whose nodes are records of the level below."""

    nodes: tuple[Any, ...]
    edges: tuple[Edge, ...]
    _prefix = "G"
    _kind = "graph"  # what errors call it
    _node_type: type = object

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        for node in self.nodes:
            if not isinstance(node, self._node_type):
                raise GenomeError(f"{self._kind}: node {node!r} is not a "
                                  f"{self._node_type.__name__}")
        self._canonicalise(self._kind)

    def _canonicalise(self, where: str) -> None:
        edges = _as_edges(self.edges, where)
        validate_dag(len(self.nodes), edges, where)
        if all(u < v for u, v in edges) and list(edges) == sorted(edges):
            # Already canonical: with every edge forward, the smallest-index
            # topological order is the identity, so skip relabelling.
            object.__setattr__(self, "edges", edges)
            return
        order, canon = canonical_order(len(self.nodes), edges)
        object.__setattr__(self, "nodes", tuple(self.nodes[i] for i in order))
        object.__setattr__(self, "edges", canon)

    def __len__(self) -> int:
        return len(self.nodes)

    def predecessors(self, node: int) -> list[int]:
        return [u for u, v in self.edges if v == node]

    def successors(self, node: int) -> list[int]:
        return [v for u, v in self.edges if u == node]

    @cached_property
    def id(self) -> str:
        """Isomorphism-invariant: equal for every numbering of the same graph."""
        labels = [node.id for node in self.nodes]
        return f"{self._prefix}-{graph_hash(len(self.nodes), self.edges, labels)}"

    @property
    def legacy_id(self) -> str:
        """The id of model JSON format 1, which hashed the numbering too (only
        to check old documents)."""
        return _digest(self._prefix, {"nodes": [n.legacy_id if isinstance(n, _Graph) else n.id
                                                for n in self.nodes],
                                      "edges": [list(e) for e in self.edges]})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id  # type: ignore[attr-defined]

    def __copy__(self):  # immutable: copies share the record
        return self

    def __deepcopy__(self, memo: dict):
        return self

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True, eq=False, repr=False)
class Block(_Graph):
    """A DAG of layers with one entry and one exit. A node with several inputs
    concatenates them. The same layer may appear at several nodes."""

    nodes: tuple[Layer, ...]
    edges: tuple[Edge, ...] = field(default=())
    _prefix = "B"
    _kind = "block"
    _node_type = Layer

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self.nodes

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.id for layer in self.nodes],
                "edges": [list(e) for e in self.edges]}

    def __repr__(self) -> str:
        return f"Block({self.id}, {len(self.nodes)} layers, {len(self.edges)} edges)"


@dataclass(frozen=True, eq=False, repr=False)
class Model(_Graph):
    """A DAG of blocks: the entry block receives the input, the exit block
    feeds the classification head (global pooling + Linear + softmax)."""

    nodes: tuple[Block, ...]
    edges: tuple[Edge, ...] = field(default=())
    _prefix = "M"
    _kind = "model"
    _node_type = Block

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.nodes

    def layers(self) -> list[Layer]:
        """Every layer node of every block node, in order (with repeats)."""
        return [layer for block in self.nodes for layer in block.nodes]

    def to_dict(self) -> dict[str, Any]:
        """Human-readable, self-contained form: every layer and block the model
        uses, by id, then the model graph.

        Blocks are keyed by id. Two block nodes numbered differently but
        isomorphic share an id; the second numbering is stored under
        ``<id>~1`` (``~2``, ...) so the round trip keeps each node as it is."""
        layers: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        keys: list[str] = []
        for block in self.nodes:
            spec, key, copy = block.to_dict(), block.id, 0
            while blocks.setdefault(key, spec) != spec:
                copy += 1
                key = f"{block.id}~{copy}"
            keys.append(key)
            for layer in block.nodes:
                layers.setdefault(layer.id, layer.to_dict())
        return {
            "format": MODEL_FORMAT,
            "id": self.id,
            "layers": layers,
            "blocks": blocks,
            "model": {"blocks": keys, "edges": [list(e) for e in self.edges]},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """The model of :meth:`to_dict`'s document. Every id is checked against
        the content it names, so an edited or corrupted document raises
        :class:`GenomeError`. Documents of format 1 (ids that also hashed the
        node numbering) load too and get today's ids."""
        if not isinstance(data, dict):
            raise GenomeError(f"model JSON must be an object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt not in (MODEL_FORMAT, _LEGACY_FORMAT):
            raise GenomeError(f"model JSON has format {fmt!r}; expected {MODEL_FORMAT!r} (or the "
                              f"older {_LEGACY_FORMAT!r})")
        legacy = fmt == _LEGACY_FORMAT
        layer_specs = _section(data, "layers", "model JSON")
        block_specs = _section(data, "blocks", "model JSON")
        graph = _section(data, "model", "model JSON")
        layers = {}
        for lid, spec in layer_specs.items():
            layer = Layer.from_dict(spec)
            if layer.id != lid:
                raise GenomeError(f"layer {lid}: content hashes to {layer.id}; the JSON was edited "
                                  "or corrupted")
            layers[lid] = layer
        blocks = {}
        for key, spec in block_specs.items():
            missing = [lid for lid in _section(spec, "layers", f"block {key}", list)
                       if not isinstance(lid, str) or lid not in layers]
            if missing:
                raise GenomeError(f"block {key}: dangling reference to layer(s) {missing}, which "
                                  "the 'layers' section does not define")
            nodes = [layers[lid] for lid in spec["layers"]]
            block = Block(tuple(nodes), _as_edges(spec.get("edges", []), f"block {key}"))
            bid = block.legacy_id if legacy else block.id
            if bid != key.split("~")[0]:
                raise GenomeError(f"block {key}: content hashes to {bid}; the JSON was edited "
                                  "or corrupted")
            blocks[key] = block
        missing = [bid for bid in _section(graph, "blocks", "model JSON 'model'", list)
                   if not isinstance(bid, str) or bid not in blocks]
        if missing:
            raise GenomeError(f"model: dangling reference to block(s) {missing}, which the "
                              "'blocks' section does not define")
        nodes = [blocks[bid] for bid in graph["blocks"]]
        model = cls(tuple(nodes), _as_edges(graph.get("edges", []), "model"))
        mid = model.legacy_id if legacy else model.id
        if "id" in data and data["id"] != mid:
            raise GenomeError(f"model {data['id']}: content hashes to {mid}; the JSON was "
                              "edited or corrupted")
        return model

    @classmethod
    def from_json(cls, text: str) -> Model:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenomeError(f"model JSON is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return (f"Model({self.id}, {len(self.nodes)} blocks, {len(self.edges)} edges, "
                f"{len(self.layers())} layers)")
