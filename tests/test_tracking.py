"""The MLflow layer against a real SQLite store in a temporary folder."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from ras_deap.genome import SPECTRUM_FEATURES, Model, random_model, spectrum
from ras_deap.tracking import (
    DEFAULT_TRACKING_URI,
    IndividualRecord,
    SearchTracker,
    flatten_config,
    resolve_tracking,
)

EXPERIMENT = "test_tracking"  # only the `logged` fixture's search; other tests use "others"


def record(i: int, generation: int = 0, failure: str | None = None, seed: int = 0
           ) -> IndividualRecord:
    model = random_model(random.Random(seed * 1000 + i))
    return IndividualRecord(
        key=f"g{generation}-i{i}", genome_id=model.id, generation=generation, index=i,
        cluster=i % 2, parent_id=None if generation == 0 else "M-parent",
        mutations=[] if generation == 0 else ["add_layer", "swap_layer"],
        fitness=float("nan") if failure else 0.5 + i / 100,
        metrics={"accuracy": 0.9 - i / 100, "robustness": 0.1 * i, "robustness_cell_0": 0.25,
                 "param_count": 12345.0 + i, "train_seconds": 1.5},
        spectrum=dict(zip(SPECTRUM_FEATURES, spectrum(model), strict=True)),
        genome=model.to_dict(), failure=failure)


@pytest.fixture(scope="module")
def shared_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module: creating an MLflow database takes ~2 s."""
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture()
def uri(shared_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # nothing may land in the repository
    return shared_uri


@pytest.fixture(scope="module")
def logged(shared_uri: str, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, str, list[IndividualRecord], list[str]]:
    config = {"population": 4, "evaluation": {"epochs": 1, "attacks": ["pixel", "fgsm"]},
              "seed": 7, "long": "x" * 7000}
    records = [record(0), record(1), record(2, failure="RuntimeError: CUDA out of memory")]
    with SearchTracker(shared_uri, experiment=EXPERIMENT) as tracker:
        run_id = tracker.start_search(config, {"dataset": "digits", "seed": "7"}, run_name="s1")
        ids = [tracker.log_individual(r) for r in records]
        tracker.log_generation(0, {"best_fitness": 0.52, "mean_fitness": 0.51})
        tracker.log_generation(1, {"best_fitness": 0.6, "mean_fitness": 0.55})
        tracker.log_dict({"hello": [1, 2]}, "summary/summary.json")
        weights = tmp_path_factory.mktemp("weights") / "best.pt"
        weights.write_bytes(b"\x00weights")
        tracker.log_artifact(weights, "best_model")
    return tracker.tracking_uri, run_id, records, ids


def test_parent_and_children_are_nested(logged, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, run_id, records, ids = logged
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for the fluent mlflow.search_runs
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT],
                              filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(runs["run_id"]) == sorted(ids)
    assert set(runs["tags.ras_deap.key"]) == {r.key for r in records}
    parent = mlflow.search_runs(experiment_names=[EXPERIMENT],
                                filter_string="tags.`ras_deap.role` = 'search'")
    assert list(parent["run_id"]) == [run_id]
    assert parent["status"][0] == "FINISHED"
    assert parent["tags.dataset"][0] == "digits"
    assert parent["tags.ras_deap.version"][0]


def test_parent_params_metrics_and_artifacts(logged) -> None:
    uri, run_id, _, _ = logged
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.params["evaluation.epochs"] == "1"
    assert json.loads(run.data.params["evaluation.attacks"]) == ["pixel", "fgsm"]
    assert len(run.data.params["long"]) == 6000
    history = client.get_metric_history(run_id, "best_fitness")
    assert [(m.step, m.value) for m in history] == [(0, 0.52), (1, 0.6)]
    paths = {a.path for a in client.list_artifacts(run_id, "best_model")}
    assert paths == {"best_model/best.pt"}
    local = client.download_artifacts(run_id, "summary/summary.json")
    assert json.loads(Path(local).read_text()) == {"hello": [1, 2]}


def test_child_content_round_trips(logged) -> None:
    uri, _, records, ids = logged
    client = MlflowClient(uri)
    for rec, child_id in zip(records, ids, strict=True):
        run = client.get_run(child_id)
        assert run.info.run_name == f"g000-{rec.genome_id}"
        assert run.data.params["generation"] == "0"
        assert run.data.params["cluster"] == str(rec.cluster)
        assert run.data.tags["genome_id"] == rec.genome_id
        assert run.data.metrics["param_count"] == rec.metrics["param_count"]
        assert run.data.metrics["robustness_cell_0"] == 0.25
        for name in SPECTRUM_FEATURES:
            assert run.data.metrics[f"spectrum_{name}"] == rec.spectrum[name]
        path = client.download_artifacts(child_id, "genome.json")
        model = Model.from_dict(json.loads(Path(path).read_text()))
        assert model.id == rec.genome_id
    failed = client.get_run(ids[2])
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure"] == "RuntimeError: CUDA out of memory"
    assert client.get_run(ids[0]).info.status == "FINISHED"
    assert "failure" not in client.get_run(ids[0]).data.tags


def test_same_key_twice_makes_one_run(uri: str) -> None:
    tracker = SearchTracker(uri, experiment="others")
    run_id = tracker.start_search({"a": 1}, {})
    first = tracker.log_individual(record(0))
    assert tracker.log_individual(record(0)) == first
    assert tracker.logged_keys() == {"g0-i0": first}
    tracker.end_search()
    children = MlflowClient(tracker.tracking_uri).search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == 1


def test_resume_does_not_duplicate(uri: str) -> None:
    first = SearchTracker(uri, experiment="others")
    run_id = first.start_search({"a": 1, "generations": 2}, {"seed": "1"})
    ids = [first.log_individual(record(i)) for i in range(2)]
    # a crash half-way through logging a third individual leaves a RUNNING child
    half = first.client.create_run(first.experiment_id, run_name="partial", tags={
        "mlflow.parentRunId": run_id, "ras_deap.key": "g0-i2"}).info.run_id
    first.end_search("KILLED")

    with pytest.warns(UserWarning, match="generations"):
        second = SearchTracker(uri, experiment="others")
        assert second.start_search({"a": 1, "generations": 5}, {"seed": "1"},
                                   resume_run_id=run_id) == run_id
    client = second.client
    assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_run(half).info.lifecycle_stage == "deleted"
    assert second.logged_keys() == {"g0-i0": ids[0], "g0-i1": ids[1]}
    assert second.log_individual(record(1)) == ids[1]
    new = second.log_individual(record(2))
    second.end_search()
    children = client.search_runs([second.experiment_id],
                                  f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(r.info.run_id for r in children) == sorted([*ids, new])
    tags = client.get_run(run_id).data.tags
    assert tags["ras_deap.resumes"] == "1"
    assert json.loads(tags["ras_deap.resume1.config_changes"]) == {
        "generations": {"logged": "2", "now": "5"}}
    assert client.get_run(run_id).info.status == "FINISHED"


def test_resume_of_unknown_run_is_a_clear_error(uri: str) -> None:
    with pytest.raises(ValueError, match="resume_run_id"):
        SearchTracker(uri, experiment="others").start_search(
            {}, {}, resume_run_id="0123456789abcdef0123456789abcdef")


def test_nested_under_a_given_parent(uri: str) -> None:
    outer = SearchTracker(uri, experiment="others")
    trial = outer.start_search({"study": "x"}, {}, run_name="trial-0")
    inner = SearchTracker(uri, experiment="others")
    search = inner.start_search({"a": 1}, {}, parent_run_id=trial)
    assert inner.client.get_run(search).data.tags["mlflow.parentRunId"] == trial
    inner.end_search()
    outer.end_search()


@pytest.mark.parametrize(("error", "status"), [(RuntimeError, "FAILED"),
                                                (KeyboardInterrupt, "KILLED")])
def test_context_manager_status_on_errors(uri: str, error: type[BaseException],
                                          status: str) -> None:
    with pytest.raises(error), SearchTracker(uri, experiment="others") as tracker:
        tracker.start_search({}, {})
        raise error("stop")
    run = tracker.client.get_run(tracker.run_id)
    assert run.info.status == status
    assert run.data.tags["failure"].startswith(error.__name__)


def test_bad_metric_value_names_the_key(uri: str) -> None:
    tracker = SearchTracker(uri, experiment="others")
    tracker.start_search({}, {})
    with pytest.raises(ValueError, match="accuracy"):
        tracker.log_generation(0, {"accuracy": "high"})
    tracker.end_search()


def test_default_uri_creates_mlruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri, artifacts = resolve_tracking(None)
    assert (tmp_path / "mlruns").is_dir()
    assert uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert artifacts == str(tmp_path / "mlruns" / "artifacts")
    assert resolve_tracking(DEFAULT_TRACKING_URI) == (uri, artifacts)
    assert resolve_tracking("http://mlflow.example:5000") == ("http://mlflow.example:5000", None)


def test_default_store_keeps_everything_in_mlruns(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SearchTracker(experiment="others") as tracker:
        tracker.start_search({"a": 1}, {})
        child = tracker.log_individual(record(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlruns"]
    uri = tracker.artifact_location
    assert Path(uri, tracker.client.get_run(child).info.run_id).is_dir()
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert tracker.ui_command().startswith(
        f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert tracker.run_id in tracker.ui_command()


def test_flatten_config() -> None:
    flat = flatten_config({"a": {"b": {"c": 1}, "d": None}, "e f": [1, "x"], "g?": True,
                           "p": Path("/x/y")})
    assert flat == {"a.b.c": "1", "a.d": "None", "e f": '[1, "x"]', "g_": "True", "p": "/x/y"}

    @dataclass
    class Inner:
        epochs: int = 2

    @dataclass
    class Config:
        seed: int = 1
        inner: Inner = field(default_factory=Inner)

    assert flatten_config(Config()) == {"seed": "1", "inner.epochs": "2"}
    with pytest.raises(TypeError, match="config"):
        flatten_config(["not", "a", "dict"])
