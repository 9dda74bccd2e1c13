"""Individuals are logged by a background writer: a kill -9 while it has a
backlog loses nothing and duplicates nothing once the search is resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ras_deap.checkpoint import CHECKPOINT_NAME, load_checkpoint

# The search of `python -m ras_deap.run`, with a store that takes 0.4 s per individual
# (slower than the evaluations, so writes queue up) and counters of what was handed to the
# writer and what it wrote.
SLOW_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ras_deap.tracking import tracker as t

    folder = Path(sys.argv[1])
    real_write, real_log = t.SearchTracker._write_individual, t.SearchTracker.log_individual

    def log(self, record):
        with open(folder / "submitted", "a") as fh:
            fh.write(record.key + "\\n")
        return real_log(self, record)

    def write(self, record):
        time.sleep(0.4)
        run = real_write(self, record)
        with open(folder / "written", "a") as fh:
            fh.write(record.key + "\\n")
        return run

    t.SearchTracker.log_individual, t.SearchTracker._write_individual = log, write
    from ras_deap.run import main
    sys.exit(main(sys.argv[2:]))
""")

ARGS = ["--preset", "smoke", "--generations", "2", "--population", "4", "--children", "2",
        "--max-epochs", "1", "--run-name", "backlog", "--experiment", "test", "--no-progress"]


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.mark.slow
def test_kill_9_with_a_backlog_then_resume_logs_every_individual_once(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    common = ["--run-dir", str(tmp_path / "runs"), "--tracking-uri", store]
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), *common, *ARGS],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, backlog = time.time() + 240, 0
    while time.time() < deadline and proc.poll() is None:
        backlog = _lines(tmp_path / "submitted") - _lines(tmp_path / "written")
        if backlog >= 2 and _lines(tmp_path / "written") >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert backlog >= 2, f"no backlog built up before the run ended: {proc.stderr.read()!r}"

    folder = tmp_path / "runs" / "backlog"
    # the checkpoint is written by the writer after the runs it names: never ahead of MLflow
    run_id = load_checkpoint(folder / CHECKPOINT_NAME).state.extra["mlflow_run_id"]
    resumed = subprocess.run([sys.executable, "-m", "ras_deap.run", *common, "--experiment",
                              "test", "--no-progress", "--resume", str(folder)],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    state = load_checkpoint(folder / CHECKPOINT_NAME).state
    expected = 4 + 2 * 4 * 2
    assert state.phase == "done" and state.evaluations == expected

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("test")
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                                  max_results=1000)
    keys = [r.data.tags.get("ras_deap.key") for r in children]
    assert len(children) == expected and len(set(keys)) == expected  # once each
    for run in children:
        assert run.info.status in ("FINISHED", "FAILED")
        assert "fitness" in run.data.metrics
        assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == [
            "architecture.svg", "genome.json"]
    everything = client.search_runs([experiment.experiment_id], max_results=1000)
    assert not [r for r in everything if r.info.status == "RUNNING"]
    assert client.get_run(run_id).info.status == "FINISHED"
