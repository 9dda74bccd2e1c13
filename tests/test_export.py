"""python -m ras_deap.export: the generated model.py computes the compiled
network's logits, imports nothing but torch, and the CLI writes the folder."""

from __future__ import annotations

import ast
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ras_deap.config import SearchConfig
from ras_deap.evaluation.compiler import compile_model
from ras_deap.export import DATASET_SHAPES, generate_source, load_generated, rename_state_dict
from ras_deap.export import run as export_run
from ras_deap.export.cli import main
from ras_deap.export.result import ATOL, logit_error
from ras_deap.genome import Block, Layer, Model, random_model
from ras_deap.report import model_to_svg


def _scaled_close(actual, expected):
    """The product's own check (``logit_error`` within ``ATOL``): the generated
    module sums in another order than the compiled one, so float32 leaves a few
    ulp of the largest logit (randomised weights reach |logit| ~ 70; hypothesis
    found 2e-5 there, 1.4e-5 on a logit near 1 of the same output)."""
    assert actual.shape == expected.shape
    error = logit_error(actual, expected)
    assert error <= ATOL, f"logits differ by {error:.3g} of their scale (ATOL {ATOL})"


_names = itertools.count()


def _randomised(genome: Model, shape: tuple[int, ...], seed: int = 0):
    """The compiled network in eval mode with random weights, BatchNorm
    statistics and normalisation, so every term of the logits matters."""
    gen = torch.Generator().manual_seed(seed)
    c = shape[0]
    mean = (torch.rand(c, generator=gen) * 0.5).tolist()
    std = (torch.rand(c, generator=gen) * 0.5 + 0.2).tolist()
    net = compile_model(genome, shape, 10, mean, std)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "weight", "bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.3)
    return net.eval()


def _generated(net, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.py"
    path.write_text(generate_source(net))
    module = load_generated(path, f"ras_deap_test_export_{next(_names)}")
    gen = module.Network()
    gen.load_state_dict(rename_state_dict(net.state_dict()))
    return gen.eval()


def _check_logits(net, gen, shape, seed=0):
    x = torch.rand(6, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = net(x)
        _scaled_close(gen(x), expected)
        # a channels-last input: both networks first give it the row-major layout
        xcl = x.to(memory_format=torch.channels_last)
        _scaled_close(gen(xcl), expected)


# -- genomes built by hand: every shape rule occurs ----------------------------------------
def _block(layers, edges):
    return Block(tuple(layers), tuple(edges))


C, D = Layer.conv, Layer.dense
HAND_MADE = {
    # dense -> conv reshape, then a map concatenation that pools 4x4 to 2x2
    "reshape_and_pooled_maps": Model((
        _block([D(128), C(8, 3, 1), C(16, 3, 2), C(8, 1, 1)], [(0, 1), (0, 2), (1, 3), (2, 3)]),
    ), ()),
    # a node mixing a map and a vector: flat concatenation, then a conv reshapes it
    "flat_concat_then_conv": Model((
        _block([C(8, 3, 2), D(64), C(16, 5, 1)], [(0, 1), (0, 2), (1, 2)]),
        _block([D(64), D(128)], [(0, 1)]),
    ), ((0, 1),)),
    # stride-2 chain down to 1 x 1 maps (the compiler's centre-tap shortcut),
    # then blocks merged from two predecessors of different map sizes
    "center_tap_and_block_merge": Model((
        _block([C(8, 3, 2), C(16, 3, 2)], [(0, 1)]),
        _block([C(16, 5, 2), C(32, 3, 1), C(8, 1, 2)], [(0, 1), (1, 2)]),
        _block([C(8, 3, 1), D(64)], [(0, 1)]),
    ), ((0, 1), (0, 2), (1, 2))),
}


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8)])
@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_genomes_match_the_compiled_network(name, shape, tmp_path):
    net = _randomised(HAND_MADE[name], shape)
    modes = [m.mode for b in net.blocks for m in b.merges] + [m.mode for m in net.merges]
    adapts = [layer.adapt for b in net.blocks for layer in b.layers]
    if name == "reshape_and_pooled_maps":
        assert "to_map" in adapts and "maps" in modes
        assert net.blocks[0].merges[3].in_shapes == ((8, 4, 4), (16, 2, 2))  # pooled
    elif name == "flat_concat_then_conv":
        assert "flat" in modes and "to_map" in adapts
    else:
        assert any(layer.center_tap for b in net.blocks for layer in b.layers)
        assert net.merges[2].mode == "maps" and net.merges[2].in_shapes[0] != \
            net.merges[2].in_shapes[1]
    gen = _generated(net, tmp_path)
    _check_logits(net, gen, shape)
    source = (tmp_path / "model.py").read_text()
    if "maps" in modes and name == "reshape_and_pooled_maps":
        assert "F.adaptive_avg_pool2d(b0_l1, (2, 2))" in source
    assert "self.block0_layer0 = nn.Sequential(" in source


# the goal: exact logits for >= 200 drawn genomes (about 20 s on a free core)
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(1, 8, 8), (3, 8, 8)]))
def test_random_genomes_match_the_compiled_network(seed, shape, tmp_path):
    genome = random_model(random.Random(seed))
    net = _randomised(genome, shape, seed % 1000)
    gen = _generated(net, tmp_path / str(seed))
    _check_logits(net, gen, shape, seed % 1000)
    # the generated state dict is exactly the compiled one, renamed
    assert set(gen.state_dict()) == set(rename_state_dict(net.state_dict()))


def test_rename_refuses_unknown_keys():
    with pytest.raises(KeyError, match="not one of a compiled"):
        rename_state_dict({"blocks.0.merges.0.x": torch.zeros(1)})


def test_generated_source_imports_only_torch(tmp_path):
    net = _randomised(HAND_MADE["center_tap_and_block_merge"], (1, 8, 8))
    tree = ast.parse(generate_source(net))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
    assert roots <= {"torch", "sys"}  # sys: only under __main__


def test_dataset_shapes_are_the_loaders():
    from ras_deap.data import load_dataset

    for name in ("digits", "mnist10k"):
        data = load_dataset(name, None, False, 0)
        assert DATASET_SHAPES[name] == (data.shape, data.levels)


# -- the CLI on a run folder ---------------------------------------------------------------
def _run_folder(folder: Path, genome: Model, *, dataset="digits", weights=True) -> Path:
    """A run folder as python -m ras_deap.run leaves it (the files export reads)."""
    shape = DATASET_SHAPES[dataset][0]
    folder.mkdir(parents=True)
    net = _randomised(genome, shape)
    (folder / "best_genome.json").write_text(genome.to_json())
    if weights:
        torch.save(net.state_dict(), folder / "best_model.pt")
    (folder / "config.json").write_text(json.dumps(
        {"search": SearchConfig(dataset=dataset).to_dict(), "mlflow_run_id": None}))
    (folder / "assess.json").write_text(json.dumps(
        {"test_accuracy": 0.875, "rows": [{"key": "pgd_eps1", "accuracy": 0.5}]}))
    return folder


def test_cli_exports_a_run_folder(tmp_path, capsys):
    genome = HAND_MADE["flat_concat_then_conv"]
    folder = _run_folder(tmp_path / "runs" / "tiny", genome)
    out = tmp_path / "export"
    assert main([str(folder), "--out", str(out), "--no-onnx"]) == 0
    printed = capsys.readouterr().out
    assert f"exported genome {genome.id}" in printed
    assert {p.name for p in out.iterdir()} == {"model.py", "weights.pt", "genome.json",
                                              "README.md", "architecture.svg"}
    readme = (out / "README.md").read_text()
    assert "![Genome" in readme and "(architecture.svg)" in readme
    assert (out / "architecture.svg").read_text() == model_to_svg(genome)
    # random normalisation: not the digits split these weights were tested on
    assert "no test_split.npz: the weights' normalisation is not that of digits" in readme
    assert genome.id in readme and "N x 1 x 8 x 8" in readme and "[0, 1]" in readme
    assert "| assess/test_accuracy | 0.8750 |" in readme and "std = [" in readme
    snippet = readme.split("```python\n")[1].split("```")[0]
    assert len(snippet.strip().splitlines()) == 5
    assert Model.from_json((out / "genome.json").read_text()) == genome
    # the README's snippet works as written, in the export folder
    weights = torch.load(out / "weights.pt", weights_only=True)
    compiled = compile_model(genome, (1, 8, 8), 10)
    compiled.load_state_dict(torch.load(folder / "best_model.pt", weights_only=True))
    assert set(weights) == set(rename_state_dict(compiled.state_dict()))
    gen = load_generated(out / "model.py", f"ras_deap_test_export_{next(_names)}").Network()
    gen.load_state_dict(weights)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        _scaled_close(gen.eval()(x), compiled.eval()(x))


def _trained_run(tmp_path):
    """A run folder whose weights are normalised with the digits seed-3
    training statistics and classify better than chance; its network and data."""
    from ras_deap.data import load_dataset

    genome = HAND_MADE["flat_concat_then_conv"]
    data = load_dataset("digits", None, False, 3)
    folder = tmp_path / "run"
    folder.mkdir()
    net = compile_model(genome, (1, 8, 8), 10, data.mean, data.std).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # weights that classify better than chance, quickly
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(15):
            with torch.enable_grad():
                net.train()
                loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(data.train.x)),
                                                         torch.from_numpy(data.train.y))
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval()
    torch.save(net.state_dict(), folder / "best_model.pt")
    (folder / "best_genome.json").write_text(genome.to_json())
    (folder / "config.json").write_text(json.dumps(
        {"search": SearchConfig(seed=3).to_dict(), "mlflow_run_id": None}))
    return folder, net, data


def test_test_split_is_the_runs_and_model_py_scores_it(tmp_path, capsys):
    """Export writes the test split of the seed the weights were normalised
    with, and the accuracy it reports is the compiled network's on it (what
    the run's final_test_accuracy measured)."""
    import numpy as np

    from ras_deap.evaluation.inference import accuracy

    folder, net, data = _trained_run(tmp_path)
    out = tmp_path / "export"
    assert main([str(folder), "--out", str(out), "--no-onnx"]) == 0
    expected = accuracy(net, data.test.x, data.test.y)
    assert expected > 0.5
    assert (f"classifies test_split.npz (270 images) with accuracy {expected:.4f}"
            in capsys.readouterr().out)
    with np.load(out / "test_split.npz") as split:
        assert split["images"].dtype == np.float32 and split["labels"].dtype == np.int64
        np.testing.assert_array_equal(split["images"], data.test.x)
        np.testing.assert_array_equal(split["labels"], data.test.y)
    readme = (out / "README.md").read_text()
    assert f"prints {expected:.4f} (270 images of dataset `digits`, seed 3)" in readme
    assert "| `test_split.npz` |" in readme
    # --no-test-split leaves it out
    assert main([str(folder), "--out", str(tmp_path / "bare"), "--no-onnx",
                 "--no-test-split"]) == 0
    assert not (tmp_path / "bare" / "test_split.npz").exists()
    assert "test_split.npz" not in (tmp_path / "bare" / "README.md").read_text()


def test_model_py_runs_without_ras_deap(tmp_path):
    """python -I -S: no site-packages processing, so not even the editable
    install of ras_deap is importable; only torch's folder is added."""
    folder = _run_folder(tmp_path / "run", HAND_MADE["center_tap_and_block_merge"])
    out = tmp_path / "export"
    assert main([str(folder), "--out", str(out), "--no-onnx"]) == 0
    images = torch.rand(7, 1, 8, 8)
    torch.save(images, tmp_path / "images.pt")
    compiled = compile_model(HAND_MADE["center_tap_and_block_merge"], (1, 8, 8), 10)
    compiled.load_state_dict(torch.load(folder / "best_model.pt", weights_only=True))
    with torch.no_grad():
        expected = compiled.eval()(images).argmax(1).tolist()
    site = str(Path(torch.__file__).parent.parent)
    script = (
        "import importlib.util, json, sys\n"
        f"sys.path[:0] = [{str(out)!r}, {site!r}]\n"
        "import torch\n"
        "from model import Network\n"
        "net = Network().eval()\n"
        f"net.load_state_dict(torch.load({str(out / 'weights.pt')!r}))\n"
        f"x = torch.load({str(tmp_path / 'images.pt')!r})\n"
        "with torch.no_grad():\n"
        "    classes = net(x).argmax(1).tolist()\n"
        "print(json.dumps({'classes': classes,\n"
        "                  'loaded': 'ras_deap' in sys.modules or any(\n"
        "                      m.startswith('ras_deap') for m in sys.modules),\n"
        "                  'findable': importlib.util.find_spec('ras_deap') is not None}))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"classes": expected, "loaded": False, "findable": False}
    # and its own entry point: python model.py weights.pt images.pt
    done = subprocess.run([sys.executable, "-I", str(out / "model.py"), str(out / "weights.pt"),
                           str(tmp_path / "images.pt")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip()) == expected


def test_without_onnx_one_line_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export_run, "_importable", lambda name: False)
    folder = _run_folder(tmp_path / "run", HAND_MADE["reshape_and_pooled_maps"])
    assert main([str(folder), "--out", str(tmp_path / "out"), "--no-test-split"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [export_run.ONNX_HINT] and "pip install" in err[0]
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_onnx_export_is_checked_and_matches(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    folder = _run_folder(tmp_path / "run", HAND_MADE["flat_concat_then_conv"])
    out = tmp_path / "out"
    assert main([str(folder), "--out", str(out)]) == 0
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")))
    ort = pytest.importorskip("onnxruntime")
    compiled = compile_model(HAND_MADE["flat_concat_then_conv"], (1, 8, 8), 10)
    compiled.load_state_dict(torch.load(folder / "best_model.pt", weights_only=True))
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 3):  # any batch size
        x = torch.rand(n, 1, 8, 8)
        (logits,) = session.run(["logits"], {"images": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(logits), compiled.eval()(x),
                                       atol=1e-4, rtol=0)
    assert "onnxruntime" in capsys.readouterr().out


def test_onnx_is_scored_on_the_test_split_and_must_predict_what_model_py_does(tmp_path,
                                                                              capsys):
    import numpy as np

    from ras_deap.assess.target import TargetError
    from ras_deap.evaluation.inference import accuracy

    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    folder, net, data = _trained_run(tmp_path)
    out = tmp_path / "export"
    assert main([str(folder), "--out", str(out)]) == 0
    expected = accuracy(net, data.test.x, data.test.y)
    assert f"accuracy {expected:.4f}; model.onnx with {expected:.4f}" in capsys.readouterr().out
    assert (f"`model.onnx` under onnxruntime on `test_split.npz`: test accuracy {expected:.4f}"
            in (out / "README.md").read_text())
    # the check: another class on an image the network separates clearly fails; a tie does not
    with torch.no_grad():
        logits = net(torch.from_numpy(data.test.x)).numpy()
    session = export_run._onnx_session(out / "model.onnx")
    with pytest.raises(TargetError, match=r"another class than model\.py on \d+ of 270 test"):
        export_run._onnx_split_check(session, data.test.x, data.test.y,
                                     np.roll(logits, 1, axis=1))
    assert export_run._onnx_split_check(session, data.test.x, data.test.y,
                                        np.zeros_like(logits)) == pytest.approx(expected)


def test_logit_error_is_in_units_of_the_logits_scale():
    from ras_deap.export.result import logit_error

    assert logit_error([[1.0, 2.0]], [[1.0, 2.5]]) == 0.5 / 2.5
    assert logit_error([[0.1, 0.2]], [[0.1, 0.25]]) == pytest.approx(0.05)  # scale 1 below 1
    assert logit_error(torch.tensor([[1e6 + 0.9375]]), torch.tensor([[1e6]])) < 1e-6


def test_a_network_with_huge_logits_on_noise_exports(tmp_path, capsys):
    """An mnist10k RAS winner reached logits of 1e6 on the check's uniform noise, where
    onnxruntime's float32 differed by 0.94 and the export refused it ("please report
    it"); it differed by 9e-7 of the logits' scale, a few ulp."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    folder = _run_folder(tmp_path / "run", HAND_MADE["flat_concat_then_conv"])
    state = torch.load(folder / "best_model.pt", weights_only=True)
    state["head.weight"] = state["head.weight"] * 1e6
    torch.save(state, folder / "best_model.pt")
    assert main([str(folder), "--out", str(tmp_path / "out"), "--no-test-split"]) == 0
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "in units of the logits' scale" in readme and "(tolerance 0.0001)" in readme


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("python -m ras_deap.export: error: ")
    return err[0]


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main([str(tmp_path / "missing"), "--out", out]) == 2
    assert "neither a folder" in _one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", out]) == 2
    assert "no best_genome.json" in _one_error_line(capsys)
    genome = HAND_MADE["reshape_and_pooled_maps"]
    folder = _run_folder(tmp_path / "noweights", genome, weights=False)
    assert main([str(folder), "--out", out]) == 2
    assert "has no weights" in _one_error_line(capsys)
    # weights of another genome
    other = _run_folder(tmp_path / "other", HAND_MADE["flat_concat_then_conv"])
    torch.save(torch.load(other / "best_model.pt"), folder / "best_model.pt")
    assert main([str(folder), "--out", out]) == 2
    assert "does not fit genome" in _one_error_line(capsys)
    (folder / "best_model.pt").write_text("not a state dict")
    assert main([str(folder), "--out", out]) == 2
    assert "not a state dict torch can read" in _one_error_line(capsys)
    assert not Path(out).exists()  # nothing written on error
    # a genome file needs --weights that exist
    assert main([str(other / "best_genome.json"), "--weights", str(tmp_path / "no.pt"),
                 "--out", out]) == 2
    assert "no such file" in _one_error_line(capsys)


def test_cli_exports_a_genome_file_with_weights(tmp_path, capsys):
    other = _run_folder(tmp_path / "other", HAND_MADE["flat_concat_then_conv"])
    out = tmp_path / "out"
    assert main([str(other / "best_genome.json"), "--weights", str(other / "best_model.pt"),
                 "--out", str(out), "--no-onnx"]) == 0
    assert (out / "model.py").is_file() and "genome" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_on_a_smoke_search(tmp_path):
    """python -m ras_deap.run --preset smoke, then python -m ras_deap.export on its folder."""
    env_run = [sys.executable, "-m", "ras_deap.run", "--preset", "smoke", "--run-dir",
               str(tmp_path / "runs"), "--run-name", "smoke", "--tracking-uri",
               f"sqlite:///{tmp_path}/mlflow.db", "--no-progress"]
    done = subprocess.run(env_run, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "runs" / "smoke"
    out = tmp_path / "export"
    done = subprocess.run([sys.executable, "-m", "ras_deap.export", str(folder), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {"model.py", "weights.pt", "README.md"} <= {p.name for p in out.iterdir()}
    readme = (out / "README.md").read_text()
    assert "| fitness |" in readme and "final_test_accuracy" in readme
