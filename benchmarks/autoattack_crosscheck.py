"""AutoAttack of ``ras_deap.assess`` (from ART's parts) against torchattacks'.

    PYTHONPATH=$PWD:/work/extra/torchattacks python benchmarks/autoattack_crosscheck.py
    ... --dataset mnist10k --images 100        # an 8-bit model, eps x/255, 0.1 and 0.3

Trains a small chain on the dataset (seeded, a few seconds), then attacks the
first ``--images`` quarantined test images at each eps with

* **ART**: ``ras_deap.assess.autoattack.run_autoattack`` (APGD-CE, APGD-T,
  Square; ART has no FAB), what ``python -m ras_deap.assess --attacks
  autoattack`` runs;
* **torchattacks standard**: ``torchattacks.AutoAttack(norm='Linf',
  version='standard')`` as shipped (APGD-CE, APGD-T, FAB-T, Square 5000;
  note torchattacks' APGD/APGD-T/FAB default to 10 steps, not the
  original's 100);
* **torchattacks at matched iterations**: the same four attacks with
  ``--iters`` steps and ``--queries`` Square queries (what RobustBench runs
  with the defaults), through torchattacks' ``MultiAttack``;

and prints robust accuracy, the images on which ART and torchattacks
disagree, and seconds. torchattacks is not a dependency of ras_deap (it pins
``requests~=2.25``); install it without dependencies and put it on
``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ras_deap.assess.assess_config import AUTOATTACK_FIELD_EPS, default_eps_steps, mnist_like
from ras_deap.assess.attacks import _classifier
from ras_deap.assess.autoattack import run_autoattack
from ras_deap.compare import chain_model
from ras_deap.data import load_dataset
from ras_deap.evaluation import Evaluator, TrainConfig

# a small chain per dataset: (conv layers (filters, kernel, stride), dense layers), epochs
MODELS = {"digits": ([(8, 3, 1)], [64], 3), "mnist10k": ([(16, 3, 1), (32, 3, 2)], [64], 3)}


def train(dataset: str, seed: int) -> tuple[torch.nn.Module, object, float]:
    """A small seeded chain trained on ``dataset`` (its net, data, seconds)."""
    import tempfile

    from ras_deap.bank import fallback_bank, save_bank

    convs, dense, epochs = MODELS[dataset]
    data = load_dataset(dataset, None, False, seed)
    folder = Path(tempfile.mkdtemp(prefix="aa-crosscheck-"))
    bank = save_bank(fallback_bank(data, 20, seed=0), folder / "bank.npz")
    evaluator = Evaluator(dataset, bank_path=bank, seed=seed,
                          train_config=TrainConfig(full_epochs=epochs, max_epochs=epochs))
    t0 = time.perf_counter()
    result = evaluator.evaluate(chain_model(convs, dense), 10, seed=seed + 1, with_test=True,
                                return_module=True)
    if result.failure is not None:
        raise SystemExit(f"training failed: {result.failure}")
    return result.module.cpu().eval(), data, time.perf_counter() - t0


def torchattacks_robust(attack: object, net: torch.nn.Module, x: np.ndarray, y: np.ndarray,
                        eps: float) -> tuple[np.ndarray, float]:
    """Per image: correct clean and on torchattacks' adversarial; seconds."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    t0 = time.perf_counter()
    adv = attack(xt, yt).detach()
    seconds = time.perf_counter() - t0
    assert float((adv - xt).abs().max()) <= eps + 1e-6
    with torch.no_grad():
        ok = (net(xt).argmax(1) == yt) & (net(adv).argmax(1) == yt)
    return ok.numpy(), seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(MODELS), default="digits")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--iters", type=int, default=100, help="APGD/APGD-T/FAB steps (default 100)")
    p.add_argument("--queries", type=int, default=5000, help="Square queries (default 5000)")
    p.add_argument("--eps", help="comma-separated absolute eps (default: the data's grid, and "
                                 "0.1,0.3 on MNIST-like data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--skip-standard", action="store_true",
                   help="leave out torchattacks' shipped standard version (10 steps)")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = p.parse_args()
    import torchattacks

    torch.set_num_threads(args.threads)
    net, data, train_s = train(args.dataset, args.seed)
    for param in net.parameters():
        param.requires_grad_(False)
    x, y = data.test.x[:args.images], data.test.y[:args.images].astype(np.int64)
    grid = data.levels - 1
    if args.eps:
        budgets = [(f"{float(e):g}", float(e)) for e in args.eps.split(",")]
    else:
        budgets = [(f"{k}/{grid}", k / grid) for k in default_eps_steps(data.levels)]
        if mnist_like(data.levels, data.shape):
            budgets += [(f"{e:g}", e) for e in AUTOATTACK_FIELD_EPS]
    clf = _classifier(net, x.shape[1:], data.num_classes)
    with torch.no_grad():
        clean = float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    print(f"{args.dataset}: chain trained in {train_s:.1f} s, {len(x)} test images, clean "
          f"accuracy {100 * clean:.1f}%; torchattacks {torchattacks.__version__}; "
          f"{args.iters} iterations, {args.queries} Square queries, {args.threads} thread(s)")
    print("| eps | ART: after APGD-CE / APGD-T / Square | s | torchattacks standard (10 steps) "
          "| s | torchattacks, matched iterations | s | images ART vs matched disagree |")
    print("|---|---|---|---|---|---|---|---|")
    out = {"dataset": args.dataset, "images": len(x), "clean": clean, "iters": args.iters,
           "queries": args.queries, "rows": []}
    for label, eps in budgets:
        t0 = time.perf_counter()
        art = run_autoattack(clf, x, y, eps, iters=args.iters, queries=args.queries,
                             seed=args.seed)
        art_s = time.perf_counter() - t0
        steps = " / ".join(f"{100 * v.mean():.1f}" for v in art.robust_after.values())
        if args.skip_standard:
            std, std_s = np.full(len(x), np.nan), float("nan")
        else:
            std, std_s = torchattacks_robust(torchattacks.AutoAttack(
                net, norm="Linf", eps=eps, version="standard", n_classes=data.num_classes,
                seed=args.seed), net, x, y, eps)
        kw = {"eps": eps, "norm": "Linf", "seed": args.seed}
        matched = torchattacks.MultiAttack([
            torchattacks.APGD(net, loss="ce", steps=args.iters, n_restarts=1, **kw),
            torchattacks.APGDT(net, steps=args.iters, n_restarts=1,
                               n_classes=data.num_classes, **kw),
            torchattacks.FAB(net, steps=args.iters, n_restarts=1, multi_targeted=True,
                             n_classes=data.num_classes, **kw),
            torchattacks.Square(net, n_queries=args.queries, n_restarts=1, **kw)])
        ta, ta_s = torchattacks_robust(matched, net, x, y, eps)
        disagree = int((art.robust != ta).sum())
        print(f"| {label} | {steps} | {art_s:.1f} | {100 * np.mean(std):.1f} | {std_s:.1f} | "
              f"{100 * ta.mean():.1f} | {ta_s:.1f} | {disagree} "
              f"(ART only: {int((art.robust & ~ta).sum())}) |", flush=True)
        out["rows"].append({"eps": label, "art": float(art.robust.mean()),
                            "art_after": {k: float(v.mean()) for k, v in
                                          art.robust_after.items()},
                            "art_seconds": art_s, "ta_standard": float(np.mean(std)),
                            "ta_standard_seconds": std_s, "ta_matched": float(ta.mean()),
                            "ta_matched_seconds": ta_s, "disagree": disagree})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
