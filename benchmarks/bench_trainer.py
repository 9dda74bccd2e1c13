"""Trainer throughput vs a bare hand-written torch loop, and seconds per
evaluation on digits with the default subset schedule.

    python benchmarks/bench_trainer.py [--models 5] [--epochs 5] [--threads 1]

Both loops train the same compiled network (same initial weights) on the
same 1000 digits samples for the same epochs, including one validation pass
per epoch (the trainer needs it for early stopping, so the bare loop does
the same work). Goal: trainer / bare samples per second >= 0.95.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from ras_deap.data import load_dataset
from ras_deap.evaluation import Evaluator, TrainConfig, compile_model, train
from ras_deap.genome import random_model


def bare_loop(net, x, y, xv, yv, epochs, batch_size, gen):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    n = x.shape[0]
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.inference_mode():
            (net(xv).argmax(1) == yv).float().mean().item()
    return epochs * n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--evaluations", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    ds = load_dataset("digits", seed=0)
    cfg = TrainConfig()
    idx = np.random.default_rng(0).choice(len(ds.train), 1000, replace=False)
    x, y = torch.from_numpy(ds.train.x[idx]), torch.from_numpy(ds.train.y[idx])
    xv, yv = torch.from_numpy(ds.val.x), torch.from_numpy(ds.val.y)
    ratios = []
    print(f"torch {torch.__version__}, threads={args.threads}, batch={cfg.batch_size}, "
          f"{args.epochs} epochs of {len(y)} samples")
    for s in range(args.models):
        model = random_model(random.Random(s))
        torch.manual_seed(s)
        net = compile_model(model, ds.shape, ds.num_classes, ds.mean, ds.std)
        net_b = copy.deepcopy(net)
        # warm-up both (oneDNN primitive caches), then time; alternate order
        train(copy.deepcopy(net), x[:128], y[:128], xv, yv, cfg, 1, torch.Generator())
        t0 = time.perf_counter()
        res = train(net, x, y, xv, yv, cfg, args.epochs, torch.Generator().manual_seed(0))
        t_trainer = time.perf_counter() - t0
        t0 = time.perf_counter()
        seen = bare_loop(net_b, x, y, xv, yv, args.epochs, cfg.batch_size,
                         torch.Generator().manual_seed(0))
        t_bare = time.perf_counter() - t0
        r = (res.samples_seen / t_trainer) / (seen / t_bare)
        ratios.append(r)
        print(f"model {s} ({model.id}): trainer {res.samples_seen / t_trainer:8.0f} samples/s, "
              f"bare {seen / t_bare:8.0f} samples/s, ratio {r:.3f}")
    print(f"median ratio trainer/bare: {statistics.median(ratios):.3f} (goal >= 0.95)")

    ev = Evaluator("digits", seed=0, num_threads=args.threads)
    ev.data()  # load once, as a worker process would
    times = []
    for s in range(args.evaluations):
        t0 = time.perf_counter()
        r = ev.evaluate(random_model(random.Random(100 + s)), generation=1)
        times.append(time.perf_counter() - t0)
        print(f"evaluation {s}: {times[-1]:.2f} s, fitness {r.fitness:.3f}, "
              f"epochs {r.metrics.get('epochs', 0):.0f}, failure {r.failure}")
    print(f"seconds per digits evaluation (subset schedule, {cfg.max_epochs} max epochs): "
          f"median {statistics.median(times):.2f}, mean {statistics.mean(times):.2f}, "
          f"max {max(times):.2f}")


if __name__ == "__main__":
    main()
