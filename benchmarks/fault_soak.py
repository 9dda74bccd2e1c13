"""Soak test of crash safety: N random ``kill -9`` / ``--resume`` cycles.

One tiny search with ``--workers 2`` is started, killed with SIGKILL at a
random moment (after a random number of checkpointed evaluations, so kills
land in breeding, evaluation, logging and checkpointing alike), resumed,
killed again, ... ``N`` times, then resumed to the end. After every kill it
counts the worker processes still alive 10 s later; at the end it compares
the checkpoint with the MLflow store and prints:

* lost: evaluations in the checkpoint without a finished child run,
* duplicated: child runs beyond one per individual,
* stale: runs left RUNNING (the search run and its children),
* orphaned: worker processes that outlived a killed main process.

It also checks that the result equals an uninterrupted run with the same
seed. Before the kills, ``--wrong-services`` rounds (default 1) point a search
at a service that answers but is wrong (``python -m http.server``), as
``--tracking-uri`` and as ``--scheduler``, and count the refusals that end as
they should: exit code 2, one line, no run folder left. Usage::

    python benchmarks/fault_soak.py --cycles 20 [--out /tmp/soak]
    python benchmarks/fault_soak.py --cycles 0 --wrong-services 3  # only those
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

from ras_deap.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint

# 4 + 12 x 4 x 2 = 100 tiny trainings, no final training of note
POPULATION, GENERATIONS, CHILDREN = 4, 12, 2
EXPECTED = POPULATION * (1 + GENERATIONS * CHILDREN)
SEARCH = ["--preset", "smoke", "--population", str(POPULATION), "--generations",
          str(GENERATIONS), "--children", str(CHILDREN), "--max-epochs", "1",
          "--subset-size", "120", "--workers", "2", "--no-progress"]


def _cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ras_deap.run", "--run-dir", str(root / "runs"),
            "--tracking-uri", f"sqlite:///{root}/mlflow.db", "--experiment", "soak", *args]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _evaluations(path: Path) -> int:
    try:
        return load_checkpoint(path).state.evaluations
    except CheckpointError:
        return -1


def _cycle(root: Path, args: list[str], rng: random.Random, ckpt: Path) -> tuple[bool, int]:
    """Start, wait for a random amount of progress, kill -9. Returns
    (whether it was killed before finishing, orphaned workers)."""
    start = max(_evaluations(ckpt), 0)
    target = start + rng.randint(0, 2)
    extra_wait = rng.uniform(0, 0.5)
    proc = subprocess.Popen(_cmd(root, *args), cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        workers.update(_children(proc.pid))
        if _evaluations(ckpt) >= target:
            break
        time.sleep(0.05)
    time.sleep(extra_wait)
    workers.update(_children(proc.pid))
    if proc.poll() is not None:
        return False, 0
    proc.kill()
    proc.wait()
    time.sleep(10)
    return True, sum(_alive(p) for p in workers)


def _web_server(root: Path) -> tuple[subprocess.Popen, int]:
    """``python -m http.server`` on a free 127.0.0.1 port (neither MLflow nor Dask)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "served").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], cwd=root / "served", stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("http.server did not start")


def _wrong_services(root: Path, rounds: int) -> tuple[int, int]:
    """``rounds`` x (a web server as tracking URI, as scheduler). Returns
    (refusals as they should be, attempts): exit 2, one line on stderr
    (MLflow's start-up notes aside), no run folder left."""
    good = attempts = 0
    server, port = _web_server(root)
    try:
        for _ in range(rounds):
            for flag, value in (("--tracking-uri", f"http://127.0.0.1:{port}"),
                                ("--scheduler", f"tcp://127.0.0.1:{port}")):
                runs = root / "wrong" / "runs"
                shutil.rmtree(runs, ignore_errors=True)
                cmd = [sys.executable, "-m", "ras_deap.run", "--preset", "smoke", "--run-dir",
                       str(runs), "--tracking-uri", f"sqlite:///{root}/wrong/mlflow.db",
                       "--no-progress", flag, value]
                started = time.time()
                proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                                      timeout=300)
                lines = [line for line in proc.stderr.splitlines()
                         if line.strip() and " INFO mlflow" not in line]
                ok = proc.returncode == 2 and len(lines) == 1 and not runs.exists()
                attempts += 1
                good += ok
                print(f"wrong service {flag}: exit {proc.returncode}, {len(lines)} line(s), "
                      f"run folder {'left' if runs.exists() else 'none'} "
                      f"({time.time() - started:.0f} s){'' if ok else ': ' + proc.stderr[-500:]}",
                      flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return good, attempts


def _store(root: Path, run_id: str) -> tuple[list, object]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("soak").experiment_id
    runs = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run_id}'",
                              max_results=10_000)
    return runs, client.get_run(run_id)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=20, help="kill -9 / resume cycles")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--wrong-services", type=int, default=1,
                   help="rounds of a search against a web server as tracking URI and as "
                        "scheduler (each must exit 2 with one line and leave nothing)")
    args = p.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="ras_soak-")).resolve()
    shutil.rmtree(root / "runs", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    refused, attempts = _wrong_services(root, args.wrong_services)
    print(f"wrong services: {refused} of {attempts} refused as they should be (exit 2, one "
          "line, nothing left)", flush=True)
    if args.cycles == 0:
        return 0 if refused == attempts else 1
    rng = random.Random(args.seed)
    ckpt = root / "runs" / "soak" / CHECKPOINT_NAME
    started = time.time()
    kills = orphaned = 0
    for i in range(args.cycles):
        first = i == 0 or not ckpt.exists()
        killed, orphans = _cycle(root, [*SEARCH, "--run-name", "soak"] if first
                                 else ["--resume", str(ckpt.parent), "--no-progress"], rng, ckpt)
        kills += killed
        orphaned += orphans
        print(f"cycle {i + 1}: {'killed' if killed else 'finished'} at "
              f"{max(_evaluations(ckpt), 0)} evaluations, {orphans} orphaned workers",
              flush=True)
        if not killed:
            break
    final = subprocess.run(_cmd(root, "--resume", str(ckpt.parent), "--no-progress"),
                           cwd=root, capture_output=True, text=True)
    if final.returncode != 0:
        print(final.stderr[-3000:])
        return 1
    state = load_checkpoint(ckpt).state
    runs, search = _store(root, state.extra["mlflow_run_id"])
    keys = [r.data.tags.get("ras_deap.key") for r in runs]
    finished = {k for r, k in zip(runs, keys, strict=True)
                if r.info.status in ("FINISHED", "FAILED")}
    lost = max(state.evaluations - len(finished), 0)
    duplicated = len(keys) - len(set(keys))
    stale = sum(r.info.status == "RUNNING" for r in runs) + (search.info.status == "RUNNING")

    straight = subprocess.run(_cmd(root, *SEARCH, "--run-name", "straight"), cwd=root,
                              capture_output=True, text=True)
    same = "not checked"
    if straight.returncode == 0:
        ref = load_checkpoint(root / "runs" / "straight").state
        same = str([(i.genome.id, i.fitness.values) for i in ref.population]
                   == [(i.genome.id, i.fitness.values) for i in state.population])
    print(f"\n{args.cycles} cycles requested, {kills} kill -9 of the main process "
          f"({time.time() - started:.0f} s)")
    print(f"evaluations {state.evaluations} (expected {EXPECTED}), child runs {len(runs)}")
    print(f"lost {lost}, duplicated {duplicated}, stale {stale}, orphaned {orphaned}")
    print(f"same result as an uninterrupted run: {same}")
    print(f"wrong services refused as they should be: {refused} of {attempts}")
    ok = (lost, duplicated, stale, orphaned) == (0, 0, 0, 0) and same == "True" and \
        state.evaluations == EXPECTED and refused == attempts
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
