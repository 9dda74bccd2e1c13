"""Tune RAS's own evolution hyperparameters on the embedded ``digits`` data.

Tuned (paper value in brackets): mutations per child (5), children per
cluster (2), initial clusters (25), layer and block subpopulation limits
(100 each), training subset size (1000), full-training period (10
generations) and the learning rate (1e-3). The value of a trial is the best
fitness (validation accuracy + robustness on the adversarial bank) its search
reached within a fixed budget of evaluated individuals (``--max-evaluations``,
the same flag as in ``python -m ras_deap.run``), so settings that would evaluate more
individuals per generation do not win by spending more. Seeded TPE proposes
settings; the median pruner stops trials whose best fitness lags at equal
evaluation counts.

Run (from the repository root; any flag of ``python -m ras_deap.tune`` works)::

    python studies/tune_evolution.py                       # 8 trials, ~24 evaluations each
    python studies/tune_evolution.py --n-trials 20 --max-evaluations 60 --preset default
    python studies/tune_evolution.py --storage postgresql://user:pw@host/optuna   # shared

Running it again continues the study ``ras-evolution`` in
``studies/ras.db``; results go to ``studies/out/ras-evolution/`` and MLflow.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ras_deap.tune.cli import main

DEFAULTS = ["--space", "evolution", "--study-name", "ras-evolution"]

if __name__ == "__main__":
    sys.exit(main([*DEFAULTS, *sys.argv[1:]]))
