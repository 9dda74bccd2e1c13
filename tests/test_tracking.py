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
        metrics={"accuracy": 0.9 - i / 100, "robustness": 0.1 * i, "robustness_Linf_th3": 0.25,
                 "parameters": 12345.0 + i, "train_seconds": 1.5},
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
    history = client.get_metric_history(run_id, "population/fitness_max")  # best_fitness
    assert [(m.step, m.value) for m in history] == [(0, 0.52), (1, 0.6)]
    assert "best_fitness" not in run.data.metrics
    paths = {a.path for a in client.list_artifacts(run_id, "best_model")}
    assert paths == {"best_model/best.pt"}
    local = client.download_artifacts(run_id, "summary/summary.json")
    assert json.loads(Path(local).read_text()) == {"hello": [1, 2]}


def test_child_content_round_trips(logged) -> None:
    uri, _, records, ids = logged
    client = MlflowClient(uri)
    for rec, child_id in zip(records, ids, strict=True):
        run = client.get_run(child_id)
        assert run.info.run_name == f"g000-i{rec.index:02d}-{rec.genome_id}"
        assert run.data.params["generation"] == "0"
        assert run.data.params["cluster"] == str(rec.cluster)
        assert run.data.params["genetic_parent"] == "none"
        assert run.data.params["mutation_ops"] == "none"
        assert "parent_id" not in run.data.params and "mutations" not in run.data.params
        assert run.data.tags["genome_id"] == rec.genome_id
        assert run.data.tags["mlflow.note.content"].startswith("Generation 0, individual")
        assert run.data.metrics["parameters"] == rec.metrics["parameters"]
        assert run.data.metrics["accuracy"] == rec.metrics["accuracy"]
        assert run.data.metrics["robustness/Linf_th3"] == 0.25
        assert run.data.metrics["timing/train_seconds"] == 1.5
        for name in SPECTRUM_FEATURES:
            assert run.data.metrics[f"spectrum/{name}"] == rec.spectrum[name]
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
    with pytest.raises(ValueError, match="is not in"):
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


# -------------------------------------------------- what a user sees in the UI
def test_metric_names_have_sections() -> None:
    from ras_deap.tracking import generation_metric_name, individual_metric_name

    child = {"fitness": "fitness", "accuracy": "accuracy", "robustness": "robustness",
             "test_accuracy": "test_accuracy", "parameters": "parameters", "flops": "flops",
             "robustness_L0_th1": "robustness/L0_th1", "robustness_bank": "robustness/bank",
             "robustness_direct": "robustness/direct",
             "direct_Linf_th1": "robustness/direct_Linf_th1",
             "robustness_model_resnet": "robustness/model_resnet",
             "spectrum_blocks": "spectrum/blocks", "eval_seconds": "timing/eval_seconds",
             "direct_seconds": "timing/direct_seconds", "epochs": "training/epochs",
             "train_accuracy": "training/train_accuracy", "failed": "diag/failed",
             "bank_fallback": "diag/bank_fallback", "full_training": "diag/full_training"}
    assert {k: individual_metric_name(k) for k in child} == child
    search = {"best_fitness": "population/fitness_max", "mean_fitness": "population/fitness_mean",
              "min_fitness": "population/fitness_min",
              "fittest_accuracy": "population/accuracy_of_fittest",
              "max_accuracy": "population/accuracy_max",
              "mean_robustness": "population/robustness_mean",
              "evaluations": "population/evaluations",
              "layer_subpopulation": "population/layer_subpopulation",
              "mean_blocks": "architecture/blocks_mean",
              "min_layers_per_block": "architecture/layers_per_block_min",
              "max_connections": "architecture/connections_max",
              "spectrum_conv_layers": "spectrum/conv_layers",
              "seconds_evaluation": "timing/evaluation_seconds"}
    assert {k: generation_metric_name(k) for k in search} == search


def test_child_times_lineage_and_description(uri: str) -> None:
    tracker = SearchTracker(uri, experiment="others")
    tracker.start_search({"a": 1}, {})
    parent = tracker.log_individual(record(0))
    child = record(1, generation=1)
    child.parent_id, child.parent_run_id = record(0).genome_id, parent
    child.started_at, child.ended_at = 1_700_000_000.25, 1_700_000_007.75
    child_id = tracker.log_individual(child)
    tracker.end_search()
    run = tracker.client.get_run(child_id)
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_250, 1_700_000_007_750)
    assert run.data.params["genetic_parent"] == child.parent_id
    assert run.data.params["mutation_ops"] == "add_layer,swap_layer"
    assert run.data.tags["ras_deap.genetic_parent_run"] == parent
    note = run.data.tags["mlflow.note.content"]
    assert f"#/experiments/{tracker.experiment_id}/runs/{parent}" in note
    assert "`add_layer`, `swap_layer`" in note
    # the metrics are stamped with the evaluation's end, not the logging time
    assert {m.timestamp for m in tracker.client.get_metric_history(child_id, "fitness")} == {
        1_700_000_007_750}


def test_experiment_is_described_as_model_training(logged) -> None:
    uri, run_id, _, _ = logged
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "ras_deap.best" in experiment.tags["mlflow.note.content"]
    # the runs table view of the search's individuals, with its columns
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{run_id}"])
    assert view["searchFilter"] == f"tags.`mlflow.parentRunId` = '{run_id}'"
    assert view["orderByKey"] == "metrics.`fitness`" and view["orderByAsc"] is False
    assert view["selectedColumns"][1:4] == ["metrics.`fitness`", "metrics.`accuracy`",
                                            "metrics.`robustness`"]
    assert view["columnOrder"][:3] == ["duration", "attributes.`Models`", "metrics.`fitness`"]
    # a description the user wrote is kept
    client.set_experiment_tag(experiment.experiment_id, "mlflow.note.content", "mine")
    with SearchTracker(uri, experiment=EXPERIMENT) as again:
        again.start_search({}, {})
    assert client.get_experiment(experiment.experiment_id).tags["mlflow.note.content"] == "mine"


def test_links_open_the_model_training_view(uri: str) -> None:
    tracker = SearchTracker(uri, experiment="others")
    run_id = tracker.start_search({}, {})
    eid = tracker.experiment_id
    assert tracker.runs_url() == (f"http://127.0.0.1:5000/#/experiments/{eid}/runs?"
                                  f"workflowType=machine_learning&viewStateShareKey={run_id}")
    assert tracker.run_url() == (f"http://127.0.0.1:5000/#/experiments/{eid}/runs/{run_id}"
                                 "?workflowType=machine_learning")
    assert tracker.runs_url() in tracker.ui_command()
    tracker.end_search()
    from ras_deap.tracking import run_links, runs_url

    links = run_links(uri, run_id, order_by="metrics.`value`")
    assert links["run"] == tracker.run_url()
    assert links["command"] == f"mlflow ui --backend-store-uri {tracker.tracking_uri}"
    assert links["children"].startswith(f"http://127.0.0.1:5000/#/experiments/{eid}/runs?"
                                        "workflowType=machine_learning&searchFilter=")
    assert "orderByKey=metrics.%60value%60" in links["children"]
    plain = runs_url("http://mlflow.example:5000", "7", parent_run_id="abc")
    assert plain.startswith("http://mlflow.example:5000/#/experiments/7/runs?"
                            "workflowType=machine_learning&searchFilter=")
    assert "orderByKey=metrics.%60fitness%60&orderByAsc=false" in plain


def test_best_is_marked_and_moves_on_a_later_call(uri: str) -> None:
    tracker = SearchTracker(uri, experiment="others")
    run_id = tracker.start_search({}, {})
    first, second = (tracker.log_individual(record(i)) for i in range(2))
    assert tracker.mark_best("g0-i0", record(0).genome_id) == first
    assert tracker.mark_best("g0-i1", record(1).genome_id) == second  # e.g. after a resume
    tracker.describe("### Best architecture")
    tracker.end_search()
    client = tracker.client
    tags = client.get_run(run_id).data.tags
    assert (tags["best_run_id"], tags["best_genome_id"]) == (second, record(1).genome_id)
    assert tags["mlflow.note.content"] == "### Best architecture"
    assert client.get_run(second).data.tags["ras_deap.best"] == "true"
    assert "ras_deap.best" not in client.get_run(first).data.tags
    assert tracker.mark_best(None, "M-unknown") is None


def test_every_child_gets_its_architecture_svg(uri: str, tmp_path: Path) -> None:
    """The search's child_artifacts (the real SVG drawing) land on every child,
    in background mode too; a drawing that fails costs its file and a
    warning, not the child; log_final puts the best one's drawing on it."""
    from ras_deap.report import model_to_svg
    from ras_deap.search.final import ARCHITECTURE_SVG, child_artifacts

    with SearchTracker(uri, experiment="others", background=True,
                       child_artifacts=child_artifacts()) as tracker:
        tracker.start_search({}, {})
        for i in range(3):
            tracker.log_individual(record(i, seed=11))
        tracker.flush()
        keys = tracker.logged_keys()
    client = MlflowClient(tracker.tracking_uri)
    for i in range(3):
        run = keys[f"g0-i{i}"]
        assert {a.path for a in client.list_artifacts(run)} == {"genome.json", ARCHITECTURE_SVG}
        text = Path(client.download_artifacts(run, ARCHITECTURE_SVG, str(tmp_path / f"{i}"))
                    ).read_text()
        assert text == model_to_svg(Model.from_dict(record(i, seed=11).genome))

    def broken(genome: dict) -> str:
        raise ValueError("no drawing today")

    tracker = SearchTracker(uri, experiment="others", child_artifacts={"x.svg": broken})
    tracker.start_search({}, {})
    with pytest.warns(UserWarning, match="could not make x.svg of .*no drawing today"):
        best = tracker.log_individual(record(0, seed=12))
    assert client.get_run(best).info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(best)} == {"genome.json"}
    drawing = tmp_path / "best_architecture.svg"
    drawing.write_text("<svg/>")
    tracker.log_final(best, {"test_accuracy": 0.5}, artifacts={ARCHITECTURE_SVG: drawing})
    tracker.end_search()
    assert {a.path for a in client.list_artifacts(best)} == {"genome.json", ARCHITECTURE_SVG}
    got = client.download_artifacts(best, ARCHITECTURE_SVG, str(tmp_path / "best"))
    assert Path(got).read_text() == "<svg/>"


def test_final_model_round_trips_through_mlflow(uri: str, global_tracking_uri) -> None:
    """The retrained network logged with log_final loads back with
    mlflow.pytorch.load_model and computes the same logits."""
    import numpy as np
    import torch

    from ras_deap.evaluation.compiler import compile_model

    tracker = SearchTracker(uri, experiment="others")
    tracker.start_search({}, {})
    best = tracker.log_individual(record(0))
    net = compile_model(random_model(random.Random(5)), (1, 8, 8), 10).eval()
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    previous = mlflow.get_tracking_uri()
    info = tracker.log_final(best, {"test_accuracy": 0.97, "robustness_L0_th1": 0.5},
                             module=net, input_example=x, output_example=y,
                             register_name="ras-test-model",
                             description="**The best individual of search x.**")
    tracker.end_search()
    assert info.run_uri == f"runs:/{best}/model" and info.registered == "ras-test-model/1"
    run = tracker.client.get_run(best)
    assert run.data.metrics["final/test_accuracy"] == 0.97
    assert run.data.metrics["final/robustness_L0_th1"] == 0.5
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**The best individual") and "Generation 0, individual 0" in note

    assert mlflow.get_tracking_uri() == previous  # the tracker only borrowed the store
    global_tracking_uri(tracker.tracking_uri)
    loaded = mlflow.pytorch.load_model(info.run_uri)
    by_name = mlflow.pytorch.load_model("models:/ras-test-model/1")
    signature = mlflow.models.get_model_info(info.run_uri).signature
    assert isinstance(loaded, torch.nn.Module)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), y, rtol=1e-5, atol=1e-6)
        assert loaded(torch.zeros(7, 1, 8, 8)).shape == (7, 10)  # any batch size
        np.testing.assert_allclose(by_name(torch.from_numpy(x)).numpy(), y, rtol=1e-5,
                                   atol=1e-6)
    assert signature.inputs.inputs[0].shape == (-1, 1, 8, 8)
    # logging it again (a search resumed after logging it) keeps the one logged
    again = tracker.log_final(best, {"test_accuracy": 0.97}, module=net, input_example=x,
                              output_example=y, register_name="ras-test-model")
    assert again == info
    logged_models = tracker.client.search_logged_models([tracker.experiment_id])
    assert [(m.model_id, m.source_run_id) for m in logged_models] == [(info.model_id, best)]
    # the run lists it as its output (the run page's "Logged models")
    assert [o.model_id for o in run.outputs.model_outputs] == [info.model_id]
