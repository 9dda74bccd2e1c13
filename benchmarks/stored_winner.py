"""A stored winner, its first quarantined test images and an eps, for the
attack benchmarks (``square_memo.py``, ``apgd_memo.py``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Winner:
    net: Any        # the network, on the CPU, in eval mode
    clf: Any        # ART's classifier of it, as assess builds it
    x: np.ndarray   # the first --images quarantined test images
    y: np.ndarray
    eps: float      # --eps-step steps of the data's intensity grid
    num_classes: int


def add_arguments(p: argparse.ArgumentParser, images: int) -> None:
    p.add_argument("folder", help="a run or comparison cell folder with best_model.pt")
    p.add_argument("--images", type=int, default=images)
    p.add_argument("--eps-step", type=int, default=3, help="eps in steps of the data's grid")
    p.add_argument("--seed", type=int, default=0)


def load(args: argparse.Namespace) -> Winner:
    from ras_deap.assess.attacks import _classifier
    from ras_deap.assess.run import build_network
    from ras_deap.assess.target import resolve_target
    from ras_deap.search import make_evaluator

    target = resolve_target(args.folder)
    evaluator = make_evaluator(target.config)
    dataset = evaluator.data().dataset
    net, _ = build_network(target, evaluator)
    net = net.cpu().eval()
    x, y = dataset.test.x[:args.images], dataset.test.y[:args.images]
    return Winner(net, _classifier(net, x.shape[1:], dataset.num_classes), x, y,
                  args.eps_step / (int(dataset.levels) - 1), dataset.num_classes)
