"""Pure functions on the small DAGs that blocks and models are made of.

A graph is ``n`` nodes (0..n-1) and a tuple of directed edges. Both blocks
(a DAG of layers) and models (a DAG of blocks) obey the same rules: acyclic,
exactly one entry (the node that receives the input) and exactly one exit
(the node that feeds the next stage), so every node lies on a path from the
entry to the exit. Keeping one set of rules for both levels is what lets the
block and model mutations share these helpers.

Graphs are stored in *canonical* form: nodes relabelled in a deterministic
topological order, so every edge goes from a lower to a higher index, the
entry is node 0 and the exit is node n-1. Canonical form makes "can this
edge be added without a cycle" a simple ``u < v`` test. It does not make
the numbering unique (a diamond A->{B,C}->D has two), so identity comes
from :func:`graph_hash`, which ignores the numbering.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterable, Sequence

from ..errors import GenomeError

__all__ = [
    "Edge",
    "canonical_order",
    "validate_dag",
    "insert_node",
    "remove_node",
    "removable_nodes",
    "addable_edges",
    "removable_edges",
    "descendants",
    "graph_hash",
]

Edge = tuple[int, int]


def _adjacency(n: int, edges: Iterable[Edge]) -> tuple[list[list[int]], list[list[int]]]:
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
        pred[v].append(u)
    return succ, pred


def validate_dag(n: int, edges: Sequence[Edge], what: str) -> None:
    """Raise :class:`GenomeError` unless the graph obeys the rules above.

    ``what`` names the graph in the message (e.g. ``"block B-1a2b"``).
    """
    if n < 1:
        raise GenomeError(f"{what}: a graph needs at least one node, got {n}")
    seen: set[Edge] = set()
    for edge in edges:
        if len(edge) != 2:
            raise GenomeError(f"{what}: edge {edge!r} must be a pair (source, target)")
        u, v = edge
        if not (isinstance(u, int) and isinstance(v, int)):
            raise GenomeError(f"{what}: edge {edge!r} must hold integer node indices")
        if not (0 <= u < n and 0 <= v < n):
            raise GenomeError(
                f"{what}: edge {u}->{v} refers to a node that does not exist "
                f"(dangling reference; valid nodes are 0..{n - 1})"
            )
        if u == v:
            raise GenomeError(f"{what}: edge {u}->{v} is a self-loop (cycle)")
        if (u, v) in seen:
            raise GenomeError(f"{what}: edge {u}->{v} appears twice")
        seen.add((u, v))
    order = _kahn(n, edges)
    if len(order) != n:
        stuck = sorted(set(range(n)) - set(order))
        raise GenomeError(f"{what}: the connections form a cycle through nodes {stuck}")
    succ, pred = _adjacency(n, edges)
    entries = [i for i in range(n) if not pred[i]]
    exits = [i for i in range(n) if not succ[i]]
    if len(entries) != 1:
        raise GenomeError(
            f"{what}: nodes {entries} have no input, so they are unreachable from the "
            "entry; a graph must have exactly one entry node"
        )
    if len(exits) != 1:
        raise GenomeError(
            f"{what}: nodes {exits} have no output, so they do not reach the output; "
            "a graph must have exactly one exit node"
        )


def _kahn(n: int, edges: Iterable[Edge]) -> list[int]:
    """Topological order, ties broken by the smallest index (deterministic)."""
    succ, pred = _adjacency(n, edges)
    indeg = [len(p) for p in pred]
    ready = [i for i in range(n) if indeg[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        u = heapq.heappop(ready)
        order.append(u)
        for v in succ[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                heapq.heappush(ready, v)
    return order


def canonical_order(n: int, edges: Sequence[Edge]) -> tuple[list[int], tuple[Edge, ...]]:
    """Return ``(order, edges)`` where ``order[new] = old`` and the edges are
    relabelled to the new indices and sorted. The graph must be valid."""
    order = _kahn(n, edges)
    new_index = {old: new for new, old in enumerate(order)}
    relabelled = tuple(sorted((new_index[u], new_index[v]) for u, v in edges))
    return order, relabelled


def descendants(n: int, edges: Sequence[Edge], node: int) -> list[int]:
    """Nodes reachable from ``node`` (excluding it), in index order."""
    succ, _ = _adjacency(n, edges)
    stack, seen = [node], set()
    while stack:
        for v in succ[stack.pop()]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return sorted(seen)


def insert_node(
    n: int, edges: Sequence[Edge], rng: random.Random
) -> tuple[int, tuple[Edge, ...]]:
    """Add node ``n`` after a random node ``u`` and, unless ``u`` is the exit,
    before a random descendant ``v`` of ``u`` (edges ``u->new->v``). Existing
    edges are kept; the result stays a single-entry single-exit DAG.

    Returns the new node's index and the new edges (not canonicalised).
    """
    u = rng.randrange(n)
    new_edges = [*edges, (u, n)]
    later = descendants(n, edges, u)
    if later:
        new_edges.append((n, rng.choice(later)))
    return n, tuple(new_edges)


def removable_nodes(n: int, edges: Sequence[Edge]) -> list[int]:
    """Nodes whose removal (bridging predecessors to successors) keeps exactly
    one entry and one exit: any interior node; the entry if exactly one of
    its successors has no other input (that one becomes the entry); the exit
    if exactly one of its predecessors has no other output. Never the last
    node."""
    if n < 2:
        return []
    succ, pred = _adjacency(n, edges)
    out = []
    for i in range(n):
        if not pred[i] and sum(len(pred[s]) == 1 for s in succ[i]) != 1:
            continue
        if not succ[i] and sum(len(succ[p]) == 1 for p in pred[i]) != 1:
            continue
        out.append(i)
    return out


def remove_node(n: int, edges: Sequence[Edge], node: int) -> tuple[list[int], tuple[Edge, ...]]:
    """Remove ``node``, connecting each of its predecessors to each of its
    successors. Returns ``(kept, edges)`` with ``kept[new] = old``."""
    succ, pred = _adjacency(n, edges)
    bridged = {(p, s) for p in pred[node] for s in succ[node]}
    remaining = {(u, v) for u, v in edges if node not in (u, v)} | bridged
    kept = [i for i in range(n) if i != node]
    index = {old: new for new, old in enumerate(kept)}
    return kept, tuple(sorted((index[u], index[v]) for u, v in remaining))


def addable_edges(n: int, edges: Sequence[Edge]) -> list[Edge]:
    """Edges that can be added without a cycle, for a canonical graph
    (every ``u < v`` that is not already an edge)."""
    present = set(edges)
    return [(u, v) for u in range(n) for v in range(u + 1, n) if (u, v) not in present]


def removable_edges(n: int, edges: Sequence[Edge]) -> list[Edge]:
    """Edges whose removal leaves every node on an entry-to-exit path: the
    source keeps another output and the target keeps another input."""
    succ, pred = _adjacency(n, edges)
    return [(u, v) for u, v in edges if len(succ[u]) > 1 and len(pred[v]) > 1]


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def graph_hash(n: int, edges: Sequence[Edge], labels: Sequence[str]) -> str:
    """A hash of a labelled DAG that does not depend on how its nodes are
    numbered, after NASBench's ``graph_util.hash_module``.

    Each node starts from a hash of (in-degree, out-degree, label); every
    round replaces it by a hash of its sorted in-neighbour hashes, its sorted
    out-neighbour hashes and itself (Weisfeiler-Lehman colour refinement),
    until a round splits no class of equal hashes (at most ``n`` rounds, as
    in NASBench); the result hashes the sorted node hashes.

    Relabelled copies of a graph always get the same hash. Colour refinement
    is not a complete isomorphism test, so two different graphs could in
    principle share one (highly regular ones, such as two 6-cycles versus a
    12-cycle between the same source and sink); among all single-entry,
    single-exit DAGs of up to 7 unlabelled nodes none do (checked
    exhaustively), and NASBench found none in its 423k graphs.
    """
    succ, pred = _adjacency(n, edges)
    colours = [_h(f"{len(pred[v])}|{len(succ[v])}|{labels[v]}") for v in range(n)]
    classes = len(set(colours))
    for _ in range(n):
        colours = [_h(",".join(sorted(colours[u] for u in pred[v])) + "|"
                      + ",".join(sorted(colours[w] for w in succ[v])) + "|" + colours[v])
                   for v in range(n)]
        refined = len(set(colours))
        if refined == classes:
            break
        classes = refined
    return _h(f"{n}|{len(edges)}|" + ",".join(sorted(colours)))[:12]
