"""Gradients are checked, not trusted (issue #25).

oneDNN's AVX2 1x1-convolution weight gradient for channels-last inputs with
1-4 channels writes past its buffer (oneDNN #6035), and the channels-last
path also returned wrong gradients on AVX-512 with one thread. Every loader
now gives images the exact row-major layout and every network re-lays its
input. These tests compare the gradients of one training step against a
float64 reference without oneDNN, in a subprocess with a timeout (a broken
kernel may crash or hang instead of answering), natively and with the AVX2
kernels forced. Without the layout fix the regression genome fails both
ways: about 2e-3 relative error natively on AVX-512 (tolerance 1e-3), an
abort under forced AVX2.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ras_deap.data import load_dataset
from ras_deap.data.layout import canonical, canonical_strides, is_canonical
from ras_deap.evaluation import compile_model
from ras_deap.evaluation.inference import canonical_layout
from ras_deap.evolution import initial_state
from ras_deap.genome import random_model

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
TIMEOUT = 240


def regression_genome():
    """Generation 0 of seed 0, individual 19: a 1x1 stride-2 conv on 1x8x8
    images, the first individual of the default search that crashed."""
    genome = initial_state(0, 25).offspring[19].genome
    assert genome.id == "M-8b7648e20fb9"
    return genome


def run_gradcheck(tmp_path, genomes, env_extra=None) -> subprocess.CompletedProcess:
    path = tmp_path / "genomes.json"
    path.write_text(json.dumps([g.to_dict() for g in genomes]), encoding="utf-8")
    env = {**os.environ, **(env_extra or {})}
    try:
        return subprocess.run([sys.executable, "-m", "ras_deap.evaluation.gradcheck",
                               "--genomes", str(path)], capture_output=True, text=True,
                              env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gradient check hung for {TIMEOUT} s (env {env_extra})")


def assert_passed(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 0, (
        f"{what}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    layouts = {(r["threads"], tuple(r["shape"]), r["layout"]) for r in rows}
    assert len(layouts) == 8  # 1 and 2 threads x 1 and 3 channels x both layouts


@pytest.mark.slow
@pytest.mark.parametrize("env_extra", [None, AVX2], ids=["native", "forced-avx2"])
def test_regression_genome_gradients_match_reference(tmp_path, env_extra):
    assert_passed(run_gradcheck(tmp_path, [regression_genome()], env_extra), "gradcheck")


@pytest.mark.slow
# derandomize: the same draws on every run, so a red CI (the forced-AVX2 step runs this too)
# fails again on the next run and on a laptop; the explicit example keeps the known case
@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3, unique=True))
@example(seeds=[90515])  # M-ef886cb3aa0a: its float32 ReLU decisions flip on every draw
def test_random_genomes_gradients_match_reference(tmp_path, seeds):
    """Runs with this process's kernels; CI's forced-AVX2 step runs it with
    the AVX2 ones."""
    genomes = [random_model(random.Random(s)) for s in seeds]
    assert_passed(run_gradcheck(tmp_path, genomes), f"gradcheck of seeds {seeds}")


def test_the_check_sees_a_kernel_off_by_half_a_percent(monkeypatch):
    """Tying the reference's ReLU decisions to float32's must not hide a
    wrong kernel: a backward 0.5 % off in float32 only fails the check."""
    from ras_deap.evaluation import gradcheck

    real = gradcheck.compile_model

    def broken(*args, **kwargs):
        net = real(*args, **kwargs)
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_full_backward_pre_hook(
            lambda _m, go: (go[0] * 1.005,) if go[0].dtype == torch.float32 else None)
        return net

    genome = regression_genome()
    assert gradcheck.gradient_error(genome) < 1e-4
    monkeypatch.setattr(gradcheck, "compile_model", broken)
    assert gradcheck.gradient_error(genome) > gradcheck.TOLERANCE


def test_canonical_copies_only_what_needs_it():
    raw = np.zeros((5, 8, 8), np.float32)[:, None][[0, 2, 3]]  # what loaders used to make
    assert raw.strides == (256, 4, 32, 4) and raw.flags.c_contiguous  # numpy calls it fine
    assert not is_canonical(raw)
    fixed = canonical(raw)
    assert fixed.strides == canonical_strides(fixed.shape, 4) == (256, 256, 32, 4)
    assert canonical(fixed) is fixed


@pytest.mark.parametrize("name", ["digits", "mnist10k"])
def test_every_split_is_row_major(name):
    ds = load_dataset(name, seed=0)
    for split_name, split in {**ds.splits(), "bank": ds.bank}.items():
        assert is_canonical(split.x), split_name
        assert torch.from_numpy(split.x).stride() == canonical_strides(split.x.shape)


def test_shipped_banks_are_row_major():
    from ras_deap.bank import default_bank_path, load_bank

    for name in ("digits", "mnist10k"):
        bank = load_bank(default_bank_path(name), dataset=name)
        assert is_canonical(bank.x), name


@pytest.mark.parametrize("channels", [1, 3])
def test_network_relays_a_channels_last_input(channels):
    """A caller's own channels-last tensor reaches the first conv row-major."""
    genome = regression_genome()
    net = compile_model(genome, (channels, 8, 8), 10)
    seen = []
    first_conv = net.blocks[0].layers[0].op
    first_conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].stride()))
    x = torch.rand(4, channels, 8, 8).to(memory_format=torch.channels_last)
    assert canonical_layout(x) is not x
    net(x)
    assert seen == [canonical_strides((4, channels, 8, 8))]
    y = torch.rand(4, channels, 8, 8)
    assert canonical_layout(y) is y
