"""Tests of the converted-NAS comparison (ras_deap.compare)."""

from __future__ import annotations

import csv
import itertools
import math
import random
import statistics
from types import SimpleNamespace

import pytest

from ras_deap.compare import (
    METHODS,
    BudgetedEvaluator,
    BudgetExhausted,
    ChainSpace,
    CompareConfig,
    MethodContext,
    chain_model,
    mu_plus_lambda_plan,
    ras_generation,
    run_method,
    suggest_chain,
)
from ras_deap.compare.cli import build_parser, config_from_args
from ras_deap.compare.plot import plot_curves
from ras_deap.compare.table import aggregate, format_markdown, write_outputs
from ras_deap.config import SearchConfig
from ras_deap.evaluation.remeasure import remeasure_seeds
from ras_deap.genome import GenomeError, Model, spectrum


class CountingEvaluator:
    """A stand-in for the torch evaluator that only counts calls: the fitness
    is a deterministic function of the genome, so the search logic runs for
    real in milliseconds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fitness: list[float] = []

    def evaluate(self, model: Model, generation: int, *, seed=None, with_test=False,
                 return_module=False):
        self.calls.append((model.id, generation))
        spec = spectrum(model)
        fitness = 1.0 / (1.0 + abs(spec[1] - 6)) + 0.01 * spec[5]
        self.fitness.append(fitness)
        return SimpleNamespace(fitness=fitness, failure=None,
                               metrics={"fitness": fitness, "accuracy": fitness / 2,
                                        "robustness": fitness / 2})

    def data(self):  # run_search loads the data up front to fail early; nothing to load
        return None

    def __call__(self, individual):
        return self.evaluate(individual.genome, individual.generation,
                             seed=individual.eval_seed)


# -- the chain space ----------------------------------------------------------------
def test_chain_model_is_one_block_path():
    model = chain_model([(16, 3, 1), (32, 5, 2)], [128])
    assert len(model.blocks) == 1 and model.edges == ()
    block = model.blocks[0]
    assert [layer.kind for layer in block.layers] == ["conv", "conv", "dense"]
    assert block.edges == ((0, 1), (1, 2))
    assert Model.from_json(model.to_json()) == model


def test_chain_model_rejects_bad_values():
    with pytest.raises(GenomeError, match="filters"):
        chain_model([(7, 3, 1)], [])
    with pytest.raises(ValueError, match="at least one layer"):
        chain_model([], [])
    with pytest.raises(ValueError, match="max_conv"):
        ChainSpace(min_conv=3, max_conv=1)


def test_suggest_chain_with_optuna_is_valid_and_seeded():
    import optuna

    def sample(seed):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed),
                                    storage=optuna.storages.InMemoryStorage())
        out = []
        for _ in range(10):
            trial = study.ask()
            model = suggest_chain(trial, ChainSpace(max_conv=3, max_dense=2))
            study.tell(trial, 0.0)
            out.append(model)
        return out

    first = sample(3)
    assert [m.id for m in first] == [m.id for m in sample(3)]
    for model in first:
        n = len(model.blocks[0].layers)
        assert 1 <= n <= 5
        kinds = [layer.kind for layer in model.blocks[0].layers]
        assert kinds == sorted(kinds)  # every conv before every dense


# -- the budget ---------------------------------------------------------------------
def test_ras_generation_schedule():
    assert [ras_generation(i, 3, 2) for i in range(12)] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="population"):
        ras_generation(0, 0, 2)


def test_budgeted_evaluator_counts_refuses_and_tracks_best():
    fake = CountingEvaluator()
    seen = []
    b = BudgetedEvaluator(fake, 3, seed=1, method="x", on_evaluated=seen.append)
    models = [chain_model([(8, 1, 1)] * n, []) for n in (6, 1, 5)]
    for m in models:
        b.evaluate(m)
    with pytest.raises(BudgetExhausted, match="budget of 3"):
        b.evaluate(models[0])
    assert len(fake.calls) == 3 and len(seen) == 3 and b.remaining == 0
    assert b.best.genome == models[0]
    assert b.best_curve == sorted(b.best_curve)
    with pytest.raises(ValueError, match="budget"):
        BudgetedEvaluator(fake, 0, seed=0, method="x")


def test_mu_plus_lambda_plan():
    assert mu_plus_lambda_plan(30, 6, 2) == (6, 12, 2)
    assert mu_plus_lambda_plan(31, 6, 2) == (6, 12, 3)
    assert mu_plus_lambda_plan(4, 6, 2) == (4, 12, 0)


@pytest.mark.parametrize("method", ["random", "tpe", "mu_plus_lambda"])
@pytest.mark.parametrize("budget", [1, 5, 11])
def test_each_baseline_spends_the_budget_exactly(method, budget):
    fake = CountingEvaluator()
    config = SearchConfig(population=3, children=2, mutations=2)
    budgeted = BudgetedEvaluator(fake, budget, seed=7, method=method,
                                 schedule=lambda i: ras_generation(i, 3, 2))
    state = random.getstate()
    outcome = run_method(method, MethodContext(budgeted=budgeted, config=config, seed=7))
    assert random.getstate() == state  # the global RNG is left as it was
    assert len(fake.calls) == budget == outcome.evaluations == len(outcome.curve)
    assert outcome.best_fitness == max(outcome.curve)
    assert [g for _, g in fake.calls] == [ras_generation(i, 3, 2) for i in range(budget)]
    again = CountingEvaluator()
    run_method(method, MethodContext(
        budgeted=BudgetedEvaluator(again, budget, seed=7, method=method), config=config, seed=7))
    assert [c[0] for c in again.calls] == [c[0] for c in fake.calls]  # reproducible


def test_mu_plus_lambda_evolves_mutated_children():
    fake = CountingEvaluator()
    config = SearchConfig(population=4, children=2, mutations=1)
    budgeted = BudgetedEvaluator(fake, 36, seed=0, method="mu_plus_lambda")
    outcome = run_method("mu_plus_lambda", MethodContext(budgeted=budgeted, config=config,
                                                         seed=0))
    assert outcome.info["stopped_early"] is False and outcome.info["ngen"] == 4
    initial = {gid for gid, _ in fake.calls[:4]}
    children = budgeted.records[4:]
    assert all(r.info["parent_id"] is not None and r.info["mutations"] for r in children)
    assert sum(r.genome.id not in initial for r in children) >= len(children) // 2
    cut = CountingEvaluator()
    budgeted = BudgetedEvaluator(cut, 33, seed=0, method="mu_plus_lambda")
    outcome = run_method("mu_plus_lambda", MethodContext(budgeted=budgeted, config=config,
                                                         seed=0))
    assert outcome.info["stopped_early"] is True and len(cut.calls) == 33


@pytest.mark.slow
def test_ras_spends_the_budget_exactly(tmp_path, monkeypatch):
    import ras_deap.search as search

    fake = CountingEvaluator()
    monkeypatch.setattr(search, "make_evaluator", lambda config: fake)
    config = SearchConfig(population=3, children=2, mutations=2, run_dir=str(tmp_path / "r"),
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    budgeted = BudgetedEvaluator(CountingEvaluator(), 8, seed=0, method="ras")
    outcome = run_method("ras", MethodContext(budgeted=budgeted, config=config, seed=0))
    assert len(fake.calls) == 8 == outcome.evaluations == len(outcome.curve)
    assert [g for _, g in fake.calls] == [ras_generation(i, 3, 2) for i in range(8)]
    assert budgeted.calls == 0  # RAS enforces the budget itself
    # the curve is exact: the best fitness so far after each evaluation, in order
    assert outcome.curve == list(itertools.accumulate(fake.fitness, max))


def test_unknown_method_and_bad_config():
    with pytest.raises(ValueError, match="unknown"):
        run_method("smash", None)
    with pytest.raises(ValueError, match="methods"):
        CompareConfig(methods=("ras", "nope"))
    with pytest.raises(ValueError, match="budget"):
        CompareConfig(budget=0)
    assert set(METHODS) == {"random", "tpe", "mu_plus_lambda", "ras"}


# -- outputs ------------------------------------------------------------------------
def _rows():
    rows = []
    for method in ("ras", "random"):
        for seed, err in ((0, 0.2), (1, 0.4)):
            rows.append({"method": method, "seed": seed, "evaluations": 4,
                         "search_fitness": 1.5, "test_error": err, "adv_error": 0.5,
                         "adv_error_L0": 0.6, "adv_error_Linf": 0.4, "final_fitness": 1.2,
                         "parameters": 1000.0 * (seed + 1), "wall_seconds": 10.0})
    return rows


def test_table_aggregates_mean_and_std(tmp_path):
    table = aggregate(_rows())
    assert [t["method"] for t in table] == ["random", "ras"]  # canonical order
    assert table[0]["test_error_mean"] == pytest.approx(0.3)
    assert table[0]["test_error_std"] == pytest.approx(0.1414, abs=1e-3)
    text = format_markdown(table)
    assert "30.0 ± 14.1%" in text and "RAS (spectrum niching)" in text
    cfg = CompareConfig(search=SearchConfig(), budget=4, seeds=2)
    files = write_outputs(_rows(), {("ras", 0): [0.1, 0.2]}, cfg, tmp_path)
    with files["table_csv"].open() as fh:
        assert len(list(csv.DictReader(fh))) == 2
    with files["curves_csv"].open() as fh:
        assert [r["best_fitness"] for r in csv.DictReader(fh)] == ["0.1", "0.2"]


def test_table_reports_remeasured_fitness_with_ci_over_seeds(tmp_path):
    rows = _rows()
    for row, (value, sd) in zip(rows, [(1.2, 0.05), (1.4, 0.07), (1.0, 0.02), (1.1, 0.04)],
                                strict=True):
        row.update(remeasured_fitness=value, remeasured_sd=sd, remeasured_ci95=2.5 * sd,
                   remeasure_repeats=3.0, remeasure_failures=0.0)
    table = aggregate(rows)
    ras = table[1]
    assert ras["method"] == "ras" and ras["remeasured_fitness_mean"] == pytest.approx(1.3)
    # 95 % t-interval over 2 seeds: t_{0.975, 1} = 12.7062 x sd 0.14142 / sqrt(2)
    assert ras["remeasured_fitness_ci95"] == pytest.approx(
        12.7062047 * statistics.stdev([1.2, 1.4]) / math.sqrt(2), rel=1e-6)
    assert ras["remeasured_sd_mean"] == pytest.approx(0.06)
    assert ras["remeasure_repeats"] == [3]
    text = format_markdown(table, CompareConfig(search=SearchConfig(), budget=4, seeds=2))
    header = text.splitlines()[0]
    assert "Re-measured fitness (95% CI)" in header and "Search max fitness" in header
    assert "| 1.300 ± 1.271 |" in text  # mean ± 95% CI over seeds, not ± std
    assert "trained 3 more time(s)" in text and "biased upwards" in text
    one_seed = format_markdown(aggregate(rows[:1]))
    assert "| 1.200 ± n/a |" in one_seed  # one seed: no interval over seeds
    files = write_outputs(rows, {}, CompareConfig(search=SearchConfig(), budget=4, seeds=2),
                          tmp_path)
    with files["results_csv"].open() as fh:
        assert {"remeasured_fitness", "remeasured_ci95", "search_fitness"} <= set(
            csv.DictReader(fh).fieldnames)
    with files["table_csv"].open() as fh:
        assert "remeasured_fitness_ci95" in csv.DictReader(fh).fieldnames


def test_plot_curves_writes_png(tmp_path):
    path = plot_curves({("ras", 0): [float("nan"), 0.5, 0.7], ("ras", 1): [0.4, 0.4, 0.9],
                        ("tpe", 0): [0.2, 0.3, 0.3]}, tmp_path / "f.png", budget=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_flags_build_the_config():
    args = build_parser().parse_args(["--preset", "tiny", "--seeds", "2", "--methods",
                                      "ras,tpe", "--max-epochs", "3", "--seed", "5"])
    cfg = config_from_args(args)
    assert cfg.budget == 4 and cfg.methods == ("ras", "tpe") and cfg.seed_list == [5, 6]
    assert cfg.search.max_epochs == 3 and cfg.search.population == 2
    assert cfg.remeasure == 3  # the default: at least 3 fresh trainings
    assert config_from_args(build_parser().parse_args(["--remeasure", "5"])).remeasure == 5
    with pytest.raises(ValueError, match="remeasure"):
        CompareConfig(remeasure=0)


class NoisyEvaluator:
    """A torch-free evaluator whose fitness is an architecture term plus a
    seed-dependent "training luck" term of sd ~0.06, so the search maximum is
    a lucky draw and a re-measurement can be checked by hand."""

    def __init__(self, seed):
        self.seed = seed
        self.calls = []

    @staticmethod
    def fitness(model, seed):
        spec = spectrum(model)
        return 1.0 / (1.0 + abs(spec[1] - 6)) + 0.2 * ((seed % 1009) / 1009)

    def evaluate(self, model, generation, *, seed=None, with_test=False, return_module=False):
        fitness = self.fitness(model, seed)
        self.calls.append((model.id, generation, seed, fitness))
        metrics = {"fitness": fitness, "accuracy": fitness / 2, "robustness": fitness / 2,
                   "parameters": 1000.0}
        if with_test:
            metrics["test_accuracy"] = 0.8
        return SimpleNamespace(fitness=fitness, failure=None, metrics=metrics)


def test_comparison_reports_the_winner_remeasured_not_its_search_maximum(tmp_path):
    from ras_deap.compare.runner import run_comparison

    evaluators = {}

    def factory(config):
        evaluators[config.seed] = NoisyEvaluator(config.seed)
        return evaluators[config.seed]

    search = SearchConfig(population=2, children=1, mutations=1, full_every=100,
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="rm")
    cfg = CompareConfig(search=search, budget=3, seeds=2, methods=("random",),
                        out=str(tmp_path / "out"))
    result = run_comparison(cfg, evaluator_factory=factory, log=lambda msg: None)
    assert len(result.runs) == 2
    for run in result.runs:
        row = run.row
        fake = evaluators[row["seed"]]
        search_calls, extra = fake.calls[:3], fake.calls[3:]
        assert len(extra) == 3 + 1  # 3 re-measuring trainings, then the final re-training
        winner = run.outcome.best_genome
        seeds = remeasure_seeds(row["seed"], winner.id, run.outcome.best_generation, 3,
                                "compare")
        assert [c[2] for c in extra[:3]] == list(seeds)  # fresh seeds, none of the search's
        assert not set(seeds) & {c[2] for c in search_calls}
        assert {(c[0], c[1]) for c in extra[:3]} == {(winner.id, run.outcome.best_generation)}
        values = [NoisyEvaluator.fitness(winner, s) for s in seeds]
        assert row["remeasured_fitness"] == pytest.approx(statistics.fmean(values))
        assert row["remeasured_sd"] == pytest.approx(statistics.stdev(values))
        # the winner is still picked by the search maximum, which stays reported as such
        assert row["search_fitness"] == pytest.approx(max(c[3] for c in search_calls))
        assert row["remeasured_fitness"] != pytest.approx(row["search_fitness"])
        assert row["remeasure_repeats"] == 3 and row["remeasure_failures"] == 0
    text = (tmp_path / "out" / "table.md").read_text()
    means = [r.row["remeasured_fitness"] for r in result.runs]
    ci = 12.7062047 * statistics.stdev(means) / math.sqrt(2)
    assert f"| {statistics.fmean(means):.3f} ± {ci:.3f} |" in text


# -- end to end (real torch training, real MLflow) -------------------------------------
@pytest.mark.slow
def test_tiny_comparison_end_to_end(tmp_path, capsys):
    """The CLI on a budget of 4, one seed, 2-epoch training: real torch
    training, a real bank file, real MLflow."""
    import json

    from ras_deap.bank import perturbed_bank, save_bank
    from ras_deap.compare.cli import main
    from ras_deap.data import load_dataset
    from ras_deap.tracking import SearchTracker

    data = load_dataset("digits", None, False, 0)
    bank = save_bank(perturbed_bank(data.val, 40, seed=0), tmp_path / "bank.npz")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "out"
    assert main(["--preset", "tiny", "--budget", "4", "--seeds", "1", "--mutations", "2",
                 "--bank", str(bank), "--out", str(out), "--tracking-uri", uri,
                 "--experiment", "compare-test"]) == 0
    printed = capsys.readouterr().out
    text = (out / "table.md").read_text()
    assert text in printed and text.count("\n| ") == 4 and "Bank ER L0" in text
    assert "Warning" not in text  # a real bank file was given: no fallback
    assert (out / "best_fitness.png").stat().st_size > 1000
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["random", "tpe", "mu_plus_lambda", "ras"]
    for row in rows:
        assert int(row["evaluations"]) == 4
        assert 0.0 <= float(row["test_error"]) <= 1.0 and 0.0 <= float(row["adv_error"]) <= 1.0
        assert float(row["parameters"]) > 0
    with (out / "curves.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 16
    run_id = json.loads((out / "results.json").read_text())["runs"][0]["run_id"]

    # MLflow: comparison run -> one child per method and seed -> its individuals
    client = SearchTracker(uri, "compare-test").client
    exp = client.get_experiment_by_name("compare-test").experiment_id

    def children(parent):
        return client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent}'")

    parent_id = client.get_run(run_id).data.tags["mlflow.parentRunId"]
    assert parent_id in printed
    methods = children(parent_id)
    assert sorted(r.data.tags["method"] for r in methods) == sorted(r["method"] for r in rows)
    for run in methods:
        assert run.info.status == "FINISHED"
        assert run.data.metrics["evaluations"] == 4 and "test_error" in run.data.metrics
        nested = children(run.info.run_id)
        if run.data.tags["method"] == "ras":  # the RAS search run holds its individuals
            assert len(nested) == 1 and len(children(nested[0].info.run_id)) == 4
        else:
            assert len(nested) == 4
