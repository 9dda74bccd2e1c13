"""Drawings of one architecture: Graphviz DOT text, and a PNG or SVG drawn
with matplotlib alone (no Graphviz binary to install).

All show the block graph with each block's layer graph inside it: an input
node, a box per block holding its layers (labelled with kind,
filters/units, kernel and stride) and the edges between them, the edges a
block connection makes (exit layer of one block to the entry layer of the
next), and the softmax head. The matplotlib drawing lays the model out in
bands by block depth and, inside a block, rows by layer depth, so blocks
never overlap and each block reads top to bottom. Its SVG has one group per
block (and per layer inside it) and is deterministic, so it can be
committed and compared.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib import colormaps, rc_context
from matplotlib.artist import Artist
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from ras_deap.genome import Layer, Model

from ..atomic import save_figure_atomic
from .curves import save_figure

__all__ = ["draw_model", "layer_graph", "layer_label", "model_to_dot", "model_to_svg"]

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


class _Group(Artist):
    """Artists drawn as one SVG group ``<g id="gid">`` (nested groups in the
    SVG; the PNG just draws them in order)."""

    def __init__(self, gid: str, children: list[Artist], zorder: float) -> None:
        super().__init__()
        self.set_gid(gid)
        self.set_zorder(zorder)
        self.children = children

    def set_figure(self, fig: Any) -> None:
        super().set_figure(fig)
        for child in self.children:
            child.set_figure(fig)

    def draw(self, renderer: Any) -> None:
        renderer.open_group("group", gid=self.get_gid())
        for child in sorted(self.children, key=lambda a: a.get_zorder()):
            child.draw(renderer)
        renderer.close_group("group")
        self.stale = False

    def get_window_extent(self, renderer: Any = None) -> Bbox:
        extents = [c.get_window_extent(renderer) for c in self.children]
        return Bbox.union(extents) if extents else Bbox.null()


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], *, lw: float,
           colour: str, rad: float = 0.0) -> FancyArrowPatch:
    return FancyArrowPatch(start, end, transform=ax.transData, arrowstyle="-|>", color=colour,
                           lw=lw, shrinkA=9, shrinkB=9, mutation_scale=9,
                           connectionstyle=f"arc3,rad={rad}", zorder=1)


def _node_text(ax: Any, xy: tuple[float, float], label: str, face: str, gid: str) -> Text:
    text = Text(*xy, label, ha="center", va="center", fontsize=8, zorder=2,
                transform=ax.transData,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": face, "edgecolor": "#333333",
                      "linewidth": 0.6})
    text.set_gid(gid)
    return text


def _figure(model: Model, title: str | None) -> Figure:
    """The drawing (see the module docstring) on a bare Figure.

    SVG groups: ``block{b}`` holds block b's box, its title, its layer
    edges and a group ``block{b}-layer{j}`` per layer (the labelled node);
    ``block-edges`` the edges between blocks (exit layer of one to the
    entry layer of the next) and from the input and to the softmax head;
    ``input`` and ``softmax`` the two end nodes."""
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
    owner = {name: block for name, _, block in nodes}

    def edge(src: str, dst: str, lw: float, colour: str) -> FancyArrowPatch:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        skips = abs(y1 - y0) > 1.5 and abs(x1 - x0) < 0.5  # would run through nodes between
        return _arrow(ax, (x0, y0), (x1, y1), lw=lw, colour=colour,
                      rad=0.35 if skips else 0.0)

    between = [edge(src, dst, 1.2, "#222222") for src, dst in edges
               if owner[src] is None or owner[src] != owner[dst]]
    ax.add_artist(_Group("block-edges", between, zorder=1))
    for box in boxes:
        b, colour = box.block, colours[box.block]
        inside: list[Artist] = [
            FancyBboxPatch((box.x0, box.y0), box.x1 - box.x0, box.y1 - box.y0,
                           boxstyle="round,pad=0.02,rounding_size=0.15", transform=ax.transData,
                           facecolor=colour, alpha=0.12, edgecolor=colour, linewidth=1.2,
                           zorder=0),
            Text(box.x0 + 0.05, box.y0 - 0.04, f"block {b} ({model.blocks[b].id})", fontsize=7,
                 color=colour, ha="left", va="bottom", zorder=1, transform=ax.transData,
                 bbox={"boxstyle": "square,pad=0.1", "facecolor": "white",
                       "edgecolor": "none"})]  # masks an edge passing behind it
        inside += [edge(src, dst, 0.9, "#555555") for src, dst in edges
                   if owner[src] == b and owner[dst] == b]
        inside += [_node_text(ax, pos[name], label, _light(colour), _layer_gid(name))
                   for name, label, block in nodes if block == b]
        ax.add_artist(_Group(f"block{b}", inside, zorder=2))
    for name in (INPUT, SOFTMAX):
        ax.add_artist(_node_text(ax, pos[name], name, "#eeeeee", name))
    fig.suptitle(title or f"{model.id}: {len(model.blocks)} blocks, {len(model.layers())} layers",
                 fontsize=9)
    return fig


def _layer_gid(name: str) -> str:
    """SVG id of layer node ``b{i}_l{j}``: ``block{i}-layer{j}``."""
    block, layer = name[1:].split("_l")
    return f"block{block}-layer{layer}"


# Fixed salt (the ids of clip paths and markers are hashes) and no date: the
# same genome gives the same SVG bytes (under one matplotlib version). Text
# stays text (searchable; the font list ends in sans-serif for viewers
# without DejaVu Sans).
SVG_RC = {"svg.hashsalt": "ras_deap.drawing", "svg.fonttype": "none"}
SVG_METADATA = {"Date": None}


def _save(fig: Figure, path: Path) -> Path:
    if path.suffix.lower() != ".svg":
        return save_figure(fig, path, dpi=110)
    FigureCanvasSVG(fig)
    with rc_context(SVG_RC):
        return save_figure_atomic(fig, path, format="svg", bbox_inches="tight",
                                  metadata=SVG_METADATA)


def draw_model(model: Model, path: str | Path, title: str | None = None) -> Path:
    """Draw ``model`` at ``path``: a PNG, or an SVG when ``path`` ends in
    ``.svg`` (byte-identical for the same genome and title). Blocks are
    coloured boxes holding their layer graphs, layers labelled nodes, with
    the input and softmax nodes. Readable up to ~40 layers (the figure grows
    with the graph)."""
    return _save(_figure(model, title), Path(path))


def model_to_svg(model: Model, title: str | None = None) -> str:
    """The SVG drawing of ``model`` as text (see :func:`draw_model`)."""
    fig = _figure(model, title)
    FigureCanvasSVG(fig)
    buffer = io.StringIO()
    with rc_context(SVG_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata=SVG_METADATA)
    return buffer.getvalue()
