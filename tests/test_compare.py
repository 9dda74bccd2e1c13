"""Tests of the converted-NAS comparison (ras_deap.compare)."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import statistics
import subprocess
import sys
import time
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
    ea_regularized,
    mu_plus_lambda_plan,
    ras_generation,
    regularized_plan,
    run_method,
    sel_sample_best,
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


@pytest.mark.parametrize("method", ["random", "tpe", "random_chain", "mu_plus_lambda",
                                    "regularized"])
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


class SeedingEvaluator(CountingEvaluator):
    """:class:`CountingEvaluator` with the torch evaluator's side effect: it
    seeds the global RNGs with the evaluation's seed (``seed_everything``),
    which a journal replay does not; ``stop_after`` trainings, it is
    interrupted (Ctrl-C)."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.stop_after = stop_after

    def evaluate(self, model, generation, *, seed=None, **kw):
        from ras_deap.seeding import seed_everything

        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise KeyboardInterrupt
        seed_everything(int(seed))
        return super().evaluate(model, generation, seed=seed, **kw)


@pytest.mark.parametrize("stop_after", [6, 13])
def test_interrupted_mu_plus_lambda_replays_its_own_journal(tmp_path, stop_after):
    """Killed mid-run, a (mu+lambda) cell resumes from its journal without
    training again what it had trained, and makes the uninterrupted run's
    choices (DEAP draws parents from the global ``random``, which the
    evaluator reseeds: before the fix the replay diverged at the first child)."""
    from ras_deap.compare import EvaluationJournal

    config = SearchConfig(population=4, children=2, mutations=2)

    def run(evaluator, path):
        budgeted = BudgetedEvaluator(evaluator, 20, seed=3, method="mu_plus_lambda",
                                     journal=EvaluationJournal(path),
                                     schedule=lambda i: ras_generation(i, 4, 2))
        run_method("mu_plus_lambda", MethodContext(budgeted=budgeted, config=config, seed=3))
        return budgeted

    whole = SeedingEvaluator()
    run(whole, tmp_path / "whole.jsonl")
    path = tmp_path / "evaluations.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(SeedingEvaluator(stop_after), path)
    assert len(path.read_text().splitlines()) == stop_after
    rest = SeedingEvaluator()
    resumed = run(rest, path)
    assert resumed.replayed == stop_after
    assert rest.calls == whole.calls[stop_after:]

    def entries(file):  # each line but its timing
        return [(e["genome_id"], e["generation"], e["seed"], e["fitness"], e["info"])
                for e in map(json.loads, file.read_text().splitlines())]

    assert entries(path) == entries(tmp_path / "whole.jsonl")


@pytest.mark.parametrize("seed", range(5))
def test_committed_mu_plus_lambda_journals_replay_without_training(tmp_path, seed):
    """The digits Table-2 (mu+lambda) cells, written by runs that trained
    every evaluation, replay all 275 evaluations from their journals."""
    import shutil
    from pathlib import Path

    from ras_deap.compare import EvaluationJournal

    class Untrainable:
        def evaluate(self, model, generation, **kw):
            raise AssertionError(f"not replayed: {model.id} (generation {generation})")

    cell = (Path(__file__).resolve().parents[1]
            / f"docs/results/table2-digits-cells/cells/mu_plus_lambda-seed{seed}")
    stored = json.loads((cell / "config.json").read_text())
    search = SearchConfig.from_dict(stored["search"])
    shutil.copy(cell / "evaluations.jsonl", tmp_path)  # a mismatch cuts the journal
    budgeted = BudgetedEvaluator(
        Untrainable(), stored["budget"], seed=seed, method="mu_plus_lambda",
        journal=EvaluationJournal(tmp_path / "evaluations.jsonl"),
        schedule=lambda i: ras_generation(i, search.population, search.children))
    outcome = run_method("mu_plus_lambda", MethodContext(budgeted=budgeted, config=search,
                                                         seed=seed))
    assert budgeted.replayed == outcome.evaluations == 275
    result = json.loads((cell / "result.json").read_text())
    assert outcome.best_genome.id == result["outcome"]["best_genome"]["id"]
    assert outcome.curve == result["outcome"]["curve"]


@pytest.mark.slow
def test_ras_spends_the_budget_exactly(tmp_path):
    fake = CountingEvaluator()  # RAS's search gets the cell's evaluator through the search API
    config = SearchConfig(population=3, children=2, mutations=2, run_dir=str(tmp_path / "r"),
                          workers=1,
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    budgeted = BudgetedEvaluator(fake, 8, seed=0, method="ras")
    outcome = run_method("ras", MethodContext(budgeted=budgeted, config=config, seed=0))
    assert len(fake.calls) == 8 == outcome.evaluations == len(outcome.curve)
    assert [g for _, g in fake.calls] == [ras_generation(i, 3, 2) for i in range(8)]
    assert budgeted.calls == 0  # RAS enforces the budget itself
    # the curve is exact: the best fitness so far after each evaluation, in order
    assert outcome.curve == list(itertools.accumulate(fake.fitness, max))


def test_a_report_is_titled_table_2_only_where_ras_meets_the_papers_baselines():
    from ras_deap.compare.report import _title

    assert _title(CompareConfig()) == "Table 2 on digits: RAS against NAS baselines"
    assert _title(CompareConfig(methods=("random", "ras"))).startswith("Table 2 on digits")
    assert _title(CompareConfig(methods=("ras", "nsga2"))) == "ras, nsga2 compared on digits"


def test_a_report_names_the_machines_its_sessions_ran_on_not_the_one_rewriting_it():
    from ras_deap.compare.report import _machine_lines, _session_lines

    epyc = {"cpu": "AMD EPYC", "cpus": 2, "platform": "Linux", "python": "3.11", "ras_deap": "0.1"}
    xeon = {**epyc, "cpu": "Intel Xeon"}
    one = [{"seconds": 60, "workers": 1, "cells_run": ["ras-seed0"], "machine": epyc}]
    assert _machine_lines(one, xeon) == ["* machine: AMD EPYC, 2 CPU(s), Linux, Python 3.11, "
                                         "ras_deap 0.1"]
    two = [*one, {"seconds": 30, "workers": 2, "cells_run": [], "machine": xeon}]
    lines = _machine_lines(two, epyc)
    assert len(lines) == 3 and "AMD EPYC" in lines[1] and "Intel Xeon" in lines[2]
    assert " on AMD EPYC" in _session_lines(two)[0] and " on Intel Xeon" in _session_lines(two)[1]
    # sessions recorded before machines were: the current machine, as before
    assert _machine_lines([{"seconds": 1}], xeon)[0].startswith("* machine: Intel Xeon")


def test_a_report_gives_each_sessions_cpu_and_names_a_lost_one():
    from ras_deap.compare.report import _cpu_lines, _session_lines

    old = {"seconds": 60, "workers": 1, "cells_run": ["ras-seed0"], "interrupted": True}
    ended = {"seconds": 120, "cpu_seconds": 230, "workers": 2, "cells_run": [],
             "interrupted": True, "ended": "interrupted", "last_seen": "2026-12-07T15:00:00+00:00"}
    lost = {"seconds": 600, "cpu_seconds": 1150, "workers": 2, "cells_run": [],
            "interrupted": True, "last_seen": "2026-12-07T16:00:00+00:00"}
    lines = _session_lines([old, ended, lost])
    assert lines[0].startswith("  1. 1 min 00 s, 1 worker(s)") and "interrupted" in lines[0]
    assert "(3 min 50 s CPU)" in lines[1] and "interrupted" in lines[1] and "lost" not in lines[1]
    assert "lost" in lines[2] and "2026-12-07T16:00:00+00:00" in lines[2]
    cpu = _cpu_lines(SimpleNamespace(runs=[]), [old, ended, lost])
    assert cpu == [cpu[0]] and "23 min 00 s" in cpu[0] and "2 of 3 sessions" in cpu[0]


def test_tree_cpu_counts_running_and_ended_children():
    from ras_deap.compare.heartbeat import tree_cpu_seconds

    burn = [sys.executable, "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
            "time.sleep(30)"]
    before = tree_cpu_seconds()
    child = subprocess.Popen(burn)
    try:
        deadline = time.time() + 60
        while tree_cpu_seconds() - before < 0.5 and time.time() < deadline:
            time.sleep(0.1)
        assert tree_cpu_seconds() - before >= 0.5  # running: through its own times
    finally:
        child.kill()
        child.wait()
    assert tree_cpu_seconds() - before >= 0.5  # ended and waited for: through ours


def test_a_heartbeat_beats_until_stopped_and_survives_a_failing_write():
    from ras_deap.compare.heartbeat import Heartbeat

    beats, warnings = [], []

    def beat():
        beats.append(time.perf_counter())
        if len(beats) == 2:
            raise OSError("No space left on device")

    with Heartbeat(beat, warnings.append, seconds=0.02):
        deadline = time.time() + 30
        while len(beats) < 5 and time.time() < deadline:
            time.sleep(0.01)
    stopped = len(beats)
    time.sleep(0.1)
    assert stopped >= 5 and len(beats) == stopped  # went on after the failure, then stopped
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    with pytest.raises(ValueError, match="seconds"):
        Heartbeat(beat, warnings.append, seconds=0)


def test_unknown_method_and_bad_config():
    with pytest.raises(ValueError, match="unknown"):
        run_method("smash", None)
    with pytest.raises(ValueError, match="methods"):
        CompareConfig(methods=("ras", "nope"))
    with pytest.raises(ValueError, match="budget"):
        CompareConfig(budget=0)
    assert set(METHODS) == {"random", "tpe", "random_chain", "mu_plus_lambda", "regularized",
                            "ras", "nsga2", "ras_mo"}


def test_random_chain_draws_chains_from_tpes_space_with_its_own_stream():
    """random_chain samples TPE's space (one block, its layers a path: convolutions,
    then dense layers) with a random sampler: from its 11th trial on, where TPE's
    start-up ends, its draws are not TPE's."""
    config = SearchConfig(population=3, children=2, mutations=2)

    class Keeping(CountingEvaluator):
        def evaluate(self, model, generation, **kwargs):
            self.models = [*getattr(self, "models", []), model]
            return super().evaluate(model, generation, **kwargs)

    def genomes(method):
        fake = Keeping()
        budgeted = BudgetedEvaluator(fake, 14, seed=3, method=method)
        run_method(method, MethodContext(budgeted=budgeted, config=config, seed=3))
        return fake.models

    chains = genomes("random_chain")
    assert len(chains) == 14
    for genome in chains:
        assert len(genome.nodes) == 1
        block = genome.nodes[0]
        assert list(block.edges) == [(i, i + 1) for i in range(len(block.nodes) - 1)]
        kinds = [layer.kind for layer in block.nodes]
        assert kinds == sorted(kinds, key=lambda k: k != "conv")  # convolutions first
    assert [g.id for g in chains] != [g.id for g in genomes("tpe")]


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
    # every cell: mean ± the 95 % t half-width over seeds (12.706 x 0.1414 / sqrt 2 = 1.271)
    assert table[0]["test_error_ci95"] == pytest.approx(12.7062047 * 0.1414214 / math.sqrt(2))
    text = format_markdown(table)
    assert "30.0 ± 127.1%" in text and "RAS (spectrum niching)" in text
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
    assert "Re-measured fitness" in header and "Search max fitness" in header
    assert "| 1.300 ± 1.271 |" in text  # mean ± 95% CI over seeds, not ± std
    assert "trained 3 more time(s)" in text and "biased upwards" in text
    assert "Quick check" in text
    pilot = format_markdown(table, CompareConfig(search=SearchConfig(seed=100), seeds=4))
    assert "Quick check" not in pilot and "4 seed(s) from 100" in pilot
    assert "Regularized evolution: P=25, S=5." in pilot and "paper section 4.2" in pilot
    # the notes on methods a comparison did not run are left out
    alone = format_markdown(table, CompareConfig(search=SearchConfig(), methods=("random_chain",)))
    assert "Regularized evolution" not in alone and "paper section 4.2" not in alone
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
    reference = config_from_args(build_parser().parse_args([]))
    assert reference.budget == 275 and reference.seeds == 5 and reference.is_reference
    assert reference.methods == ("random", "tpe", "mu_plus_lambda", "regularized", "ras")
    assert reference.search == SearchConfig()  # the default search's training and population
    assert reference.population_p == 25 and reference.aging_sample == 5
    quick = config_from_args(build_parser().parse_args(["--preset", "quick"]))
    assert quick.budget == 30 and not quick.is_reference
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


# -- regularized (aging) evolution -------------------------------------------------------
def test_sel_sample_best_returns_references_of_the_fittest_of_each_sample():
    from ras_deap.evolution.individual import make_individual

    pop = []
    for i in range(6):
        ind = make_individual(chain_model([(8, 1, 1)] * (i + 1), []))
        ind.fitness.values = (float(i),)
        pop.append(ind)
    rng = random.Random(4)
    chosen = sel_sample_best(pop, 50, 3, rng)
    assert all(any(c is p for p in pop) for c in chosen)  # references, not copies
    replay = random.Random(4)
    for c in chosen:  # each is the fittest of 3 uniform draws with replacement
        draws = [pop[replay.randrange(6)] for _ in range(3)]
        assert c is max(draws, key=lambda ind: ind.fitness)
    assert all(c is pop[5] for c in sel_sample_best(pop, 5, 200, random.Random(0)))


def test_regularized_evolution_ages_out_the_oldest_and_mutates_the_sample_best():
    fake = CountingEvaluator()
    config = SearchConfig(population=4, children=2, mutations=2)
    budgeted = BudgetedEvaluator(fake, 14, seed=3, method="regularized")
    ctx = MethodContext(budgeted=budgeted, config=config, seed=3, aging_population=4,
                        aging_sample=2)
    outcome = run_method("regularized", ctx)
    assert regularized_plan(14, 4, 2) == (4, 2, 10) and regularized_plan(3, 25, 5) == (3, 3, 0)
    assert outcome.info["cycles"] == 10 and outcome.info["final_population"] == 4
    records = budgeted.records
    assert all(r.info["parent_id"] is None for r in records[:4])  # RAS's random initial models
    # replay the queue: every child's parent is alive (in the last P) when it is bred
    alive = [r.genome.id for r in records[:4]]
    for r in records[4:]:
        assert r.info["parent_id"] in alive and r.info["mutations"]
        alive = [*alive[1:], r.genome.id]  # push the child, pop the oldest
    # the initial models are the same as RAS's for that seed and population
    from ras_deap.evolution import initial_state
    from ras_deap.seeding import derive_seed

    first = initial_state(derive_seed(3, "regularized"), 4).offspring
    assert [r.genome.id for r in records[:4]] == [ind.genome.id for ind in first]


def test_ea_regularized_reads_like_deap_and_returns_population_and_logbook():
    from deap import base, creator, tools

    if not hasattr(creator, "AgingFit"):
        creator.create("AgingFit", base.Fitness, weights=(1.0,))
        creator.create("AgingInd", list, fitness=creator.AgingFit)
    rng = random.Random(0)
    toolbox = base.Toolbox()
    toolbox.register("evaluate", lambda ind: (float(sum(ind)),))
    toolbox.register("select", sel_sample_best, sample=3, rng=rng)

    def mutate(ind):
        child = creator.AgingInd([v + rng.choice([-1, 1]) for v in ind])
        return (child,)

    toolbox.register("mutate", mutate)
    toolbox.register("map", map)
    pop = [creator.AgingInd([0, 0]) for _ in range(5)]
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    final, logbook = ea_regularized(pop, toolbox, cycles=40, stats=stats)
    assert len(final) == 5 and len(logbook) == 41
    assert logbook.select("nevals") == [5] + [1] * 40
    assert all(ind not in pop or ind is not p for ind in final for p in pop)  # all aged out
    assert max(logbook.select("max")) > 0  # selection pushes the sum up


# -- resumable cells: the journal --------------------------------------------------------
def test_journal_replays_recorded_evaluations_and_trains_only_the_rest(tmp_path):
    from ras_deap.compare import EvaluationJournal

    config = SearchConfig(population=3, children=2, mutations=2)

    def run(journal):
        fake = CountingEvaluator()
        budgeted = BudgetedEvaluator(fake, 12, seed=5, method="tpe", journal=journal,
                                     schedule=lambda i: ras_generation(i, 3, 2))
        outcome = run_method("tpe", MethodContext(budgeted=budgeted, config=config, seed=5))
        return fake, budgeted, outcome

    path = tmp_path / "evaluations.jsonl"
    first, _, outcome = run(EvaluationJournal(path))
    assert len(first.calls) == 12 and len(path.read_text().splitlines()) == 12
    again, budgeted, replayed = run(EvaluationJournal(path))
    assert again.calls == [] and budgeted.replayed == 12
    assert replayed.curve == outcome.curve and replayed.best_genome == outcome.best_genome
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # killed mid-write of #8
    partial, budgeted, resumed = run(EvaluationJournal(path))
    assert [c[0] for c in partial.calls] == [c[0] for c in first.calls[7:]]  # only the rest
    assert budgeted.replayed == 7 and resumed.curve == outcome.curve
    assert len(path.read_text().splitlines()) == 12


# -- statistics against hand-computed numbers --------------------------------------------
def test_paired_tests_match_hand_computed_values():
    from ras_deap.compare.stats import paired_comparison

    # Wilcoxon, 6 pairs, RAS better on all: W = 0, exact two-sided p = 2 / 2^6
    ras = [0.10, 0.12, 0.15, 0.11, 0.09, 0.14]
    base = [0.30, 0.20, 0.40, 0.50, 0.16, 0.45]
    r = paired_comparison(ras, base, higher_is_better=False)
    assert (r.wins, r.ties, r.losses, r.n) == (6, 0, 0, 6)
    assert r.wilcoxon_stat == 0 and r.wilcoxon_p == pytest.approx(2 / 64)
    # one loss with the smallest |difference| (rank 1): W = 1, p = 2 * 2 / 64
    base_one_loss = [0.30, 0.20, 0.40, 0.50, 0.16, 0.13]  # |d| = .2 .08 .25 .39 .07 .01
    r = paired_comparison(ras, base_one_loss, higher_is_better=False)
    assert (r.wins, r.ties, r.losses) == (5, 0, 1)
    assert r.wilcoxon_stat == 1 and r.wilcoxon_p == pytest.approx(4 / 64)
    # paired t with 3 pairs (df 2, where the t CDF is 1/2 + t / (2 sqrt(2 + t^2))):
    # d = 1, 2, 4 -> mean 7/3, sd sqrt(7/3), t = (7/3) / (sqrt(7/3) / sqrt 3) = sqrt 7
    r = paired_comparison([2.0, 4.0, 7.0], [1.0, 2.0, 3.0], higher_is_better=True)
    t = math.sqrt(7)
    assert r.t_stat == pytest.approx(t)
    assert r.t_p == pytest.approx(1 - t / math.sqrt(2 + t * t))  # 2 * (1 - CDF(t))
    assert r.diff_mean == pytest.approx(7 / 3)
    assert r.diff_ci95 == pytest.approx(4.302652730 * math.sqrt(7 / 3) / math.sqrt(3))
    assert r.wilcoxon_p == pytest.approx(2 / 8)  # all three positive: 2 / 2^3
    # a tie is a tie; no differences at all: no test
    r = paired_comparison([0.2, 0.3], [0.2, 0.3], higher_is_better=False)
    assert (r.wins, r.ties, r.losses) == (0, 2, 0)
    assert math.isnan(r.wilcoxon_p) and math.isnan(r.t_p)


def test_paired_table_pairs_seeds_and_reports_win_tie_loss():
    from ras_deap.compare.stats import paired_table
    from ras_deap.compare.table import format_paired

    rows = [{"method": m, "seed": s, "test_error": e}
            for m, errs in (("ras", (0.1, 0.2, 0.3)), ("random", (0.2, 0.2, 0.5, 0.9)))
            for s, e in enumerate(errs)]
    results = paired_table(rows, metrics=[("test_error", "Test ER", False)])
    assert len(results) == 1
    r = results[0]
    assert r.baseline == "random" and r.n == 3  # seed 3 has no RAS partner
    assert (r.wins, r.ties, r.losses) == (2, 1, 0)
    assert r.diff_mean == pytest.approx(-0.1)
    text = format_paired([dict(row, adv_error=0.5) for row in rows])
    assert "2/1/0" in text and "Random search" in text


# -- the comparison: resume, refusal -------------------------------------------------------
class CallLog:
    """Picklable-free evaluator factory recording every training per seed."""

    def __init__(self):
        self.calls = []

    def __call__(self, config):
        log = self

        class Logged(NoisyEvaluator):
            def evaluate(self, model, generation, **kw):
                log.calls.append((config.seed, model.id, generation))
                return super().evaluate(model, generation, **kw)

        return Logged(config.seed)


def _fake_cfg(tmp_path, **kw):
    search = SearchConfig(population=2, children=1, mutations=1, full_every=100,
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="resume")
    values = {"search": search, "budget": 5, "seeds": 2, "remeasure": 2,
              "methods": ("random", "tpe", "mu_plus_lambda", "regularized"),
              "out": str(tmp_path / "out")}
    values.update(kw)
    return CompareConfig(**values)


def test_a_reports_hand_written_notes_live_with_the_cells_and_survive_a_rewrite(tmp_path):
    from ras_deap.compare.report import NOTES_NAME, write_report
    from ras_deap.compare.runner import run_comparison

    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random",))
    result = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    page = tmp_path / "page.md"
    write_report(page, result, command="python -m ras_deap.compare ...")
    assert "Notes kept with the cells" not in page.read_text()
    note = "* *Session 5* ran 06:17-07:43 on another machine; its record was lost."
    (tmp_path / "out" / NOTES_NAME).write_text(note + "\n")
    again = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)  # reads back
    for _ in range(2):  # the rewrite keeps them, once
        write_report(page, again, command="python -m ras_deap.compare ...")
        text = page.read_text()
        assert text.count(note) == 1 and text.index(note) < text.index("## Command")


def test_interrupted_comparison_resumes_and_recomputes_only_the_missing_cell(tmp_path):
    from ras_deap.compare.runner import run_comparison

    cfg = _fake_cfg(tmp_path)
    first = CallLog()
    result = run_comparison(cfg, evaluator_factory=first, log=lambda m: None)
    assert len(result.runs) == 8 and result.cells_reused == []
    per_cell = 5 + 2 + 1  # budget, re-measurements, final re-training
    assert len(first.calls) == 8 * per_cell
    cells = tmp_path / "out" / "cells"
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/result.json")}
    assert len(stamps) == 8
    # simulate a kill during tpe seed 1 after its 3rd evaluation
    (cells / "tpe-seed1" / "result.json").unlink()
    journal = cells / "tpe-seed1" / "evaluations.jsonl"
    journal.write_text("\n".join(journal.read_text().splitlines()[:3]) + "\n")
    messages = []
    second = CallLog()
    again = run_comparison(cfg, evaluator_factory=second, log=messages.append)
    assert any("7 of 8 cells done, 1 left: tpe-seed1" in m for m in messages)
    assert any(f"python -m ras_deap.compare.status {cfg.out}" in m for m in messages)
    assert again.cells_run == ["tpe-seed1"] and len(again.cells_reused) == 7
    # only that cell trained again, and only what its journal lacked
    assert {c[0] for c in second.calls} == {1}
    assert len(second.calls) == (5 - 3) + 2 + 1
    for name, stamp in stamps.items():
        if name != "tpe-seed1":
            assert (cells / name / "result.json").stat().st_mtime_ns == stamp
    timing = {"wall_seconds", "cpu_seconds", "search_seconds", "remeasure_seconds",
              "retrain_seconds", "replayed", "run_id"}

    def numbers(run):  # NaN-safe: compare the JSON text of the non-timing columns
        return json.dumps({k: v for k, v in run.row.items() if k not in timing})

    # the same numbers as the uninterrupted run
    assert [numbers(r) for r in again.runs] == [numbers(r) for r in result.runs]
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert len(data["sessions"]) == 2 and data["parent_run_id"] == again.run_id == result.run_id
    # seeds and methods may change: a third seed only adds its cells
    third = CallLog()
    with pytest.warns(UserWarning, match="config differs"):  # MLflow params are immutable
        more = run_comparison(_fake_cfg(tmp_path, seeds=3, methods=("random",)),
                              evaluator_factory=third, log=lambda m: None)
    assert more.cells_run == ["random-seed2"] and {c[0] for c in third.calls} == {2}


def test_a_cell_cut_in_its_post_phase_keeps_its_remeasurements(tmp_path):
    """A cell whose final re-training died (an mnist10k winner's takes most
    of an hour) resumes with its search replayed and its re-measurement
    trainings taken from remeasure.partial.jsonl: only the final trains."""
    from ras_deap.compare.cells import REMEASURE_JOURNAL
    from ras_deap.compare.runner import run_comparison

    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random",))

    class DiesInFinal(CallLog):
        def __call__(self, config):
            inner = super().__call__(config)
            evaluate = inner.evaluate

            def dying(model, generation, **kw):
                if kw.get("with_test"):
                    raise RuntimeError("killed in the final re-training")
                return evaluate(model, generation, **kw)

            inner.evaluate = dying
            return inner

    first = DiesInFinal()
    result = run_comparison(cfg, evaluator_factory=first, log=lambda m: None)
    folder = tmp_path / "out" / "cells" / "random-seed0"
    assert "random-seed0" in result.failed and len(first.calls) == 5 + 2
    assert len((folder / REMEASURE_JOURNAL).read_text().splitlines()) == 2
    second = CallLog()
    again = run_comparison(cfg, evaluator_factory=second, log=lambda m: None)
    assert again.cells_run == ["random-seed0"] and len(second.calls) == 1
    assert second.calls[0][2] == cfg.retrain_generation
    assert not (folder / REMEASURE_JOURNAL).exists()  # result.json holds them now
    whole = run_comparison(_fake_cfg(tmp_path / "fresh", seeds=1, methods=("random",)),
                           evaluator_factory=CallLog(), log=lambda m: None)
    assert again.runs[0].row["remeasured_fitness"] == whole.runs[0].row["remeasured_fitness"]


def test_a_result_left_by_a_worker_is_stored_without_running_again(tmp_path):
    """The main process stopped after a worker finished a cell but before it
    logged and stored the result: the rerun stores that result as it is."""
    from ras_deap.compare.runner import run_comparison
    from ras_deap.compare.supervise import WORKER_RESULT

    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random", "regularized"))
    first = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    folder = tmp_path / "out" / "cells" / "regularized-seed0"
    data = json.loads((folder / "result.json").read_text())
    (folder / "result.json").unlink()
    (folder / WORKER_RESULT).write_text(json.dumps(data))
    calls, messages = CallLog(), []
    again = run_comparison(cfg, evaluator_factory=calls, log=messages.append)
    assert calls.calls == [] and again.cells_run == ["regularized-seed0"]
    assert any("finished by a worker before the stop" in m for m in messages)
    assert not (folder / WORKER_RESULT).exists() and (folder / "result.json").is_file()
    assert json.dumps(again.runs[1].row) == json.dumps(first.runs[1].row)


def test_a_failing_cell_is_reported_and_retried_on_the_next_run(tmp_path):
    from ras_deap.compare.runner import run_comparison

    class Broken(CallLog):
        def __call__(self, config):
            if config.seed == 1:
                raise RuntimeError("out of disk")
            return super().__call__(config)

    cfg = _fake_cfg(tmp_path, methods=("random",))
    messages = []
    first = run_comparison(cfg, evaluator_factory=Broken(), log=messages.append)
    assert list(first.failed) == ["random-seed1"] and "out of disk" in first.failed["random-seed1"]
    assert [r.row["seed"] for r in first.runs] == [0]  # the table holds what finished
    assert any("random-seed1 FAILED" in m for m in messages)
    calls = CallLog()
    again = run_comparison(cfg, evaluator_factory=calls, log=lambda m: None)
    assert again.cells_run == ["random-seed1"] and not again.failed
    assert {c[0] for c in calls.calls} == {1} and len(again.runs) == 2


@pytest.mark.slow
def test_a_parallel_cell_killed_twice_fails_and_the_others_go_on(tmp_path):
    """The executor's crash policy for cells: a cell whose process dies (here
    SIGABRT, as the OOM killer's SIGKILL would) runs once more in a fresh
    process, then is reported failed with the reason; the other cells finish."""
    from crashing_evaluator import AbortingCells
    from mlflow import MlflowClient

    from ras_deap.compare.runner import run_comparison

    cfg = _fake_cfg(tmp_path, seeds=3, methods=("random",))
    result = run_comparison(cfg, workers=2, evaluator_factory=AbortingCells(1),
                            log=lambda m: None)
    assert list(result.failed) == ["random-seed1"]
    assert "died twice (SIGABRT" in result.failed["random-seed1"]
    assert [r.row["seed"] for r in result.runs] == [0, 2]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_id = (tmp_path / "out" / "cells" / "random-seed1" / "mlflow_run_id").read_text()
    assert client.get_run(run_id.strip()).info.status == "FAILED"


def test_stored_run_ids_are_reopened_while_the_store_holds_them(tmp_path):
    """The manifest's and a cell's MLflow run ids are reopened on resume; a
    run deleted since (or of another store) is replaced by a new one."""
    from mlflow import MlflowClient

    from ras_deap.compare.runner import run_comparison
    from ras_deap.tracking import run_exists

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random",))
    first = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    folder = tmp_path / "out" / "cells" / "random-seed0"
    cell_run = (folder / "mlflow_run_id").read_text().strip()
    (folder / "result.json").unlink()
    again = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    assert again.run_id == first.run_id
    assert (folder / "mlflow_run_id").read_text().strip() == cell_run
    client = MlflowClient(tracking_uri=uri)
    client.delete_run(first.run_id)
    client.delete_run(cell_run)
    assert not run_exists(uri, first.run_id) and not run_exists(uri, "0" * 32)
    (folder / "result.json").unlink()
    third = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    new_cell = (folder / "mlflow_run_id").read_text().strip()
    assert third.run_id != first.run_id and new_cell != cell_run
    assert run_exists(uri, third.run_id) and run_exists(uri, new_cell)
    assert client.get_run(third.run_id).info.status == "FINISHED"
    assert client.get_run(new_cell).data.tags["mlflow.parentRunId"] == third.run_id


def test_comparison_with_other_settings_refuses_with_a_clear_message(tmp_path, capsys):
    from ras_deap.compare.cli import main
    from ras_deap.compare.manifest import CompareError
    from ras_deap.compare.runner import run_comparison

    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random",))
    run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    with pytest.raises(CompareError, match=r"budget: 5 then, 6 now.*--out"):
        run_comparison(_fake_cfg(tmp_path, seeds=1, methods=("random",), budget=6),
                       evaluator_factory=CallLog(), log=lambda m: None)
    code = main(["--preset", "tiny", "--max-evaluations", "6", "--seeds", "1", "--methods",
                 "random", "--out", str(tmp_path / "out"), "--tracking-uri",
                 f"sqlite:///{tmp_path}/m.db"])
    assert code == 2 and "other settings" in capsys.readouterr().err


def test_a_second_command_on_a_running_comparison_is_refused_in_one_line(tmp_path, capsys):
    """Two commands on one --out trained the same cells and interleaved their
    journals (duplicate indices); now the second one stops before touching it."""
    from ras_deap.compare.cli import main
    from ras_deap.compare.runner import run_comparison
    from ras_deap.errors import RunLockedError
    from ras_deap.locks import RunLock

    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random",))
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out):  # the running command's lock (flock: per open file, so per command)
        with pytest.raises(RunLockedError, match=r"compare\.status"):
            run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
        code = main(["--preset", "tiny", "--seeds", "1", "--methods", "random", "--out",
                     str(out), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "comparison folder" in err
        assert f"python -m ras_deap.compare.status {out}" in err and "usage:" not in err
        assert not (out / "comparison.json").exists() and not (out / "cells").exists()
    planted = tmp_path / "planted"
    planted.write_text("not a folder")
    assert main(["--preset", "tiny", "--seeds", "1", "--methods", "random", "--out",
                 str(planted), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    assert "--out " + str(planted) + ": cannot create the folder" in capsys.readouterr().err
    result = run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)  # released
    assert len(result.runs) == 1


def test_cell_names_parse_back_and_seeds_are_read_from_cell_folders(tmp_path):
    from ras_deap.compare.cells import cell_dir, cell_name, cell_seeds, parse_cell_name

    for method, seed in (("ras", 0), ("ras_mo", 12), ("mu_plus_lambda", 3)):
        assert parse_cell_name(cell_name(method, seed)) == (method, seed)
    for name in ("ras", "ras-seed", "-seed1", "ras-seedx", "report-notes.md"):
        assert parse_cell_name(name) is None
    assert cell_seeds(tmp_path) == []  # no cells folder yet
    for method, seed in (("ras", 2), ("ras_mo", 0), ("tpe", 1), ("ras", 0)):
        cell_dir(tmp_path, method, seed).mkdir(parents=True)
    (tmp_path / "cells" / "tpe-seed9").write_text("a file, not a cell")
    assert cell_seeds(tmp_path) == [0, 1, 2]
    assert cell_seeds(tmp_path, "ras") == [0, 2] and cell_seeds(tmp_path, "random") == []


def test_status_reads_a_comparison_as_it_stands_without_touching_it(tmp_path, capsys):
    from ras_deap.compare.cells import RESULT_NAME
    from ras_deap.compare.runner import run_comparison
    from ras_deap.compare.status import comparison_status, format_status, main

    cfg = _fake_cfg(tmp_path, seeds=1, methods=("random", "tpe", "regularized"))
    run_comparison(cfg, evaluator_factory=CallLog(), log=lambda m: None)
    out, cells = tmp_path / "out", tmp_path / "out" / "cells"
    done = json.loads((cells / "random-seed0" / RESULT_NAME).read_text())
    # tpe-seed0 killed after its 3rd evaluation, mid-line; regularized-seed0 after its search
    (cells / "tpe-seed0" / RESULT_NAME).unlink()
    journal = cells / "tpe-seed0" / "evaluations.jsonl"
    kept = journal.read_text().splitlines()[:3]
    journal.write_text("\n".join(kept) + '\n{"index": 3, "fitn')
    (cells / "regularized-seed0" / RESULT_NAME).unlink()
    # a RAS cell part-way, its curve one evaluation ahead of its checkpoint (written after
    # MLflow's queued writes); one planned but not started
    (cells / "ras-seed0").mkdir()
    (cells / "ras-seed0" / "ras_curve.jsonl").write_text(
        '{"best": 1.2, "fitness": 1.2}\n{"best": 1.5, "fitness": 1.5}\n'
        '{"best": 1.5, "fitness": 1.4}\n')
    (out / "ras_runs" / "ras-seed0").mkdir(parents=True)
    (out / "ras_runs" / "ras-seed0" / "checkpoint.json").write_text(
        json.dumps({"state": {"evaluations": 2}}))
    (cells / "random-seed1").mkdir()
    (cells / "random-seed1" / "mlflow_run_id").write_text("abc")
    # a held-out assessment of random-seed0 cut after two attacks and one AutoAttack part
    # (a last line torn)
    (cells / "random-seed0" / "heldout.partial.jsonl").write_text(
        '{"key": "k", "attack": "square 1", "rows": []}\n'
        '{"key": "k", "attack": "autoattack 1", "rows": []}\n'
        '{"part_key": "p", "part": {}}\n{"key": "k", "att')
    manifest = json.loads((out / "comparison.json").read_text())
    now = time.time()

    def stamp(ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - ago))

    manifest["sessions"] += [
        {"started": "lost", "seconds": 60.0, "cpu_seconds": 50.0, "last_seen": stamp(3600)},
        {"started": "now", "seconds": 30.0, "cpu_seconds": 20.0, "last_seen": stamp(30)}]
    (out / "comparison.json").write_text(json.dumps(manifest))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    status = comparison_status(out, now=now)
    by = {c.name: c for c in status.cells}
    assert [c.name for c in status.cells] == ["random-seed0", "tpe-seed0", "regularized-seed0",
                                              "ras-seed0", "random-seed1"]
    assert by["random-seed0"].state == "done" and by["random-seed0"].evaluations == 5
    assert by["random-seed0"].remeasured == pytest.approx(
        statistics.fmean(done["remeasured"]["fitness"]))
    assert by["random-seed0"].best_fitness == done["outcome"]["best_fitness"]
    assert (by["random-seed0"].heldout, by["random-seed0"].heldout_attacks,
            by["random-seed0"].heldout_parts) == (False, 2, 1)
    tpe = by["tpe-seed0"]
    assert (tpe.state, tpe.evaluations) == ("searching", 3)  # the torn line is not counted
    assert tpe.best_fitness == max(json.loads(line)["fitness"] for line in kept)
    assert tpe.recent_seconds == pytest.approx(
        statistics.fmean(json.loads(line)["seconds"] for line in kept))
    assert by["regularized-seed0"].state == "post-search"
    assert (by["ras-seed0"].state, by["ras-seed0"].evaluations) == ("searching", 3)
    assert by["ras-seed0"].best_fitness == 1.5
    assert by["random-seed1"].state == "not started"
    assert [s.state for s in status.sessions] == ["finished", "lost", "running"]
    text = format_status(status)
    assert "1 of 5 cells done, 2 searching, 1 after their search, 1 not started" in text
    assert "running now: session now" in text
    assert "| 2 attacks and 1 AutoAttack part so far |" in text and text.count("| - |") >= 4
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    # the checkpoint ahead of the curve (a curve line lost to a kill) counts too
    (out / "ras_runs" / "ras-seed0" / "checkpoint.json").write_text(
        json.dumps({"state": {"evaluations": 4}}))
    assert {c.name: c.evaluations for c in comparison_status(out).cells}["ras-seed0"] == 4

    assert main([str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cells"][1]["evaluations"] == 3
    assert main([str(tmp_path)]) == 2  # not a comparison folder: one line naming the fix
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "comparison.json" in err and "--out" in err


def test_status_shows_planted_files_as_unknown_and_refuses_a_folder_without_settings(
        tmp_path, capsys):
    from ras_deap.compare.status import comparison_status, format_status, main

    (tmp_path / "cells" / "random-seed0").mkdir(parents=True)
    (tmp_path / "cells" / "tpe-seed0").mkdir()
    (tmp_path / "comparison.json").write_text(json.dumps({"settings": {"budget": 5}, "sessions": [
        1, {"started": 5, "seconds": "x", "last_seen": 7, "cells_run": 3}]}))
    (tmp_path / "cells" / "random-seed0" / "result.json").write_text(json.dumps(
        {"outcome": {"evaluations": "x"}, "remeasured": [1], "final_metrics": 3}))
    (tmp_path / "cells" / "tpe-seed0" / "evaluations.jsonl").write_text(
        '[1, 2]\n{"fitness": "x"}\n{"fitness": 1.0, "failure": null}\n')
    status = comparison_status(tmp_path)
    done, tpe = status.cells
    assert (done.state, done.evaluations, done.remeasured, done.test_accuracy) == (
        "done", 0, None, None)
    assert (tpe.state, tpe.evaluations, tpe.best_fitness) == ("searching", 2, 1.0)
    assert [(s.state, s.seconds) for s in status.sessions] == [("finished", 0.0)]
    assert main([str(tmp_path)]) == 0
    # a compute budget: how many networks a cell trains is not known from the manifest
    (tmp_path / "comparison.json").write_text(json.dumps(
        {"settings": {"budget": 2, "search": {"budget_epochs": 40.0}}}))
    status = comparison_status(tmp_path)
    assert status.cells[1].budget is None and status.cells[1].state == "searching"
    assert "2 evaluations, a budget of 40 training epochs per cell" in format_status(status)
    for settings in ([1, 2], {"budget": "abc"}, {"budget": 0}):
        (tmp_path / "comparison.json").write_text(json.dumps({"settings": settings}))
        assert main([str(tmp_path)]) == 2
        assert "no readable comparison.json" in capsys.readouterr().err


def test_cli_bad_values_exit_2_naming_the_option(capsys):
    from ras_deap.compare.cli import main

    assert main(["--max-evaluations", "0"]) == 2
    assert "budget" in capsys.readouterr().err
    for flag in ("--parallel-cells", "--workers"):  # --workers: its old name, still accepted
        assert main([flag, "0"]) == 2
        assert "--parallel-cells 0: must be >= 1" in capsys.readouterr().err
    assert main(["--assess-images", "0"]) == 2
    assert "images" in capsys.readouterr().err
    assert main(["--methods", "ras,smash"]) == 2
    assert "methods" in capsys.readouterr().err


# -- end to end (real torch training, real ART, real MLflow) -------------------------------
def _tiny_bank(tmp_path):
    from ras_deap.bank import fallback_bank, save_bank
    from ras_deap.data import load_dataset

    data = load_dataset("digits", None, False, 0)
    return save_bank(fallback_bank(data, 40, seed=0), tmp_path / "bank.npz")


TINY_ASSESS = ["--assess-images", "20", "--assess-l0-images", "3", "--assess-pixel-iter", "2"]


@pytest.mark.slow
def test_tiny_comparison_end_to_end(tmp_path, capsys):
    """The CLI on a budget of 4, one seed, 2-epoch training, every method:
    real torch training, a real bank file, real ART attacks on each winner,
    real MLflow; then an interrupted cell is resumed."""
    from ras_deap.compare.cli import main
    from ras_deap.tracking import SearchTracker

    bank = _tiny_bank(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "out"
    report = tmp_path / "docs" / "table2-test.md"
    argv = ["--preset", "tiny", "--max-evaluations", "4", "--seeds", "1", "--mutations", "2",
            "--bank", str(bank), "--out", str(out), "--tracking-uri", uri,
            "--experiment", "compare-test", "--no-progress", "--report", str(report),
            *TINY_ASSESS]
    assert main(argv) == 0
    printed = capsys.readouterr()
    text = (out / "table.md").read_text()
    assert text in printed.out and "Bank ER L0" in text and "PGD 1/16" in text
    assert "L0 10 px" in text and "Quick check" in text
    assert "Warning" not in text  # a real bank file was given: no fallback
    assert "see it in MLflow: mlflow ui" in printed.out
    assert "workflowType=machine_learning" in printed.out  # lands on the runs table
    assert (out / "best_fitness.png").stat().st_size > 1000
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["random", "tpe", "mu_plus_lambda", "regularized",
                                           "ras"]
    for row in rows:
        assert int(row["evaluations"]) == 4
        assert 0.0 <= float(row["test_error"]) <= 1.0 and 0.0 <= float(row["adv_error"]) <= 1.0
        assert float(row["parameters"]) > 0
        for key in ("er_fgsm_eps1", "er_pgd_eps3", "er_pixel_th1", "er_direct_mean"):
            assert 0.0 <= float(row[key]) <= 1.0
        assert float(row["er_pgd_eps3"]) >= float(row["er_clean"])
    with (out / "curves.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 20
    page = report.read_text()
    assert "## Command" in page and "--max-evaluations 4" in page and "wall time" in page
    assert report.with_suffix(".png").is_file() and report.with_suffix(".csv").is_file()
    assert (tmp_path / "docs" / "table2-test-paired.csv").is_file()
    run_id = json.loads((out / "results.json").read_text())["runs"][0]["run_id"]

    # MLflow: comparison run -> one child per method and seed -> its individuals
    client = SearchTracker(uri, "compare-test").client
    exp = client.get_experiment_by_name("compare-test").experiment_id

    def children(parent):
        return client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{parent}'")

    parent_id = client.get_run(run_id).data.tags["mlflow.parentRunId"]
    assert parent_id in printed.out
    methods = children(parent_id)
    assert sorted(r.data.tags["method"] for r in methods) == sorted(r["method"] for r in rows)
    for run in methods:
        assert run.info.status == "FINISHED"
        assert run.data.metrics["evaluations"] == 4 and "test_error" in run.data.metrics
        assert "assess/pgd_eps1_accuracy" in run.data.metrics
        nested = children(run.info.run_id)
        if run.data.tags["method"] == "ras":  # the RAS search run holds its individuals
            assert len(nested) == 1 and len(children(nested[0].info.run_id)) == 4
        else:
            assert len(nested) == 4

    # interrupted after the random cell's 2nd evaluation: only that cell runs again
    cells = out / "cells"
    (cells / "random-seed0" / "result.json").unlink()
    journal = cells / "random-seed0" / "evaluations.jsonl"
    journal.write_text("\n".join(journal.read_text().splitlines()[:2]) + "\n")
    before = {p.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/result.json")}
    # the re-trained winner it stored is loaded, not trained again
    kept = {name: (cells / "random-seed0" / name).stat().st_mtime_ns
            for name in ("final.json", "best_model.pt")}
    assert main(argv) == 0
    assert kept == {name: (cells / "random-seed0" / name).stat().st_mtime_ns for name in kept}
    err = capsys.readouterr().err
    assert "4 of 5 cells done, 1 left: random-seed0" in err
    assert "2 evaluations replayed" in err
    for name, stamp in before.items():
        assert (cells / name / "result.json").stat().st_mtime_ns == stamp
    with (out / "results.csv").open() as fh:
        again = list(csv.DictReader(fh))
    for a, b in zip(rows, again, strict=True):
        assert a["test_error"] == b["test_error"] and a["best_id"] == b["best_id"]
        assert a["er_pgd_eps3"] == b["er_pgd_eps3"]  # the loaded weights are the trained ones
    # the winner's folder is a run folder python -m ras_deap.assess accepts
    assert {"best_genome.json", "best_model.pt", "config.json"} <= {
        p.name for p in (cells / "ras-seed0").iterdir()}


@pytest.mark.slow
def test_parallel_cells_give_the_serial_results(tmp_path):
    """--parallel-cells 2 runs cells in two processes; every number is the serial run's."""
    from ras_deap.compare.cli import main

    bank = _tiny_bank(tmp_path)
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        assert main(["--preset", "tiny", "--max-evaluations", "3", "--seeds", "1", "--methods",
                     "regularized,ras", "--bank", str(bank), "--out", str(out),
                     "--tracking-uri", f"sqlite:///{tmp_path}/mlflow{workers}.db",
                     "--parallel-cells", str(workers), "--no-progress", *TINY_ASSESS]) == 0
        with (out / "results.csv").open() as fh:
            results[workers] = list(csv.DictReader(fh))
    skip = {"wall_seconds", "cpu_seconds", "search_seconds", "remeasure_seconds",
            "retrain_seconds", "assess_seconds", "run_id"}
    assert len(results[1]) == 2
    for a, b in zip(results[1], results[2], strict=True):
        assert {k: v for k, v in a.items() if k not in skip} == {
            k: v for k, v in b.items() if k not in skip}


@pytest.mark.slow
def test_killed_parallel_comparison_resumes(tmp_path):
    """`kill` (SIGTERM) of a running `--workers 2` comparison stops it and its
    workers; the same command then finishes only what is left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    bank = _tiny_bank(tmp_path)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "ras_deap.compare", "--preset", "tiny", "--max-evaluations", "3",
            "--seeds", "2", "--methods", "random,tpe", "--bank", str(bank), "--out", str(out),
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--workers", "2",
            "--no-progress", *TINY_ASSESS]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.time() + 300
    while not list(out.glob("cells/*/result.json")) and time.time() < deadline:
        time.sleep(0.5)
    assert list(out.glob("cells/*/result.json")), "no cell finished in time"
    # while it runs, its session is recorded already: a kill -9 now would leave this entry
    running = json.loads((out / "comparison.json").read_text())["sessions"][-1]
    assert "ended" not in running and running["interrupted"] is True and running["last_seen"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to resume" in err
    done = {p.parent.name for p in out.glob("cells/*/result.json")}
    assert 1 <= len(done) < 4
    sessions = json.loads((out / "comparison.json").read_text())["sessions"]
    assert len(sessions) == 1 and sessions[-1]["interrupted"] is True
    assert sessions[-1]["ended"] == "interrupted"
    # the session's CPU time is its whole process tree, the cell workers' included
    cells_cpu = sum(json.loads((out / "cells" / name / "result.json").read_text())["cpu_seconds"]
                    for name in done)
    assert sessions[-1]["cpu_seconds"] >= cells_cpu > 0
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(done)} of 4 cells done, {4 - len(done)} left" in again.stderr
    assert {p.parent.name for p in out.glob("cells/*/result.json")} == {
        "random-seed0", "tpe-seed0", "random-seed1", "tpe-seed1"}


def test_a_search_option_added_later_at_its_default_does_not_block_resume():
    """A comparison stored before a newer ras_deap added a search option resumes
    when the option keeps its default (the old behaviour); a changed value is
    still a difference."""
    from ras_deap.compare.manifest import _differences, _matches, _upgraded

    current = {"budget": 10, "search": {"seed": 0, "robustness": "bank"}}
    stored = {"budget": 10, "search": {"seed": 0}}
    assert _matches(stored, current)
    assert not _differences(_upgraded(stored, current), current)
    changed = {"budget": 10, "search": {"seed": 0, "robustness": "direct"}}
    assert not _matches(stored, changed)
    assert _differences(_upgraded(stored, changed), changed) == [
        "search.robustness: 'bank' then, 'direct' now"]


def load_rows_for(out, method):
    from ras_deap.compare.ablation import Variant, load_rows

    return load_rows(Variant("x", out, method))


def test_ablation_report_pairs_variants_by_seed_and_names_what_changes(tmp_path, capsys):
    """python -m ras_deap.compare.ablation reads finished comparisons (a RAS
    variant with another --distance, and a baseline of the reference folder),
    pairs them with the reference's RAS cells by seed and says what changed."""
    from ras_deap.compare.ablation import main
    from ras_deap.compare.runner import run_comparison

    class SearchableNoisy(NoisyEvaluator):  # what run_search (the RAS cells) needs besides
        def data(self):
            return None

        def __call__(self, individual):
            return self.evaluate(individual.genome, individual.generation,
                                 seed=individual.eval_seed)

    def compare(out, **search):
        cfg = CompareConfig(
            search=SearchConfig(population=2, children=1, mutations=1, full_every=100,
                                tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                                experiment="abl", **search),
            budget=3, seeds=2, methods=("random", "ras"), out=str(tmp_path / out), assess=None)
        return {(r.row["method"], r.row["seed"]): r.row for r in run_comparison(
            cfg, evaluator_factory=lambda c: SearchableNoisy(c.seed), log=lambda m: None).runs}

    ref, var = compare("ref"), compare("var", distance="normalized")
    report = tmp_path / "abl.md"
    argv = ["--reference", str(tmp_path / "ref"),
            "--variant", f"normalized distance={tmp_path / 'var'}",
            "--variant", f"random search={tmp_path / 'ref'}:random", "--report", str(report)]
    assert main(argv) == 0
    text = report.read_text()
    assert text in capsys.readouterr().out
    assert "search.distance: 'raw' -> 'normalized'" in text and "†" not in text
    from ras_deap.compare.ablation import changes_training
    # a variant that trains otherwise has its fitness on another scale: flagged
    assert changes_training(["search.full_every: 10 -> 1"])
    assert not changes_training(["search.distance: 'raw' -> 'normalized'", "method ras -> tpe"])
    assert "method ras -> random" in text
    diffs = [var["ras", s]["remeasured_fitness"] - ref["ras", s]["remeasured_fitness"]
             for s in (0, 1)]
    wins = sum(d > 1e-12 for d in diffs)
    losses = sum(d < -1e-12 for d in diffs)
    with (tmp_path / "abl-paired.csv").open() as fh:
        rows = {(r["variant"], r["metric"]): r for r in csv.DictReader(fh)}
    row = rows["normalized distance", "remeasured_fitness"]
    assert float(row["diff_mean"]) == pytest.approx(statistics.fmean(diffs))
    assert (int(row["wins"]), int(row["losses"]), int(row["n"])) == (wins, losses, 2)
    assert ("random search", "test_error") in rows
    # the drift table: each search's evaluated fitness by generation-sized stretch, from the
    # baselines' journals and from the MLflow runs of the RAS cells (which keep no journal)
    drift = text[text.index("Does selection move the population?"):]
    assert "| evals 1-2 | evals 3-3 |" in drift
    for name in ("RAS (reference)", "normalized distance", "random search"):
        assert f"| {name} | 2 | " in drift
    journal = [json.loads(line)["fitness"] for line in
               (tmp_path / "ref" / "cells" / "random-seed0" / "evaluations.jsonl").open()]
    from ras_deap.compare.ablation import Variant, evaluation_fitness
    seed0 = next(r for r in load_rows_for(tmp_path / "ref", "random") if r["seed"] == 0)
    assert evaluation_fitness(Variant("r", tmp_path / "ref", "random"), seed0) == journal
    ras0 = next(r for r in load_rows_for(tmp_path / "ref", "ras") if r["seed"] == 0)
    ras_variant = Variant("r", tmp_path / "ref", "ras")
    from_curve = evaluation_fitness(ras_variant, ras0)
    assert len(from_curve) == 3 and max(from_curve) == pytest.approx(ras0["search_fitness"])
    # the curve keeps each evaluation's own fitness, so a clone needs no MLflow store;
    # it agrees with the MLflow runs, which are read for curves that kept only the best
    from ras_deap.compare.ras import curve_best
    curve_file = tmp_path / "ref" / "cells" / "ras-seed0" / "ras_curve.jsonl"
    entries = [json.loads(line) for line in curve_file.read_text().splitlines()]
    assert [e["best"] for e in entries] == list(itertools.accumulate(from_curve, max))
    curve_file.write_text("".join(f"{curve_best(e)}\n" for e in entries))  # the old form
    from_mlflow = evaluation_fitness(ras_variant, ras0)
    assert sorted(from_mlflow) == pytest.approx(sorted(from_curve))
    # a folder that is not a comparison: exit 2 naming the option and the fix
    with pytest.raises(SystemExit) as exc:
        main(["--reference", str(tmp_path / "ref"), "--variant", f"x={tmp_path}",
              "--report", str(report)])
    assert exc.value.code == 2
    assert "--variant" in capsys.readouterr().err


# -- the multi-objective methods (issue #31) --------------------------------------------
class TradeOff:
    """A torch-free evaluator whose accuracy and robustness pull apart with
    the architecture (a front to find), plus training luck from the seed.
    ``log`` collects every training; ``stop_after``: a kill (KeyboardInterrupt)
    at that training."""

    def __init__(self, log=None, stop_after=None, seed=0):
        self.log = log if log is not None else []
        self.stop_after = stop_after
        self.seed = seed  # re-measurements derive their fresh seeds from it

    def evaluate(self, model, generation, *, seed=None, with_test=False, return_module=False,
                 **kw):
        if self.stop_after is not None and len(self.log) >= self.stop_after:
            raise KeyboardInterrupt
        spec = spectrum(model)
        t = (spec[1] % 7) / 6
        luck = ((seed or 0) % 101) / 2020
        acc, rob = 0.5 + 0.4 * t + luck, 0.9 - 0.5 * t + (spec[5] % 5) / 100
        self.log.append((model.id, generation, seed))
        metrics = {"fitness": acc + rob, "accuracy": acc, "robustness": rob,
                   "parameters": 10.0, **({"test_accuracy": 0.8} if with_test else {})}
        return SimpleNamespace(fitness=acc + rob, failure=None, metrics=metrics)

    def data(self):
        return None

    def __call__(self, individual):  # RAS's search evaluates individuals
        return self.evaluate(individual.genome, individual.generation,
                             seed=individual.eval_seed)


def test_nsga2_plan_cuts_the_last_generation_to_the_budget():
    from ras_deap.compare.nsga2 import nsga2_plan

    assert nsga2_plan(275, 25, 2) == (25, [50] * 5)
    assert nsga2_plan(30, 6, 2) == (6, [12, 12])
    assert nsga2_plan(31, 6, 2) == (6, [12, 12, 1])
    assert nsga2_plan(4, 6, 2) == (4, [])


@pytest.mark.parametrize("population, budget", [(5, 37), (25, 275)])
def test_nsga2_spends_the_budget_and_keeps_each_objectives_best(population, budget):
    """Plain NSGA-II on the RAS genome: exactly the budget, trained on the
    comparison's schedule, reproducible, the global RNG untouched, mu
    survivors (25 included: no multiple of 4 needed), mutated children, and
    the best accuracy and robustness it measured among the survivors
    (selNSGA2 keeps a front's ends)."""
    fake = TradeOff()
    config = SearchConfig(population=population, children=2, mutations=2)
    budgeted = BudgetedEvaluator(fake, budget, seed=3, method="nsga2",
                                 schedule=lambda i: ras_generation(i, population, 2))
    state = random.getstate()
    outcome = run_method("nsga2", MethodContext(budgeted=budgeted, config=config, seed=3))
    assert random.getstate() == state
    assert len(fake.log) == budget == outcome.evaluations
    assert [g for _, g, _ in fake.log] == [ras_generation(i, population, 2)
                                           for i in range(budget)]
    assert outcome.objectives == ("accuracy", "robustness")
    assert len(outcome.population) == population
    records = budgeted.records
    assert all(records[i.evaluation].genome.id == i.genome.id for i in outcome.population)
    assert all(r.info["parent_id"] and r.info["mutations"] for r in records[population:])
    for key in ("accuracy", "robustness"):
        assert (max(i.metrics[key] for i in outcome.population)
                == max(r.metrics[key] for r in records))
    again = TradeOff()
    run_method("nsga2", MethodContext(
        budgeted=BudgetedEvaluator(again, budget, seed=3, method="nsga2",
                                   schedule=lambda i: ras_generation(i, population, 2)),
        config=config, seed=3))
    assert again.log == fake.log


def _mo_cfg(tmp_path, **kw):
    search = SearchConfig(population=5, children=2, mutations=2, full_every=100,
                          tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="mo")
    values = {"search": search, "budget": 17, "seeds": 1, "remeasure": 2, "assess": None,
              "methods": ("regularized", "ras", "nsga2", "ras_mo"), "out": str(tmp_path / "out")}
    values.update(kw)
    return CompareConfig(**values)


@pytest.mark.slow
def test_nsga2_and_ras_mo_cells_keep_the_remeasured_front(tmp_path):
    """--methods nsga2,ras_mo: each cell's result holds its front, every
    member re-measured on fresh seeds as the search trained it, the front's
    files (what assess --member reads) and the MLflow record; the
    single-objective cells keep their final population (search's values)."""
    from ras_deap.compare.runner import run_comparison
    from ras_deap.evolution import points_hypervolume
    from ras_deap.tracking import SearchTracker

    log = []
    result = run_comparison(_mo_cfg(tmp_path), evaluator_factory=lambda c: TradeOff(log),
                            log=lambda m: None)
    data = {r.data["method"]: r.data for r in result.runs}
    assert set(data) == {"regularized", "ras", "nsga2", "ras_mo"}
    for method in ("regularized", "ras"):
        assert "front" not in data[method] and len(data[method]["population"]) == 5
    for method in ("nsga2", "ras_mo"):
        cell = tmp_path / "out" / "cells" / f"{method}-seed0"
        front = data[method]["front"]
        assert front["objectives"] == ["accuracy", "robustness"] and front["front"]
        pop = data[method]["population"]
        assert len(pop) == 5
        members = front["front"]
        for m in members:
            again = m["remeasured"]
            assert again["trainings"] == 2 and len(again["seeds"]) == 2
            trained = [c for c in log if c[0] == m["genome_id"] and c[2] in again["seeds"]]
            assert len(trained) == 2 and {c[1] for c in trained} == {m["generation"]}
            assert again["objectives"]["accuracy"] == pytest.approx(
                statistics.fmean(again["accuracy"]))
            assert (cell / "front" / f"{m['genome_id']}.json").is_file()
        assert front["remeasured_hypervolume"] == pytest.approx(points_hypervolume(
            [(m["remeasured"]["objectives"]["accuracy"],
              m["remeasured"]["objectives"]["robustness"]) for m in members]))
        assert {m["genome_id"] for m in members} <= {p["genome_id"] for p in pop}
        assert (cell / "front.png").stat().st_size > 1000
        stored = json.loads((cell / "front.json").read_text())
        assert [m["genome_id"] for m in stored["front"]] == [m["genome_id"] for m in members]
        # each member names its MLflow run (assess --member logs on it)
        assert all(m["run_id"] for m in members) and stored["front"] == [
            {k: v for k, v in m.items() if k != "genome"} for m in members]
    assert all(m["evaluation"] is not None for m in data["nsga2"]["front"]["front"])

    client = SearchTracker(f"sqlite:///{tmp_path}/mlflow.db", "mo").client
    exp = client.get_experiment_by_name("mo").experiment_id
    for method in ("nsga2", "ras_mo"):
        run = client.get_run(data[method]["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.metrics["front_remeasured_hypervolume"] == pytest.approx(
            data[method]["front"]["remeasured_hypervolume"])
        assert run.data.metrics["front_size"] == len(data[method]["front"]["front"])
    tagged = client.search_runs(
        [exp], f"tags.`mlflow.parentRunId` = '{data['nsga2']['run_id']}' "
               "and tags.`ras_deap.front` = 'true'")
    assert ({r.info.run_id for r in tagged}
            == {m["run_id"] for m in data["nsga2"]["front"]["front"]})
    for m in data["ras_mo"]["front"]["front"]:  # the RAS search tagged its own
        assert client.get_run(m["run_id"]).data.tags["ras_deap.front"] == "true"


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [3, 12])
def test_nsga2_and_ras_mo_cells_resume_to_the_same_front(tmp_path, stop_after):
    """Killed after ``stop_after`` trainings, each cell resumes (nsga2 from
    its journal, ras_mo from its RAS checkpoint) without training again what
    it had trained, and ends with the uninterrupted run's winner and front."""
    from ras_deap.compare.runner import run_comparison

    def fronts(runs):
        return {r.data["method"]: ([(m["genome_id"], m["remeasured"]["objectives"])
                                    for m in r.data["front"]["front"]],
                                   r.data["outcome"]["best_genome"]["id"]) for r in runs}

    methods = ("nsga2", "ras_mo")
    whole = run_comparison(_mo_cfg(tmp_path / "a", methods=methods),
                           evaluator_factory=lambda c: TradeOff(), log=lambda m: None)
    for method in methods:
        cfg = _mo_cfg(tmp_path / method, methods=(method,))
        first = []
        with pytest.raises(KeyboardInterrupt):
            run_comparison(cfg, evaluator_factory=lambda c, log=first: TradeOff(log, stop_after),
                           log=lambda m: None)
        assert len(first) == stop_after
        second = []
        again = run_comparison(cfg, evaluator_factory=lambda c, log=second: TradeOff(log),
                               log=lambda m: None)
        assert fronts(again.runs)[method] == fronts(whole.runs)[method]
        extra = 1 + 2 * (1 + len(again.runs[0].data["front"]["front"]))  # re-measure, retrain
        assert len(second) == 17 - stop_after + extra
        if method == "nsga2":
            assert again.runs[0].data["replayed"] == stop_after


@pytest.mark.slow
def test_a_ras_cell_killed_with_its_curve_ahead_of_its_checkpoint_resumes(tmp_path):
    """A kill after an evaluation's curve line and before its checkpoint (written
    after MLflow's queued writes), and one tearing a line: the curve is cut to the
    checkpoint and the search resumes; it used to start over from scratch."""
    from ras_deap.compare.runner import run_comparison

    whole_log = []
    whole = run_comparison(_mo_cfg(tmp_path / "a", methods=("ras",)),
                           evaluator_factory=lambda c: TradeOff(whole_log), log=lambda m: None)
    cfg = _mo_cfg(tmp_path / "b", methods=("ras",))
    first = []
    with pytest.raises(KeyboardInterrupt):
        run_comparison(cfg, evaluator_factory=lambda c: TradeOff(first, 6), log=lambda m: None)
    curve = tmp_path / "b" / "out" / "cells" / "ras-seed0" / "ras_curve.jsonl"
    lines = curve.read_text().splitlines()
    assert len(lines) == 6
    curve.write_text("\n".join([*lines, lines[-1]]) + '\n{"best": 1.')
    second = []
    again = run_comparison(cfg, evaluator_factory=lambda c: TradeOff(second), log=lambda m: None)
    assert len(second) == len(whole_log) - 6  # nothing trained twice
    assert again.runs[0].data["outcome"]["curve"] == whole.runs[0].data["outcome"]["curve"]
    assert len(curve.read_text().splitlines()) == 17


def test_ras_mo_refuses_settings_a_multiobjective_search_cannot_take():
    with pytest.raises(ValueError, match=r"ras_mo.*niche_children"):
        CompareConfig(methods=("ras", "ras_mo"), search=SearchConfig(niche_children="rank"))
    CompareConfig(methods=("ras", "nsga2"), search=SearchConfig(niche_children="rank"))


def test_multiobjective_methods_are_named_not_run_by_default():
    args = build_parser().parse_args([])
    assert config_from_args(args).methods == ("random", "tpe", "mu_plus_lambda",
                                              "regularized", "ras")
    args = build_parser().parse_args(["--methods", "nsga2,ras_mo"])
    assert config_from_args(args).methods == ("nsga2", "ras_mo")


def test_a_sessions_machine_says_each_fact_once():
    """The manifest's machine record: the core count once (``cpus``, the key
    older sessions use), the CPU and kernels from the one CPU reader."""
    from ras_deap.compare.manifest import machine
    from ras_deap.evaluation.machine import machine_record

    info, here = machine(), machine_record()
    assert info["cpus"] == int(here["cores"]) and "cores" not in info
    assert {k: info[k] for k in ("cpu", "cpu_capability", "torch")} == {
        k: here[k] for k in ("cpu", "cpu_capability", "torch")}
