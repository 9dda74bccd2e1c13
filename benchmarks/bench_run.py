"""Benchmark of the main job: share of wall time outside training/evaluation
(mutation, niching, MLflow, checkpoints; goal <= 3%) and the speedup of 2
workers over 1 (goal >= 1.8x on 2 cores), against the local SQLite store and
against a real ``mlflow server`` over HTTP (started on 127.0.0.1 here, with a
SQLite backend and local artifacts, and stopped at the end).

    python benchmarks/bench_run.py                      # reduced runs, both stores (minutes)
    python benchmarks/bench_run.py --stores sqlite      # only the local store
    python benchmarks/bench_run.py --full               # the real default run (long)

"Outside evaluation" is the main process's time not spent waiting for
evaluations: breeding and niching, checkpoints and whatever MLflow work the
main thread does itself. With the background writer (the default) the MLflow
writes run in another thread while evaluations go on; its busy time is
printed separately ("writer") and is not part of the share.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from ras_deap.config import SearchConfig
from ras_deap.search import run_search


def one_run(config: SearchConfig) -> tuple[float, dict[str, float], int]:
    start = time.perf_counter()
    result = run_search(config, progress=False, final_training=False)
    return time.perf_counter() - start, result.timings, result.evaluations


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path, timeout: float = 120.0) -> Iterator[str]:
    """A local ``mlflow server`` (SQLite backend, artifacts under ``folder``);
    yields its URI and stops it on exit."""
    port = _free_port()
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{folder}/server.db",
           "--artifacts-destination", str(folder / "artifacts")]
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start; see {folder}/server.log")
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def bench(base: SearchConfig, store: str) -> list[str]:
    rows = []
    walls = {}
    for workers in (1, 2):
        cfg = base.replace(workers=workers, run_name=f"{store}-w{workers}")
        wall, timings, evals = one_run(cfg)
        walls[workers] = wall
        main_thread = timings["tracking"] + timings["checkpoint"] + timings["evolution"]
        print(f"[{store}] workers={workers}: {evals} evaluations in {wall:.1f} s "
              f"({wall / evals:.2f} s/evaluation); evaluation {timings['evaluation']:.1f} s, "
              f"MLflow in the main thread {timings['tracking']:.2f} s, writer "
              f"{timings.get('writer', 0.0):.2f} s, checkpoints {timings['checkpoint']:.2f} s, "
              f"breeding+niching {timings['evolution']:.2f} s", flush=True)
        rows.append(f"| {store} | {workers} | {evals} | {wall:.1f} s | "
                    f"{timings['tracking']:.2f} s | {timings.get('writer', 0.0):.2f} s | "
                    f"{main_thread / wall:.2%} |")
    print(f"[{store}] speedup of 2 workers over 1: {walls[1] / walls[2]:.2f}x (goal >= 1.8x)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="use the default run's size")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--population", type=int, default=10,
                        help="clusters of the reduced run (10 + 2 generations x 10 x 2 children "
                             "= 50 evaluations)")
    parser.add_argument("--stores", default="sqlite,server",
                        help="comma list of sqlite (local file) and server (mlflow server)")
    args = parser.parse_args()
    rows = ["| store | workers | evaluations | wall | MLflow (main thread) | writer thread | "
            "share outside evaluation |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = SearchConfig(run_dir=str(folder / "runs"), experiment="bench")
        if not args.full:
            base = base.replace(generations=args.generations, population=args.population)
        for store in args.stores.split(","):
            if store == "sqlite":
                rows += bench(base.replace(tracking_uri=f"sqlite:///{folder}/mlflow.db"), store)
            elif store == "server":
                with mlflow_server(folder) as uri:
                    rows += bench(base.replace(tracking_uri=uri), store)
            else:
                parser.error(f"--stores: unknown store {store!r}; use sqlite and/or server")
    print("\n".join(["", *rows]))


if __name__ == "__main__":
    main()
