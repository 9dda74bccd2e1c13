"""Torch evaluation of genomes: compile, train, measure accuracy + robustness."""

from ..errors import BuildError, TrainingError
from ..seeding import evaluation_seed, seed_everything
from .augment import random_crop_flip
from .compiler import (
    CompiledBlock,
    CompiledLayer,
    CompiledNetwork,
    Concat,
    compile_model,
    merge_shape,
    planned_parameters,
)
from .cost import count_parameters, estimate_flops
from .evaluator import FALLBACK_BANK_SIZE, EvaluationResult, Evaluator, clear_cache
from .inference import Normalize, accuracy, predict
from .remeasure import Remeasurement, mean_sd_ci95, remeasure, remeasure_seeds
from .train_config import OPTIMIZERS, TrainConfig
from .trainer import TrainResult, make_optimizer, plateaued, train

__all__ = [
    "FALLBACK_BANK_SIZE",
    "Normalize",
    "OPTIMIZERS",
    "BuildError",
    "CompiledBlock",
    "CompiledLayer",
    "CompiledNetwork",
    "Concat",
    "EvaluationResult",
    "Evaluator",
    "Remeasurement",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "accuracy",
    "clear_cache",
    "compile_model",
    "count_parameters",
    "evaluation_seed",
    "estimate_flops",
    "make_optimizer",
    "mean_sd_ci95",
    "merge_shape",
    "planned_parameters",
    "plateaued",
    "predict",
    "random_crop_flip",
    "remeasure",
    "remeasure_seeds",
    "seed_everything",
    "train",
]
