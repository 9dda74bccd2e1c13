"""Tests of ``ras_deap.tune``: Optuna studies of RAS's own hyperparameters.

Fast tests drive the real Optuna/MLflow/sqlite path with a scripted search
function (so pruning and failures happen on cue); the slow ones run real RAS
searches through :func:`ras_deap.search.run_search`.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
import sqlite3
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from ras_deap.config import ConfigError, SearchConfig
from ras_deap.evaluation.remeasure import remeasure_seeds
from ras_deap.genome.records import Model
from ras_deap.tracking.trials import StudyTracker
from ras_deap.tune import (
    Milestones,
    Objective,
    TuneError,
    TuneSettings,
    base_config,
    get_space,
    open_storage,
    open_study,
    reproduce_command,
    tune,
)
from ras_deap.tune.cli import build_parser, main, settings_from_args
from ras_deap.tune.report import format_report, summarise_study
from ras_deap.tune.runner import study_attrs

PARENT = "mlflow.parentRunId"
BEST_GENERATION = 2  # the generation the scripted search's best was evaluated in


def _settings(tmp: Path, **kw: Any) -> TuneSettings:
    values: dict[str, Any] = {
        "storage": f"sqlite:///{tmp}/db/studies.db", "tracking_uri": f"sqlite:///{tmp}/ml/m.db",
        "out_dir": str(tmp / "out"), "budget": 12, "startup_trials": 1, "n_trials": 3}
    values.update(kw)
    return TuneSettings(**values)


def _genome() -> Model:
    import random

    from ras_deap.genome.random_init import random_model

    return random_model(random.Random(0))


def _level(config: SearchConfig) -> float:
    """The scripted search's final (maximum) fitness for a config."""
    return 1.0 + config.mutations / 10 if config.mutations >= 5 else 0.1


class FakeEvaluator:
    """Stands in for the torch evaluator in the re-measurement: the fitness
    of a training is a fixed fraction of the scripted search's maximum (the
    maximum was a lucky run) plus a seed-dependent wobble, so the expected
    mean can be computed by hand from the re-measurement seeds."""

    def __init__(self, config: SearchConfig) -> None:
        self.seed = config.seed
        self.level = _level(config)
        self.calls: list[tuple[str, int, int]] = []

    @staticmethod
    def fitness(level: float, seed: int) -> float:
        return 0.9 * level + (seed % 7) / 100

    def evaluate(self, model: Model, generation: int, *, seed: int,
                 with_test: bool = False) -> Any:
        self.calls.append((model.id, generation, seed))
        fitness = self.fitness(self.level, seed)
        return SimpleNamespace(fitness=fitness, failure=None,
                               metrics={"accuracy": fitness / 2, "robustness": fitness / 2})


class FakeEvaluators:
    """``evaluator_factory`` for Objective/tune: one FakeEvaluator per trial."""

    def __init__(self) -> None:
        self.made: list[FakeEvaluator] = []

    def __call__(self, config: SearchConfig) -> FakeEvaluator:
        self.made.append(FakeEvaluator(config))
        return self.made[-1]


def _expected_remeasure(config: SearchConfig, repeats: int = 3) -> list[float]:
    """The fitness of each re-measuring training FakeEvaluator gives."""
    seeds = remeasure_seeds(config.seed, _genome().id, BEST_GENERATION, repeats, "tune")
    return [FakeEvaluator.fitness(_level(config), s) for s in seeds]


class ScriptedSearch:
    """Stands in for run_search: spends the budget generation by generation
    like the real loop and reports a fitness fixed by the trial's params
    (mutations >= 5 is "good"); ``children == 4`` makes the search crash."""

    def __init__(self) -> None:
        self.calls: list[SearchConfig] = []

    def __call__(self, config: SearchConfig, *, on_generation: Any, parent_run_id: Any,
                 progress: bool, final_training: bool) -> Any:
        self.calls.append(config)
        if config.children == 4:
            raise RuntimeError("scripted crash: out of memory")
        level = _level(config)
        evaluations, generation, best = 0, 0, 0.0
        while evaluations < config.max_evaluations:
            n = config.population if generation == 0 else config.population * config.children
            evaluations += min(n, config.max_evaluations - evaluations)
            best = level * evaluations / config.max_evaluations
            on_generation(generation, {"gen": generation, "max": best,
                                       "evaluations": float(evaluations)})
            generation += 1
        return SimpleNamespace(summary={"fitness": best, "best_id": "M-x", "accuracy": 0.9,
                                        "robustness": 0.4},
                               run_id=None, evaluations=evaluations, run_dir=Path("x"),
                               best=SimpleNamespace(genome=_genome(),
                                                    generation=BEST_GENERATION))


def _trial_runs(settings: TuneSettings, study_run_id: str) -> dict[int, Any]:
    tracker = StudyTracker(settings.tracking_uri, settings.experiment)
    return {int(r.data.tags["optuna.trial_number"]): r
            for r in tracker.trial_runs(study_run_id)}


# -- pieces ---------------------------------------------------------------------------

def test_milestones_report_every_passed_step_once() -> None:
    m = Milestones(5)
    assert m.passed(4) == []
    assert m.passed(12) == [5, 10]
    assert m.passed(12) == []
    assert m.passed(15) == [15]
    with pytest.raises(TuneError, match="report_every"):
        Milestones(0)


def test_evolution_space_sets_config_fields_and_respects_budget() -> None:
    base = SearchConfig(max_evaluations=10)
    params = {"mutations": 3, "children": 1, "population": 5, "layer_limit": 20,
              "block_limit": 7, "subset_size": 400, "full_every": 2, "lr": 0.003}
    changes = get_space("evolution").suggest(optuna.trial.FixedTrial(params), base)
    assert changes == params
    assert base.replace(**changes).population == 5
    # the budget caps the initial clusters at half of it (here 5): 6 is outside the space
    with pytest.warns(UserWarning, match="out of the range"):
        get_space("evolution").suggest(optuna.trial.FixedTrial({**params, "population": 6}),
                                       base)


def test_spectrum_space_replicate_shifts_seed() -> None:
    base = SearchConfig(seed=7, max_evaluations=10)
    changes = get_space("spectrum").suggest(
        optuna.trial.FixedTrial({"distance": "normalized", "replicate": 2}), base)
    assert changes == {"distance": "normalized", "seed": 9}


def test_reproduce_command_parses_back_to_the_same_search() -> None:
    from ras_deap.run import build_parser, config_from_args

    config = SearchConfig(max_evaluations=30, generations=30, mutations=7, lr=0.00123,
                          distance="normalized", augment=True, subset_size=350,
                          run_dir="/tmp/somewhere", experiment="x")
    command = reproduce_command(config.to_dict())
    assert command.startswith("python -m ras_deap.run --generations 30")
    assert "--run-dir" not in command and "--experiment" not in command
    args = build_parser().parse_args(shlex.split(command)[3:])
    again = config_from_args(args)
    keep = ("run_dir", "run_name", "experiment", "tracking_uri")
    assert {k: v for k, v in again.to_dict().items() if k not in keep} == \
        {k: v for k, v in config.to_dict().items() if k not in keep}


def test_base_config_budget_and_full_epochs(tmp_path: Path) -> None:
    base = base_config(_settings(tmp_path, budget=20, overrides={"patience": 1}))
    assert base.max_evaluations == 20 and base.generations == 20
    assert base.full_epochs == base.max_epochs == 3  # smoke: never 50 epochs on a full gen
    assert base.patience == 1
    assert Path(base.run_dir) == tmp_path / "out" / "ras-evolution" / "runs"


@pytest.mark.parametrize(("overrides", "match"), [
    ({"max_evaluations": 3}, "--max-evaluations"),
    ({"mutations": 3}, "tunes mutations"),
    ({"no_such_field": 1}, "no field 'no_such_field'"),
])
def test_settings_refuse_overrides_the_study_owns(tmp_path: Path, overrides: dict[str, Any],
                                                  match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _settings(tmp_path, overrides=overrides)


# -- storage ---------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "match"), [
    ("nonsense", "not a database URL"),
    ("nosuchdialect://host/db", "cannot open the database"),
    ("postgresql://alice:s3cret@localhost:1/optuna", "driver"),
])
def test_bad_storage_url_is_a_clear_error(url: str, match: str) -> None:
    with pytest.raises(TuneError, match=match) as info:
        open_storage(url)
    assert "s3cret" not in str(info.value)  # passwords are never printed


def test_sqlite_storage_folder_is_created(tmp_path: Path) -> None:
    open_storage(f"sqlite:///{tmp_path}/a/b/c.db")
    assert (tmp_path / "a" / "b" / "c.db").is_file()


def test_cli_bad_storage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--storage", "nonsense", "--out-dir", str(tmp_path), "--no-mlflow"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: storage='nonsense' is not a database URL" in err
    assert main(["--max-evaluations", "0", "--no-mlflow"]) == 2
    assert "budget=0" in capsys.readouterr().err


def test_existing_study_with_other_direction_or_settings_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(storage=url, study_name="minimised", direction="minimize")
    with pytest.raises(TuneError, match=r"direction\(s\) \['minimize'\].*maximises"):
        open_study("minimised", url, attrs={"space": "evolution"})
    open_study("mine", url, attrs={"space": "evolution", "budget": 10})
    with pytest.raises(TuneError, match=r"budget: study has 10 \(now 12\)"):
        open_study("mine", url, attrs={"space": "evolution", "budget": 12})
    assert main(["--storage", url, "--study-name", "minimised", "--no-mlflow",
                 "--out-dir", str(tmp_path)]) == 2


# -- studies through the real Optuna / MLflow / sqlite path ---------------------------

@pytest.mark.slow  # ~8-12 s: 5 trials with MLflow sqlite logging and plots
def test_study_prunes_fails_resumes_and_logs_mlflow(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path)
    study = open_study(str(settings.study_name), settings.storage,
                       attrs=study_attrs(settings, base_config(settings)))
    study.enqueue_trial({"mutations": 6, "children": 1, "population": 2})  # good: completes
    study.enqueue_trial({"mutations": 2, "children": 1, "population": 2})  # bad: pruned
    study.enqueue_trial({"mutations": 7, "children": 4})  # the search crashes: FAIL
    search = ScriptedSearch()
    outcome = tune(settings, search_fn=search, evaluator_factory=FakeEvaluators())
    states = {t.number: t.state.name for t in outcome.study.trials}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "FAIL"}
    trials = outcome.study.trials
    # the value is the best architecture re-measured on 3 fresh seeds, not the maximum
    remeasured = statistics.fmean(_expected_remeasure(search.calls[0]))
    assert trials[0].value == pytest.approx(remeasured)
    assert trials[0].user_attrs["search_best_fitness"] == pytest.approx(1.6)
    assert trials[0].user_attrs["remeasure_repeats"] == 3
    assert all(c.max_evaluations == 12 for c in search.calls)
    # pruned in generation 1 (never in generation 0: random models), after the warm-up
    # (budget // 4 = 3 evaluations): generation 0 spent 2 evaluations, generation 1 two more
    assert max(trials[1].intermediate_values) == 4
    assert "RuntimeError: scripted crash" in trials[2].user_attrs["failure"]
    # every trial, failed ones included, says which CPU and kernels it ran on
    from ras_deap.evaluation.machine import machine_record
    here = machine_record()
    assert all(t.user_attrs["machine"]["cpu_capability"] == here["cpu_capability"]
               and t.user_attrs["machine"]["cpu"] == here["cpu"] for t in trials)
    out = capsys.readouterr().out
    assert "trial 2 FAIL" in out and "scripted crash" in out
    assert "python -m ras_deap.run" in out and "--mutations 6" in out
    folder = tmp_path / "out" / "ras-evolution"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["best_trial"] == 0 and summary["best_params"]["mutations"] == 6
    assert "at least 2 complete trials" in summary["importance_note"]
    assert (folder / "optimization_history.png").stat().st_size > 1000
    assert (folder / "intermediate_values.png").is_file()
    with open(folder / "trials.csv", newline="") as fh:
        cpus = [row["cpu"] for row in csv.DictReader(fh)]
    assert cpus == [f"{here['cpu']} ({here['cpu_capability']})"] * 3

    runs = _trial_runs(settings, outcome.study_run_id)
    assert {n: (r.info.status, r.data.tags["optuna.state"]) for n, r in runs.items()} == {
        0: ("FINISHED", "COMPLETE"), 1: ("KILLED", "PRUNED"), 2: ("FAILED", "FAIL")}
    assert runs[0].data.metrics["value"] == pytest.approx(remeasured)
    assert runs[0].data.metrics["search_best_fitness"] == pytest.approx(1.6)
    assert runs[0].data.metrics["remeasured_sd"] == pytest.approx(
        trials[0].user_attrs["remeasured_sd"])
    assert runs[0].data.metrics["remeasured_ci95"] > 0
    assert runs[0].data.params["mutations"] == "6"
    assert runs[0].data.params["config.max_evaluations"] == "12"
    assert "scripted crash" in runs[2].data.tags["failure"]
    assert "pruned after" in runs[1].data.tags["failure"]

    # resume: the same study and the same MLflow study run get the new trials
    again = tune(_settings(tmp_path, n_trials=2), search_fn=ScriptedSearch(),
                 evaluator_factory=FakeEvaluators())
    assert again.new_trials == [3, 4]
    assert len(again.study.trials) == 5
    assert again.study_run_id == outcome.study_run_id
    assert set(_trial_runs(settings, outcome.study_run_id)) == {0, 1, 2, 3, 4}
    # the continued sampler does not replay the first session's suggestions
    first = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert not {json.dumps(t.params, sort_keys=True) for t in again.study.trials[3:]} & first


def test_spectrum_grid_runs_each_variant_on_the_same_seeds(tmp_path: Path) -> None:
    settings = _settings(tmp_path, space="spectrum", n_trials=None, replicates=2, track=False,
                         overrides={"mutations": 6})
    search = ScriptedSearch()
    outcome = tune(settings, search_fn=search, evaluator_factory=FakeEvaluators(),
                   verbose=False)
    assert sorted((c.distance, c.seed) for c in search.calls) == [
        ("normalized", 0), ("normalized", 1), ("raw", 0), ("raw", 1)]
    assert set(outcome.report.by_category["distance"]) == {"raw", "normalized"}
    assert outcome.report.by_category["distance"]["raw"]["n"] == 2
    # the grid is done: running it again adds nothing
    assert tune(settings, search_fn=search, evaluator_factory=FakeEvaluators(),
                verbose=False).new_trials == []


def test_objective_needs_a_budget() -> None:
    with pytest.raises(TuneError, match="max_evaluations"):
        Objective(SearchConfig(), get_space("evolution"), study_name="x")


# -- the value: the best architecture re-measured, not the luckiest maximum -------------

def _one_trial(objective: Objective, params: dict[str, Any]) -> optuna.trial.FrozenTrial:
    study = optuna.create_study(direction="maximize", storage=optuna.storages.InMemoryStorage())
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    return study.trials[0]


def test_objective_value_is_the_remeasured_mean_not_the_search_maximum() -> None:
    base = SearchConfig(max_evaluations=12, seed=5)
    factory = FakeEvaluators()
    search = ScriptedSearch()
    objective = Objective(base, get_space("evolution"), study_name="x", search_fn=search,
                          evaluator_factory=factory)
    assert objective.remeasure == 3  # the default: at least 3 trainings
    trial = _one_trial(objective, {"mutations": 6, "children": 1, "population": 2})
    assert trial.state.name == "COMPLETE"
    values = _expected_remeasure(search.calls[0])
    assert trial.value == pytest.approx(statistics.fmean(values))
    assert trial.value != pytest.approx(1.6)  # the search's maximum is only an attribute
    attrs = trial.user_attrs
    assert attrs["search_best_fitness"] == pytest.approx(1.6)
    assert attrs["remeasured_fitness"] == pytest.approx(values)
    assert attrs["remeasured_sd"] == pytest.approx(statistics.stdev(values))
    # t_{0.975, 2} = 4.302653 for a 95 % interval from 3 trainings
    assert attrs["remeasured_ci95"] == pytest.approx(
        4.302653 * statistics.stdev(values) / math.sqrt(3), rel=1e-6)
    assert attrs["remeasure_repeats"] == 3 and attrs["remeasure_failures"] == 0
    assert attrs["trainings"] == 12 + 3  # the re-measurement is counted, not hidden
    # re-measured with the trial's own evaluator, as the generation the best was found in,
    # on seeds that are fresh and distinct
    (fake,) = factory.made
    assert fake.seed == 5 and {(g, m) for m, g, _ in fake.calls} == {
        (BEST_GENERATION, _genome().id)}
    seeds = [s for _, _, s in fake.calls]
    assert len(set(seeds)) == 3


def test_objective_remeasure_count_is_threaded_and_validated(tmp_path: Path) -> None:
    base = SearchConfig(max_evaluations=12)
    factory = FakeEvaluators()
    search = ScriptedSearch()
    objective = Objective(base, get_space("evolution"), study_name="x", search_fn=search,
                          evaluator_factory=factory, remeasure=5)
    trial = _one_trial(objective, {"mutations": 6, "children": 1, "population": 2})
    assert len(factory.made[0].calls) == 5 and trial.user_attrs["remeasure_repeats"] == 5
    assert trial.value == pytest.approx(statistics.fmean(
        _expected_remeasure(search.calls[0], repeats=5)))
    with pytest.raises(TuneError, match="remeasure"):
        Objective(base, get_space("evolution"), study_name="x", remeasure=0)
    with pytest.raises(ConfigError, match="remeasure"):
        _settings(tmp_path, remeasure=0)
    args = build_parser().parse_args(["--remeasure", "4"])
    assert settings_from_args(args).remeasure == 4
    assert settings_from_args(build_parser().parse_args([])).remeasure == 3


def test_objective_averages_the_tuning_seeds(tmp_path: Path) -> None:
    """--tuning-seeds 3: one search per seed (seed, seed+1, seed+2), each winner
    re-measured; the value is the mean of the three re-measured means."""
    base = SearchConfig(max_evaluations=12, seed=100)
    factory = FakeEvaluators()
    search = ScriptedSearch()
    objective = Objective(base, get_space("evolution"), study_name="x", search_fn=search,
                          evaluator_factory=factory, seeds=3)
    trial = _one_trial(objective, {"mutations": 6, "children": 1, "population": 2})
    assert [c.seed for c in search.calls] == [100, 101, 102]
    assert len({c.run_name for c in search.calls}) == 3
    per_seed = [statistics.fmean(_expected_remeasure(c)) for c in search.calls]
    assert trial.user_attrs["seed_values"] == pytest.approx(per_seed)
    assert trial.value == pytest.approx(statistics.fmean(per_seed))
    assert trial.user_attrs["seeds"] == [100, 101, 102]
    assert trial.user_attrs["trainings"] == 3 * 12 + 3 * 3
    with pytest.raises(TuneError, match="seeds"):
        Objective(base, get_space("evolution"), study_name="x", seeds=0)
    args = build_parser().parse_args(["--tuning-seeds", "5", "--seed", "100"])
    assert settings_from_args(args).tuning_seeds == 5


def test_a_retried_trial_resumes_the_searches_of_the_killed_one(tmp_path: Path) -> None:
    """A trial retried after a kill (Optuna's RetryHeartbeatStaleTrialCallback: same
    params, retry_history) gets the killed trial's run folders, and a search
    with a checkpoint there is resumed, not trained again."""
    from ras_deap.checkpoint import CHECKPOINT_NAME
    from ras_deap.tune.objective import trial_run_name

    base = SearchConfig(max_evaluations=12, seed=100, run_dir=str(tmp_path / "runs"))
    seen: list[dict[str, Any]] = []
    scripted = ScriptedSearch()

    def search(config: SearchConfig, **kwargs: Any) -> Any:
        seen.append({"run_name": config.run_name, "resume": kwargs.pop("resume", None),
                     "new_run_if_lost": kwargs.pop("new_run_if_lost", False)})
        return scripted(config, **kwargs)

    objective = Objective(base, get_space("evolution"), study_name="x", search_fn=search,
                          evaluator_factory=FakeEvaluators(), seeds=2)
    study = optuna.create_study(direction="maximize", storage=optuna.storages.InMemoryStorage())
    params = {"mutations": 6, "children": 1, "population": 2, "layer_limit": 10,
              "block_limit": 10, "subset_size": 500, "full_every": 3, "lr": 0.001}
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    first = [c["run_name"] for c in seen]
    assert first[0].startswith("trial0000-seed100-") and first[1].startswith("trial0000-seed101-")
    assert all(c["resume"] is None for c in seen)
    # the killed trial left a checkpoint for its first seed; its retry (trial 1) resumes it
    folder = tmp_path / "runs" / first[0]
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_NAME).write_text("{}")
    done = study.trials[0]
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=done.params,
        distributions=done.distributions, system_attrs={"failed_trial": 0,
                                                        "retry_history": [0]}))
    seen.clear()
    study.optimize(objective, n_trials=1)
    assert [c["run_name"] for c in seen] == first
    assert seen[0]["resume"] == folder and seen[1]["resume"] is None
    # in a fresh checkout (the study and its checkpoints committed, its MLflow store not)
    assert seen[0]["new_run_if_lost"] and not seen[1]["new_run_if_lost"]
    # another trial's params never share a folder, whatever its number
    other = study.ask({"mutations": optuna.distributions.IntDistribution(1, 10)})
    assert trial_run_name(other, 100) != first[0]


def test_cli_bad_remeasure_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--remeasure", "0", "--no-mlflow", "--out-dir", str(tmp_path),
                 "--storage", f"sqlite:///{tmp_path}/s.db"]) == 2
    assert "remeasure=0" in capsys.readouterr().err


def _study_with(n: int, n_params: int) -> optuna.Study:
    study = optuna.create_study(direction="maximize", storage=optuna.storages.InMemoryStorage(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(n):
        trial = study.ask()
        xs = [trial.suggest_float(f"p{j}", 0, 1) for j in range(n_params)]
        trial.set_user_attr("remeasured_sd", 0.05)
        trial.set_user_attr("remeasured_ci95", 0.12)
        trial.set_user_attr("remeasure_repeats", 3)
        trial.set_user_attr("search_best_fitness", 1.9)
        study.tell(trial, xs[0] + 0.01 * i)
    return study


def test_importances_from_few_trials_carry_a_warning() -> None:
    report = summarise_study(_study_with(8, 8))
    assert report.importances  # still computed and shown ...
    assert not report.importances_reliable  # ... but flagged: 8 < max(20, 4 x 8)
    assert "rest on 8 complete trial(s) for 8 parameter(s)" in report.importance_warning
    assert "too few trials for them to mean anything" in report.importance_warning
    text = format_report(report)
    assert report.importance_warning in text and "NOT meaningful" in text
    assert report.to_dict()["importances_reliable"] is False
    # one trial: no importances at all, and still the warning
    one = summarise_study(_study_with(1, 2))
    assert one.importances == {} and "at least 2 complete trials" in one.importance_note
    assert one.importance_warning is not None
    # enough trials for few parameters: no warning
    many = summarise_study(_study_with(20, 2))
    assert many.importances_reliable and many.importance_warning is None
    assert "WARNING" not in format_report(many)


def test_report_prints_the_remeasured_value_with_its_spread() -> None:
    report = summarise_study(_study_with(3, 1))
    line = format_report(report)
    assert (f"best trial {report.best_trial}: re-measured fitness (accuracy + robustness) "
            f"{report.best_value:.4f} ± 0.0500 (95% CI ±0.1200) over 3 fresh trainings; "
            f"search maximum 1.9000") in line


def test_tune_output_and_summary_flag_few_trial_importances(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path, n_trials=2, track=False)
    study = open_study(str(settings.study_name), settings.storage,
                       attrs=study_attrs(settings, base_config(settings)))
    study.enqueue_trial({"mutations": 6, "children": 1, "population": 2})
    study.enqueue_trial({"mutations": 8, "children": 2, "population": 3})
    outcome = tune(settings, search_fn=ScriptedSearch(), evaluator_factory=FakeEvaluators())
    assert [t.state.name for t in outcome.study.trials] == ["COMPLETE", "COMPLETE"]
    out = capsys.readouterr().out
    assert ("each trial costs 15 trainings: a search of 12 evaluations + 3 trainings "
            "re-measuring") in out
    assert "re-measured fitness (accuracy + robustness)" in out and "search maximum" in out
    assert "WARNING: parameter importances rest on 2 complete trial(s)" in out
    folder = tmp_path / "out" / "ras-evolution"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["importances_reliable"] is False
    assert "too few trials" in summary["importance_warning"]
    assert summary["best_attrs"]["search_best_fitness"] > summary["best_value"]
    header = (folder / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"remeasured_sd", "remeasured_ci95", "search_best_fitness"} <= set(header)


def test_study_of_the_old_maximum_value_is_not_continued(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    old = {k: v for k, v in study_attrs(settings, base_config(settings)).items()
           if k != "objective"}
    open_study("old", settings.storage, attrs=old)
    with pytest.raises(TuneError, match="objective"):
        open_study("old", settings.storage, attrs=study_attrs(settings, base_config(settings)))


# -- real searches ---------------------------------------------------------------------

def _real_settings(tmp_path: Path, **kw: Any) -> TuneSettings:
    return _settings(tmp_path, budget=6, n_trials=2, overrides={"patience": 1}, **kw)


@pytest.mark.slow
def test_real_study_nests_search_runs_under_trial_runs(tmp_path: Path) -> None:
    settings = _real_settings(tmp_path, space="spectrum", replicates=1)
    settings.overrides.update(max_epochs=1, population=3, subset_size=200)
    outcome = tune(settings)
    trials = outcome.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert all(0 < t.value <= 2 for t in trials)
    assert all(t.user_attrs["evaluations"] == 6 for t in trials)
    tracker = StudyTracker(settings.tracking_uri, settings.experiment)
    for number, run in _trial_runs(settings, outcome.study_run_id).items():
        search_id = trials[number].user_attrs["search_run_id"]
        search = tracker.client.get_run(search_id)
        assert search.data.tags[PARENT] == run.info.run_id
        assert search.info.status == "FINISHED"
        children = tracker.client.search_runs(
            [tracker.experiment_id], filter_string=f"tags.`{PARENT}` = '{search_id}'")
        assert len(children) == 6  # one run per evaluated individual
        assert run.data.metrics["value"] == pytest.approx(trials[number].value)
        best = json.loads(Path(tracker.client.download_artifacts(
            run.info.run_id, "best_genome.json", str(tmp_path))).read_text())
        assert Model.from_dict(best).id == trials[number].user_attrs["best_id"]


@pytest.mark.slow
def test_real_search_is_pruned_through_on_generation(tmp_path: Path) -> None:
    settings = _real_settings(tmp_path)
    base = base_config(settings).replace(max_epochs=1, patience=1)
    tracker = StudyTracker(settings.tracking_uri, settings.experiment)
    objective = Objective(base, get_space("evolution"), study_name="prune", tracker=tracker,
                          report_every=2)
    # every fitness is <= 2, so this pruner prunes at the first report
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=100.0))
    # generation 0: 2 evaluations (never pruned), generation 1: 2 more, then pruned
    study.enqueue_trial({"population": 2, "children": 1, "subset_size": 200, "full_every": 10})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "PRUNED"
    assert math.isfinite(trial.value) and trial.value < 100
    assert max(trial.intermediate_values) == 4
    run = tracker.client.get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.data.tags["optuna.state"] == "PRUNED"
    searches = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.`{PARENT}` = '{run.info.run_id}'")
    assert [s.info.status for s in searches] == ["KILLED"]  # the search stopped early
    db = tmp_path / "ml" / "m.db"
    with sqlite3.connect(db) as con:  # the store is a real MLflow sqlite database
        assert con.execute("select count(*) from runs").fetchone()[0] >= 2


def test_an_interrupted_trial_is_retried_once_with_its_params(tmp_path: Path) -> None:
    """Ctrl-C / SIGTERM ends the running trial FAIL; rerunning the command
    queues it again in the same retry series (so its searches resume), and
    only once; a trial that failed by its own error is not retried."""
    from ras_deap.errors import Terminated

    params = {"mutations": 6, "children": 1, "population": 2}

    class Interrupting(ScriptedSearch):
        def __call__(self, config: SearchConfig, **kwargs: Any) -> Any:
            if config.mutations == 6:
                raise Terminated()
            return super().__call__(config, **kwargs)

    settings = _settings(tmp_path, n_trials=1, track=False, enqueue=(params,))
    with pytest.raises(KeyboardInterrupt):
        tune(settings, search_fn=Interrupting(), evaluator_factory=FakeEvaluators())
    study = open_study(str(settings.study_name), settings.storage,
                       attrs=study_attrs(settings, base_config(settings)))
    cut = study.trials[0]
    assert cut.state.name == "FAIL" and cut.user_attrs["interrupted"] is True
    study.enqueue_trial({"mutations": 7, "children": 4})  # fails by its own error
    search = ScriptedSearch()
    again = tune(_settings(tmp_path, n_trials=2, track=False, enqueue=(params,)),
                 search_fn=search, evaluator_factory=FakeEvaluators())
    trials = again.study.trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "COMPLETE"]
    retry = trials[2]
    assert retry.params == cut.params and retry.system_attrs["retry_history"] == [0]
    # same series, same run folders: the cut searches resume instead of starting over
    assert search.calls[-1].run_name.startswith("trial0000-")
    # the enqueued reference was not queued a second time (it is in the study)
    third = tune(_settings(tmp_path, n_trials=1, track=False, enqueue=(params,)),
                 search_fn=ScriptedSearch(), evaluator_factory=FakeEvaluators())
    assert [t.system_attrs.get("retry_history") for t in third.study.trials[3:]] == [None]
    assert third.study.trials[3].params != params


def test_a_study_cut_before_the_interrupted_attribute_is_retried(tmp_path: Path) -> None:
    from ras_deap.tune.runner import retry_interrupted

    study = optuna.create_study(direction="maximize", storage=optuna.storages.InMemoryStorage())
    dist = {"mutations": optuna.distributions.IntDistribution(1, 10)}
    for failure in ("Terminated: ", "KeyboardInterrupt: ", "RuntimeError: boom"):
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, params={"mutations": 3},
            distributions=dist, user_attrs={"failure": failure}))
    assert retry_interrupted(study) == [0, 1]
    assert retry_interrupted(study) == []  # once
    waiting = [t for t in study.trials if t.state.name == "WAITING"]
    assert [t.system_attrs["retry_history"] for t in waiting] == [[0], [1]]


@pytest.mark.parametrize("argv, match", [
    (["--space", "learning", "--enqueue", "mutations=5,population=3"], "not population"),
    (["--space", "learning", "--enqueue", "oops"], "KEY=VALUE"),
])
def test_cli_bad_enqueue_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], match: str) -> None:
    try:  # argparse exits; a TuneError returns
        code = main([*argv, "--storage", f"sqlite:///{tmp_path}/s.db", "--no-mlflow"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert match in capsys.readouterr().err


def test_cli_enqueue_parses_one_trial_per_flag() -> None:
    args = build_parser().parse_args(["--space", "learning", "--enqueue",
                                      "mutations=5,niche_children=equal,screen_epochs=0",
                                      "--enqueue", "mutations=3"])
    assert settings_from_args(args).enqueue == (
        {"mutations": 5, "niche_children": "equal", "screen_epochs": 0}, {"mutations": 3})
