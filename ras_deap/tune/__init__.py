"""Optuna studies of RAS's own hyperparameters (``python -m ras_deap.tune``).

A trial is one complete RAS search (:func:`ras_deap.search.run_search`) with
a fixed budget of evaluated individuals; its value is the fitness (accuracy +
robustness) of the search's best architecture re-measured on fresh evaluation
seeds (the mean of ``remeasure`` trainings, default 3), not the maximum the
search saw, which is mostly its luckiest training run. Studies live in an Optuna RDB storage (so
they can be continued, and shared between machines through one database),
and every trial is an MLflow run with its search nested under it.
"""

from ..errors import TuneError
from .objective import Milestones, Objective
from .report import StudyReport, reproduce_command, summarise_study
from .runner import TuneOutcome, base_config, tune
from .settings import TuneSettings
from .space import SPACES, SearchSpace, get_space
from .storage import DEFAULT_STORAGE, open_storage, open_study

__all__ = [
    "DEFAULT_STORAGE",
    "Milestones",
    "Objective",
    "SPACES",
    "SearchSpace",
    "StudyReport",
    "TuneError",
    "TuneOutcome",
    "TuneSettings",
    "base_config",
    "get_space",
    "open_storage",
    "open_study",
    "reproduce_command",
    "summarise_study",
    "tune",
]
