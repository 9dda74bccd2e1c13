"""Tests of the direct attacks on a trained winner (ras_deap.assess)."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil

import numpy as np
import pytest

from ras_deap.assess import (
    METRIC_PREFIX,
    AssessConfig,
    Assessment,
    AttackRow,
    TargetError,
    default_eps_steps,
    format_table,
    resolve_target,
)
from ras_deap.assess.cli import main
from ras_deap.assess.target import config_from_params
from ras_deap.config import SearchConfig
from ras_deap.errors import ConfigError

TINY = ["--images", "30", "--l0-images", "3", "--pixel-iter", "2", "--no-progress"]


# -- settings and the table (pure Python) ----------------------------------------------
def test_config_defaults_and_errors_name_the_option():
    c = AssessConfig()
    assert (c.images, c.l0_images, c.pixel_th, c.attacks) == (200, 50, (1, 3, 5, 10),
                                                              ("fgsm", "pgd", "pixel"))
    assert default_eps_steps(17) == (1, 2, 3)  # digits: 1/16, 2/16, 3/16
    assert default_eps_steps(256) == (1, 3, 5, 10)  # 8-bit: the paper's x/255
    assert AssessConfig(eps_steps=(3, 1, 3)).eps_for(17) == (1, 3)
    assert AssessConfig(images=10, l0_images=50).l0_images == 10
    with pytest.raises(ConfigError, match=r"images=0.*--assess-images"):
        AssessConfig(images=0)
    with pytest.raises(ConfigError, match="pixel_th"):
        AssessConfig(pixel_th=(0, 1))
    with pytest.raises(ConfigError, match=r"unknown.*cw"):
        AssessConfig(attacks=("pgd", "cw"))
    assert AssessConfig.from_dict(AssessConfig(eps_steps=(2,)).to_dict()) == AssessConfig(
        eps_steps=(2,))


def _assessment():
    rows = [AttackRow("clean", "none (clean)", "-", "-", 10, 0.9),
            AttackRow("pgd_eps1", "PGD (10 steps)", "Linf", "eps=1/16", 10, 0.6, 0.5),
            AttackRow("pixel_th3", "PixelAttack (DE)", "L0", "th=3 pixels", 4, 0.25, 2.0),
            AttackRow("bank", "transfer bank", "all", "stored samples", 40, 0.75)]
    return Assessment(dataset="digits", seed=3, levels=17, test_accuracy=0.88, test_images=270,
                      rows=rows, config=AssessConfig(images=10, l0_images=4), seconds=3.0)


def test_table_metrics_and_round_trip():
    a = _assessment()
    text = format_table(a)
    assert "| PGD (10 steps) | Linf | eps=1/16 | 10 | 60.0% | 40.0% | 0.5 |" in text
    assert "| PixelAttack (DE) | L0 | th=3 pixels | 4 | 25.0% | 75.0% | 2.0 |" in text
    assert "88.0% on all 270" in text and "Fallback" not in text
    metrics = a.metrics()
    assert metrics["pgd_eps1_accuracy"] == 0.6 and metrics["pgd_eps1_error"] == pytest.approx(0.4)
    assert metrics["test_accuracy"] == 0.88 and METRIC_PREFIX == "assess/"
    assert Assessment.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_config_from_mlflow_params():
    params = {k: str(v) for k, v in SearchConfig(seed=4, full_epochs=7).to_dict().items()}
    params.update(method="tpe", budget="275", bank="/nowhere/bank.npz")
    config = config_from_params(params, seed=None, dataset="digits")
    assert config.seed == 4 and config.full_epochs == 7 and config.bank is None
    assert config.max_evaluations is None and config.lr == pytest.approx(1e-3)


def test_bad_targets_exit_2_with_what_to_pass(tmp_path, capsys):
    assert main(["no/such/run"]) == 2
    assert "neither a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no best_genome.json" in capsys.readouterr().err
    bad = tmp_path / "g.json"
    bad.write_text("{}")
    assert main([str(bad)]) == 2
    assert "not a genome JSON" in capsys.readouterr().err
    assert main([str(bad), "--images", "0"]) == 2
    assert "--assess-images / --images" in capsys.readouterr().err
    with pytest.raises(TargetError, match="--weights goes with a genome file"):
        resolve_target(str(tmp_path / "empty"), weights="x.pt")


# -- real torch + ART on a tiny trained model ---------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny chain trained for 3 epochs on digits, the data and a quarantined bank."""
    import torch

    from ras_deap.bank import fallback_bank, save_bank
    from ras_deap.compare import chain_model
    from ras_deap.data import load_dataset
    from ras_deap.evaluation import Evaluator, TrainConfig

    folder = tmp_path_factory.mktemp("assess")
    data = load_dataset("digits", None, False, 0)
    bank = save_bank(fallback_bank(data, 40, seed=0), folder / "bank.npz")
    genome = chain_model([(8, 3, 1)], [64])
    torch.set_num_threads(1)
    evaluator = Evaluator("digits", bank_path=bank, seed=0,
                          train_config=TrainConfig(full_epochs=3, max_epochs=3))
    result = evaluator.evaluate(genome, 10, seed=1, with_test=True, return_module=True)
    assert result.failure is None
    return {"folder": folder, "data": data, "bank": bank, "genome": genome,
            "net": result.module, "state": result.state_dict, "evaluator": evaluator}


def test_assess_network_on_a_tiny_trained_model(tiny):
    import torch

    from ras_deap.assess import assess_network
    from ras_deap.bank import load_bank, robustness_metrics

    data, net = tiny["data"], tiny["net"]
    bank = load_bank(tiny["bank"])
    config = AssessConfig(images=40, l0_images=4, pixel_iter=2, pixel_th=(1, 10))
    a = assess_network(net, data, bank, config, seed=5)
    keys = [r.key for r in a.rows]
    assert keys == ["clean", "fgsm_eps1", "fgsm_eps2", "fgsm_eps3", "pgd_eps1", "pgd_eps2",
                    "pgd_eps3", "pixel_th1", "pixel_th10", "bank", "bank_L0", "bank_Linf"]
    with torch.no_grad():
        pred = net(torch.from_numpy(data.test.x)).argmax(1).numpy()
    assert a.test_accuracy == pytest.approx(float((pred == data.test.y).mean()))
    clean = a.row("clean").accuracy
    assert clean == pytest.approx(float((pred[:40] == data.test.y[:40]).mean()))
    for row in a.rows:
        if row.key.startswith(("fgsm", "pgd")):
            assert row.images == 40 and row.accuracy <= clean
        if row.key.startswith("pixel"):
            assert row.images == 4 and row.accuracy <= float((pred[:4] == data.test.y[:4]).mean())
    # PGD is at least as strong as FGSM at the same eps, and a larger eps never helps much
    assert a.row("pgd_eps3").accuracy <= a.row("fgsm_eps3").accuracy + 0.05
    assert a.row("pgd_eps3").accuracy <= a.row("pgd_eps1").accuracy
    with torch.no_grad():
        bank_pred = net(torch.from_numpy(bank.x)).argmax(1).numpy()
    assert a.row("bank").accuracy == robustness_metrics(bank_pred, bank)["robustness"]
    again = assess_network(net, data, bank, config, seed=5)  # seeded: the same numbers
    assert [r.accuracy for r in again.rows] == [r.accuracy for r in a.rows]
    assert "eps=3/16" in format_table(a)
    # the attacks turn the weights' gradients off while they run, and back on after
    assert all(p.requires_grad for p in net.parameters())
    first = next(net.parameters())
    first.requires_grad_(False)  # a frozen weight stays frozen
    try:
        assess_network(net, data, None, AssessConfig(images=10, attacks=("fgsm",), bank=False))
        assert [p.requires_grad for p in net.parameters()][:2] == [False, True]
    finally:
        first.requires_grad_(True)


def test_pgd_row_matches_a_hand_written_projected_attack(tiny):
    """ART's PGD as assess configures it = signed-gradient steps of eps/4 from
    the clean image, projected on the eps box and [0, 1]."""
    import torch
    import torch.nn.functional as F

    from ras_deap.assess import assess_network

    data, net = tiny["data"], tiny["net"].eval()
    a = assess_network(net, data, None, AssessConfig(images=40, attacks=("pgd",),
                                                     eps_steps=(2,), pgd_steps=5))
    x = torch.from_numpy(data.test.x[:40])
    y = torch.from_numpy(data.test.y[:40])
    eps = 2 / 16
    adv = x.clone()
    for _ in range(5):
        adv.requires_grad_(True)
        loss = F.cross_entropy(net(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = (x + (adv + eps / 4 * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    with torch.no_grad():
        ok = (net(adv).argmax(1) == y) & (net(x).argmax(1) == y)
    assert a.row("pgd_eps2").accuracy == pytest.approx(float(ok.float().mean()))


def _tiny_run(tmp_path, bank):
    from ras_deap.search import run_search

    config = SearchConfig(population=2, generations=1, children=1, mutations=1,
                          subset_size=200, max_epochs=1, full_epochs=2, full_every=100,
                          bank=str(bank), run_dir=str(tmp_path / "runs"), run_name="tiny",
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="assess")
    return run_search(config, progress=False)


@pytest.mark.slow
def test_assess_cli_on_a_run_folder_and_on_its_mlflow_run(tiny, tmp_path, capsys):
    """The output of `python -m ras_deap.run` (a run folder with best_genome.json,
    best_model.pt and checkpoint.json): attacked with its own weights, the table
    logged under its MLflow run; then by run id once the folder is gone."""
    from ras_deap.tracking import SearchTracker

    result = _tiny_run(tmp_path, tiny["bank"])
    folder = result.run_dir
    assert (folder / "best_model.pt").is_file()
    assert main([str(folder), *TINY]) == 0
    out = capsys.readouterr()
    assert "| PGD (10 steps) | Linf | eps=1/16 | 30 |" in out.out
    assert "loading its weights" in out.err and f"MLflow run {result.run_id}" in out.out
    assert (folder / "assess.md").read_text() in out.out
    stored = json.loads((folder / "assess.json").read_text())
    assert stored["source"]["retrained"] is False and stored["seed"] == 0
    client = SearchTracker(f"sqlite:///{tmp_path}/mlflow.db", "assess").client
    run = client.get_run(result.run_id)
    assert 0 <= run.data.metrics["assess/pgd_eps1_accuracy"] <= 1
    assert "assess/pixel_th10_error" in run.data.metrics
    assert {a.path for a in client.list_artifacts(result.run_id, "assess")} == {
        "assess/assess.md", "assess/assess.json"}
    # by MLflow run id, the run folder deleted: its artifacts and params are enough
    shutil.rmtree(folder)
    out_dir = tmp_path / "by-id"
    assert main([result.run_id, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                 "--out", str(out_dir), *TINY]) == 0
    again = json.loads((out_dir / "assess.json").read_text())
    assert again["source"]["retrained"] is False  # the logged best_model.pt was used
    # same weights, same seed: the same numbers
    assert [(r["key"], r["accuracy"]) for r in again["rows"]] == [
        (r["key"], r["accuracy"]) for r in stored["rows"]]
    assert again["test_accuracy"] == stored["test_accuracy"]


def test_assess_a_saved_genome_with_and_without_weights(tiny, tmp_path, capsys):
    import torch

    genome = tmp_path / "best_genome.json"
    genome.write_text(tiny["genome"].to_json())
    weights = tmp_path / "best_model.pt"
    torch.save(tiny["state"], weights)
    common = ["--bank", str(tiny["bank"]), "--no-mlflow", "--attacks", "fgsm,pgd", *TINY]
    assert main([str(genome), "--weights", str(weights), *common]) == 0
    loaded = json.loads((tmp_path / "assess.json").read_text())
    assert not loaded["source"]["retrained"]
    assert loaded["test_accuracy"] == pytest.approx(
        float((tiny["net"](torch.from_numpy(tiny["data"].test.x)).argmax(1).numpy()
               == tiny["data"].test.y).mean()))
    assert main([str(genome), "--full-epochs", "1", "--out", str(tmp_path / "re"),
                 *common]) == 0
    assert "re-training it" in capsys.readouterr().err
    retrained = json.loads((tmp_path / "re" / "assess.json").read_text())
    assert retrained["source"]["retrained"] and not math.isnan(retrained["test_accuracy"])
    # weights of another genome are refused with a clear message
    from ras_deap.compare import chain_model

    other = tmp_path / "other.json"
    other.write_text(chain_model([(16, 3, 1)], []).to_json())
    assert main([str(other), "--weights", str(weights), *common]) == 2
    assert "do not fit genome" in capsys.readouterr().err
    assert np.isfinite(loaded["seconds"])



def test_assess_cli_stopped_by_kill_says_where_its_attacks_are_and_resumes(tiny, tmp_path,
                                                                           capsys, monkeypatch):
    """SIGTERM mid-assessment: one line, exit 130, the finished attacks kept
    in assess.partial.jsonl; the same command then runs only the rest, gives
    the uninterrupted numbers and removes the journal."""
    import torch

    from ras_deap.assess import attacks
    from ras_deap.errors import Terminated

    genome = tmp_path / "best_genome.json"
    genome.write_text(tiny["genome"].to_json())
    weights = tmp_path / "best_model.pt"
    torch.save(tiny["state"], weights)
    argv = [str(genome), "--weights", str(weights), "--bank", str(tiny["bank"]), "--no-mlflow",
            "--no-progress", "--attacks", "fgsm,pgd", "--out", str(tmp_path / "whole"), *TINY]
    assert main(argv) == 0
    whole = json.loads((tmp_path / "whole" / "assess.json").read_text())
    argv[argv.index("--out") + 1] = str(tmp_path / "cut")
    real, calls = attacks._linf_row, []

    def killed_at_the_third(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise Terminated()
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks, "_linf_row", killed_at_the_third)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    partial = tmp_path / "cut" / "assess.partial.jsonl"
    assert err[-1] == (f"terminated: the finished attacks are kept in {partial}; run the same "
                       "command again to go on")
    assert len(partial.read_text().splitlines()) == 2 and not (tmp_path / "cut" /
                                                                "assess.json").exists()
    monkeypatch.setattr(attacks, "_linf_row", real)
    assert main(argv) == 0
    assert "2 attack(s) finished before, resumed" in capsys.readouterr().err
    resumed = json.loads((tmp_path / "cut" / "assess.json").read_text())
    assert [(r["key"], r["accuracy"]) for r in resumed["rows"]] == [
        (r["key"], r["accuracy"]) for r in whole["rows"]]
    assert not partial.exists()
    # the attacks ran on the run's threads setting (1 here), not torch's default of every core
    torch.set_num_threads(2)
    try:
        assert main(argv) == 0 and torch.get_num_threads() == 1
        assert main([*argv, "--threads", "2"]) == 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)

# -- held-out attacks: SquareAttack and a second bank ------------------------------------
def test_square_iter_stays_out_of_records_written_before_square_existed():
    """Stored comparisons resume on equal assess settings: the default record
    is what it was before SquareAttack was added."""
    assert "square_iter" not in AssessConfig().to_dict()
    with_square = AssessConfig(attacks=("square", "pgd"))
    assert with_square.attacks == ("pgd", "square") and with_square.to_dict()["square_iter"] == 200
    assert AssessConfig.from_dict(with_square.to_dict()) == with_square
    with pytest.raises(ConfigError, match="--square-iter"):
        AssessConfig(square_iter=0)


@pytest.fixture(scope="module")
def heldout_bank(tiny):
    """A second quarantined bank, drawn with another seed (a stand-in for a
    bank built on unseen sources)."""
    from ras_deap.bank import fallback_bank, save_bank

    return save_bank(fallback_bank(tiny["data"], 30, seed=1), tiny["folder"] / "heldout.npz")


def test_square_attack_and_heldout_bank_rows(tiny, heldout_bank):
    import torch

    from ras_deap.assess import assess_network
    from ras_deap.bank import load_bank, robustness_metrics

    data, net = tiny["data"], tiny["net"]
    bank = load_bank(heldout_bank)
    config = AssessConfig(images=40, attacks=("square",), eps_steps=(1, 3), square_iter=20,
                          bank=False)
    a = assess_network(net, data, load_bank(tiny["bank"]), config, seed=3, heldout_bank=bank)
    keys = [r.key for r in a.rows]
    assert keys[:3] == ["clean", "square_eps1", "square_eps3"]
    assert "bank" not in keys and keys[3] == "heldout_bank"  # bank=False skips the search's
    clean = a.row("clean").accuracy
    assert a.row("square_eps1").accuracy <= clean and a.row("square_eps3").accuracy <= clean
    assert a.row("square_eps3").accuracy < clean  # 3/16 everywhere fools a 3-epoch chain
    with torch.no_grad():
        pred = net(torch.from_numpy(bank.x)).argmax(1).numpy()
    assert a.row("heldout_bank").accuracy == robustness_metrics(pred, bank)["robustness"]
    again = assess_network(net, data, None, config, seed=3, heldout_bank=bank)
    assert [r.accuracy for r in again.rows] == [r.accuracy for r in a.rows]  # seeded
    text = format_table(a)
    assert "SquareAttack (20 queries" in text and "Held-out transfer bank" in text


def _fake_comparison(tiny, out, robustness):
    """A comparison folder as python -m ras_deap.compare leaves it, with the
    tiny trained chain as every cell's winner."""
    import torch

    from ras_deap.compare.cells import cell_dir
    from ras_deap.compare.compare_config import CompareConfig

    search = SearchConfig(bank=str(tiny["bank"]), robustness=robustness)
    cfg = CompareConfig(search=search, out=str(out), seeds=2, methods=("random", "ras"))
    settings = json.loads(json.dumps(cfg.settings(), default=str))
    out.mkdir()
    (out / "comparison.json").write_text(json.dumps({"format": "ras_deap.compare/2",
                                                     "settings": settings}))
    for method in cfg.methods:
        for seed in (0, 1):
            folder = cell_dir(out, method, seed)
            folder.mkdir(parents=True)
            (folder / "best_genome.json").write_text(tiny["genome"].to_json())
            torch.save(tiny["state"], folder / "best_model.pt")
            (folder / "config.json").write_text(json.dumps(
                SearchConfig(bank=str(tiny["bank"]), robustness=robustness, seed=seed)
                .to_dict()))
            rows = [{"key": f"pixel_th{t}", "accuracy": 0.5 + 0.1 * (method == "ras")}
                    for t in (1, 3)]
            (folder / "result.json").write_text(json.dumps(
                {"method": method, "seed": seed, "settings": settings,
                 "assessment": {"rows": rows}}))
    return out


def test_heldout_comparison_assesses_every_winner_once_and_reports(tiny, heldout_bank,
                                                                    tmp_path, capsys):
    from ras_deap.compare import heldout

    bank_arm = _fake_comparison(tiny, tmp_path / "bank", "bank")
    direct_arm = _fake_comparison(tiny, tmp_path / "direct", "direct")
    report = tmp_path / "choice.md"
    argv = ["--arm", f"bank={bank_arm}", "--arm", f"direct={direct_arm}",
            "--methods", "random,ras", "--heldout-bank", str(heldout_bank), "--images", "30",
            "--square-iter", "5", "--report", str(report), "--no-mlflow", "--no-progress"]
    assert heldout.main(argv) == 0
    cells = sorted(tmp_path.glob("*/cells/*/heldout.json"))
    assert len(cells) == 8
    first = json.loads(cells[0].read_text())
    assert {r["key"] for r in first["assessment"]["rows"]} >= {"square_eps1", "heldout_bank"}
    stamps = [c.stat().st_mtime_ns for c in cells]
    # the command's compute is recorded in both arms, once, and the report counts it once
    records = [json.loads((arm / "heldout.sessions.json").read_text())["sessions"]
               for arm in (bank_arm, direct_arm)]
    assert records[0] == records[1] and len(records[0]) == 1
    session = records[0][0]
    assert (session["ended"], session["winners"]) == ("finished", 8)
    assert session["cpu_seconds"] > 0 and session["seconds"] > 0 and "--arm" in session["command"]
    assert heldout.main(argv) == 0  # stored: nothing is attacked again, no session added
    assert [c.stat().st_mtime_ns for c in cells] == stamps
    assert len(json.loads((bank_arm / "heldout.sessions.json").read_text())["sessions"]) == 1
    text = report.read_text()
    assert "Compute: 1 held-out command from " in text and "CPU-hours" in text
    assert "## Decision" in text and "| direct | RAS (spectrum niching) | 2 |" in text
    # identical winners in both arms: no difference, so the paper's bank stays
    assert "* **bank** (bank: no significant gain for direct" in text
    with open(report.with_suffix(".csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and float(rows[0]["pixel_mean"]) == pytest.approx(0.5)
    with pytest.raises(SystemExit):
        heldout.main(["--arm", "bank", "--heldout-bank", str(heldout_bank)])
    assert "NAME=FOLDER" in capsys.readouterr().err


def test_heldout_assesses_winners_with_weights_before_those_it_must_retrain(
        tiny, heldout_bank, tmp_path, monkeypatch):
    from ras_deap.compare import heldout

    arm = _fake_comparison(tiny, tmp_path / "bank", "bank")
    (arm / "cells" / "random-seed0" / "best_model.pt").unlink()
    seen = []

    def assess(folder, *args, **kwargs):
        seen.append(folder.name)
        return {}

    monkeypatch.setattr(heldout, "assess_cell", assess)
    monkeypatch.setattr(heldout, "cell_rows", lambda result, record, arm: {})
    assert heldout.main(["--arm", f"bank={arm}", "--methods", "random,ras", "--heldout-bank",
                         str(heldout_bank), "--no-mlflow", "--no-progress"]) == 0
    assert seen == ["ras-seed0", "random-seed1", "ras-seed1", "random-seed0"]


def test_heldout_takes_the_eps_grid_and_autoattacks_budgets(tiny, heldout_bank, tmp_path,
                                                            monkeypatch, capsys):
    """--eps-steps and --autoattack-eps reach the assessment's settings (the
    pre-registered eps first, the grid later); a bad budget is one line, exit 2."""
    from ras_deap.compare import heldout

    arm = _fake_comparison(tiny, tmp_path / "bank", "bank")
    configs, threads = [], []

    def assess(folder, config, *args, **kwargs):
        configs.append(config)
        threads.append(kwargs["threads"])
        return {}

    monkeypatch.setattr(heldout, "assess_cell", assess)
    monkeypatch.setattr(heldout, "cell_rows", lambda result, record, arm: {})
    argv = ["--arm", f"bank={arm}", "--methods", "ras", "--heldout-bank", str(heldout_bank),
            "--no-mlflow", "--no-progress", "--autoattack"]
    assert heldout.main([*argv, "--eps-steps", "3", "--autoattack-eps", "0.3,0.1"]) == 0
    assert {(c.eps_steps, c.autoattack_eps, c.attacks) for c in configs} == {
        ((3,), (0.1, 0.3), ("square", "autoattack"))}
    configs.clear()
    assert heldout.main([*argv, "--threads", "2"]) == 0
    assert {(c.eps_steps, c.autoattack_eps) for c in configs} == {(None, None)}
    assert set(threads) == {None, 2}  # each cell's own setting, or --threads
    with pytest.raises(SystemExit) as stop:
        heldout.main([*argv, "--autoattack-eps", "0.1,big"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--autoattack-eps '0.1,big': give comma-separated L-inf budgets" in err[-1]

def test_heldout_takes_one_lock_per_name_beside_a_running_comparison(
        tiny, heldout_bank, tmp_path, monkeypatch, capsys):
    """A second held-out command under the same --name stops before it attacks
    anything (one line, exit 2, naming the holder and the fix); one under another
    --name, or beside the comparison still writing the folder, runs."""
    from ras_deap.compare import heldout
    from ras_deap.locks import RunLock

    arm = _fake_comparison(tiny, tmp_path / "bank", "bank")
    seen = []
    monkeypatch.setattr(heldout, "assess_cell", lambda folder, *a, **k: seen.append(folder.name))
    monkeypatch.setattr(heldout, "cell_rows", lambda result, record, arm: {})
    argv = ["--arm", f"bank={arm}", "--methods", "random,ras", "--heldout-bank",
            str(heldout_bank), "--no-mlflow", "--no-progress"]
    with RunLock(arm), RunLock(arm, name=".heldout.lock"):  # the comparison, another command
        assert heldout.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {os.getpid()}" in err and "--name" in err
        assert seen == []
        assert heldout.main([*argv, "--name", "heldout-v2"]) == 0
    assert len(seen) == 4
    assert heldout.main(argv) == 0 and len(seen) == 8  # released when its holder ends


def test_heldout_name_keeps_results_apart_and_seed_picks_the_bank(tiny, heldout_bank, tmp_path,
                                                                  capsys):
    """--name stores another bank's results beside heldout.json; a bank path
    holding {seed} names one bank per seed."""
    import shutil

    from ras_deap.compare import heldout

    arms = [_fake_comparison(tiny, tmp_path / a, a) for a in ("bank", "direct")]
    for seed in (0, 1):
        shutil.copy(heldout_bank, tmp_path / f"held-seed{seed}.npz")
        shutil.copy(heldout_bank.with_suffix(".json"), tmp_path / f"held-seed{seed}.json")
    report = tmp_path / "other.md"
    argv = ["--arm", f"bank={arms[0]}", "--arm", f"direct={arms[1]}", "--methods", "random",
            "--heldout-bank", str(tmp_path / "held-seed{seed}.npz"), "--name", "heldout-v2",
            "--images", "20", "--square-iter", "3", "--report", str(report), "--no-mlflow",
            "--no-progress"]
    assert heldout.main(argv) == 0
    cells = sorted(tmp_path.glob("*/cells/random-*"))
    assert len(cells) == 4 and all((c / "heldout-v2.json").is_file() for c in cells)
    assert not any((c / "heldout.json").exists() for c in cells)
    record = json.loads((cells[0] / "heldout-v2.json").read_text())
    assert record["heldout_bank"].endswith(f"held-seed{cells[0].name[-1]}.npz")
    assert {r["key"] for r in record["assessment"]["rows"]} >= {"heldout_bank_attack_random"}
    text = report.read_text()
    assert "held-seed{seed}.npz" in text and "Held-out bank: random" in text
    (tmp_path / "held-seed1.npz").unlink()
    with pytest.raises(SystemExit):
        heldout.main([*argv[:-1], "--name", "x"])
    assert "held-seed1.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        heldout.main([*argv, "--name", "../x"])


def test_heldout_retrains_a_winner_without_weights_as_its_final_training(tiny, heldout_bank,
                                                                         tmp_path):
    from ras_deap.compare import heldout_cell
    from ras_deap.compare.cells import cell_dir
    from ras_deap.search import make_evaluator
    from ras_deap.seeding import derive_seed

    arm = _fake_comparison(tiny, tmp_path / "bank", "bank")
    folder = cell_dir(arm, "ras", 1)
    (folder / "best_model.pt").unlink()
    config = AssessConfig(images=20, attacks=("square",), bank=False, square_iter=3)
    with pytest.raises(heldout_cell.HeldoutError, match=r"no best_model\.pt"):
        heldout_cell.assess_cell(folder, config, heldout_bank, mlflow=False)
    search = SearchConfig(bank=str(tiny["bank"]), robustness="bank", seed=1)
    final = make_evaluator(search).evaluate(tiny["genome"], 10,
                                            seed=derive_seed(1, "final", tiny["genome"].id),
                                            with_test=True)
    result = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps({**result, "final_metrics": final.metrics}))
    record = heldout_cell.assess_cell(folder, config, heldout_bank, mlflow=False,
                                      name="again", retrain_generation=10)
    assert record["network"]["reproduces_final_metrics"], record["network"]
    assert record["assessment"]["test_accuracy"] == pytest.approx(
        final.metrics["test_accuracy"])
    kept = folder / heldout_cell.RETRAINED_NAME  # the re-training is kept for the next one
    stamp = kept.stat().st_mtime_ns
    (folder / "result.json").write_text(json.dumps(
        {**result, "final_metrics": {**final.metrics, "test_accuracy": 0.123}}))
    record = heldout_cell.assess_cell(folder, config, heldout_bank, mlflow=False,
                                      name="tampered", retrain_generation=10)
    assert kept.stat().st_mtime_ns == stamp  # not re-trained, still checked against result
    assert record["network"]["differing_metrics"] == ["test_accuracy"]
    assert record["assessment"]["test_accuracy"] == pytest.approx(
        final.metrics["test_accuracy"])
    row = heldout_cell.cell_rows({**result, "method": "ras", "seed": 1}, record, "bank")
    # another network than the one the cell's assessment measured: its Pixel rows stay out
    assert row["reproduced"] == 0.0 and "pixel_th1" not in row and np.isnan(row["heldout_mean"])
    assert row["fitness_bank"] == pytest.approx(final.metrics["robustness_bank"])
    same = heldout_cell.assess_cell(folder, config, heldout_bank, mlflow=False, name="again",
                                    retrain_generation=10)  # stored: read back
    assert heldout_cell.cell_rows({**result, "method": "ras", "seed": 1}, same, "bank")[
        "pixel_th1"] == pytest.approx(0.6)


def test_report_decides_on_square_and_bank_when_pixel_was_not_measured(tmp_path):
    from ras_deap.compare.heldout_report import write_report

    rows = [{"arm": arm, "method": "ras", "seed": seed, "test_accuracy": 0.97,
             "square_mean": 0.5, "heldout_bank": 0.6 + 0.01 * seed + 0.05 * (arm == "direct"),
             "heldout_bank_attack_HopSkipJump": 0.8, "pixel_mean": math.nan,
             "heldout_mean": math.nan, "reproduced": 0.0,
             "square_bank_mean": 0.55 + 0.005 * seed + 0.025 * (arm == "direct")}
            for arm in ("bank", "direct") for seed in range(6)]
    write_report(tmp_path / "r.md", rows, reference="bank", arms=["bank", "direct"],
                 methods=["ras"], command="cmd", config=AssessConfig(attacks=("square",)),
                 heldout_bank=tmp_path / "b{seed}.npz", bank_notes=["a note"])
    text = (tmp_path / "r.md").read_text()
    assert "* a note" in text and "Held-out bank: HopSkipJump" in text
    assert "12 of 12 winners had no stored weights" in text and "left out (n/a)" in text
    assert "pooled robustness under Square + the held-out bank" in text
    assert "* **direct** (direct: Square + held-out bank direct - bank = +2.5" in text


def test_fitness_choice_decision_rule():
    from ras_deap.compare.heldout_report import choose_default
    from ras_deap.compare.stats import paired_comparison

    def paired(a, b):
        return paired_comparison(a, b, higher_is_better=True)

    base = [0.40, 0.42, 0.38, 0.41, 0.39, 0.40, 0.43]
    better = [v + 0.05 + 0.001 * i for i, v in enumerate(base)]
    acc = [0.97] * 7
    assert choose_default(paired(better, base), paired(acc, acc), "direct", "bank").choice == \
        "direct"
    lower_acc = [0.95] * 7  # 2 points of test accuracy lost: too costly
    decision = choose_default(paired(better, base), paired(lower_acc, acc), "direct", "bank")
    assert decision.choice == "bank" and "costs more than 1 point" in decision.reason
    assert choose_default(paired(base, better), paired(acc, acc), "direct", "bank").choice == \
        "bank"
    assert choose_default(paired(better[:1], base[:1]), paired(acc[:1], acc[:1]), "direct",
                          "bank").choice == "bank"


def test_an_interrupted_assessment_resumes_its_finished_attacks(tiny, tmp_path):
    """The journal keeps each finished attack; a rerun after Ctrl-C runs only
    the rest and gives the uninterrupted numbers. Another network or seed
    shares nothing with it."""
    from ras_deap.assess import assess_network
    from ras_deap.assess.journal import AttackJournal, network_digest

    data, net = tiny["data"], tiny["net"]
    config = AssessConfig(images=30, attacks=("fgsm", "square"), eps_steps=(1, 3),
                          square_iter=10, bank=False)
    whole = assess_network(net, data, None, config, seed=3)
    key = {"network": network_digest(net), "seed": 3, "config": config.to_dict()}
    path = tmp_path / "heldout.partial.jsonl"

    class Cut(AttackJournal):
        def add(self, attack, rows):
            super().add(attack, rows)
            if len(self) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        assess_network(net, data, None, config, seed=3, journal=Cut(path, key))
    with open(path, "a") as fh:
        fh.write('{"key": "torn')  # a kill mid-line
    journal = AttackJournal(path, key)
    assert len(journal) == 3 and journal.rows("square 3") is None
    ran = []

    class Counting(AttackJournal):
        def add(self, attack, rows):
            ran.append(attack)
            super().add(attack, rows)

    resumed = assess_network(net, data, None, config, seed=3, journal=Counting(path, key))
    assert ran == ["square 3"]
    assert [(r.key, r.accuracy) for r in resumed.rows] == [(r.key, r.accuracy)
                                                           for r in whole.rows]
    assert len(AttackJournal(path, {**key, "seed": 4})) == 0
    assert network_digest(net) == key["network"]


def test_heldout_stops_on_sigterm_with_one_line_and_exit_130(tiny, heldout_bank, tmp_path,
                                                             capsys, monkeypatch):
    from ras_deap.compare import heldout
    from ras_deap.errors import Terminated

    arm = _fake_comparison(tiny, tmp_path / "bank", "bank")

    def killed(*args, **kwargs):
        raise Terminated()

    monkeypatch.setattr(heldout, "assess_cell", killed)
    code = heldout.main(["--arm", f"bank={arm}", "--methods", "random,ras", "--heldout-bank",
                         str(heldout_bank), "--no-mlflow", "--no-progress"])
    assert code == 130
    err = capsys.readouterr().err
    assert "terminated: 0 winner(s) assessed" in err and "run the same command again" in err
    session, = json.loads((arm / "heldout.sessions.json").read_text())["sessions"]
    assert (session["ended"], session["winners"]) == ("interrupted", 0)


def test_journal_parts_go_to_their_own_file_and_old_ones_are_still_read(tmp_path):
    """Parts journalled in the assessment's journal (before they had a file
    of their own) are found; new parts go to the parts file, which a
    journal under other settings of the same network and seed reads."""
    from ras_deap.assess.journal import AttackJournal

    path, parts = tmp_path / "heldout.partial.jsonl", tmp_path / "autoattack-parts.jsonl"
    key = {"network": "abc", "seed": 1, "config": {"images": 200}}
    settings = {"attack": "autoattack", "eps": 0.1, "images": [0, 50]}
    AttackJournal(path, key).add_part(settings, {"ok": "1"})  # the old layout
    journal = AttackJournal(path, key, parts)
    assert journal.part(settings) == {"ok": "1"} and not parts.exists()
    journal.add_part({**settings, "eps": 0.3}, {"ok": "0"})
    assert len(parts.read_text().splitlines()) == 1
    other = AttackJournal(tmp_path / "assess.partial.jsonl",
                          {**key, "config": {"images": 100}}, parts)
    assert other.part({**settings, "eps": 0.3}) == {"ok": "0"} and len(other) == 0
    assert AttackJournal(path, {**key, "seed": 2}, parts).part({**settings, "eps": 0.3}) is None


def test_journal_skips_damaged_or_planted_rows(tmp_path):
    """A journal line under the right key whose rows are not rows is run
    again, never crashed on."""
    from ras_deap.assess.journal import AttackJournal

    key = {"network": "a", "seed": 1, "config": {}}
    k = json.dumps(key, sort_keys=True)
    path = tmp_path / "heldout.partial.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [
        {"key": k, "attack": "square 1", "rows": [{"bogus": 1}]},
        {"key": k, "attack": "square 3"}, {"key": k, "attack": "square 5", "rows": 5},
        {"key": k, "attack": "fgsm 1", "rows": [{"key": "fgsm_eps1", "attack": "FGSM",
                                                 "norm": "Linf", "budget": "eps=1/255",
                                                 "images": 2, "accuracy": 0.5}]}]) + "\n")
    journal = AttackJournal(path, key)
    assert len(journal) == 1 and journal.rows("fgsm 1")[0].accuracy == 0.5
    assert journal.rows("square 1") is None
