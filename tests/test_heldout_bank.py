"""The held-out transfer set (python -m ras_deap.attacks heldout): base
images, source families and attacks that built no fitness bank."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ras_deap.attacks import SOURCE_NAMES
from ras_deap.attacks.cli import main
from ras_deap.attacks.heldout import build_heldout_bank, heldout_table
from ras_deap.attacks.heldout_config import HELDOUT_ATTACKS, HeldoutConfig
from ras_deap.attacks.heldout_sources import HELDOUT_SOURCE_NAMES, HeldoutSourceConfig
from ras_deap.bank import BankError, check_heldout, check_quarantine, load_bank
from ras_deap.constants import ATTACK_OPTIMIZERS
from ras_deap.data import load_dataset
from ras_deap.data.assessment import assessment_split
from ras_deap.errors import ConfigError

torch.set_num_threads(1)

TINY = dict(sources=("mlp",), hsj_max_iter=3, hsj_max_eval=60, hsj_init_eval=15,
            linf_th=(2, 4, 8), source=HeldoutSourceConfig(epochs=5))


@pytest.fixture(scope="module")
def assessment_bank(tmp_path_factory):
    out = tmp_path_factory.mktemp("heldout") / "assessment.npz"
    bank = build_heldout_bank(HeldoutConfig(**TINY), out, show_progress=False,
                              log=lambda m: None)
    return out, bank


def test_nothing_of_the_fitness_banks_is_reused():
    assert not set(HELDOUT_SOURCE_NAMES) & set(SOURCE_NAMES)
    assert not set(HELDOUT_ATTACKS.values()) & set(ATTACK_OPTIMIZERS)


def test_assessment_bank_records_what_it_holds_and_is_held_out(assessment_bank, tmp_path):
    from ras_deap.bank import save_bank
    from ras_deap.evaluation import Evaluator

    out, bank = assessment_bank
    loaded = load_bank(out, dataset="digits", shape=(1, 8, 8))
    assert len(loaded) == len(bank) > 0
    m = loaded.manifest
    assert m["split"] == "assessment" and m["heldout"]["sources"] == ["mlp"]
    assert m["source_models"]["mlp"]["family"] == "MLP"
    assert set(loaded.optimizer.tolist()) <= {"HopSkipJump", "PGD-transfer"}
    assert m["quarantine"]["heldout_split"] == "assessment"
    assert "families no fitness bank used" in m["description"]
    ds = load_dataset("digits", seed=0)
    held = assessment_split(ds)
    assert set(loaded.base_index.tolist()) <= set(held.index.tolist())
    # each sample within its threshold of its clean image, and it fooled its source
    pos = {int(i): k for k, i in enumerate(held.index)}
    clean = held.x[[pos[int(i)] for i in loaded.base_index]]
    dist = np.abs(loaded.x - clean).reshape(len(loaded), -1).max(axis=1)
    assert (dist <= loaded.th / 16 + 1e-6).all()
    assert (loaded.source_pred != loaded.y_true).all()
    for seed in range(4):  # held out from every seed's splits
        check_heldout(loaded, load_dataset("digits", seed=seed))
    with pytest.raises(BankError, match="assessment split"):  # never a fitness bank
        Evaluator("digits", bank_path=save_bank(loaded, tmp_path / "f.npz"), seed=0).data()


def test_same_command_same_bank(assessment_bank, tmp_path):
    out, bank = assessment_bank
    again = build_heldout_bank(HeldoutConfig(**TINY), tmp_path / "again.npz",
                               show_progress=False, log=lambda m: None)
    assert (bank.optimizer == "HopSkipJump").any()  # its noise is seeded too
    np.testing.assert_array_equal(again.x, bank.x)
    assert json.loads((tmp_path / "again.json").read_text())["sha256"] == \
        json.loads(out.with_suffix(".json").read_text())["sha256"]


def test_test_split_bank_belongs_to_its_seed(tmp_path):
    out = tmp_path / "test1.npz"
    build_heldout_bank(HeldoutConfig(**{**TINY, "split": "test", "seed": 1, "images": 6,
                                        "attacks": ("pgd",)}),
                       out, show_progress=False, log=lambda m: None)
    bank = load_bank(out)
    ds1, ds0 = load_dataset("digits", seed=1), load_dataset("digits", seed=0)
    assert set(bank.base_index.tolist()) <= set(ds1.test.index[:6].tolist())
    check_heldout(bank, ds1)
    with pytest.raises(BankError, match="seed 1"):
        check_heldout(bank, ds0)
    with pytest.raises(BankError, match="leaks into the test split"):
        check_quarantine(bank, ds1)


@pytest.mark.parametrize("kwargs", [dict(split="bank"), dict(sources=("resnet",)),
                                    dict(attacks=("square",)), dict(images=0),
                                    dict(hsj_max_eval=0), dict(linf_th=(0,))])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        HeldoutConfig(**kwargs)


@pytest.mark.parametrize("argv", [
    ["heldout", "--out", "x.npz", "--sources", "resnet"],
    ["heldout", "--out", "x.npz", "--attacks", "hsj,hsj"],
    ["heldout", "--out", "x.txt"],
    ["heldout", "--out", "x.npz", "--images", "0"],
    ["heldout", "--out", "x.npz", "--dataset", "cifar10", "--split", "assessment"],
])
def test_cli_bad_arguments_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_show_prints_the_heldout_table(assessment_bank, capsys):
    out, _ = assessment_bank
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "HopSkipJump" in text and "assessment split" in text and "MLP" in text


MARGIN = dict(TINY, sources=("mlp", "linear"), attacks=("pgd",), select="margin",
              candidates=3)


def test_margin_selection_attacks_the_smallest_margin_images(tmp_path):
    """``select="margin"``: each source attacks the ``candidates`` images it
    classifies correctly with the smallest logit margin, and the manifest
    says so."""
    from ras_deap.attacks.attack import image_seed
    from ras_deap.attacks.heldout import logit_margins
    from ras_deap.attacks.heldout_sources import build_heldout_source
    from ras_deap.evaluation.inference import predict

    out = tmp_path / "margin.npz"
    bank = build_heldout_bank(HeldoutConfig(**MARGIN), out, show_progress=False,
                              log=lambda m: None)
    ds = load_dataset("digits", seed=0)
    held = assessment_split(ds)
    model = build_heldout_source("mlp", ds, image_seed(0, 2000, 0), MARGIN["source"])
    correct = predict(model, held.x) == held.y
    margin = logit_margins(model, held.x[correct], held.y[correct])
    assert (margin > 0).all()
    smallest = held.index[correct][np.argsort(margin)[:3]]
    mlp = bank.source_model == "mlp"
    assert mlp.any() and set(bank.base_index[mlp].tolist()) <= set(smallest.tolist())
    m = json.loads(out.with_suffix(".json").read_text())
    assert m["heldout"]["select"] == "margin" and m["heldout"]["candidates"] == 3
    src = m["source_models"]["mlp"]
    assert src["candidates"] == 3 and src["selected"] == "smallest logit margin on this source"
    assert src["logit_margin_selected"]["max"] == pytest.approx(np.sort(margin)[2], abs=1e-4)
    assert m["attack_cells"]["mlp"]["PGD-transfer"]["attacked"] == 3
    assert m["source_models"]["linear"]["family"] == "LinearSoftmax"
    assert m["source_models"]["linear"]["parameters"] == 64 * 10 + 10
    assert "smallest logit margin" in m["description"]
    assert "never a searched network" in m["description"]
    assert "3 correctly classified ones with the smallest logit margin" in heldout_table(m)
    check_heldout(load_bank(out), ds)


def test_default_selection_keeps_the_record_of_the_shipped_digits_banks():
    """``select``/``candidates`` at their defaults are left out of the
    record, and the linear source is not a default, so the committed digits
    banks' manifests still describe them."""
    from pathlib import Path

    assert HeldoutConfig().sources == ("mlp", "cnn")
    d = HeldoutConfig().to_json()
    assert "select" not in d and "candidates" not in d
    shipped = Path(__file__).resolve().parents[1] / "docs/results/heldout-assessment-digits.json"
    assert json.loads(shipped.read_text())["heldout"] == d


@pytest.mark.parametrize("kwargs", [dict(select="random"), dict(select="margin"),
                                    dict(candidates=5), dict(select="margin", candidates=0)])
def test_bad_selection_is_refused(kwargs):
    with pytest.raises(ConfigError):
        HeldoutConfig(**kwargs)


@pytest.mark.parametrize("argv", [
    ["heldout", "--out", "x.npz", "--select", "margin"],
    ["heldout", "--out", "x.npz", "--candidates", "10"],
])
def test_cli_bad_selection_exits_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "candidates" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_shipped_digits_assessment_bank_rebuilds_byte_identical(tmp_path):
    """The committed digits bank, rebuilt by its default command after the
    selection option was added, gives the same file, on the kind of CPU that
    built it. On another, torch's kernels round differently and train other
    source models (docs/design/other-cpus.md): then everything the kernels do
    not touch (settings, quarantine, base images, source families and sizes)
    must still match, and the byte comparison is skipped, saying why."""
    import hashlib
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "docs/results/heldout-assessment-digits.npz"
    out = tmp_path / "digits.npz"
    assert main(["heldout", "--dataset", "digits", "--split", "assessment", "--out", str(out),
                 "--no-progress"]) == 0
    old = json.loads(shipped.with_suffix(".json").read_text())
    new = json.loads(out.with_suffix(".json").read_text())
    from ras_deap.evaluation.machine import machine_record
    here = machine_record()  # the CPU and kernels that trained the sources
    assert {k: new["machine"][k] for k in ("cpu", "cpu_capability")} == {
        k: here[k] for k in ("cpu", "cpu_capability")}
    for key in ("format", "dataset", "split", "seed", "shape", "heldout", "quarantine",
                "base_images_offered", "linf_grid", "description"):
        assert new[key] == old[key], key
    for family, source in old["source_models"].items():
        assert new["source_models"][family]["parameters"] == source["parameters"], family
    trained = {f: s["test_accuracy"] for f, s in new["source_models"].items()}
    if trained != {f: s["test_accuracy"] for f, s in old["source_models"].items()}:
        pytest.skip(f"this CPU's kernels trained other source models (test accuracy {trained}); "
                    "the file is byte-identical only on the CPU kind that built it")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == \
        hashlib.sha256(shipped.read_bytes()).hexdigest()


def test_shipped_mnist10k_heldout_bank_is_quarantined_for_every_seed(tmp_path):
    """docs/results/heldout-assessment-mnist10k.npz: every base image is in
    the assessment split, and no base image shares its content with the
    bank split's fitness part, the shipped fitness bank's base images, or
    train/validation/test of seeds 0-9; each sample lies within its
    threshold of its base image; a search refuses it as a fitness bank."""
    from pathlib import Path

    from ras_deap.bank import default_bank_path, save_bank
    from ras_deap.data.assessment import fitness_positions
    from ras_deap.data.splits import image_digests
    from ras_deap.evaluation import Evaluator

    path = Path(__file__).resolve().parents[1] / "docs/results/heldout-assessment-mnist10k.npz"
    bank = load_bank(path, dataset="mnist10k", shape=(1, 28, 28))
    assert len(bank) > 0 and bank.manifest["split"] == "assessment"
    fitness = load_bank(default_bank_path("mnist10k"))
    for seed in range(10):
        ds = load_dataset("mnist10k", seed=seed)
        check_heldout(bank, ds)
        held = assessment_split(ds)
        pos = {int(i): k for k, i in enumerate(held.index)}
        base = held.x[[pos[int(i)] for i in bank.base_index]]
        contents = set(image_digests(base).tolist())
        for name, x in [*((n, s.x) for n, s in ds.splits().items()),
                        ("bank split (fitness part)", ds.bank.x[fitness_positions(ds)])]:
            assert not contents & set(image_digests(x).tolist()), (seed, name)
        bpos = {int(i): k for k, i in enumerate(ds.bank.index)}
        fit_base = ds.bank.x[[bpos[int(i)] for i in np.unique(fitness.base_index)]]
        assert not contents & set(image_digests(fit_base).tolist()), seed
    dist = np.abs(bank.x - base).reshape(len(bank), -1).max(axis=1)
    assert (dist <= bank.th / 255 + 1e-6).all()
    assert (bank.source_pred != bank.y_true).all()
    with pytest.raises(BankError, match="assessment split"):
        Evaluator("mnist10k", bank_path=save_bank(bank, tmp_path / "f.npz"), seed=0).data()
