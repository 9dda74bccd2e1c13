"""SquareAttack with and without the logit memo (``ras_deap.assess.memo``) on
a stored winner: the same adversarials, how much faster?

    python benchmarks/square_memo.py docs/results/table2-mnist10k-cells/cells/ras-seed0 \
        --images 128 --queries 100 --eps-step 10

``FOLDER`` is anything ``python -m ras_deap.assess`` takes as a run folder
with weights (a comparison cell with ``best_model.pt``). Both runs draw the
same squares (numpy seeded alike) on the first ``--images`` quarantined test
images at L-inf ``--eps-step``/(levels - 1). Prints, per run, wall and CPU
seconds and robust accuracy (the memo's hits and misses too), then whether
the adversarials are identical and their largest difference. A memoised
logit was computed in another batch than a recomputation would be, so ties
can go the other way at the last bit; the robust accuracy should not move.
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
    stored_winner.add_arguments(p, images=64)
    p.add_argument("--queries", type=int, default=100)
    args = p.parse_args(argv)

    from art.attacks.evasion import SquareAttack

    from ras_deap.assess.memo import memoised
    from ras_deap.seeding import seed_everything

    w = stored_winner.load(args)
    clf, x, y, eps = w.clf, w.x, w.y, w.eps
    found, report = {}, {"folder": args.folder, "images": len(x), "queries": args.queries,
                         "eps": eps}
    for label, attacked in (("plain", clf), ("memo", memoised(clf))):
        seed_everything(args.seed)
        t0, c0 = time.perf_counter(), time.process_time()
        found[label] = SquareAttack(attacked, norm=np.inf, eps=eps, max_iter=args.queries,
                                    nb_restarts=1, batch_size=256,
                                    verbose=False).generate(x, y=y)
        report[label] = {"wall_s": round(time.perf_counter() - t0, 1),
                         "cpu_s": round(time.process_time() - c0, 1),
                         "robust_accuracy": float((clf.predict(found[label]).argmax(1)
                                                   == y).mean())}
        if label == "memo":
            report[label].update(hits=attacked.predict.hits, misses=attacked.predict.misses)
    report["identical"] = bool(np.array_equal(found["plain"], found["memo"]))
    report["max_abs_difference"] = float(np.abs(found["plain"] - found["memo"]).max())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
