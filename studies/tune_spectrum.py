"""Compare the spectrum distances of RAS's niching: raw Euclidean vs normalised.

The spectrum of an architecture is a 10-feature histogram (blocks, layers,
connections, layers of each type); niching lets a child replace the cluster
representative closest to it in spectrum distance. ``raw`` is the plain
Euclidean distance on the counts (the paper does not specify the distance;
large counts such as connections dominate it); ``normalized`` first divides
every feature by its maximum over the individuals compared, so every feature
weighs the same
(``SearchConfig.distance``). The study
is a grid: every variant runs on the same ``--replicates`` seeds (3 by
default, so 6 trials) with the other settings at the preset's values, and
without pruning, so the per-variant mean fitness printed at the end is a
fair comparison. Use ``--space full`` with ``python -m ras_deap.tune`` to tune
the distance together with the evolution hyperparameters instead.

Run (from the repository root)::

    python studies/tune_spectrum.py                  # 2 variants x 3 seeds, budget 24 each
    python studies/tune_spectrum.py --replicates 5 --max-evaluations 60

Running it again continues the grid where it stopped (study ``ras-spectrum``
in ``studies/ras.db``); results go to ``studies/out/ras-spectrum/`` and MLflow.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ras_deap.tune.cli import main

DEFAULTS = ["--space", "spectrum", "--study-name", "ras-spectrum"]

if __name__ == "__main__":
    sys.exit(main([*DEFAULTS, *sys.argv[1:]]))
