"""APGD-CE and APGD-T (one target) as ART runs them, with the weights'
gradients off (``assess.attacks._input_gradients_only``) and then also with
the gradient memo (``ras_deap.assess.memo.memoised_gradients``), on a stored
winner: the same adversarials, how much faster?

    python benchmarks/apgd_memo.py docs/results/table2-mnist10k-cells/cells/regularized-seed0 \
        --images 50 --iters 100 --eps-step 3

``FOLDER`` is anything ``python -m ras_deap.assess`` takes as a run folder
with weights (a comparison cell with ``best_model.pt``). The three runs
start from the same random points (numpy seeded alike) on the first
``--images`` quarantined test images at L-inf ``--eps-step``/(levels - 1).
Prints one JSON line per attack: per run, wall and CPU seconds and robust
accuracy (the memo's hits and misses too), and whether the adversarials are
identical to the plain run's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import stored_winner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stored_winner.add_arguments(p, images=50)
    p.add_argument("--iters", type=int, default=100)
    args = p.parse_args(argv)

    import torch
    from art.attacks.evasion import AutoProjectedGradientDescent

    from ras_deap.assess.attacks import _input_gradients_only
    from ras_deap.assess.autoattack import targets_by_logit
    from ras_deap.assess.memo import memoised_gradients
    from ras_deap.seeding import seed_everything

    torch.set_num_threads(1)
    w = stored_winner.load(args)
    net, clf, x, y, eps = w.net, w.clf, w.x, w.y, w.eps
    eye = np.eye(w.num_classes, dtype=np.float32)
    first_target = targets_by_logit(clf.predict(x), y, 1)[:, 0]
    for loss_type, targeted, labels in (("cross_entropy", False, eye[y]),
                                        ("difference_logits_ratio", True, eye[first_target])):
        found, report = {}, {"folder": args.folder, "attack": "APGD-T" if targeted else "APGD-CE",
                             "images": len(x), "iters": args.iters, "eps": eps}
        for label in ("plain", "input-gradients", "input-gradients+memo"):
            attack = AutoProjectedGradientDescent(
                clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=args.iters,
                targeted=targeted, nb_random_init=1, batch_size=256, loss_type=loss_type,
                verbose=False)
            if label.endswith("memo"):
                attack = memoised_gradients(attack)
            frozen = _input_gradients_only(net) if label != "plain" else None
            seed_everything(args.seed)
            t0, c0 = time.perf_counter(), time.process_time()
            if frozen is not None:
                with frozen:
                    found[label] = attack.generate(x, y=labels)
            else:
                found[label] = attack.generate(x, y=labels)
            report[label] = {"wall_s": round(time.perf_counter() - t0, 1),
                             "cpu_s": round(time.process_time() - c0, 1),
                             "robust_accuracy": float((clf.predict(found[label]).argmax(1)
                                                       == y).mean()),
                             "identical": bool(np.array_equal(found["plain"], found[label]))}
            if label.endswith("memo"):
                report[label].update(hits=attack.estimator.hits, misses=attack.estimator.misses)
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
