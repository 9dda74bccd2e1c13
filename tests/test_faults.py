"""Faults, concurrency and hostile input, as a hostile but realistic user
meets them: real subprocesses killed, signalled, raced and fed bad files.
After each scenario: no lost evaluation, no duplicate child run, no run left
RUNNING, no orphan process."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ras_deap.checkpoint import (
    CHECKPOINT_NAME,
    LEGACY_CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
)
from ras_deap.run import main

ROOT = Path(__file__).resolve().parents[1]
# a search of 4 + 3 x 4 x 2 = 28 tiny trainings: long enough to be killed mid-way
LONG = ["--preset", "smoke", "--population", "4", "--generations", "3", "--children", "2",
        "--max-epochs", "2", "--subset-size", "150"]


def base_cmd(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "ras_deap.run", "--run-dir", str(tmp_path / "runs"),
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--experiment", "faults",
            "--no-progress"]


def start(tmp_path: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*base_cmd(tmp_path), *args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def run(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*base_cmd(tmp_path), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


def wait_for_evaluations(path: Path, n: int, proc: subprocess.Popen,
                         timeout: float = 240) -> int:
    """Wait until the checkpoint at ``path`` holds ``n`` evaluations."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()}")
        if path.is_file():
            try:
                done = load_checkpoint(path).state.evaluations
            except CheckpointError:
                done = -1
            if done >= n:
                return done
        time.sleep(0.1)
    raise AssertionError(f"no {n} evaluations within {timeout} s")


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def store_counts(tmp_path: Path, run_id: str, evaluations: int) -> dict[str, int]:
    """The issue's counts for one search: lost evaluations, duplicated and
    stale (RUNNING) child runs, and the search run's own status."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("faults").experiment_id
    runs = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run_id}'",
                              max_results=10_000)
    keys = [r.data.tags.get("ras_deap.key") for r in runs]
    return {"lost": max(evaluations - len(set(keys)), 0),
            "duplicated": len(keys) - len(set(keys)),
            "stale": sum(r.info.status == "RUNNING" for r in runs)}


# ------------------------------------------------------ a checkpoint that is data
class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", [LEGACY_CHECKPOINT_NAME, CHECKPOINT_NAME])
def test_malicious_pickle_checkpoint_runs_nothing(tmp_path, name):
    """A pickle whose loading would run a command, where --resume looks: a
    bare --resume (the most recent run) refuses it, clearly, and nothing runs."""
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "runs" / "x"
    run_dir.mkdir(parents=True)
    (run_dir / name).write_bytes(pickle.dumps(_Exploit(marker)))
    proc = run(tmp_path, "--resume", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pickle" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(run_dir)
    assert not marker.exists()


def test_hostile_json_checkpoints_are_refused_clearly(tmp_path):
    run_dir = tmp_path / "runs" / "x"
    run_dir.mkdir(parents=True)
    path = run_dir / CHECKPOINT_NAME
    for text in ("", "{", "[]", "null", '{"format": "ras_deap.checkpoint/3"}',
                 '{"format": "ras_deap.checkpoint/3", "config": {}, "history": [], '
                 '"state": {"genomes": [], "individuals": [{"genome": 5, "attrs": {}}]}}',
                 "[" * 100_000):
        path.write_text(text)
        with pytest.raises(CheckpointError):
            load_checkpoint(run_dir)


def test_checkpoint_round_trip_continues_the_same_search():
    """JSON in, JSON out: a restored state continues exactly as the original."""
    import copy
    import random

    from ras_deap.checkpoint import Checkpoint, checkpoint_from_dict, checkpoint_to_dict
    from ras_deap.evolution import build_toolbox, initial_state, step

    def fitness(ind):
        return (random.Random(ind.eval_seed).random(),)

    def advance(state, generations):
        toolbox = build_toolbox(state, evaluate=fitness, map_fn=map, n_mutations=5,
                                layer_limit=30, block_limit=30)
        for _ in range(generations):
            step(state, toolbox, children=2)
        return state

    state = advance(initial_state(3, 6), 2)
    text = json.dumps(checkpoint_to_dict(Checkpoint(config={}, state=state, history=[])))
    restored = checkpoint_from_dict(json.loads(text)).state
    a, b = advance(copy.deepcopy(state), 3), advance(restored, 3)
    assert [i.genome.to_dict() for i in a.population] == [i.genome.to_dict()
                                                          for i in b.population]
    assert [i.fitness.values for i in a.halloffame] == [i.fitness.values for i in b.halloffame]
    assert a.rng.getstate() == b.rng.getstate() and a.evaluations == b.evaluations


def test_checkpoint_records_name_only_known_attributes():
    """A record may omit an attribute (its constructor default, as format 3
    always meant) but never set another one: a hostile ``fitness`` or
    ``genome`` would corrupt the search."""
    import random

    from ras_deap.checkpoint import Checkpoint, checkpoint_from_dict, checkpoint_to_dict
    from ras_deap.evolution import build_toolbox, initial_state, step

    state = initial_state(3, 4)
    toolbox = build_toolbox(state, evaluate=lambda ind: (random.Random(ind.eval_seed).random(),),
                            map_fn=map)
    step(state, toolbox, children=1)
    data = json.loads(json.dumps(checkpoint_to_dict(Checkpoint(config={}, state=state,
                                                               history=[]))))
    for name in ("measurements", "epochs", "promoted_from", "tracking_key"):
        data["state"]["individuals"][0]["attrs"].pop(name, None)
    ind = checkpoint_from_dict(data).state.population[0]
    assert (ind.measurements, ind.epochs, ind.promoted_from, ind.tracking_key) == (
        (), None, None, None)
    for hostile in ("fitness", "genome", "__class__"):
        bad = json.loads(json.dumps(data))
        bad["state"]["individuals"][0]["attrs"][hostile] = 1
        with pytest.raises(Exception, match="unknown attributes"):
            checkpoint_from_dict(bad)


# ------------------------------------------------------------ one owner per run
def test_default_run_folders_are_unique(tmp_path):
    from ras_deap.config import SearchConfig
    from ras_deap.search import create_run_dir, resolve_run_dir

    config = SearchConfig(run_dir=str(tmp_path / "runs"))
    planned = [resolve_run_dir(config) for _ in range(2)]
    assert planned[0] != planned[1]  # same second, another suffix
    made = {create_run_dir(config, planned[0]) for _ in range(3)}  # a taken name: redrawn
    assert len(made) == 3 and all(p.is_dir() for p in made)


def test_run_lock_names_the_owner_pid(tmp_path):
    from ras_deap.errors import RunLockedError
    from ras_deap.locks import RunLock

    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; "
                               "from ras_deap.locks import RunLock; "
                               f"RunLock({str(folder)!r}).acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            RunLock(folder).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(folder):  # the kernel dropped the dead holder's lock
        pass


@pytest.mark.slow
def test_three_simultaneous_first_runs_on_a_fresh_store(tmp_path):
    """Three processes set up one fresh MLflow store at once: all succeed."""
    code = ("import sys; from ras_deap.tracking import SearchTracker; "
            f"t = SearchTracker('sqlite:///{tmp_path}/fresh/mlflow.db', 'faults'); "
            "t.start_search({'i': sys.argv[1]}, {}); t.end_search(); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(3)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/fresh/mlflow.db")
    experiment = client.get_experiment_by_name("faults").experiment_id
    runs = client.search_runs([experiment])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.slow
def test_sigterm_second_owner_wrong_store_and_finished_resume(tmp_path):
    """SIGTERM ends the run KILLED with a resume hint; a resume against a store
    without the run and a second resume of a live run both exit 2; the
    resumed run loses and duplicates nothing; resuming it once finished
    changes nothing."""
    proc = start(tmp_path, *LONG, "--run-name", "t")
    ckpt = tmp_path / "runs" / "t" / CHECKPOINT_NAME
    wait_for_evaluations(ckpt, 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "terminated" in err and "--resume" in err and "Traceback" not in err
    state = load_checkpoint(ckpt).state
    run_id = state.extra["mlflow_run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(run_id).info.status == "KILLED"
    assert store_counts(tmp_path, run_id, state.evaluations) == {
        "lost": 0, "duplicated": 0, "stale": 0}

    other = run(tmp_path, "--resume", str(ckpt.parent), "--tracking-uri",
                f"sqlite:///{tmp_path}/other.db")
    assert other.returncode == 2 and "is not in" in other.stderr, other.stderr
    assert "Traceback" not in other.stderr

    first = start(tmp_path, "--resume", str(ckpt.parent))
    try:
        lock = ckpt.parent / ".lock"
        deadline = time.time() + 120
        while time.time() < deadline and f"pid {first.pid}" not in (
                lock.read_text() if lock.exists() else ""):
            assert first.poll() is None, first.communicate()
            time.sleep(0.1)
        second = run(tmp_path, "--resume", str(ckpt.parent))
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        _, err = first.communicate(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    done = load_checkpoint(ckpt).state
    assert done.evaluations == 4 + 3 * 4 * 2
    assert store_counts(tmp_path, run_id, done.evaluations) == {
        "lost": 0, "duplicated": 0, "stale": 0}
    assert client.get_run(run_id).info.status == "FINISHED"

    best_run = client.get_run(run_id).data.tags["best_run_id"]
    before = ckpt.read_bytes(), client.get_run(run_id).data.metrics
    assert len(client.get_metric_history(best_run, "final/test_accuracy")) == 1
    again = run(tmp_path, "--resume", str(ckpt.parent))
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stdout and "RAS search summary" in again.stdout
    assert (ckpt.read_bytes(), client.get_run(run_id).data.metrics) == before
    assert len(client.get_metric_history(best_run, "final/test_accuracy")) == 1


# ------------------------------------------------------- workers die with the parent
@pytest.mark.slow
def test_kill_9_of_the_main_process_leaves_no_worker(tmp_path):
    proc = start(tmp_path, *LONG, "--generations", "30", "--workers", "2", "--run-name", "w")
    try:
        wait_for_evaluations(tmp_path / "runs" / "w" / CHECKPOINT_NAME, 1, proc)
        workers = children(proc.pid)
        assert len(workers) >= 2
    finally:
        proc.kill()
        proc.wait()
    assert wait_gone(workers, 10) == []


@pytest.mark.slow
def test_ctrl_c_with_workers_prints_one_line_and_leaves_no_worker(tmp_path):
    # many generations: the checkpoint (written by the MLflow writer thread, after the runs it
    # names) can lag a loaded machine's evaluations, and the search must still be running
    proc = start(tmp_path, *LONG, "--generations", "30", "--workers", "2", "--run-name", "c",
                 start_new_session=True,
                 # as from a terminal: a test run started in the background (`cmd &` in a
                 # script) ignores SIGINT, and its children would inherit that
                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_evaluations(tmp_path / "runs" / "c" / CHECKPOINT_NAME, 1, proc)
        workers = children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    # on a loaded machine the writer still has updates queued at Ctrl-C, and says why the
    # exit waits for them: _err_lines leaves that progress note out
    lines = _err_lines(err)
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and "--resume" in lines[0]
    assert wait_gone(workers, 10) == []
    state = load_checkpoint(tmp_path / "runs" / "c").state
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(state.extra["mlflow_run_id"]).info.status == "KILLED"
    assert store_counts(tmp_path, state.extra["mlflow_run_id"], state.evaluations) == {
        "lost": 0, "duplicated": 0, "stale": 0}


# ---------------------------------------------------------- fail fast and clearly
def test_unreachable_tracking_server_fails_fast(tmp_path):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ras_deap.run", "--run-dir",
                           str(tmp_path / "runs"), "--tracking-uri", "http://127.0.0.1:9",
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    # MLflow's own retries would take minutes; 30 s leaves room for start-up on a loaded machine
    assert time.monotonic() - started < 30
    assert proc.returncode == 2 and "does not answer" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_dead_dask_scheduler_fails_fast(tmp_path):
    # The probe itself is timed in-process: a subprocess's wall time is mostly
    # importing torch and loading data, which a loaded CI machine stretches.
    from ras_deap.errors import InfrastructureError
    from ras_deap.parallel import DASK_PROBE_TIMEOUT, _probe

    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="no Dask scheduler"):
        _probe("tcp://127.0.0.1:9")
    assert time.monotonic() - started <= DASK_PROBE_TIMEOUT + 1
    proc = run(tmp_path, "--scheduler", "tcp://127.0.0.1:9", timeout=60)
    assert proc.returncode == 2 and "no Dask scheduler" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()


def _err_lines(text: str) -> list[str]:
    """stderr's lines, MLflow's own start-up notes aside, and the writer's
    note that it is still flushing (printed only when the store is slow, as
    on a loaded machine: a progress note, not part of the error)."""
    return [line for line in text.splitlines() if line.strip() and " INFO mlflow" not in line
            and not line.startswith("[tracking] writing ")]


def _toml(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "c.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _truncated_bank(tmp_path: Path) -> str:
    bank = ROOT / "ras_deap" / "bank" / "files" / "digits"
    (tmp_path / "b.json").write_text(bank.with_suffix(".json").read_text())
    (tmp_path / "b.npz").write_bytes(bank.with_suffix(".npz").read_bytes()[:20_000])
    return str(tmp_path / "b.npz")


USAGE_ERRORS = [
    (lambda t: ["--device", "cuda:7"], "available here: cpu"),
    (lambda t: ["--device", "nosuch"], "available here"),
    (lambda t: ["--experiment", ""], "experiment="),
    (lambda t: ["--tracking-uri", "mlruns"], "sqlite:///mlruns/mlflow.db"),
    (lambda t: ["--tracking-uri", "sqlite:////proc/nope/x/mlflow.db"], "cannot create"),
    (lambda t: ["--bank", _truncated_bank(t)], "not a readable bank"),
    (lambda t: ["--population", "1000000000"], "--force"),
    (lambda t: ["--generations", "100000", "--population", "100"], "--force"),
    (lambda t: ["--config", _toml(t, "tracking_uri = 5\n")], "tracking_uri=5"),
    (lambda t: ["--config", _toml(t, "run_dir = 1\n")], "run_dir=1"),
    (lambda t: ["--config", _toml(t, "run_name = [1]\n")], "run_name=[1]"),
    (lambda t: ["--config", _toml(t, "scheduler = true\n")], "scheduler=True"),
    (lambda t: ["--config", _toml(t, "experiment = 2.5\n")], "experiment=2.5"),
    (lambda t: ["--config", _toml(t, 'download = "false"\n')], "true or false"),
    (lambda t: ["--config", _toml(t, b"seed = 1 # \xff\xfe\n")], "not UTF-8"),
    (lambda t: ["--config", _toml(t, "seed = 1\n[search]\npopulation = 3\n")],
     "outside the [search] table"),
    (lambda t: ["--run-name", "../escape"], "run_name="),
]


def _empty_bank(tmp_path: Path) -> str:
    bank = ROOT / "ras_deap" / "bank" / "files" / "digits"
    (tmp_path / "b.json").write_text(bank.with_suffix(".json").read_text())
    (tmp_path / "b.npz").write_bytes(b"")
    return str(tmp_path / "b.npz")


def _random_bank_without_manifest(tmp_path: Path) -> str:
    (tmp_path / "r.npz").write_bytes(os.urandom(5000))
    return str(tmp_path / "r.npz")


def _directory(tmp_path: Path, name: str) -> str:
    (tmp_path / name).mkdir()
    return str(tmp_path / name)


EDGE_ERRORS = [
    (lambda t: ["--bank", _empty_bank(t)], "not a readable bank"),
    (lambda t: ["--bank", _random_bank_without_manifest(t)], "not a readable bank"),
    (lambda t: ["--bank", _directory(t, "d.npz")], "is a directory"),
    (lambda t: ["--config", _directory(t, "c.toml")], "is a directory"),
    (lambda t: ["--population", "0"], "population"),
    (lambda t: ["--config", _toml(t, "seed = [\n")], "not valid TOML"),
]


@pytest.mark.parametrize("make_args, message", USAGE_ERRORS + EDGE_ERRORS)
def test_user_mistakes_exit_2_naming_the_option(tmp_path, monkeypatch, capsys, make_args,
                                                message):
    monkeypatch.chdir(tmp_path)  # runs/ and mlruns/ of a mistake that got through land here
    # tiny sizes first, so a mistake that is not caught costs seconds, not a default search
    code = main(["--preset", "smoke", "--generations", "0", "--population", "2",
                 "--max-epochs", "1", "--no-progress", *make_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(_err_lines(err)) == 1, err  # one line: no usage block before it
    assert not (tmp_path / "runs").exists()


# -------------------------------------------------------- the attacks command
def test_attacks_show_into_a_closed_pipe_is_quiet(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m ras_deap.attacks show --json "
                          f"{ROOT / 'ras_deap' / 'bank' / 'files' / 'digits.npz'} | true",
                          shell=True,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_attacks_show_of_a_truncated_bank_exits_2(tmp_path, capsys):
    from ras_deap.attacks.cli import main as attacks

    assert attacks(["show", _truncated_bank(tmp_path)]) == 2
    assert "not a readable bank" in capsys.readouterr().err


def test_attacks_build_leaves_no_work_folder_after_a_validation_error(tmp_path, capsys):
    from ras_deap.attacks.cli import main as attacks

    out = tmp_path / "bank.npz"
    assert attacks(["build", "--dataset", "cifar10", "--data-dir", str(tmp_path / "none"),
                    "--out", str(out), "--no-progress"]) == 2
    assert "none" in capsys.readouterr().err
    assert not (tmp_path / "bank.npz.partial").exists()


# ------------------------------------------------------------- Optuna recovery
@pytest.mark.slow
def test_a_killed_optuna_trial_fails_is_retried_and_its_runs_are_closed(tmp_path):
    """kill -9 in the middle of a trial: when the study runs again the trial
    (silent past its grace period) is FAIL, retried with the same
    parameters, and its MLflow trial run is KILLED; the retry resumes the
    killed search from its checkpoint; nothing stays RUNNING."""
    import optuna

    env = {**os.environ, "RAS_DEAP_TUNE_HEARTBEAT_SECONDS": "1",
           "RAS_DEAP_TUNE_GRACE_SECONDS": "2"}
    cmd = [sys.executable, "-m", "ras_deap.tune", "--study-name", "s", "--storage",
           f"sqlite:///{tmp_path}/study.db", "--max-evaluations", "6", "--n-trials", "1",
           "--remeasure", "1", "--max-epochs", "1", "--out-dir",
           str(tmp_path / "out"), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
           "--experiment", "faults"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            found = list((tmp_path / "out" / "s" / "runs").glob(f"*/{CHECKPOINT_NAME}"))
            if found:
                try:
                    if load_checkpoint(found[0]).state.evaluations >= 1:
                        break
                except CheckpointError:
                    pass
            assert proc.poll() is None, "the trial ended before it could be killed"
            time.sleep(0.1)
        else:
            raise AssertionError("no trial progress within 240 s")
    finally:
        proc.kill()
        proc.wait()
    time.sleep(3)  # past the grace period
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db")
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].params == trials[0].params
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("faults").experiment_id
    runs = client.search_runs([experiment], max_results=10_000)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    dead = client.get_run(trials[0].user_attrs["mlflow_run_id"])
    assert dead.info.status == "KILLED" and dead.data.tags["optuna.state"] == "FAIL"
    # the retry resumed the killed trial's checkpointed search (same series, same params):
    # its MLflow run, closed KILLED with the trial, was reopened and finished, not redone
    searches = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == dead.info.run_id]
    assert len(searches) == 1
    resumed = searches[0]
    assert resumed.info.status == "FINISHED" and resumed.data.tags["ras_deap.resumes"] == "1"
    assert trials[1].user_attrs["search_run_id"] == resumed.info.run_id


# ------------------------------------------------ wrong services, empty files (#26)
@pytest.fixture
def web_server(tmp_path):
    """``python -m http.server`` on a free 127.0.0.1 port: a service that
    answers, but is neither MLflow nor Dask. Yields its port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = tmp_path / "served"
    served.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], cwd=served, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "no http.server"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_web_server_as_tracking_uri_is_refused_in_one_line(tmp_path, web_server):
    from ras_deap.tracking.store import TrackingError, check_mlflow_server

    uri = f"http://127.0.0.1:{web_server}"
    with pytest.raises(TrackingError, match="is not an MLflow tracking server"):
        check_mlflow_server(uri)
    proc = subprocess.run([sys.executable, "-m", "ras_deap.run", "--preset", "smoke",
                           "--run-dir", str(tmp_path / "runs"), "--tracking-uri", uri,
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    lines = _err_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "is not an MLflow tracking server" in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_web_server_as_scheduler_is_refused_within_seconds(tmp_path, web_server):
    from ras_deap.errors import InfrastructureError
    from ras_deap.parallel import DASK_PROBE_TIMEOUT, _probe

    address = f"tcp://127.0.0.1:{web_server}"
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="not a Dask scheduler"):
        _probe(address)
    assert time.monotonic() - started <= DASK_PROBE_TIMEOUT + 2
    started = time.monotonic()
    proc = run(tmp_path, "--preset", "smoke", "--scheduler", address, timeout=120)
    lines = _err_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "not a Dask scheduler" in lines[0], proc.stderr
    assert time.monotonic() - started < 60  # imports and data included; it hung > 120 s
    assert not (tmp_path / "runs").exists()


class _StopAt:
    """A fitness of the genome alone that is interrupted (as by Ctrl-C) at
    its ``stop``-th call."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls, self.stop = 0, stop

    def data(self) -> None:
        return None

    def __call__(self, individual):
        from types import SimpleNamespace

        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        fitness = (int(individual.genome.id[2:10], 16) % 1000) / 1000
        return SimpleNamespace(fitness=fitness, failure=None,
                               metrics={"fitness": fitness, "accuracy": fitness})


def test_an_interrupt_before_the_first_evaluation_leaves_nothing_to_resume(tmp_path,
                                                                         monkeypatch, capsys):
    import warnings

    from ras_deap.config import SearchConfig
    from ras_deap.errors import Terminated
    from ras_deap.search import run_search

    config = SearchConfig(population=3, generations=1, children=1, workers=1,
                          run_dir=str(tmp_path / "runs"),
                          tracking_uri=f"sqlite:///{tmp_path}/m.db")
    with pytest.raises(KeyboardInterrupt) as caught:
        run_search(config, progress=False, final_training=False, evaluator=_StopAt(1))
    assert caught.value.run_dir is None and caught.value.evaluations == 0
    assert list((tmp_path / "runs").iterdir()) == []  # the new folder is gone

    # interrupted later: the folder stays, and resuming it (through another spelling
    # of its path) warns of no change that did not happen
    with pytest.raises(KeyboardInterrupt) as caught:
        run_search(config, progress=False, final_training=False, evaluator=_StopAt(3))
    folder = caught.value.run_dir
    assert caught.value.evaluations == 2 and (folder / CHECKPOINT_NAME).is_file()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        done = run_search(config.replace(run_dir=str(folder.parent.resolve()),
                                         run_name=folder.name),
                          resume=folder.resolve(), progress=False, final_training=False,
                          evaluator=_StopAt())
    assert done.evaluations == 3 + 3
    assert not [w for w in seen if "config differs" in str(w.message)], [
        str(w.message) for w in seen]

    # the command's line: no promise of a resume when nothing was evaluated
    def stopped(*args, **kwargs):
        raise Terminated()

    monkeypatch.setattr("ras_deap.search.run_search", stopped)
    monkeypatch.chdir(tmp_path)
    assert main(["--preset", "smoke", "--no-progress"]) == 130
    lines = _err_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "nothing was evaluated" in lines[0], lines
    assert "--resume" not in lines[0]


def test_only_a_malformed_command_line_shows_the_usage(capsys):
    for argv, usage in ((["--population", "abc"], False), (["--dataset", "nosuch"], False),
                        (["--no-such-flag"], True), (["--population"], True)):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        err = capsys.readouterr().err
        assert caught.value.code == 2
        assert ("usage:" in err) == usage, err
        if not usage:
            assert len(_err_lines(err)) == 1, err


def test_generations_0_is_documented_as_the_initial_population_alone():
    from ras_deap.config import OPTIONS

    assert "only the initial population" in OPTIONS["generations"].help


def test_assess_refuses_a_pickle_config_json_in_one_line(tmp_path, capsys):
    import random

    from ras_deap.assess.cli import main as assess
    from ras_deap.genome import random_model

    marker = tmp_path / "pwned"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "best_genome.json").write_text(random_model(random.Random(0)).to_json())
    (folder / "config.json").write_bytes(pickle.dumps(_Exploit(marker)))
    assert assess([str(folder), "--no-mlflow", "--no-progress"]) == 2
    lines = _err_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "not UTF-8" in lines[0], lines
    assert not marker.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["best_genome.json", "config.json"]
