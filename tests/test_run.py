"""End-to-end tests of `python -m ras_deap.run`: CLI, MLflow records, resume
after kill -9, invalid arguments, failing individuals, parallel backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from ras_deap.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from ras_deap.config import PRESETS, SearchConfig
from ras_deap.genome import Model
from ras_deap.run import main
from ras_deap.search import run_search

TINY = {**PRESETS["smoke"], "max_epochs": 2, "subset_size": 200}


def tiny_config(tmp_path: Path, **changes) -> SearchConfig:
    values = {**TINY, "run_dir": str(tmp_path / "runs"), "run_name": "t",
              "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "test"}
    values.update(changes)
    return SearchConfig(**values)


def cli(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ras_deap.run", "--run-dir", str(tmp_path / "runs"),
           "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--experiment", "test",
           "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def children_of(tmp_path: Path, run_id: str) -> pd.DataFrame:
    """The child runs of a search as ``mlflow.search_runs`` lays them out
    (read with a client bound to the test's store: no global tracking URI)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("test")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                              max_results=10_000)
    rows = []
    for run in runs:
        row = {"run_id": run.info.run_id, "status": run.info.status}
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- invalid input
@pytest.mark.parametrize("args, message", [
    (["--population", "0"], "population=0"),
    (["--lr", "-1"], "lr=-1"),
    (["--bank", "/nonexistent/bank.npz"], "bank="),
    (["--config", "/nonexistent.toml"], "does not exist"),
    (["--scheduler", "nowhere"], "scheduler="),
    # the schema's minimum is the trainer's (BatchNorm needs two samples): one line, no traceback
    (["--batch-size", "1"], "batch_size=1: must be an integer >= 2"),
])
def test_invalid_values_exit_2_before_any_work(tmp_path, capsys, args, message):
    assert main(["--run-dir", str(tmp_path / "runs"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "runs").exists()


def test_unknown_dataset_and_bad_toml_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", "imagenet"])
    assert exc.value.code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("generations = [\n")
    assert main(["--config", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("generation = 3\n")
    assert main(["--config", str(unknown)]) == 2
    assert "unknown keys ['generation']" in capsys.readouterr().err


def test_resume_without_a_run_and_corrupt_checkpoint(tmp_path, capsys):
    assert main(["--run-dir", str(tmp_path / "runs"), "--resume"]) == 2
    assert "no run with a checkpoint" in capsys.readouterr().err
    run = tmp_path / "runs" / "broken"
    run.mkdir(parents=True)
    (run / CHECKPOINT_NAME).write_bytes(b"not a pickle at all")
    assert main(["--run-dir", str(tmp_path / "runs"), "--resume", str(run)]) == 2
    assert "corrupt" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(run)


def test_toml_config_and_flags_override(tmp_path):
    from ras_deap.run import build_parser, config_from_args

    toml = tmp_path / "c.toml"
    toml.write_text('generations = 7\npopulation = 9\ndistance = "normalized"\n')
    args = build_parser().parse_args(["--preset", "smoke", "--config", str(toml),
                                      "--population", "3"])
    cfg = config_from_args(args)
    assert (cfg.generations, cfg.population, cfg.distance) == (7, 3, "normalized")
    assert cfg.subset_size == PRESETS["smoke"]["subset_size"]


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_smoke_run_through_the_cli_logs_everything(tmp_path, global_tracking_uri):
    proc = cli(tmp_path, "--preset", "smoke", "--run-name", "smoke", "--max-epochs", "2",
               "--register-model", "ras-smoke")
    assert proc.returncode == 0, proc.stderr
    assert "RAS search summary" in proc.stdout
    assert "mlflow ui --backend-store-uri" in proc.stdout
    assert "test accuracy" in proc.stdout
    assert "Downloading artifacts" not in proc.stdout + proc.stderr

    ckpt = load_checkpoint(tmp_path / "runs" / "smoke")
    state = ckpt.state
    run_id = state.extra["mlflow_run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(run_id)
    # the printed link opens this search's individuals in the runs table
    experiment = parent.info.experiment_id
    assert (f"then open http://127.0.0.1:5000/#/experiments/{experiment}/runs?"
            f"workflowType=machine_learning&viewStateShareKey={run_id}") in proc.stdout
    assert f"#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning" in \
        proc.stdout
    assert parent.info.status == "FINISHED"
    assert parent.data.params["population"] == str(PRESETS["smoke"]["population"])
    assert parent.data.tags["dataset"] == "digits"
    # the CPU kernels that trained it (results depend on them), under the ISA overrides in force
    capability, forced = parent.data.tags["machine.cpu_capability"], os.environ.get(
        "ATEN_CPU_CAPABILITY")
    assert capability and (forced is None or capability == forced.upper())
    assert parent.data.tags["machine.onednn_max_cpu_isa"] == os.environ.get(
        "ONEDNN_MAX_CPU_ISA", "unset")
    assert parent.data.tags["machine.cpu"]
    generations = list(range(PRESETS["smoke"]["generations"] + 1))
    for name in ("population/fitness_max", "population/accuracy_of_fittest",
                 "population/accuracy_max", "architecture/blocks_mean",
                 "architecture/blocks_min", "spectrum/blocks", "timing/total_seconds"):
        assert [m.step for m in client.get_metric_history(run_id, name)] == generations, name
    # nothing on the search run is a single point of a one-off value
    assert not [k for k in parent.data.metrics if k.startswith(("final", "seconds_"))]
    artifacts = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert {"figures/fig3_accuracy.png", "figures/fig4_architecture.png"} <= artifacts
    best = {a.path for a in client.list_artifacts(run_id, "best_model")}
    assert "best_model/best_model.pt" in best and "best_model/best_genome.json" in best
    assert "best_model/best_architecture.svg" in best

    runs = children_of(tmp_path, run_id)
    assert len(runs) == state.evaluations
    assert runs["tags.ras_deap.key"].is_unique
    assert len(set(children_names(tmp_path, run_id))) == len(runs)
    for _, row in runs.iterrows():
        assert row["metrics.fitness"] >= 0
        assert "metrics.accuracy" in row and "metrics.spectrum/blocks" in row
        assert "params.generation" in row and "params.mutation_ops" in row
        assert "params.genetic_parent" in row
    # child runs span their evaluation
    for child in client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run_id}'"):
        seconds = (child.info.end_time - child.info.start_time) / 1000
        assert seconds == pytest.approx(child.data.metrics["timing/eval_seconds"], rel=0.1,
                                        abs=0.002)
    one = runs.iloc[-1]
    genome = client.download_artifacts(one["run_id"], "genome.json", str(tmp_path))
    model = Model.from_dict(json.loads(Path(genome).read_text()))
    assert model.id == one["tags.genome_id"]

    # the best individual: tagged, named on the search run, with the retrained model
    best_rows = runs[runs.get("tags.ras_deap.best") == "true"]
    assert len(best_rows) == 1
    best_id = best_rows["run_id"].iloc[0]
    assert parent.data.tags["best_run_id"] == best_id
    assert parent.data.tags["best_genome_id"] == best_rows["tags.genome_id"].iloc[0]
    note = parent.data.tags["mlflow.note.content"]
    assert "Best architecture" in note and f'load_model("runs:/{best_id}/model")' in note
    assert "fig3_accuracy.png" in note
    best_run = client.get_run(best_id)
    assert 0 < best_run.data.metrics["final/test_accuracy"] <= 1
    # every child holds its drawing; the best one's is the run folder's
    for child in runs["run_id"]:
        assert "architecture.svg" in {a.path for a in client.list_artifacts(child)}
    svg = client.download_artifacts(best_id, "architecture.svg", str(tmp_path / "best_svg"))
    assert Path(svg).read_bytes() == \
        (tmp_path / "runs" / "smoke" / "best_architecture.svg").read_bytes()
    assert f'mlflow.pytorch.load_model("runs:/{best_id}/model")' in proc.stdout

    import mlflow
    import numpy as np
    import torch

    global_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    net = mlflow.pytorch.load_model(f"runs:/{best_id}/model")
    registered = mlflow.pytorch.load_model("models:/ras-smoke/1")
    assert isinstance(net, torch.nn.Module) and isinstance(registered, torch.nn.Module)
    from ras_deap.data import load_dataset

    data = load_dataset("digits", None, seed=0)
    with torch.no_grad():
        predicted = net(torch.from_numpy(data.test.x)).argmax(1).numpy()
    accuracy = float(np.mean(predicted == data.test.y))
    assert accuracy == pytest.approx(best_run.data.metrics["final/test_accuracy"], abs=1e-6)


def children_names(tmp_path: Path, run_id: str) -> list[str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("test")
    return [r.info.run_name for r in client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=10_000)]


@pytest.mark.slow
def test_direct_robustness_through_the_cli(tmp_path):
    """--robustness direct: every individual's run holds the direct metrics per threshold and
    its fitness uses them; the choice is a param of the search run."""
    proc = cli(tmp_path, "--preset", "smoke", "--run-name", "direct", "--max-epochs", "2",
               "--generations", "1", "--robustness", "direct")
    assert proc.returncode == 0, proc.stderr
    run_id = load_checkpoint(tmp_path / "runs" / "direct").state.extra["mlflow_run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(run_id).data.params["robustness"] == "direct"
    runs = children_of(tmp_path, run_id)
    ok = runs[runs["metrics.diag/failed"] == 0]
    assert len(ok) > 0
    for col in ("metrics.robustness/direct_Linf_th1", "metrics.robustness/direct_L0_th10",
                "metrics.robustness/bank", "metrics.timing/direct_seconds"):
        assert ok[col].notna().all(), col
    assert (ok["metrics.robustness"] - ok["metrics.robustness/direct"]).abs().max() < 1e-9


@pytest.mark.slow
def test_resume_after_kill_9_loses_nothing_and_duplicates_nothing(tmp_path):
    args = ["--preset", "smoke", "--generations", "3", "--population", "4", "--children", "2",
            "--max-epochs", "3", "--run-name", "killed"]
    cmd = [sys.executable, "-m", "ras_deap.run", "--run-dir", str(tmp_path / "runs"),
           "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--experiment", "test",
           "--no-progress", *args]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt_path = tmp_path / "runs" / "killed" / CHECKPOINT_NAME
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if ckpt_path.exists():
            try:
                state = load_checkpoint(ckpt_path).state
            except CheckpointError:
                state = None
            # kill in the middle of generation 1, with some of its children evaluated
            if state is not None and state.generation >= 1 and state.phase == "evaluate" and \
                    any(o.fitness.valid for o in state.offspring):
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = state.evaluations
                break
        time.sleep(0.05)
    proc.wait()
    assert killed_at is not None, "the run ended before it could be killed mid-generation"

    before = load_checkpoint(ckpt_path).state
    assert before.evaluations >= killed_at
    resumed = cli(tmp_path, "--resume", str(tmp_path / "runs" / "killed"))
    assert resumed.returncode == 0, resumed.stderr
    after = load_checkpoint(ckpt_path).state
    assert after.generation == 3 and after.phase == "done"
    expected = 4 + 3 * 4 * 2
    assert after.evaluations == expected

    runs = children_of(tmp_path, after.extra["mlflow_run_id"])
    assert len(runs) == expected
    assert runs["tags.ras_deap.key"].is_unique
    # lineage links point at runs of this search; one best, also across the resume
    links = runs["tags.ras_deap.genetic_parent_run"].dropna()
    assert len(links) > 0 and set(links) <= set(runs["run_id"])
    assert (runs.get("tags.ras_deap.best") == "true").sum() == 1

    # the resumed search is the same search as an uninterrupted one
    straight = cli(tmp_path, *args[:-1], "straight")
    assert straight.returncode == 0, straight.stderr
    ref = load_checkpoint(tmp_path / "runs" / "straight").state
    assert [i.genome.id for i in ref.population] == [i.genome.id for i in after.population]
    assert [i.fitness.values for i in ref.population] == \
        [i.fitness.values for i in after.population]


@pytest.mark.slow
def test_failing_individuals_get_zero_fitness_and_a_failed_run(tmp_path):
    from ras_deap.search import make_evaluator

    config = tiny_config(tmp_path)
    evaluator = make_evaluator(config)
    # networks above 1M parameters are refused: a real failure path of the evaluator
    evaluator.train_config = evaluator.train_config.__class__(
        **{**evaluator.train_config.to_dict(), "max_parameters": 1_000_000})
    result = run_search(config, progress=False, final_training=False, evaluator=evaluator)
    runs = children_of(tmp_path, result.run_id)
    assert len(runs) == result.evaluations
    failed_runs = runs[runs["status"] == "FAILED"]
    assert len(failed_runs) > 0, "expected some networks over 1M parameters"
    assert (failed_runs["metrics.fitness"] == 0).all()
    assert failed_runs["tags.failure"].str.contains("parameters").all()
    assert result.best.fitness.values[0] > 0


@pytest.mark.slow
def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    serial = run_search(tiny_config(tmp_path, run_name="w1"), progress=False,
                        final_training=False)
    pooled = run_search(tiny_config(tmp_path, run_name="w2", workers=2), progress=False,
                        final_training=False)
    assert [i.genome.id for i in serial.population] == [i.genome.id for i in pooled.population]
    assert [i.fitness.values for i in serial.population] == \
        [i.fitness.values for i in pooled.population]


@pytest.mark.slow
def test_dask_local_cluster_backend_gives_the_same_results(tmp_path):
    serial = run_search(tiny_config(tmp_path, run_name="s", generations=1), progress=False,
                        final_training=False)
    dask = run_search(tiny_config(tmp_path, run_name="d", generations=1, scheduler="local",
                                  workers=2), progress=False, final_training=False)
    assert [i.fitness.values for i in serial.population] == \
        [i.fitness.values for i in dask.population]


def test_existing_checkpoint_requires_resume(tmp_path):
    from ras_deap.config import ConfigError

    run = tmp_path / "runs" / "t"
    run.mkdir(parents=True)
    (run / CHECKPOINT_NAME).write_bytes(b"x")
    with pytest.raises(ConfigError, match="--resume"):
        run_search(tiny_config(tmp_path), progress=False)


def test_missing_data_folder_is_a_usage_error_and_creates_nothing(tmp_path, capsys):
    argv = ["--run-dir", str(tmp_path / "runs"), "--tracking-uri",
            f"sqlite:///{tmp_path}/mlflow.db", "--dataset", "cifar10", "--data-dir",
            str(tmp_path / "nowhere"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--download" in err and "nowhere" in err
    assert not (tmp_path / "runs").exists()
