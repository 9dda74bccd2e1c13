"""A complete RAS search as one function: :func:`run_search`.

This is the integration layer: it wires the genome/evolution code (pure
Python), an evaluator (the torch one by default), the map backend, MLflow
tracking and the checkpoints together, around the one evolutionary loop
(:func:`ras_deap.evolution.ea_spectrum_niching`). ``python -m ras_deap.run``,
the Optuna studies and the baseline comparison all call it.

* :mod:`.core`: :func:`run_search`, :func:`make_evaluator`, the size checks;
* :mod:`.observers`: what hangs on the loop's hooks (MLflow, checkpoints,
  progress, timings, the caller's callbacks);
* :mod:`.records`: what is recorded per individual and generation;
* :mod:`.folders`: run folders and ``--resume``;
* :mod:`.final`: the summary and the retraining of the best architecture.
"""

from ..config import RESUMABLE_OVERRIDES
from .core import SIZE_LIMITS, SearchResult, check_sizes, make_evaluator, run_search
from .folders import CONFIG_NAME, create_run_dir, resolve_run_dir
from .records import training_schedule

__all__ = ["CONFIG_NAME", "RESUMABLE_OVERRIDES", "SIZE_LIMITS", "SearchResult", "check_sizes",
           "create_run_dir", "make_evaluator", "resolve_run_dir", "run_search",
           "training_schedule"]
