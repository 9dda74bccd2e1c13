"""Does the fitness rank architectures or seeds? The ICC of accuracy,
robustness and fitness over random architectures x evaluation seeds.

    python benchmarks/bench_fitness_noise.py                  # default settings
    python benchmarks/bench_fitness_noise.py --repeats 2      # mean of 2 trainings
    python benchmarks/bench_fitness_noise.py --crn            # seeds shared (paired)
    python benchmarks/bench_fitness_noise.py --max-epochs 20
    python benchmarks/bench_fitness_noise.py --robustness both --masking-check

Every architecture is a ``random_model`` (the search's initial population),
trained with the evaluator a search uses (same data split, bank, schedule)
under ``--seeds`` evaluation seeds. Without ``--crn`` each (architecture,
seed) pair trains with its own seed, as individuals of a search do, and the
ICC is ICC(1,1); with ``--crn`` every architecture trains with the same seed
stream (common random numbers) and the ICC is ICC(3,1), which is what a
comparison between individuals trained with the same seeds sees.
``--repeats r`` makes one measurement the mean of r trainings (cost x r).
``--robustness direct|both`` also measures the direct (white-box) robustness
and prints the ICC of the fitness under each robustness choice;
``--masking-check`` then attacks each architecture's seed-0 network with ART's
gradient-free SquareAttack and prints the rank correlation with PGD (a
gradient attack fooled by masked gradients would disagree with it).
Goals (robustness-signal issue): fitness ICC >= 0.6, robustness >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from ras_deap.config import ROBUSTNESS, SearchConfig
from ras_deap.executor import Crash, ProcessPool
from ras_deap.genome import random_model
from ras_deap.report.reliability import icc
from ras_deap.search import make_evaluator
from ras_deap.seeding import derive_seed

TRAINING = ("dataset", "bank", "max_epochs", "subset_size", "patience", "batch_size", "lr",
            "optimizer")
MEASURES = ("accuracy", "robustness_bank", "robustness_direct", "direct_seconds")


def _measure(job):
    evaluator, model, seeds, square = job
    results = [evaluator.evaluate(model, 1, seed=s, return_module=square and i == 0)
               for i, s in enumerate(seeds)]
    out = {m: float(np.mean([r.metrics.get(m, 0.0) for r in results])) for m in MEASURES}
    out["seconds"] = float(np.mean([r.metrics["eval_seconds"] for r in results]))
    out["failed"] = sum(r.failure is not None for r in results)
    by_threshold: dict[str, list[float]] = {}  # per (norm, threshold)
    for r in results:
        for key, value in r.metrics.items():
            if "_th" in key and key.startswith(("robustness_L", "direct_L")):
                by_threshold.setdefault(key, []).append(value)
    out["by_threshold"] = {k: float(np.mean(v)) for k, v in by_threshold.items()}
    if square and results[0].module is not None:
        out["square"] = _square_vs_pgd(evaluator, results[0].module)
    return out


def _square_vs_pgd(evaluator, net, n: int = 120) -> dict[str, float]:
    """Robust accuracy under PGD and under ART's SquareAttack (200 queries per
    image, no gradients) at one intensity step, on the same images."""
    import torch
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification import PyTorchClassifier
    from torch import nn

    from ras_deap.evaluation.direct import pgd_linf

    data = evaluator.data().dataset
    eps = 1.0 / (data.levels - 1)
    x, y = data.val.x[:n], data.val.y[:n]
    net.eval()
    adv = pgd_linf(net, torch.from_numpy(x), torch.from_numpy(y), eps, 10)
    with torch.no_grad():
        pgd = float((net(adv).argmax(1).numpy() == y).mean())
    clf = PyTorchClassifier(net, loss=nn.CrossEntropyLoss(), input_shape=data.shape,
                            nb_classes=data.num_classes, clip_values=(0.0, 1.0),
                            device_type="cpu")
    np.random.seed(0)
    sq = SquareAttack(clf, eps=eps, max_iter=200, batch_size=n, verbose=False).generate(x, y=y)
    return {"pgd": pgd, "square": float((clf.predict(sq).argmax(1) == y).mean())}


def _row(name: str, table: np.ndarray, paired: bool) -> dict:
    res = icc(table, paired=paired)
    means = table.mean(axis=1)
    print(f"{name:<22} {res!s:<22} {res.between_sd:>10.3f} {res.within_sd:>8.3f}  "
          f"{means.min():.3f}-{means.max():.3f}")
    return {"icc": res.value, "ci": [res.low, res.high], "between_sd": res.between_sd,
            "within_sd": res.within_sd, "form": res.form,
            "arch_means": [round(float(m), 4) for m in means]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=12)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="trainings averaged per measurement")
    p.add_argument("--crn", action="store_true", help="common random numbers across archs")
    p.add_argument("--arch-seed", type=int, default=0, help="which random architectures")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--robustness", choices=ROBUSTNESS, default="bank")
    p.add_argument("--masking-check", action="store_true",
                   help="rank correlation of PGD with SquareAttack (needs direct or both)")
    p.add_argument("--json", help="also write the results here")
    defaults = SearchConfig()
    for name in TRAINING:
        value = getattr(defaults, name)
        p.add_argument(f"--{name.replace('_', '-')}", default=value,
                       type=type(value) if value is not None else str)
    args = p.parse_args(argv)
    if min(args.archs, args.seeds) < 2 or args.repeats < 1:
        p.error("--archs and --seeds must be >= 2 and --repeats >= 1")
    overrides = {n: getattr(args, n) for n in TRAINING}
    config = SearchConfig(**overrides, threads=1, robustness=args.robustness)
    evaluator = make_evaluator(config)
    evaluator.data()  # fail fast on a bad bank, before any training
    rng = random.Random(args.arch_seed)
    models = [random_model(rng) for _ in range(args.archs)]

    def seeds_for(i: int, s: int) -> list[int]:
        who = "crn" if args.crn else i
        return [derive_seed("noise", args.arch_seed, who, s, r) for r in range(args.repeats)]

    jobs = [(evaluator, models[i], seeds_for(i, s), args.masking_check and s == 0)
            for i in range(args.archs) for s in range(args.seeds)]
    start = time.perf_counter()
    with ProcessPool(args.workers, name="bench") as pool:  # the package's one pool
        rows = list(pool.map(_measure, jobs))
    crashed = [r for r in rows if isinstance(r, Crash)]
    if crashed:
        sys.exit(f"{len(crashed)} measurement(s) lost their process: {crashed[0]}")
    wall = time.perf_counter() - start

    def table(key) -> np.ndarray:
        values = [key(r) for r in rows]
        return np.array(values, dtype=float).reshape(args.archs, args.seeds)

    acc = table(lambda r: r["accuracy"])
    measures = {"bank": table(lambda r: r["robustness_bank"])}
    if args.robustness != "bank":
        measures["direct"] = table(lambda r: r["robustness_direct"])
        measures["both"] = 0.5 * (measures["bank"] + measures["direct"])
    seconds = float(np.mean([r["seconds"] for r in rows]))
    report = {"settings": {**overrides, "archs": args.archs, "seeds": args.seeds,
                           "repeats": args.repeats, "crn": args.crn,
                           "robustness": args.robustness,
                           "bank_size": len(evaluator.data().bank)},
              "wall_seconds": round(wall, 1),
              "seconds_per_evaluation": round(seconds, 3),
              "failed": int(sum(r["failed"] for r in rows))}
    print(f"{args.archs} random architectures x {args.seeds} seeds, repeats={args.repeats}, "
          f"crn={args.crn}, bank {report['settings']['bank_size']} samples, "
          f"{overrides['max_epochs']} epochs, subset {overrides['subset_size']}")
    print(f"{'measure':<22} {'ICC [95% CI]':<22} {'between sd':>10} {'seed sd':>8}  arch means")
    report["accuracy"] = _row("accuracy", acc, args.crn)
    for choice, rob in measures.items():
        report[f"robustness_{choice}"] = _row(f"robustness ({choice})", rob, args.crn)
        report[f"fitness_{choice}"] = _row(f"fitness ({choice})", acc + rob, args.crn)
    keys = sorted({k for r in rows for k in r["by_threshold"]},
                  key=lambda k: (k.split("_")[0], k.split("_")[1], int(k.rsplit("th", 1)[1])))
    report["by_threshold"] = {k: icc(table(lambda r, k=k: r["by_threshold"].get(k, 0.0)),
                                     paired=args.crn).value for k in keys}
    print("ICC per (norm, threshold): "
          + ", ".join(f"{k} {v:.2f}" for k, v in report["by_threshold"].items()))
    if args.robustness != "bank":
        direct_s = float(np.mean([r["direct_seconds"] for r in rows]))
        report["direct_cost"] = round(direct_s / (seconds - direct_s), 3)
        print(f"direct measure: {direct_s:.2f} s of {seconds:.2f} s per evaluation = "
              f"+{100 * report['direct_cost']:.0f}% over the evaluation without it")
    if args.masking_check:
        from scipy.stats import spearmanr

        pairs = [r["square"] for r in rows if "square" in r]
        pgd, sq = [q["pgd"] for q in pairs], [q["square"] for q in pairs]
        rho = float(spearmanr(pgd, sq).statistic)
        stronger = sum(a <= b + 1e-9 for a, b in zip(pgd, sq, strict=True))
        report["masking_check"] = {"spearman": rho, "pgd": pgd, "square": sq,
                                   "pgd_at_least_as_strong": stronger}
        print(f"masking check (1 step, 120 images, seed-0 networks): Spearman(PGD, Square) = "
              f"{rho:.2f} (goal >= 0.8); PGD at least as strong on {stronger}/{len(pairs)}")
    print(f"form: {report['accuracy']['form']}; {report['failed']} failed trainings; "
          f"{seconds:.2f} s per evaluation; wall {report['wall_seconds']} s with "
          f"{args.workers} workers")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
