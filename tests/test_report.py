"""Report figures and architecture drawings."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ras_deap.genome import Block, Layer, Model, random_model
from ras_deap.report import (
    architecture_statistics,
    draw_model,
    layer_graph,
    layer_label,
    model_to_dot,
    model_to_svg,
    plot_accuracy_over_generations,
    plot_architecture_statistics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def hand_models() -> tuple[Model, Model]:
    c = Layer.conv(16, 3, 1)
    d = Layer.dense(256)
    diamond = Block((c, c, d, d), ((0, 1), (0, 2), (1, 3), (2, 3)))  # 4 layers, 4 edges
    single = Block((d,))                                            # 1 layer, 0 edges
    chain = Block((c, d), ((0, 1),))                                 # 2 layers, 1 edge
    # three blocks: 0 -> 1 -> 2 and 0 -> 2
    a = Model((diamond, single, chain), ((0, 1), (1, 2), (0, 2)))
    b = Model((chain,))
    return a, b


def test_architecture_statistics_exact() -> None:
    a, b = hand_models()
    assert architecture_statistics([a]) == {
        "mean_blocks": 3.0,
        "mean_layers": 7.0,                      # 4 + 1 + 2
        "mean_connections": 8.0,                 # 3 block edges + 4 + 0 + 1 layer edges
        "mean_layers_per_block": pytest.approx(7 / 3),
        "mean_connections_per_block": pytest.approx(5 / 3),
    }
    both = architecture_statistics([a, b])
    assert both == {
        "mean_blocks": 2.0,
        "mean_layers": 4.5,
        "mean_connections": 4.5,                 # (8 + 1) / 2
        "mean_layers_per_block": pytest.approx((7 / 3 + 2) / 2),
        "mean_connections_per_block": pytest.approx((5 / 3 + 1) / 2),
    }


def test_architecture_statistics_rejects_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        architecture_statistics([])


def test_layer_labels() -> None:
    assert layer_label(Layer.conv(16, 3, 1)) == "conv 16f k3 s1"
    assert layer_label(Layer.dense(256)) == "dense 256"


def test_layer_graph_edges() -> None:
    a, _ = hand_models()
    nodes, edges = layer_graph(a)
    assert nodes[0][0] == "input" and nodes[-1][0] == "softmax"
    assert len(nodes) == 7 + 2
    # 4 + 0 + 1 inner edges, 3 block edges (exit layer -> entry layer), input, softmax
    assert len(edges) == 10
    assert ("b0_l3", "b1_l0") in edges and ("b0_l3", "b2_l0") in edges
    assert ("input", "b0_l0") in edges and ("b2_l1", "softmax") in edges


def test_dot_contains_every_layer() -> None:
    model = random_model(random.Random(4))
    dot = model_to_dot(model)
    assert dot.startswith(f'digraph "{model.id}"') and dot.rstrip().endswith("}")
    labels = re.findall(r'(b\d+_l\d+) \[label="([^"]+)"', dot)
    expected = [(f"b{b}_l{j}", layer_label(layer))
                for b, block in enumerate(model.blocks) for j, layer in enumerate(block.layers)]
    assert labels == expected
    assert dot.count("subgraph cluster_b") == len(model.blocks)
    assert "input ->" in dot and "-> softmax;" in dot
    _, edges = layer_graph(model)
    assert dot.count(" -> ") == len(edges)


@pytest.mark.parametrize("seed", [0, 1])
def test_draw_model_png(tmp_path: Path, seed: int) -> None:
    model = random_model(random.Random(seed), min_blocks=5, max_blocks=5, min_layers=5,
                         max_layers=5)
    path = draw_model(model, tmp_path / "sub" / "model.png")
    assert is_png(path)


SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_groups(text: str) -> dict[str, ET.Element]:
    """Every ``<g id=...>`` of an SVG document (parsed: it must be valid XML)."""
    root = ET.fromstring(text.encode())
    assert root.tag == f"{SVG_NS}svg"
    return {g.get("id"): g for g in root.iter(f"{SVG_NS}g") if g.get("id")}


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()).strip() for t in element.iter(f"{SVG_NS}text")]


@pytest.mark.parametrize("seed", [0, 7])
def test_svg_has_a_group_per_block_holding_its_labelled_layers(seed: int) -> None:
    model = random_model(random.Random(seed), min_blocks=3, max_blocks=5, min_layers=2,
                         max_layers=5)
    groups = svg_groups(model_to_svg(model))
    blocks = sorted(g for g in groups if re.fullmatch(r"block\d+", g))
    assert blocks == sorted(f"block{b}" for b in range(len(model.blocks)))
    for b, block in enumerate(model.blocks):
        inside = groups[f"block{b}"]
        layer_groups = [g.get("id") for g in inside.iter(f"{SVG_NS}g")
                        if re.fullmatch(rf"block{b}-layer\d+", g.get("id") or "")]
        assert layer_groups == [f"block{b}-layer{j}" for j in range(len(block.layers))]
        for j, layer in enumerate(block.layers):  # one label per layer, inside its block
            assert texts(groups[f"block{b}-layer{j}"]) == [layer_label(layer)]
        # the block's title names it; nothing else is written in the box
        assert sorted(texts(inside)) == sorted([f"block {b} ({block.id})"]
                                               + [layer_label(x) for x in block.layers])
    assert texts(groups["input"]) == ["input"] and texts(groups["softmax"]) == ["softmax"]
    # the edges between blocks, from the input and to the head: one arrow each
    _, edges = layer_graph(model)
    inner = sum(len(block.edges) for block in model.blocks)
    arrows = [g for g in groups["block-edges"] if g.tag == f"{SVG_NS}g"]
    assert len(arrows) == len(edges) - inner == len(model.edges) + 2


def test_svg_is_deterministic(tmp_path: Path) -> None:
    """Same genome, same bytes: in one process, from a file, and in a fresh
    interpreter (the ids matplotlib hashes would otherwise differ per run)."""
    import subprocess
    import sys

    a, _ = hand_models()
    text = model_to_svg(a)
    assert model_to_svg(a) == text
    path = draw_model(a, tmp_path / "a.svg")
    assert path.read_text() == text
    assert "<dc:date>" not in text
    code = ("import sys\nfrom ras_deap.genome import Model\nfrom ras_deap.report import "
            "model_to_svg\nsys.stdout.write(model_to_svg(Model.from_json(sys.stdin.read())))")
    fresh = subprocess.run([sys.executable, "-c", code], input=a.to_json(), capture_output=True,
                           text=True, check=True, timeout=120).stdout
    assert fresh == text
    _, b = hand_models()
    assert model_to_svg(b) != text


def history(n: int = 6) -> list[dict]:
    rows = []
    for g in range(n):
        row = {"generation": g, "best_fitness": 0.5 + g / 20, "mean_fitness": 0.4 + g / 30,
               "min_fitness": 0.3 + g / 40,
               "fittest_accuracy": 0.8 + g / 50, "mean_accuracy": 0.7 + g / 60,
               "min_accuracy": 0.5, "max_accuracy": 0.9,
               "fittest_robustness": None if g == 2 else 0.3, "mean_robustness": 0.2,
               "mean_blocks": 3 + g / 5, "mean_layers": 12 - g / 3, "mean_connections": 14.0,
               "mean_layers_per_block": 3.2 - g / 30, "mean_connections_per_block": 2.1}
        for name in ("blocks", "layers", "connections", "layers_per_block",
                     "connections_per_block"):
            row[f"min_{name}"] = row[f"mean_{name}"] - 1
            row[f"max_{name}"] = row[f"mean_{name}"] + 1
        rows.append(row)
    return rows


def test_figures_are_pngs(tmp_path: Path) -> None:
    fig3 = plot_accuracy_over_generations(history(), tmp_path / "fig3.png")
    fig4 = plot_architecture_statistics(history(), tmp_path / "fig4.png")
    assert is_png(fig3) and is_png(fig4)
    partial = [{"generation": 0, "mean_accuracy": 0.5}, {"generation": 1, "mean_accuracy": 0.6}]
    assert is_png(plot_accuracy_over_generations(partial, tmp_path / "partial.png"))
    # histories of checkpoints written before "best_accuracy" became "fittest_accuracy"
    old = [{"gen": g, "best_fitness": 0.5, "best_accuracy": 0.8, "mean_accuracy": 0.7,
            "mean_blocks": 3.0} for g in range(3)]
    assert is_png(plot_accuracy_over_generations(old, tmp_path / "old3.png"))
    assert is_png(plot_architecture_statistics(old, tmp_path / "old4.png"))


def test_figure_legends_say_fittest_and_show_bands(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Figure 3 calls the fittest individual's accuracy what it is (not
    "best"), and both figures shade the population's min-max."""
    from matplotlib.figure import Figure

    import ras_deap.report.curves as curves

    figures: list[Figure] = []
    real = curves.save_figure

    def keep(fig: Figure, path: Path, dpi: int = 120) -> Path:
        figures.append(fig)
        return real(fig, path, dpi)

    monkeypatch.setattr(curves, "save_figure", keep)
    plot_accuracy_over_generations(history(), tmp_path / "fig3.png")
    plot_architecture_statistics(history(), tmp_path / "fig4.png")
    fig3, fig4 = figures
    for ax in fig3.axes:
        if not ax.get_visible():
            continue
        labels = ax.get_legend_handles_labels()[1]
        assert "fittest individual" in labels and "best" not in labels, labels
    bands = {ax.get_title(): len(ax.collections) for ax in fig3.axes + fig4.axes
             if ax.get_visible()}
    assert bands["accuracy over generations"] == 1 and bands["fitness over generations"] == 1
    assert bands["robustness over generations"] == 0  # no min/max logged for it
    assert all(bands[label] == 1 for label in ("blocks", "layers", "connections",
                                                "layers per block", "connections per block"))


def test_architecture_ranges() -> None:
    from ras_deap.report import architecture_ranges

    a, b = hand_models()
    assert architecture_ranges([a, b]) == {
        "min_blocks": 1.0, "max_blocks": 3.0, "min_layers": 2.0, "max_layers": 7.0,
        "min_connections": 1.0, "max_connections": 8.0,
        "min_layers_per_block": 2.0, "max_layers_per_block": pytest.approx(7 / 3),
        "min_connections_per_block": 1.0, "max_connections_per_block": pytest.approx(5 / 3)}
    with pytest.raises(ValueError, match="empty"):
        architecture_ranges([])


def test_figures_reject_useless_history(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        plot_accuracy_over_generations([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="mean_blocks"):
        plot_architecture_statistics([{"generation": 0, "best_fitness": 1.0}], tmp_path / "y.png")


def test_draw_cli_writes_svg_or_png_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    from ras_deap.report.cli import main

    a, _ = hand_models()
    run = tmp_path / "run"
    run.mkdir()
    (run / "best_genome.json").write_text(a.to_json())
    assert main([str(run), "--out", str(tmp_path / "a.svg")]) == 0
    assert (tmp_path / "a.svg").read_text() == model_to_svg(a)
    assert main([str(run / "best_genome.json"), "--out", str(tmp_path / "a.png")]) == 0
    assert is_png(tmp_path / "a.png")
    assert f"drew {a.id} (3 blocks, 7 layers)" in capsys.readouterr().out

    def one_line(argv: list[str]) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("python -m ras_deap.report: error: ")
        return err[0]

    assert "neither a genome JSON" in one_line([str(tmp_path / "no"), "--out", "x.svg"])
    assert "must end in .svg or .png" in one_line([str(run), "--out", str(tmp_path / "a.pdf")])
    (tmp_path / "bad.json").write_text("{")
    assert "is not a ras_deap genome" in one_line([str(tmp_path / "bad.json"), "--out",
                                                   str(tmp_path / "b.svg")])
    assert not (tmp_path / "b.svg").exists()
