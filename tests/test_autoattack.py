"""AutoAttack in ``python -m ras_deap.assess`` (ART's parts; torchattacks as a
cross-check when it is importable)."""

from __future__ import annotations

import dataclasses
import json
from itertools import pairwise
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ras_deap.assess import AssessConfig, format_table
from ras_deap.assess.cli import main
from ras_deap.errors import ConfigError

# what AssessConfig().to_dict() was before AutoAttack: stored comparisons resume on it
DEFAULT_RECORD = {"images": 200, "l0_images": 50, "eps_steps": None, "pgd_steps": 10,
                  "pixel_th": [1, 3, 5, 10], "pixel_iter": 20,
                  "attacks": ["fgsm", "pgd", "pixel"], "bank": True}
FAST = {"autoattack_iter": 10, "autoattack_queries": 30}


# -- settings (pure Python) ------------------------------------------------------------
def test_default_record_is_unchanged_and_autoattack_settings_round_trip():
    assert AssessConfig().to_dict() == DEFAULT_RECORD
    assert "autoattack" not in AssessConfig().attacks
    # settings of an attack that does not run stay out, as square_iter does
    assert AssessConfig(images=30).to_dict() == {**DEFAULT_RECORD, "images": 30, "l0_images": 30}
    with_aa = AssessConfig(attacks=("autoattack", "pgd"), autoattack_eps=(0.3, 0.1, 0.3))
    assert with_aa.attacks == ("pgd", "autoattack") and with_aa.autoattack_eps == (0.1, 0.3)
    record = json.loads(json.dumps(with_aa.to_dict()))
    assert record["autoattack_iter"] == 100 and record["autoattack_queries"] == 5000
    assert record["autoattack_images"] == 200 and record["autoattack_eps"] == [0.1, 0.3]
    assert AssessConfig.from_dict(record) == with_aa
    changed = AssessConfig(autoattack_iter=7)  # changed but not run: kept, so it round-trips
    assert AssessConfig.from_dict(changed.to_dict()) == changed


def test_autoattack_eps_default_is_the_fields_on_mnist_like_data_only():
    c = AssessConfig()
    assert c.autoattack_eps_for(256, (1, 28, 28)) == (0.1, 0.3)  # mnist10k, mnist, fashion
    assert c.autoattack_eps_for(17, (1, 8, 8)) == ()  # digits
    assert c.autoattack_eps_for(256, (3, 32, 32)) == ()  # 8-bit colour images
    assert AssessConfig(autoattack_eps=()).autoattack_eps_for(256, (1, 28, 28)) == ()
    assert AssessConfig(autoattack_eps=(0.05,)).autoattack_eps_for(17, (1, 8, 8)) == (0.05,)
    for bad in [(0.0,), (1.0,), (0.1, 2), (True,), ("0.1",)]:
        with pytest.raises(ConfigError, match=r"autoattack_eps=.*--autoattack-eps"):
            AssessConfig(autoattack_eps=bad)
    for name in ("autoattack_images", "autoattack_iter", "autoattack_queries"):
        with pytest.raises(ConfigError, match=f"--{name.replace('_', '-')}"):
            AssessConfig(**{name: 0})


def test_autoattack_plan_labels_grid_steps_and_absolute_budgets():
    from ras_deap.assess.attacks import _autoattack_plan

    mnist = SimpleNamespace(shape=(1, 28, 28))
    plan = _autoattack_plan(AssessConfig(attacks=("autoattack",)), mnist, 256)
    assert [key for key, _, _ in plan] == ["autoattack_eps1", "autoattack_eps3",
                                           "autoattack_eps5", "autoattack_eps10",
                                           "autoattack_eps0.1", "autoattack_eps0.3"]
    assert plan[1][1] == pytest.approx(3 / 255) and plan[5][1:] == (0.3, "eps=0.3")
    digits = SimpleNamespace(shape=(1, 8, 8))
    assert [b for _, _, b in _autoattack_plan(AssessConfig(eps_steps=(2,)), digits, 17)] == [
        "eps=2/16"]


@pytest.mark.parametrize("argv, flag", [
    (["--attacks", "autoattack", "--autoattack-eps", "0.1,1.5"], "--autoattack-eps"),
    (["--autoattack-eps", "0.1,big"], "--autoattack-eps"),
    (["--autoattack-iter", "0"], "--autoattack-iter"),
    (["--autoattack-images", "-3"], "--autoattack-images"),
    (["--autoattack-queries", "0"], "--autoattack-queries"),
])
def test_bad_autoattack_options_exit_2_with_one_line(argv, flag, capsys):
    assert main(["no/such/run", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and "\n" not in err


def test_compare_passes_autoattack_to_its_assessments(capsys):
    from ras_deap.compare.cli import build_parser, config_from_args
    from ras_deap.compare.cli import main as compare_main

    args = build_parser().parse_args(["--assess-attacks", "pgd,autoattack",
                                      "--assess-autoattack-images", "40"])
    cfg = config_from_args(args).assess
    assert cfg.attacks == ("pgd", "autoattack") and cfg.autoattack_images == 40
    assert config_from_args(build_parser().parse_args([])).assess == AssessConfig()
    assert compare_main(["--assess-attacks", "autoattack", "--assess-autoattack-images",
                         "0"]) == 2
    assert "--autoattack-images" in capsys.readouterr().err


# -- real torch + ART on a tiny trained model -------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny chain trained for 3 epochs on digits and the data."""
    import torch

    from ras_deap.bank import fallback_bank, save_bank
    from ras_deap.compare import chain_model
    from ras_deap.data import load_dataset
    from ras_deap.evaluation import Evaluator, TrainConfig

    folder = tmp_path_factory.mktemp("autoattack")
    data = load_dataset("digits", None, False, 0)
    bank = save_bank(fallback_bank(data, 20, seed=0), folder / "bank.npz")
    torch.set_num_threads(1)
    evaluator = Evaluator("digits", bank_path=bank, seed=0,
                          train_config=TrainConfig(full_epochs=3, max_epochs=3))
    result = evaluator.evaluate(chain_model([(8, 3, 1)], [64]), 10, seed=1, with_test=True,
                                return_module=True)
    assert result.failure is None
    return {"data": data, "net": result.module.eval()}


def test_run_autoattack_finds_valid_adversarials_reproducibly(tiny):
    import torch

    from ras_deap.assess.attacks import _classifier
    from ras_deap.assess.autoattack import run_autoattack

    data, net = tiny["data"], tiny["net"]
    x, y = data.test.x[:30], data.test.y[:30]
    clf = _classifier(net, x.shape[1:], data.num_classes)
    eps = 2 / 16
    result = run_autoattack(clf, x, y, eps, iters=10, queries=30, seed=4)
    assert np.abs(result.x_adv - x).max() <= eps * (1 + 1e-4)
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    with torch.no_grad():
        clean = net(torch.from_numpy(x)).argmax(1).numpy() == y
        on_adv = net(torch.from_numpy(result.x_adv)).argmax(1).numpy() == y
    broken = clean & ~result.robust
    assert broken.any() and not on_adv[broken].any()  # every image counted broken is fooled
    assert not (result.robust & ~clean).any()
    after = list(result.robust_after.values())
    assert list(result.robust_after) == ["apgd-ce", "apgd-t", "square"]
    assert all((later <= earlier).all() for earlier, later in pairwise(after))
    assert (after[-1] == result.robust).all()
    assert list(result.cpu_seconds) == list(result.seconds)
    assert all(v >= 0 for v in result.cpu_seconds.values())
    again = run_autoattack(clf, x, y, eps, iters=10, queries=30, seed=4)
    assert (again.robust == result.robust).all() and np.array_equal(again.x_adv, result.x_adv)


def test_autoattack_rows_only_when_asked_and_no_weaker_than_pgd(tiny):
    from ras_deap.assess import assess_network

    data, net = tiny["data"], tiny["net"]
    plain = assess_network(net, data, None, AssessConfig(images=30, attacks=("pgd",),
                                                         bank=False))
    assert not any(r.key.startswith("autoattack") for r in plain.rows)
    config = AssessConfig(images=30, attacks=("pgd", "autoattack"), bank=False,
                          autoattack_eps=(0.1,), **FAST)
    a = assess_network(net, data, None, config, seed=2)
    keys = [r.key for r in a.rows]
    assert keys[4:] == [f"autoattack_eps{e}{part}" for e in ("1", "2", "3", "0.1")
                        for part in ("_apgd-ce", "_apgd-t", "")]
    clean = a.row("clean").accuracy
    for k in (1, 2, 3):
        row = a.row(f"autoattack_eps{k}")
        assert row.images == 30 and row.norm == "Linf" and row.budget == f"eps={k}/16"
        assert row.accuracy <= clean and row.accuracy <= a.row(f"pgd_eps{k}").accuracy
        assert row.accuracy <= a.row(f"autoattack_eps{k}_apgd-t").accuracy <= a.row(
            f"autoattack_eps{k}_apgd-ce").accuracy
    assert a.row("autoattack_eps2").accuracy < clean  # 2/16 breaks a 3-epoch chain
    assert a.row("autoattack_eps0.1").budget == "eps=0.1"
    metrics = a.metrics()
    assert "autoattack_eps0.1_accuracy" in metrics and "autoattack_eps2_apgd-t_error" in metrics
    text = format_table(a)
    assert "| AutoAttack (APGD-CE, APGD-T, Square) | Linf | eps=2/16 | 30 |" in text
    assert "less FAB-T" in text and "10 iterations" in text and "0.1, 0.3" in text
    again = assess_network(net, data, None, config, seed=2)  # seeded: the same numbers
    assert [r.accuracy for r in again.rows] == [r.accuracy for r in a.rows]
    fewer = assess_network(net, data, None, AssessConfig(
        images=30, attacks=("autoattack",), eps_steps=(2,), autoattack_images=10,
        bank=False, **FAST), seed=2)
    assert fewer.row("autoattack_eps2").images == 10 and fewer.row("clean").images == 30


@pytest.mark.slow  # an MLflow sqlite store
def test_autoattack_rows_reach_mlflow(tiny, tmp_path):
    from ras_deap.assess import Assessment, AttackRow
    from ras_deap.assess.run import log_assessment
    from ras_deap.tracking import SearchTracker

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = SearchTracker(uri, "assess").client
    run_id = client.create_run(client.create_experiment("assess")).info.run_id
    rows = [AttackRow("clean", "none (clean)", "-", "-", 10, 0.9),
            AttackRow("autoattack_eps0.1_apgd-ce", "AutoAttack after APGD-CE", "Linf",
                      "eps=0.1", 10, 0.5, 1.0),
            AttackRow("autoattack_eps0.1", "AutoAttack (APGD-CE, APGD-T, Square)", "Linf",
                      "eps=0.1", 10, 0.4, 2.0)]
    a = Assessment(dataset="mnist10k", seed=0, levels=256, test_accuracy=0.9, test_images=10,
                   rows=rows, config=AssessConfig(attacks=("autoattack",)))
    md = tmp_path / "assess.md"
    md.write_text(format_table(a))
    log_assessment(a, uri, run_id, [md])
    metrics = client.get_run(run_id).data.metrics
    assert metrics["assess/autoattack_eps0.1_accuracy"] == pytest.approx(0.4)
    assert metrics["assess/autoattack_eps0.1_apgd-ce_error"] == pytest.approx(0.5)


def test_heldout_report_has_an_autoattack_column_when_it_ran(tmp_path):
    import csv

    from ras_deap.compare.heldout_cell import cell_rows
    from ras_deap.compare.heldout_report import write_report

    def heldout(aa: float) -> dict:
        keys = {"square_eps1": 0.8, "autoattack_eps1": aa, "autoattack_eps1_apgd-ce": 0.9,
                "autoattack_eps3": aa / 2, "autoattack_eps0.1": 0.0, "heldout_bank": 0.7}
        return {"assessment": {"test_accuracy": 0.95,
                               "rows": [{"key": k, "accuracy": v} for k, v in keys.items()]}}

    rows = [cell_rows({"method": "ras", "seed": s, "assessment": {"rows": []}},
                      heldout(0.6 + 0.1 * (arm == "direct")), arm)
            for arm in ("bank", "direct") for s in (0, 1)]
    assert rows[0]["autoattack_mean"] == pytest.approx(0.45)  # grid only, not eps0.1
    assert "autoattack_eps1_apgd-ce" not in rows[0] and rows[0]["autoattack_eps0.1"] == 0.0
    config = AssessConfig(attacks=("square", "autoattack"), bank=False)
    write_report(tmp_path / "r.md", rows, reference="bank", arms=["bank", "direct"],
                 methods=["ras"], command="x", config=config, heldout_bank=tmp_path / "b.npz")
    text = (tmp_path / "r.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| fitness | method | n"))
    assert header.split(" | ")[4] == "AutoAttack L∞ (mean)"
    direct = next(line for line in text.splitlines() if line.startswith("| direct | RAS"))
    assert direct.split(" | ")[4] == "52.5 ± 0.0" and direct.count("|") == header.count("|")
    assert "100 iterations, 5000 queries" in text
    with open(tmp_path / "r.csv") as fh:
        assert "autoattack_mean" in next(csv.reader(fh))
    # without AutoAttack the report is what it was
    for row in rows:
        for key in [k for k in row if k.startswith("autoattack")]:
            del row[key]
    write_report(tmp_path / "s.md", rows, reference="bank", arms=["bank", "direct"],
                 methods=["ras"], command="x", config=AssessConfig(), heldout_bank=tmp_path)
    assert "AutoAttack" not in (tmp_path / "s.md").read_text()


def test_ras_deap_autoattack_agrees_with_torchattacks(tiny):
    """The same ensemble in torchattacks (APGD-CE, APGD-T, FAB-T, Square at
    the same iterations): robust accuracy within 2 of 40 images."""
    torchattacks = pytest.importorskip("torchattacks")
    import torch

    from ras_deap.assess.attacks import _classifier
    from ras_deap.assess.autoattack import run_autoattack

    data, net = tiny["data"], tiny["net"]
    x, y = data.test.x[:40], data.test.y[:40].astype(np.int64)
    eps = 2 / 16
    ours = run_autoattack(_classifier(net, x.shape[1:], data.num_classes), x, y, eps,
                          iters=20, queries=100, seed=0)
    kw = {"eps": eps, "norm": "Linf", "seed": 0}
    theirs = torchattacks.MultiAttack([
        torchattacks.APGD(net, loss="ce", steps=20, **kw),
        torchattacks.APGDT(net, steps=20, n_classes=10, **kw),
        torchattacks.FAB(net, steps=20, multi_targeted=True, n_classes=10, **kw),
        torchattacks.Square(net, n_queries=100, **kw)])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    adv = theirs(xt, yt).detach()
    with torch.no_grad():
        robust = ((net(xt).argmax(1) == yt) & (net(adv).argmax(1) == yt)).numpy()
    assert 0 < robust.sum() < len(x)  # an eps where the comparison means something
    assert abs(int(ours.robust.sum()) - int(robust.sum())) <= 2


def test_comparison_table_shows_autoattack_but_not_its_partial_rows():
    from ras_deap.compare.rows import _direct_columns
    from ras_deap.compare.table import direct_columns

    rows = [{"key": k, "accuracy": a} for k, a in [
        ("clean", 0.9), ("pgd_eps1", 0.6), ("autoattack_eps1_apgd-ce", 0.55),
        ("autoattack_eps1_apgd-t", 0.5), ("autoattack_eps1", 0.5), ("autoattack_eps0.1", 0.0),
        ("autoattack_eps10", 0.2), ("pixel_th3", 0.4)]]
    cols = _direct_columns({"rows": rows, "levels": 256})
    assert cols["er_direct_mean"] == pytest.approx((0.4 + 0.5 + 1.0 + 0.8 + 0.6) / 5)
    assert direct_columns([cols]) == [
        ("er_clean", "Clean ER"), ("er_pgd_eps1", "PGD 1/255"),
        ("er_autoattack_eps1", "AutoAttack 1/255"), ("er_autoattack_eps10", "AutoAttack 10/255"),
        ("er_autoattack_eps0.1", "AutoAttack 0.1"), ("er_pixel_th3", "L0 3 px")]


def test_logit_memo_computes_each_image_once_and_returns_the_networks_logits():
    from ras_deap.assess.memo import LogitMemo

    calls = []

    def predict(x, batch_size=128, training_mode=False):
        calls.append((len(x), training_mode))
        return x.reshape(len(x), 4)[:, :3] * 2.0 + 1.0

    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 2, 2), dtype=np.float32)
    memo = LogitMemo(predict, capacity=4)
    assert np.array_equal(memo(x, batch_size=7), predict(x))
    calls.clear()
    y = np.concatenate([x[[4, 1]], rng.random((2, 1, 2, 2), dtype=np.float32), x[[4]]])
    assert np.array_equal(memo(y), predict(y))  # seen rows looked up, a repeat computed once
    assert calls[0] == (2, False) and (memo.hits, memo.misses) == (3, 8)
    assert memo(y[:0]).shape == (0, 3)
    calls.clear()
    memo(x, training_mode=True)  # training mode: never remembered
    assert calls == [(6, True)]
    # bounded: three calls' worth of rows at most (a query re-reads the two calls before it)
    for _ in range(5):
        memo(rng.random((6, 1, 2, 2), dtype=np.float32))
    assert len(memo._rows) == 18
    with pytest.raises(ValueError, match="capacity"):
        LogitMemo(predict, 0)


def test_square_with_the_logit_memo_attacks_as_without_it_at_a_third_of_the_forwards(tiny):
    """The memo changes how often the network runs, not what Square finds; the
    classifier Square was given a copy of is left as it was."""
    from art.attacks.evasion import SquareAttack

    from ras_deap.assess.attacks import _classifier
    from ras_deap.assess.memo import LogitMemo, memoised
    from ras_deap.seeding import seed_everything

    data, net = tiny["data"], tiny["net"]
    x, y = data.test.x[:40], data.test.y[:40]
    clf = _classifier(net, x.shape[1:], data.num_classes)
    forwards = []
    plain_predict = clf.predict

    def counted(x, **kwargs):
        forwards.append(len(x))
        return plain_predict(x, **kwargs)

    clf.predict = counted
    found = {}
    for label, target in (("plain", clf), ("memo", memoised(clf))):
        forwards.clear()
        seed_everything(3)
        found[label] = SquareAttack(target, norm=np.inf, eps=2 / 16, max_iter=60, batch_size=256,
                                    verbose=False).generate(x, y=y)
        found[label + " forwards"] = sum(forwards)
    assert np.array_equal(found["plain"], found["memo"])
    assert (clf.predict(found["memo"]).argmax(1) != y).any()  # it did break some images
    assert found["memo forwards"] < found["plain forwards"] / 2.5
    assert clf.predict is counted and not isinstance(clf.predict, LogitMemo)


def test_autoattack_resumes_by_parts_and_reuses_them_for_fewer_images(tiny, tmp_path,
                                                                      monkeypatch):
    """An interrupted AutoAttack keeps its finished parts; the rerun attacks
    only the rest and gives the uninterrupted numbers, times included. A part
    depends on its images, not on how many the assessment asks for, and
    outlives the journal (another assessment of the network reuses it)."""
    import ras_deap.assess.autoattack as aa
    from ras_deap.assess import assess_network
    from ras_deap.assess.journal import AttackJournal

    monkeypatch.setattr(aa, "PART_IMAGES", 12)
    data, net = tiny["data"], tiny["net"]
    config = AssessConfig(images=30, attacks=("autoattack",), eps_steps=(2,),
                          autoattack_eps=(), bank=False, **FAST)
    whole = assess_network(net, data, None, config, seed=5)
    calls = []
    real = aa.run_autoattack

    def counted(clf, x, y, eps, **kw):
        calls.append(len(x))
        return real(clf, x, y, eps, **kw)

    monkeypatch.setattr(aa, "run_autoattack", counted)
    path = tmp_path / "heldout.partial.jsonl"

    class Cut(AttackJournal):
        def add_part(self, settings, payload):
            super().add_part(settings, payload)
            if len(calls) == 2:
                raise KeyboardInterrupt

    parts = tmp_path / "autoattack-parts.jsonl"

    def journal(cls, cfg):
        return cls.for_network(path, net, 5, cfg, parts)

    with pytest.raises(KeyboardInterrupt):
        assess_network(net, data, None, config, seed=5, journal=journal(Cut, config))
    assert calls == [12, 12]
    first_line = json.loads(parts.read_text().splitlines()[0])  # a damaged copy of part 1
    assert set(first_line["part"]["cpu_seconds"]) == {"apgd-ce", "apgd-t", "square"}
    with open(parts, "a") as fh:
        fh.write(json.dumps({**first_line, "part": {**first_line["part"], "ok": "11"}}) + "\n")
    resumed = assess_network(net, data, None, config, seed=5,
                             journal=journal(AttackJournal, config))
    assert calls == [12, 12, 12, 6]  # the damaged part and the last ran again
    calls[2:3] = []
    assert [(r.key, r.accuracy, r.seconds) for r in resumed.rows
            if r.key.startswith("autoattack")] == [
        (r.key, r.accuracy, pytest.approx(r.seconds, rel=0.5, abs=5)) for r in whole.rows
        if r.key.startswith("autoattack")]
    assert [r.accuracy for r in resumed.rows] == [r.accuracy for r in whole.rows]
    path.unlink()  # a finished assessment removes its journal; the parts stay
    fewer = dataclasses.replace(config, autoattack_images=24)
    first = assess_network(net, data, None, fewer, seed=5, journal=journal(AttackJournal, fewer))
    assert calls == [12, 12, 6]  # both parts stored, though the assessment's settings differ
    assert len(parts.read_text().splitlines()) == 5  # 3 parts, 1 damaged, 1 re-run
    assert first.row("autoattack_eps2").images == 24
    assert AttackJournal.for_network(path, net, 5, fewer, parts).part(  # under seed 5 ...
        {"attack": "autoattack", "eps": 2 / 16, "images": [0, 12], "iter": 10,
         "queries": 30}) is not None
    assert AttackJournal.for_network(path, net, 6, config, parts).part(
        {"attack": "autoattack", "eps": 2 / 16, "images": [0, 12], "iter": 10,
         "queries": 30}) is None  # ... so seed 6 shares nothing


@pytest.mark.parametrize("loss_type, targeted", [("cross_entropy", False),
                                                 ("difference_logits_ratio", True)])
def test_apgd_with_remembered_gradients_attacks_as_without_at_one_forward_per_step(
        tiny, loss_type, targeted):
    """APGD-CE and APGD-T's steps: the same adversarials with the gradient
    memo, with about half the forward passes."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    from ras_deap.assess.attacks import _classifier
    from ras_deap.assess.memo import memoised_gradients
    from ras_deap.seeding import seed_everything

    data, net = tiny["data"], tiny["net"]
    x, y = data.test.x[:40], data.test.y[:40]
    clf = _classifier(net, x.shape[1:], data.num_classes)
    labels = np.eye(data.num_classes, dtype=np.float32)[(y + 1) % data.num_classes if targeted
                                                         else y]
    forwards = []
    hook = net.register_forward_hook(lambda m, i, out: forwards.append(len(out)))

    def attack(memo: bool) -> tuple[np.ndarray, int, Any]:
        a = AutoProjectedGradientDescent(clf, norm=np.inf, eps=2 / 16, eps_step=4 / 16,
                                         max_iter=20, targeted=targeted, nb_random_init=1,
                                         batch_size=256, loss_type=loss_type, verbose=False)
        a = memoised_gradients(a) if memo else a
        seed_everything(3)
        forwards.clear()
        return a.generate(x, y=labels), len(forwards), a.estimator

    try:
        plain, plain_passes, _ = attack(False)
        memo, memo_passes, estimator = attack(True)
    finally:
        hook.remove()
    assert np.array_equal(plain, memo)
    assert estimator.hits >= 10 and memo_passes <= plain_passes - 10
