"""``--final-training standard|pgd-at|trades`` (issue #29): the winner's final
network adversarially fine-tuned, in run, compare and assess. The paper's
setting (standard) stays the default and serialises as before."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from ras_deap.assess import AssessConfig, Assessment, AttackRow
from ras_deap.assess.sidebyside import SideBySide, format_side_by_side
from ras_deap.compare import cli as compare_cli
from ras_deap.config import OPTIONS, ConfigError, SearchConfig, check_resumable
from ras_deap.run import build_parser as run_parser
from ras_deap.run import config_from_args as run_config

REPO = Path(__file__).resolve().parents[1]
TINY = ["--images", "30", "--l0-images", "3", "--pixel-iter", "2", "--no-progress"]


# -- the option: declared once, in every command, default omitted -----------------------
def test_the_option_is_declared_once_with_the_papers_value():
    opt = OPTIONS["final_training"]
    assert (opt.flag, opt.default, opt.paper, opt.choices) == (
        "--final-training", "standard", "standard", ("standard", "pgd-at", "trades"))
    with pytest.raises(ConfigError, match=r"final_training='madry'.*standard, pgd-at, trades"):
        SearchConfig(final_training="madry")


def test_run_compare_assess_and_tune_take_it_from_the_schema(capsys):
    from ras_deap.assess.cli import build_parser as assess_parser
    from ras_deap.run import main as run_main
    from ras_deap.tune import cli as tune_cli

    assert run_config(run_parser().parse_args(["--final-training", "pgd-at"])
                      ).final_training == "pgd-at"
    assert run_config(run_parser().parse_args([])).final_training == "standard"
    cfg = compare_cli.config_from_args(compare_cli.build_parser().parse_args(
        ["--preset", "tiny", "--final-training", "trades"]))
    assert cfg.search.final_training == "trades"
    assert cfg.settings()["search"]["final_training"] == "trades"
    help_line = OPTIONS["final_training"].help
    for parser in (run_parser(), compare_cli.build_parser(), assess_parser(),
                   tune_cli.build_parser()):
        action = next(a for a in parser._actions if "--final-training" in a.option_strings)
        assert action.dest == "final_training" and action.help.startswith(help_line)
        assert tuple(action.choices) == OPTIONS["final_training"].choices
    args = assess_parser().parse_args(["runs/x", "--final-training", "trades"])
    assert args.final_training == "trades"
    assert "final_training" not in assess_parser().parse_args(["runs/x"])
    # tune: bare is the standard final training it always was, a kind goes to the search
    tune = tune_cli.build_parser()
    assert tune_cli.settings_from_args(tune.parse_args(["--final-training"])).final_training
    hard = tune_cli.settings_from_args(tune.parse_args(["--final-training", "pgd-at"]))
    assert hard.final_training and hard.overrides["final_training"] == "pgd-at"
    assert not tune_cli.settings_from_args(tune.parse_args([])).final_training
    # a bad kind: exit 2, one line naming the flag
    with pytest.raises(SystemExit) as exc:
        run_main(["--final-training", "fgsm"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--final-training" in err[0] and "fgsm" in err[0]


def test_the_default_serialises_exactly_as_before():
    """Stored checkpoints, comparisons and studies compare settings as dicts:
    a default config's dict must not grow a key."""
    stored = json.loads((REPO / "docs/results/table2-digits-cells/comparison.json").read_text())
    assert "final_training" not in SearchConfig().to_dict()
    assert set(SearchConfig().to_dict()) >= set(stored["settings"]["search"])
    hard = SearchConfig(final_training="pgd-at").to_dict()
    assert hard["final_training"] == "pgd-at"
    assert SearchConfig.from_dict(hard) == SearchConfig(final_training="pgd-at")
    # an older checkpoint (no key) resumes at the default, and refuses another kind
    check_resumable(SearchConfig().to_dict(), SearchConfig().to_dict())
    with pytest.raises(ConfigError, match="cannot change final_training"):
        check_resumable(SearchConfig().to_dict(), hard)


def test_a_stored_default_comparison_refuses_an_adversarial_one(tmp_path):
    import shutil

    from ras_deap.compare.manifest import CompareError, open_manifest

    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(REPO / "docs/results/table2-digits-cells/comparison.json",
                out / "comparison.json")
    argv = ["--max-evaluations", "275", "--seeds", "5", "--methods", "random,regularized,ras",
            "--out", str(out)]
    parse = compare_cli.build_parser().parse_args
    _, existed = open_manifest(compare_cli.config_from_args(parse(argv)))
    assert existed
    changed = r"search\.final_training: 'standard' then, 'pgd-at' now"
    with pytest.raises(CompareError, match=changed):
        open_manifest(compare_cli.config_from_args(parse([*argv, "--final-training",
                                                          "pgd-at"])))


# -- where the kind reaches the final retraining ------------------------------------------
class KwargsEvaluator:
    """Records the keywords of every evaluate() call; torch-free."""

    seed = 0

    def __init__(self):
        self.kwargs = []

    def evaluate(self, model, generation, **kw):
        self.kwargs.append(kw)
        metrics = {"fitness": 1.0, "accuracy": 0.5, "robustness": 0.5, "test_accuracy": 0.5}
        return SimpleNamespace(fitness=1.0, failure="no network", metrics=metrics,
                               state_dict=None, module=None)

    def data(self):
        return None

    def __call__(self, individual):
        return self.evaluate(individual.genome, individual.generation)


@pytest.mark.parametrize("kind", ["standard", "pgd-at", "trades"])
def test_the_final_retraining_of_run_and_compare_gets_the_kind(tmp_path, monkeypatch, kind):
    """The standard call is the one it always was (no new keyword), so the
    default final training is unchanged and any RetrainingEvaluator works."""
    import ras_deap.report
    from ras_deap.compare import CompareConfig
    from ras_deap.compare.cells import CellSpec, run_cell
    from ras_deap.evolution import initial_state
    from ras_deap.search.final import finalise

    config = SearchConfig(final_training=kind, population=2, children=1, mutations=1,
                          full_every=100)
    fake = KwargsEvaluator()
    best = initial_state(0, 1).offspring[0]
    best.eval_seed = 3
    tracker = SimpleNamespace(log_artifact=lambda *a, **k: None)
    for name in ("draw_model", "plot_accuracy_over_generations", "plot_architecture_statistics"):
        monkeypatch.setattr(ras_deap.report, name, lambda *a: None)  # figures: not the point
    history = [{"generation": 0, "fittest_fitness": 1.0, "mean_fitness": 1.0,
                "mean_blocks": 1.0}]
    out = finalise(config, fake, best, history, tracker, tmp_path)
    expected = {} if kind == "standard" else {"training": kind}
    assert fake.kwargs == [{"seed": 3, "with_test": True, "return_module": True, **expected}]
    assert out["final_training"] == kind
    cell = KwargsEvaluator()
    cfg = CompareConfig(search=config, budget=2, seeds=1, methods=("random",), remeasure=1,
                        out=str(tmp_path / "cmp"), assess=None)
    run_cell(CellSpec(cfg, "random", 0, evaluator_factory=lambda search: cell))
    assert cell.kwargs[-1] == {"seed": cell.kwargs[-1]["seed"], "with_test": True,
                               "return_module": True, **expected}
    assert all("training" not in kw for kw in cell.kwargs[:-1])  # search and re-measurement


# -- the adversarial training itself (torch) ------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    import torch

    from ras_deap.compare import chain_model
    from ras_deap.evaluation import Evaluator, TrainConfig
    from ras_deap.evaluation.adversarial import AdversarialSchedule

    torch.set_num_threads(1)
    evaluator = Evaluator("digits", seed=0, train_config=TrainConfig(full_epochs=3),
                          adversarial=AdversarialSchedule(epochs=3))
    evaluator.data()
    return {"evaluator": evaluator, "genome": chain_model([(8, 3, 1)], [64])}


def test_crafted_examples_stay_in_the_eps_box_in_eval_mode(digits):
    import torch

    from ras_deap.data.layout import canonical_strides
    from ras_deap.evaluation import compile_model
    from ras_deap.evaluation.adversarial import pgd_examples, trades_examples

    ev = digits["evaluator"]
    ds, t = ev.data().dataset, ev.data().tensors
    net = compile_model(digits["genome"], ds.shape, ds.num_classes, ds.mean, ds.std)
    net.train()
    # a first forward in train mode gives BatchNorm statistics to compare against
    net(t["x_train"][:64])
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    x, y = t["x_train"][:64], t["y_train"][:64]
    eps = 2 / 16
    for craft in (lambda g: pgd_examples(net, x, y, eps, 5, eps / 4, g),
                  lambda g: trades_examples(net, x, eps, 5, eps / 4, g)):
        adv = craft(torch.Generator().manual_seed(0))
        again = craft(torch.Generator().manual_seed(0))
        assert torch.equal(adv, again)  # seeded random start
        assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        assert (adv - x).abs().max() > eps / 2  # it moved
        assert adv.stride() == canonical_strides(tuple(adv.shape)) and not adv.requires_grad
        assert net.training  # the caller's mode is restored
        for k, v in net.state_dict().items():  # crafted in eval mode: statistics untouched
            if k in stats:
                assert torch.equal(v, stats[k]), k
    # it is an attack: it raises the loss it ascends (accuracy would not do here: an
    # untrained network's clean accuracy can already be 0, depending on its init)
    with torch.no_grad():
        net.eval()
        clean = torch.nn.functional.cross_entropy(net(x), y)
        attacked = torch.nn.functional.cross_entropy(net(pgd_examples(
            net, x, y, eps, 5, eps / 4, torch.Generator().manual_seed(1))), y)
    assert attacked > clean


def test_the_default_final_training_is_the_plain_training(digits):
    """evaluate() without ``training`` is exactly the trainer's standard training
    from the evaluation seed: the same weights bit for bit."""
    import torch

    from ras_deap.evaluation import compile_model, seed_everything, train

    ev, genome = digits["evaluator"], digits["genome"]
    result = ev.evaluate(genome, 10, seed=7, with_test=True, return_module=True)
    ds, t = ev.data().dataset, ev.data().tensors
    generator = seed_everything(7)
    net = compile_model(genome, ds.shape, ds.num_classes, ds.mean, ds.std)
    train(net, t["x_train"], t["y_train"], t["x_val"], t["y_val"], ev.train_config, 3,
          generator)
    assert set(result.state_dict) == set(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(result.state_dict[k], v), k
    named = ev.evaluate(genome, 10, seed=7, with_test=True, return_module=True,
                        training="standard")
    assert named.metrics["test_accuracy"] == result.metrics["test_accuracy"]
    assert not any(k.startswith(("standard_", "adversarial_")) for k in result.metrics)


@pytest.mark.parametrize("kind", ["pgd-at", "trades"])
def test_adversarial_fine_tuning_raises_pgd_accuracy_at_two_sixteenths(digits, kind):
    """Same genome, same seed: the standard phase is the standard training (its
    test accuracy is the standard run's), then the PGD accuracy at eps 2/16
    rises well above the standard network's; losses stay finite."""
    import torch

    ev, genome = digits["evaluator"], digits["genome"]
    standard = ev.evaluate(genome, 10, seed=1, with_test=True)
    hard = ev.evaluate(genome, 10, seed=1, with_test=True, return_module=True, training=kind)
    m = hard.metrics
    assert hard.failure is None and math.isfinite(hard.fitness)
    assert m["standard_test_accuracy"] == standard.metrics["test_accuracy"]
    assert m["standard_robustness"] == standard.metrics["robustness"]
    assert m["adversarial_eps"] == pytest.approx(2 / 16) and m["adversarial_epochs"] == 3
    assert m["val_pgd_accuracy"] >= m["standard_val_pgd_accuracy"] + 0.15, m
    assert m["test_accuracy"] >= 0.85  # still a classifier
    # the result is the hardened network, and it is seeded
    again = ev.evaluate(genome, 10, seed=1, with_test=True, return_module=True, training=kind)
    for k, v in hard.state_dict.items():
        assert torch.equal(again.state_dict[k], v), k
    x, y = ev.data().tensors["x_test"], ev.data().tensors["y_test"]
    with torch.no_grad():
        acc = float((hard.module(x).argmax(1) == y).float().mean())
    assert acc == pytest.approx(m["test_accuracy"])


# -- assess: both networks, one table ----------------------------------------------------------
def _assessment(rows, test_accuracy=0.9):
    return Assessment(dataset="digits", seed=0, levels=17, test_accuracy=test_accuracy,
                      test_images=270, rows=rows, config=AssessConfig(attacks=("pgd",)),
                      seconds=1.0)


def test_side_by_side_table_is_generic_over_the_rows():
    """Rows come from the assessments, so an attack added later (AutoAttack)
    shows up without a change here; a row one side lacks reads n/a."""
    before = _assessment([AttackRow("clean", "none (clean)", "-", "-", 30, 0.9),
                          AttackRow("pgd_eps2", "PGD (10 steps)", "Linf", "eps=2/16", 30, 0.3)])
    after = _assessment([AttackRow("clean", "none (clean)", "-", "-", 30, 0.85),
                         AttackRow("pgd_eps2", "PGD (10 steps)", "Linf", "eps=2/16", 30, 0.7),
                         AttackRow("autoattack_eps2", "AutoAttack", "Linf", "eps=2/16", 30,
                                   0.6)], test_accuracy=0.88)
    s = SideBySide(before, after, ("standard", "pgd-at"), "pgd-at",
                   training={"adversarial_seconds": 3.0, "adversarial_epochs": 10.0,
                             "adversarial_eps": 2 / 16, "val_pgd_accuracy": 0.7,
                             "standard_val_pgd_accuracy": 0.3})
    text = format_side_by_side(s)
    assert "| Attack | Norm | Budget | Images | standard | pgd-at | change (points) |" in text
    assert "| PGD (10 steps) | Linf | eps=2/16 | 30 | 30.0% | 70.0% | +40.0 |" in text
    assert "| AutoAttack | Linf | eps=2/16 | 30 | n/a | 60.0% | n/a |" in text
    assert "| 270 | 90.0% | 88.0% | -2.0 |" in text
    assert "for 10 epochs" in text and "eps 2/16" in text and "training time 3.0 s" in text
    assert SideBySide.from_dict(json.loads(json.dumps(s.to_dict()))).to_dict() == s.to_dict()
    assert s.metrics()["pgd_eps2_accuracy"] == 0.7
    assert s.metrics()["train/adversarial_seconds"] == 3.0


def test_assess_final_training_reports_both_networks(tmp_path, capsys, digits):
    """assess GENOME --weights W --final-training pgd-at: the stored network's
    column is what a plain assess reports, the other the fine-tuned copy."""
    import torch

    from ras_deap.assess.cli import main

    ev, genome = digits["evaluator"], digits["genome"]
    trained = ev.evaluate(genome, 10, seed=2, with_test=True, return_module=True)
    path = tmp_path / "best_genome.json"
    path.write_text(genome.to_json())
    weights = tmp_path / "best_model.pt"
    torch.save(trained.state_dict, weights)
    common = [str(path), "--weights", str(weights), "--no-mlflow", "--attacks", "pgd",
              "--no-bank", "--eps-steps", "2", *TINY]
    assert main(common) == 0
    plain = json.loads((tmp_path / "assess.json").read_text())
    capsys.readouterr()
    assert main([*common, "--final-training", "pgd-at"]) == 0
    out = capsys.readouterr()
    assert "| standard | pgd-at | change (points) |" in out.out
    stored = json.loads((tmp_path / "assess-pgd-at.json").read_text())
    assert (tmp_path / "assess-pgd-at.md").read_text() in out.out
    assert json.loads((tmp_path / "assess.json").read_text()) == plain  # left as it was
    assert stored["labels"] == ["standard", "pgd-at"]
    assert [(r["key"], r["accuracy"]) for r in stored["before"]["rows"]] == [
        (r["key"], r["accuracy"]) for r in plain["rows"]]
    before = {r["key"]: r["accuracy"] for r in stored["before"]["rows"]}
    after = {r["key"]: r["accuracy"] for r in stored["after"]["rows"]}
    assert after["pgd_eps2"] > before["pgd_eps2"]
    assert stored["training"]["adversarial_seconds"] > 0
    # the fine-tuned weights are written beside it and give the reported test accuracy
    from ras_deap.evaluation import compile_model

    ds = ev.data().dataset
    net = compile_model(genome, ds.shape, ds.num_classes, ds.mean, ds.std)
    net.load_state_dict(torch.load(tmp_path / "best_model-pgd-at.pt", weights_only=True))
    with torch.no_grad():
        acc = float((net.eval()(torch.from_numpy(ds.test.x)).argmax(1).numpy()
                     == ds.test.y).mean())
    assert acc == pytest.approx(stored["after"]["test_accuracy"])


# -- run: the hardened winner stored and logged as the final model is ------------------------
@pytest.mark.slow
def test_a_run_with_pgd_at_stores_logs_and_reports_the_hardened_winner(tmp_path, capsys):
    import torch

    from ras_deap.assess.cli import main as assess_main
    from ras_deap.config import training_values
    from ras_deap.evaluation import Evaluator, TrainConfig, compile_model
    from ras_deap.evaluation.adversarial import AdversarialSchedule
    from ras_deap.run import format_summary
    from ras_deap.search import run_search
    from ras_deap.tracking import SearchTracker

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = SearchConfig(population=2, generations=1, children=1, mutations=1,
                          subset_size=200, max_epochs=1, full_epochs=2, full_every=100,
                          run_dir=str(tmp_path / "runs"), run_name="hard", tracking_uri=uri,
                          experiment="hard", workers=1, final_training="pgd-at")
    evaluator = Evaluator("digits", seed=0, train_config=TrainConfig(**training_values(config)),
                          adversarial=AdversarialSchedule(epochs=1))
    result = run_search(config, progress=False, evaluator=evaluator)
    s = result.summary
    assert s["final_training"] == "pgd-at" and s["final_adversarial_epochs"] == 1
    assert {"final_standard_test_accuracy", "final_val_pgd_accuracy",
            "final_standard_val_pgd_accuracy"} <= set(s)
    text = format_summary(s)
    assert "final training" in text and "pgd-at" in text and " -> " in text
    folder = result.run_dir
    assert json.loads((folder / "config.json").read_text())["search"]["final_training"] == \
        "pgd-at"
    run = SearchTracker(uri, "hard").client.get_run(result.run_id)
    assert run.data.tags["final_training"] == "pgd-at"
    assert run.data.params["final_training"] == "pgd-at"
    # best_model.pt is the hardened network: it gives the final test accuracy
    ds = evaluator.data().dataset
    net = compile_model(result.best.genome, ds.shape, ds.num_classes, ds.mean, ds.std)
    net.load_state_dict(torch.load(folder / "best_model.pt", weights_only=True))
    with torch.no_grad():
        acc = float((net.eval()(torch.from_numpy(ds.test.x)).argmax(1).numpy()
                     == ds.test.y).mean())
    assert acc == pytest.approx(s["final_test_accuracy"])
    # assess knows the stored weights are hardened already
    assert assess_main([str(folder), "--final-training", "trades", "--attacks", "pgd",
                        "--no-bank", "--eps-steps", "2", "--no-mlflow", *TINY]) == 0
    assert "| stored (pgd-at) | stored + trades |" in capsys.readouterr().out
