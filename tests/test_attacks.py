"""Tests of the adversarial bank builder (ras_deap.attacks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ras_deap.attacks import (
    ALL_ATTACK_SETTINGS,
    AttackSetting,
    AttackSettingError,
    BankBuildError,
    BuildConfig,
    CapsNet,
    FeatureSqueeze,
    SmallResNet,
    SourceConfig,
    build_bank,
    make_untrained,
    parse_attack_setting,
    predict,
    run_attack_setting,
    train_classifier,
    work_dir_for,
)
from ras_deap.attacks.cli import main
from ras_deap.bank import check_quarantine, default_bank_path, load_bank, robustness_metrics
from ras_deap.data import load_dataset
from ras_deap.errors import ConfigError

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]

TINY = dict(images_per_setting=3, max_iter=3, sources=("resnet", "fs"), l0_th=(1, 3),
            linf_th=(2,), source=SourceConfig(epochs=3))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def resnet(digits):
    torch.manual_seed(0)
    m = SmallResNet(1, 10, digits.mean, digits.std, width=8)
    return train_classifier(m, digits.train.x, digits.train.y, epochs=3, batch_size=64,
                            lr=3e-3, seed=0)


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("bank") / "tiny.npz"
    bank = build_bank(BuildConfig(**TINY), out, show_progress=False, keep_work=True,
                      log=lambda m: None)
    return out, bank


# --- attack settings ---------------------------------------------------------

def test_sixteen_attack_settings_round_trip():
    assert len(ALL_ATTACK_SETTINGS) == 16 and len(set(ALL_ATTACK_SETTINGS)) == 16
    for setting in ALL_ATTACK_SETTINGS:
        assert parse_attack_setting(setting.key) == setting
    assert AttackSetting("L0", 3, "CMA-ES").es == 0 and AttackSetting("L0", 3, "DE").es == 1


@pytest.mark.parametrize("args", [("L2", 1, "DE"), ("L0", 0, "DE"), ("L0", 1, "PSO")])
def test_bad_attack_setting_is_refused(args):
    with pytest.raises(AttackSettingError):
        AttackSetting(*args)
    with pytest.raises(AttackSettingError, match="bad attack setting key"):
        parse_attack_setting("-".join((args[0], f"th{args[1]}", args[2])))


def test_bad_build_config_is_refused():
    with pytest.raises(ConfigError, match="sources"):
        BuildConfig(sources=("vgg",))
    with pytest.raises(ConfigError, match="images_per_setting"):
        BuildConfig(images_per_setting=0)
    with pytest.raises(ConfigError, match="l0_th"):
        BuildConfig(l0_th=(0,))


# --- source models -----------------------------------------------------------

def test_source_architectures_take_unit_images(digits):
    x = torch.from_numpy(digits.test.x[:4])
    for name in ("resnet", "capsnet", "at", "fs"):
        m = make_untrained(name, digits.shape, 10, digits.mean, digits.std).eval()
        with torch.no_grad():
            out = m(x)
        assert out.shape == (4, 10), name
    caps = CapsNet(1, 10, (8, 8), digits.mean, digits.std).eval()
    with torch.no_grad():
        lengths = caps(x)
    assert (lengths >= 0).all() and (lengths <= 1).all()  # capsule lengths


def test_feature_squeeze_removes_small_changes(digits):
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return x.flatten(1)[:, :10]

    fs = FeatureSqueeze(Spy(), bits=4, median_size=1)
    x = torch.from_numpy(digits.test.x[:2])
    fs(x)
    fs(x + 1 / 255)  # below half a 4-bit level: squeezed away
    assert torch.equal(seen[0], seen[1])


def test_trained_resnet_is_accurate(digits, resnet):
    assert (predict(resnet, digits.test.x) == digits.test.y).mean() > 0.9


# --- attacks -----------------------------------------------------------------

@pytest.mark.parametrize("setting", [AttackSetting("L0", 3, "DE"),
                                     AttackSetting("L0", 3, "CMA-ES"),
                                     AttackSetting("Linf", 10, "DE")])
def test_attack_respects_threshold_and_range(digits, resnet, setting):
    x, y = digits.test.x[:4], digits.test.y[:4]
    res = run_attack_setting(resnet, x, y, setting, max_iter=3, seed=1, num_classes=10)
    assert res.x_adv.dtype == np.float32 and res.x_adv.shape == x.shape
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert (res.max_change <= setting.th + 1e-3).all()
    delta = np.abs(res.x_adv - x) * 255
    if setting.norm == "L0":
        assert ((delta > 1e-3).reshape(len(x), -1).sum(1) <= setting.th).all()
    else:
        assert delta.max() <= setting.th + 1e-3
    np.testing.assert_array_equal(res.success, predict(resnet, res.x_adv) != y)
    # failures come back unchanged
    np.testing.assert_allclose(res.x_adv[~res.success], x[~res.success], atol=1e-6)


def test_linf_threshold_counts_steps_of_the_data_grid(digits, resnet):
    """On digits one Linf step is 255/16 on the 0-255 scale: a th=1 attack may
    move a value by exactly one intensity level, never more."""
    x, y = digits.test.x[:4], digits.test.y[:4]
    res = run_attack_setting(resnet, x, y, AttackSetting("Linf", 1, "DE"), max_iter=3, seed=1,
                             num_classes=10, linf_step255=255 / 16)
    delta = np.abs(res.x_adv - x)
    assert delta.max() <= 1 / 16 + 1e-6
    assert (res.max_change <= 255 / 16 + 1e-3).all()


def test_l0_attack_finds_samples_with_both_optimizers(digits, resnet):
    x, y = digits.test.x[:6], digits.test.y[:6]
    for opt in ("DE", "CMA-ES"):
        res = run_attack_setting(resnet, x, y, AttackSetting("L0", 10, opt), max_iter=5, seed=0,
                                 num_classes=10)
        assert res.success.sum() >= 1, opt


def test_cma_es_attack_is_reproducible(digits, resnet):
    x, y = digits.test.x[:3], digits.test.y[:3]
    setting = AttackSetting("L0", 3, "CMA-ES")
    a = run_attack_setting(resnet, x, y, setting, max_iter=3, seed=5, num_classes=10)
    b = run_attack_setting(resnet, x, y, setting, max_iter=3, seed=5, num_classes=10)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)


def test_margin_selection_favours_the_least_sure_images(digits, resnet):
    """select='margin': each attack setting draws its own images, favouring
    small margins (weight 1/(rank + 1)), only among the ``pool`` least sure
    with a pool; Linf settings take ``linf_images_per_setting``."""
    from ras_deap.attacks.build import _images_for, _margins

    cfg = BuildConfig(select="margin", images_per_setting=20, linf_images_per_setting=5)
    ok = np.flatnonzero(predict(resnet, digits.bank.x) == digits.bank.y)
    by_margin = ok[np.argsort(_margins(resnet, digits.bank.x[ok], digits.bank.y[ok]),
                              kind="stable")]
    rank = {int(i): r for r, i in enumerate(by_margin)}
    a = _images_for("resnet", AttackSetting("L0", 3, "DE"), resnet, cfg, digits)
    b = _images_for("resnet", AttackSetting("L0", 5, "DE"), resnet, cfg, digits)
    assert len(a) == len(set(a.tolist())) == 20 and set(a.tolist()) <= set(ok.tolist())
    assert not np.array_equal(a, b)  # each setting its own draw
    np.testing.assert_array_equal(a, _images_for("resnet", AttackSetting("L0", 3, "DE"), resnet,
                                                 cfg, digits))  # seeded
    assert np.median([rank[int(i)] for i in a]) < len(ok) / 4  # favours small margins
    assert len(_images_for("resnet", AttackSetting("Linf", 1, "DE"), resnet, cfg, digits)) == 5
    pooled = BuildConfig(select="margin", pool=30, images_per_setting=20)
    c = _images_for("resnet", AttackSetting("L0", 3, "DE"), resnet, pooled, digits)
    assert set(c.tolist()) <= set(by_margin[:30].tolist())


def test_build_options_keep_the_old_record_at_their_defaults():
    assert not {"select", "pool", "linf_images_per_cell"} & set(BuildConfig().to_json())
    # the record keeps its stored keys (banks and work folders hold them)
    assert BuildConfig(images_per_setting=7).to_json()["images_per_cell"] == 7
    assert not {"images_per_setting", "linf_images_per_setting"} & set(
        BuildConfig(linf_images_per_setting=3).to_json())
    rec = BuildConfig(select="margin", pool=9, linf_images_per_setting=3).to_json()
    assert rec["select"] == "margin" and rec["pool"] == 9 and rec["linf_images_per_cell"] == 3
    with pytest.raises(ConfigError, match="pool"):
        BuildConfig(pool=9)  # only with select='margin'
    with pytest.raises(ConfigError, match="select"):
        BuildConfig(select="best")
    with pytest.raises(ConfigError, match="linf_images_per_setting"):
        BuildConfig(linf_images_per_setting=0)


# --- builds ------------------------------------------------------------------

@pytest.mark.slow
def test_build_writes_a_loadable_bank(tiny_build, digits):
    out, bank = tiny_build
    loaded = load_bank(out, dataset="digits", shape=(1, 8, 8))
    m = loaded.manifest
    assert len(loaded) == len(bank) > 0
    assert m["split"] == "bank" and m["seed"] == 0 and "ras_deap_version" in m
    assert m["linf_grid"]["levels"] == 17 and m["linf_grid"]["step"] == 1 / 16
    # every base image is a bank-split image, so the bank passes the quarantine
    assert set(loaded.base_index.tolist()) <= set(digits.bank.index.tolist())
    check_quarantine(loaded, digits)
    linf = loaded.norm == "Linf"
    pos = {int(i): k for k, i in enumerate(digits.bank.index)}
    clean = digits.bank.x[[pos[int(i)] for i in loaded.base_index]]
    assert np.abs(loaded.x - clean)[linf].max() <= 2 / 16 + 1e-6  # th=2 steps of 1/16
    assert set(m["source_models"]) == {"resnet", "fs"}
    for name, per_setting in m["attack_cells"].items():
        assert len(per_setting) == 6  # (2 L0 + 1 Linf) x 2 optimizers
        for c in per_setting.values():
            mask = ((loaded.source_model == name) & (loaded.norm == c["norm"])
                    & (loaded.th == c["th"]) & (loaded.optimizer == c["optimizer"]))
            assert mask.sum() == c["succeeded"] <= c["attacked"] == 3
    assert (loaded.source_pred != loaded.y_true).all()


@pytest.mark.slow
def test_sources_score_zero_on_their_own_samples(tiny_build, digits):
    out, bank = tiny_build
    work = work_dir_for(out)
    trained = {}
    for name in ("resnet", "fs"):
        model = make_untrained(name, digits.shape, 10, digits.mean, digits.std,
                               TINY["source"])
        model.load_state_dict(torch.load(work / "models" / f"{name}.pt", weights_only=True))
        own = bank.subset(np.flatnonzero(bank.source_model == name))
        assert len(own) > 0
        pred = predict(model, own.x)
        assert robustness_metrics(pred, own)["robustness"] == 0.0
        np.testing.assert_array_equal(pred, own.source_pred)
        trained[name] = model
    torch.manual_seed(123)
    untrained = make_untrained("resnet", digits.shape, 10, digits.mean, digits.std)
    r_trained = robustness_metrics(predict(trained["resnet"], bank.x), bank)["robustness"]
    r_untrained = robustness_metrics(predict(untrained, bank.x), bank)["robustness"]
    assert r_trained != r_untrained


@pytest.mark.slow
def test_rebuild_with_same_seed_reproduces_the_bank(tiny_build, tmp_path):
    out, bank = tiny_build
    again = build_bank(BuildConfig(**TINY), tmp_path / "again.npz", show_progress=False,
                       log=lambda m: None)
    assert again.counts() == bank.counts()
    np.testing.assert_array_equal(again.x, bank.x)
    assert json.loads((tmp_path / "again.json").read_text())["sha256"] == \
        json.loads(out.with_suffix(".json").read_text())["sha256"]
    assert not work_dir_for(tmp_path / "again.npz").exists()  # cleaned up


@pytest.mark.slow
def test_parallel_build_gives_the_same_bank(tiny_build, tmp_path):
    out, bank = tiny_build
    again = build_bank(BuildConfig(**TINY), tmp_path / "par.npz", show_progress=False,
                       log=lambda m: None, workers=2)
    np.testing.assert_array_equal(again.x, bank.x)
    assert json.loads((tmp_path / "par.json").read_text())["sha256"] == \
        json.loads(out.with_suffix(".json").read_text())["sha256"]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_workers_are_refused(workers, tmp_path):
    with pytest.raises(BankBuildError, match="workers"):
        build_bank(BuildConfig(**TINY), tmp_path / "w.npz", workers=workers)
    assert not work_dir_for(tmp_path / "w.npz").exists()  # refused before any work


@pytest.mark.slow
def test_interrupted_build_resumes_without_redoing_work(tiny_build, tmp_path):
    out, bank = tiny_build
    work = work_dir_for(out)
    model_file = work / "models" / "resnet.pt"
    mtime = model_file.stat().st_mtime_ns
    # Simulate an interruption: the last attack setting's results and the output
    # were never written (work/cells/: the folder's stored name).
    (work / "cells" / "fs__Linf-th2-CMA-ES.npz").unlink()
    out.unlink()
    resumed = build_bank(BuildConfig(**TINY), out, show_progress=False, keep_work=True,
                         log=lambda m: None)
    assert model_file.stat().st_mtime_ns == mtime  # not retrained
    assert resumed.counts() == bank.counts()
    np.testing.assert_array_equal(resumed.x, bank.x)
    with pytest.raises(BankBuildError, match="other settings"):
        build_bank(BuildConfig(**{**TINY, "seed": 9}), out, show_progress=False,
                   log=lambda m: None)


# --- CLI ---------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["build", "--out", "x.npz", "--sources", "vgg"],
    ["build", "--out", "x.npz", "--images-per-setting", "0"],
    ["build", "--out", "x.npz", "--images-per-cell", "0"],
    ["build", "--out", "x.npz", "--linf-images-per-cell", "0"],
    ["build", "--out", "x.txt"],
    ["build", "--out", "x.npz", "--l0-th", "a,b"],
    ["build", "--out", "x.npz", "--dataset", "imagenet"],
])
def test_cli_bad_arguments_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


def _recorded_build_commands() -> list[list[str]]:
    """The exact build commands of ras_deap/bank/files/README.md, as argv."""
    import shlex

    text = (REPO / "ras_deap/bank/files/README.md").read_text()
    blocks = re.findall(r"^ {4}python -m ras_deap\.attacks (build (?:.*\\\n)*.*)$", text,
                        flags=re.M)
    return [shlex.split(block.replace("\\\n", " ")) for block in blocks]


def test_recorded_build_commands_give_the_shipped_banks_records():
    """The commands that built the shipped banks still describe them: the old
    flags they use (--images-per-cell, --linf-images-per-cell) are accepted
    and give the stored build record, key for key."""
    from ras_deap.attacks.cli import _build_config, _parser

    commands = _recorded_build_commands()
    assert len(commands) == 2 and any("--linf-images-per-cell" in c for c in commands)
    for argv in commands:
        args = _parser().parse_args(argv)
        stored = json.loads((REPO / args.out).with_suffix(".json").read_text())["build"]
        assert _build_config(args).to_json() == stored, argv
    new = _parser().parse_args(["build", "--out", "x.npz", "--images-per-setting", "128",
                                "--linf-images-per-setting", "12"])
    old = _parser().parse_args(["build", "--out", "x.npz", "--images-per-cell", "128",
                                "--linf-images-per-cell", "12"])
    assert _build_config(new) == _build_config(old)
    assert _build_config(new).images_for(AttackSetting("Linf", 3, "DE")) == 12


def test_cli_show_missing_bank_exits_2(tmp_path, capsys):
    assert main(["show", str(tmp_path / "none.npz")]) == 2


def test_cli_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["build"])  # --out missing
    assert exc.value.code == 2


# --- the shipped bank --------------------------------------------------------

def test_shipped_digits_bank(capsys):
    path = default_bank_path("digits")
    if path is None:
        pytest.fail("ras_deap/bank/files/digits.npz (+ .json) is missing; rebuild it with the "
                    "command in ras_deap/bank/files/README.md")
    assert Path(path).stat().st_size < 1_000_000
    bank = load_bank(path, dataset="digits", shape=(1, 8, 8))
    m = bank.manifest
    assert set(m["source_models"]) == {"resnet", "capsnet", "at", "fs"}
    for name, per_setting in m["attack_cells"].items():
        assert len(per_setting) == 16
        assert sum(c["succeeded"] for c in per_setting.values()) == \
            (bank.source_model == name).sum()
    assert (bank.source_pred != bank.y_true).all()
    assert set(bank.optimizer.tolist()) == {"DE", "CMA-ES"}
    # the bar: all 16 (norm, th, optimizer) attack settings filled, >= 1000 samples
    # from >= 300 distinct base images, Linf on the digits grid (steps of 1/16)
    filled = {(n, int(t), o) for n, t, o in zip(bank.norm, bank.th, bank.optimizer,
                                                strict=True)}
    assert len(filled) == 16
    assert len(bank) >= 1000 and len(np.unique(bank.base_index)) >= 300
    assert m["linf_grid"]["levels"] == 17
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert head.index("L0 th=3") < head.index("L0 th=10") < head.index("Linf th=1")
    assert "Linf th unit: 1/16" in out and "distinct base images" in out
    assert out.splitlines()[1].startswith("resnet") and "CMA-ES" in out
