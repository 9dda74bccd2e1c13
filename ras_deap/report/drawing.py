"""Drawings of one architecture: Graphviz DOT text and a matplotlib PNG.

Both show the layer-level graph a model compiles to: an input node, every
layer node (grouped and coloured by block), the edges inside blocks, the
edges a block connection makes (exit layer of one block to the entry layer
of the next), and the softmax head. The PNG needs no Graphviz: it lays the
model out in bands by block depth and, inside a block, rows by layer depth,
so blocks never overlap and each block reads top to bottom.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ras_deap.genome import Layer, Model

from .curves import save_figure

__all__ = ["draw_model", "layer_graph", "layer_label", "model_to_dot"]

INPUT, SOFTMAX = "input", "softmax"
_X_INCH, _Y_INCH = 1.55, 0.62  # inches per layout unit
_BLOCK_GAP, _BAND_GAP = 0.45, 0.9  # layout units between blocks side by side / bands


def layer_label(layer: Layer) -> str:
    """``"conv 16f k3 s1"`` or ``"dense 256"``."""
    if layer.is_conv:
        return f"conv {layer.filters}f k{layer.kernel} s{layer.stride}"
    return f"dense {layer.units}"


def _node(block: int, index: int) -> str:
    return f"b{block}_l{index}"


def layer_graph(model: Model) -> tuple[list[tuple[str, str, int | None]], list[tuple[str, str]]]:
    """Nodes ``(name, label, block index or None)`` and edges ``(src, dst)`` of
    the layer-level graph, input first and softmax last."""
    nodes: list[tuple[str, str, int | None]] = [(INPUT, INPUT, None)]
    edges: list[tuple[str, str]] = [(INPUT, _node(0, 0))]
    for b, block in enumerate(model.blocks):
        nodes.extend((_node(b, j), layer_label(layer), b) for j, layer in enumerate(block.layers))
        edges.extend((_node(b, u), _node(b, v)) for u, v in block.edges)
    for u, v in model.edges:
        edges.append((_node(u, len(model.blocks[u].layers) - 1), _node(v, 0)))
    last = len(model.blocks) - 1
    edges.append((_node(last, len(model.blocks[last].layers) - 1), SOFTMAX))
    nodes.append((SOFTMAX, SOFTMAX, None))
    return nodes, edges


def _depths(n: int, edges: tuple[tuple[int, int], ...]) -> list[int]:
    """Longest-path depth from node 0; canonical graphs have u < v on every edge."""
    depth = [0] * n
    for u, v in sorted(edges):
        depth[v] = max(depth[v], depth[u] + 1)
    return depth


def _colours(count: int) -> list[str]:
    cmap = colormaps["tab10"]
    return [to_hex(cmap(i % 10)) for i in range(count)]


def _light(colour: str, amount: float = 0.6) -> str:
    """``colour`` mixed with white: an opaque pastel, so edges behind a node
    do not show through its label."""
    rgb = to_rgb(colour)
    return to_hex(tuple(c + (1 - c) * amount for c in rgb))


def model_to_dot(model: Model) -> str:
    """Graphviz DOT text (``dot -Tpng``) with one cluster per block."""
    if not isinstance(model, Model):
        raise TypeError(f"model_to_dot expects a Model, got {type(model).__name__}")
    nodes, edges = layer_graph(model)
    colours = _colours(len(model.blocks))
    lines = [f'digraph "{model.id}" {{', "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             f'  {INPUT} [label="input", shape=ellipse, fillcolor="#eeeeee"];']
    for b, block in enumerate(model.blocks):
        lines += [f"  subgraph cluster_b{b} {{",
                  f'    label="block {b} ({block.id})"; color="{colours[b]}"; fontsize=9;']
        lines += [f'    {name} [label="{label}", fillcolor="{_light(colours[b])}"];'
                  for name, label, owner in nodes if owner == b]
        lines.append("  }")
    lines.append(f'  {SOFTMAX} [label="softmax", shape=ellipse, fillcolor="#eeeeee"];')
    lines += [f"  {src} -> {dst};" for src, dst in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Box:
    block: int
    x0: float
    x1: float
    y0: float
    y1: float


def _layout(model: Model) -> tuple[dict[str, tuple[float, float]], list[_Box], float, float]:
    """Positions (x right, y down, in layout units) of every node, the block
    boxes, and the drawing's width and height."""
    block_depth = _depths(len(model.blocks), model.edges)
    bands: dict[int, list[int]] = {}
    for b, d in enumerate(block_depth):
        bands.setdefault(d, []).append(b)
    pos: dict[str, tuple[float, float]] = {}
    boxes: list[_Box] = []
    row, width = 1.0 + _BAND_GAP / 2, 1.0
    for d in sorted(bands):
        rows_of, widths = {}, {}
        for b in bands[d]:
            depth = _depths(len(model.blocks[b].layers), model.blocks[b].edges)
            rows_of[b] = [[j for j, dj in enumerate(depth) if dj == k]
                          for k in range(max(depth) + 1)]
            widths[b] = max(len(r) for r in rows_of[b])
        total = sum(widths.values()) + _BLOCK_GAP * (len(widths) - 1)
        width = max(width, total)
        x0 = -total / 2
        for b in bands[d]:
            centre = x0 + widths[b] / 2
            for k, members in enumerate(rows_of[b]):
                for i, j in enumerate(members):
                    pos[_node(b, j)] = (centre + i - (len(members) - 1) / 2, row + k)
            boxes.append(_Box(b, x0, x0 + widths[b], row - 0.45, row + len(rows_of[b]) - 0.55))
            x0 += widths[b] + _BLOCK_GAP
        row += max(len(r) for r in rows_of.values()) + _BAND_GAP
    pos[INPUT] = (0.0, 0.0)
    pos[SOFTMAX] = (0.0, row - _BAND_GAP / 2)
    return pos, boxes, width, row - _BAND_GAP / 2


def draw_model(model: Model, path: str | Path, title: str | None = None) -> Path:
    """Draw ``model`` as a PNG at ``path``: blocks as coloured boxes, layers as
    labelled nodes, input and softmax nodes. Readable up to ~40 layers (the
    figure grows with the graph)."""
    if not isinstance(model, Model):
        raise TypeError(f"draw_model expects a Model, got {type(model).__name__}")
    nodes, edges = layer_graph(model)
    pos, boxes, width, height = _layout(model)
    colours = _colours(len(model.blocks))
    fig = Figure(figsize=(max(4.0, (width + 0.8) * _X_INCH), max(3.0, (height + 1.2) * _Y_INCH)))
    ax = fig.add_axes((0, 0, 1, 0.97 if title is None else 0.93))
    ax.set_xlim(-width / 2 - 0.6, width / 2 + 0.6)
    ax.set_ylim(height + 0.6, -0.6)
    ax.axis("off")
    for box in boxes:
        colour = colours[box.block]
        ax.add_patch(FancyBboxPatch((box.x0, box.y0), box.x1 - box.x0, box.y1 - box.y0,
                                    boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor=colour, alpha=0.12, edgecolor=colour,
                                    linewidth=1.2, zorder=0))
        ax.text(box.x0 + 0.05, box.y0 - 0.04, f"block {box.block}", fontsize=7, color=colour,
                ha="left", va="bottom", zorder=1)
    for src, dst in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        skips = abs(y1 - y0) > 1.5 and abs(x1 - x0) < 0.5  # would run through nodes between
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 0.9,
                                "shrinkA": 9, "shrinkB": 9, "mutation_scale": 9,
                                "connectionstyle": f"arc3,rad={0.35 if skips else 0.0}"})
    for name, label, owner in nodes:
        x, y = pos[name]
        face = "#eeeeee" if owner is None else _light(colours[owner])
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=2,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": face, "edgecolor": "#333333",
                      "linewidth": 0.6})
    fig.suptitle(title or f"{model.id}: {len(model.blocks)} blocks, {len(model.layers())} layers",
                 fontsize=9)
    return save_figure(fig, path, dpi=110)
