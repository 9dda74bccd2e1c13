"""The DAG rules shared by blocks and models, and the graph edits mutations use."""

from __future__ import annotations

import random

import networkx as nx
import pytest
from graph_checks import on_entry_exit_paths

from ras_deap.genome import GenomeError
from ras_deap.genome.dag import (
    addable_edges,
    canonical_order,
    descendants,
    graph_hash,
    insert_node,
    removable_edges,
    removable_nodes,
    remove_node,
    validate_dag,
)
from ras_deap.genome.random_init import random_dag


def is_valid(n, edges) -> bool:
    try:
        validate_dag(n, edges, "g")
    except GenomeError:
        return False
    return True


def canonical_graphs(count=80, max_n=7):
    rng = random.Random(1234)
    graphs = [(1, ())]
    for _ in range(count):
        n = rng.randint(2, max_n)
        edges = random_dag(n, rng)
        _, canon = canonical_order(n, edges)
        graphs.append((n, canon))
    return graphs


GRAPHS = canonical_graphs()


@pytest.mark.parametrize(("n", "edges", "match"), [
    (0, (), "at least one node"),
    (2, ((0, 5),), "dangling reference"),
    (2, ((1, 1),), "self-loop"),
    (2, ((0, 1), (0, 1)), "appears twice"),
    (3, ((0, 1), (1, 2), (2, 1)), "cycle"),
    (3, ((0, 2), (1, 2)), "have no input"),
    (3, ((0, 1), (0, 2)), "have no output"),
    (3, ((0, 1),), "no input"),
    (2, (("0", 1),), "integer node indices"),
    (2, ((0,),), "pair"),
])
def test_validate_dag_rejects_with_a_message(n, edges, match):
    with pytest.raises(GenomeError, match=match):
        validate_dag(n, edges, "block X")
    with pytest.raises(GenomeError, match="block X"):
        validate_dag(n, edges, "block X")


def test_validate_dag_accepts_single_entry_single_exit_graphs():
    validate_dag(1, (), "g")
    validate_dag(4, ((0, 1), (0, 2), (1, 3), (2, 3)), "g")
    validate_dag(3, ((2, 0), (0, 1)), "g")  # not canonical, still valid


def test_canonical_order_is_a_deterministic_topological_relabelling():
    order, edges = canonical_order(4, ((3, 1), (3, 2), (1, 0), (2, 0)))
    assert order == [3, 1, 2, 0]
    assert edges == ((0, 1), (0, 2), (1, 3), (2, 3))
    # canonical graphs are fixed points
    for n, canon in GRAPHS:
        assert canonical_order(n, canon) == (list(range(n)), canon)


def test_random_dags_are_valid_and_canonical_form_puts_entry_first_exit_last():
    for n, edges in GRAPHS:
        assert is_valid(n, edges) and on_entry_exit_paths(n, edges)
        assert all(u < v for u, v in edges) and list(edges) == sorted(set(edges))


def test_descendants():
    edges = ((0, 1), (0, 2), (1, 3), (2, 3))
    assert descendants(4, edges, 0) == [1, 2, 3]
    assert descendants(4, edges, 1) == [3]
    assert descendants(4, edges, 3) == []


def test_insert_node_keeps_the_graph_valid_and_adds_one_or_two_edges():
    rng = random.Random(0)
    for n, edges in GRAPHS:
        for _ in range(3):
            new, grown = insert_node(n, edges, rng)
            assert new == n and is_valid(n + 1, grown)
            added = set(grown) - set(edges)
            assert set(edges) <= set(grown) and len(added) in (1, 2)
            (u, _), = [e for e in added if e[1] == new]
            outs = [v for s, v in added if s == new]
            assert outs == [] or outs[0] in descendants(n, edges, u)
            assert (outs == []) == (descendants(n, edges, u) == [])


def test_removable_nodes_are_exactly_those_whose_removal_stays_valid():
    for n, edges in GRAPHS:
        removable = removable_nodes(n, edges)
        if n == 1:
            assert removable == []
            continue
        for node in range(n):
            kept, left = remove_node(n, edges, node)
            assert kept == [i for i in range(n) if i != node]
            assert is_valid(n - 1, left) == (node in removable), (n, edges, node)


def test_remove_node_bridges_predecessors_to_successors():
    edges = ((0, 1), (0, 2), (1, 3), (2, 3))
    kept, left = remove_node(4, edges, 1)
    assert kept == [0, 2, 3]
    assert left == ((0, 1), (0, 2), (1, 2))  # 0->3 bridge, relabelled
    assert removable_nodes(4, edges) == [1, 2]  # entry and exit have two links each
    assert removable_nodes(2, ((0, 1),)) == [0, 1]
    # the entry has three successors, but only node 1 is fed by the entry alone,
    # so removing the entry leaves node 1 as the single new entry
    skip = ((0, 1), (0, 2), (0, 3), (1, 2), (2, 3))
    assert 0 in removable_nodes(4, skip)
    assert remove_node(4, skip, 0) == ([1, 2, 3], ((0, 1), (1, 2)))
    # and symmetrically for the exit
    assert 3 in removable_nodes(4, ((0, 1), (0, 3), (1, 2), (1, 3), (2, 3)))


def test_addable_edges_are_every_missing_forward_edge_and_keep_validity():
    for n, edges in GRAPHS:
        addable = addable_edges(n, edges)
        expected = {(u, v) for u in range(n) for v in range(u + 1, n)} - set(edges)
        assert set(addable) == expected
        for edge in addable:
            assert is_valid(n, (*edges, edge))
    assert addable_edges(3, ((0, 1), (0, 2), (1, 2))) == []


def test_removable_edges_are_exactly_those_whose_removal_stays_valid():
    for n, edges in GRAPHS:
        removable = set(removable_edges(n, edges))
        for edge in edges:
            left = tuple(e for e in edges if e != edge)
            assert is_valid(n, left) == (edge in removable), (n, edges, edge)
    assert removable_edges(3, ((0, 1), (1, 2))) == []
    assert removable_edges(3, ((0, 1), (0, 2), (1, 2))) == [(0, 2)]


def test_graph_hash_ignores_numbering_and_sees_labels_and_edges():
    # the diamond A -> {B, C} -> D numbered both ways (both canonical)
    assert graph_hash(4, ((0, 1), (0, 2), (1, 3), (2, 3)), "ABCD") == \
        graph_hash(4, ((0, 1), (0, 2), (1, 3), (2, 3)), "ACBD")
    # any relabelling of the nodes (edges and labels together)
    for n, edges in GRAPHS:
        labels = [str(i % 3) for i in range(n)]
        perm = list(range(n))
        random.Random(n).shuffle(perm)
        moved = tuple((perm[u], perm[v]) for u, v in edges)
        moved_labels = [""] * n
        for i in range(n):
            moved_labels[perm[i]] = labels[i]
        assert graph_hash(n, moved, moved_labels) == graph_hash(n, edges, labels)
    chain, skip = ((0, 1), (1, 2)), ((0, 1), (0, 2), (1, 2))
    assert graph_hash(3, chain, "xyz") != graph_hash(3, skip, "xyz")
    assert graph_hash(3, chain, "xyz") != graph_hash(3, chain, "xzy")
    assert graph_hash(1, (), "x") != graph_hash(1, (), "y")
    assert len(graph_hash(3, chain, "xyz")) == 12


def test_graph_hash_shares_the_known_blind_spot_of_colour_refinement():
    """What the docstring warns about: a 12-cycle and two 6-cycles between
    the same source and sink are not isomorphic but refine alike (14
    unlabelled nodes; no such pair exists up to 7 nodes)."""
    def layered(pairs):
        return ((*((0, a) for a in range(1, 7)), *pairs, *((b, 13) for b in range(7, 13))))
    straight = [(1 + i, 7 + i) for i in range(6)]
    one_cycle = layered(straight + [(1 + i, 7 + (i + 1) % 6) for i in range(6)])
    two_cycles = layered(straight + [(1 + i, 7 + 3 * (i // 3) + (i + 1) % 3) for i in range(6)])
    assert not nx.is_isomorphic(nx.DiGraph(one_cycle), nx.DiGraph(two_cycles))
    assert graph_hash(14, one_cycle, ["x"] * 14) == graph_hash(14, two_cycles, ["x"] * 14)
