"""The tags ras_deap puts on MLflow runs and experiments (one place, so the
search tracker, the study tracker and the readers agree on their names)."""

from __future__ import annotations

__all__ = ["BEST_TAG", "EXPERIMENT_KIND_TAG", "FAILURE_TAG", "FRONT_TAG",
           "GENETIC_PARENT_RUN_TAG", "KEY_TAG", "MODEL_TRAINING_KIND", "NOTE_TAG", "PARENT_TAG",
           "ROLE_TAG"]

PARENT_TAG = "mlflow.parentRunId"
KEY_TAG = "ras_deap.key"
ROLE_TAG = "ras_deap.role"
FAILURE_TAG = "failure"
BEST_TAG = "ras_deap.best"
FRONT_TAG = "ras_deap.front"  # a member of a multi-objective search's final front
GENETIC_PARENT_RUN_TAG = "ras_deap.genetic_parent_run"
NOTE_TAG = "mlflow.note.content"  # a run's or experiment's description in the UI
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"  # shown as "Machine learning"
