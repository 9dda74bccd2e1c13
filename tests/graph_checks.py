"""An independent check of the DAG rules, written without the genome code,
for the tests that must not trust what they test."""

from __future__ import annotations


def reach(n: int, edges, start: int, forward: bool) -> set[int]:
    """Nodes reachable from ``start`` along (``forward``) or against the edges."""
    nxt: dict[int, list[int]] = {i: [] for i in range(n)}
    for u, v in edges:
        nxt[u if forward else v].append(v if forward else u)
    seen, stack = {start}, [start]
    while stack:
        for x in nxt[stack.pop()]:
            if x not in seen:
                seen.add(x)
                stack.append(x)
    return seen


def on_entry_exit_paths(n: int, edges) -> bool:
    """Every node is reachable from node 0 and reaches node n-1."""
    return reach(n, edges, 0, True) == set(range(n)) == reach(n, edges, n - 1, False)
