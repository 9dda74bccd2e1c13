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
seed. Usage::

    python benchmarks/fault_soak.py --cycles 20 [--out /tmp/soak]
"""

from __future__ import annotations

import argparse
import random
import shutil
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
    args = p.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="ras_soak-")).resolve()
    shutil.rmtree(root / "runs", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
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
    ok = (lost, duplicated, stale, orphaned) == (0, 0, 0, 0) and same == "True" and \
        state.evaluations == EXPECTED
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
