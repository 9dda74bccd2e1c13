"""RAS against converted-NAS baselines under one evaluation budget (Table 2).

``python -m ras_deap.compare --budget N --seeds 3`` runs random search, TPE
over a chain space, (mu+lambda) without niching and RAS, re-trains each best
model the same way and writes the table, CSVs, a figure and MLflow runs.
Torch and MLflow are imported only when a comparison runs.
"""

from .baselines import (
    METHODS,
    MethodContext,
    MethodOutcome,
    mu_plus_lambda_plan,
    ras_generations,
    run_method,
)
from .budget import BudgetedEvaluator, BudgetExhausted, EvaluationRecord, ras_generation
from .chain import ChainSpace, chain_model, suggest_chain
from .config import COMPARE_PRESETS, METHOD_LABELS, METHOD_ORDER, CompareConfig

__all__ = [
    "COMPARE_PRESETS",
    "METHODS",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "BudgetExhausted",
    "BudgetedEvaluator",
    "ChainSpace",
    "CompareConfig",
    "EvaluationRecord",
    "MethodContext",
    "MethodOutcome",
    "chain_model",
    "mu_plus_lambda_plan",
    "ras_generation",
    "ras_generations",
    "run_comparison",
    "run_method",
    "suggest_chain",
]


def __getattr__(name: str):
    if name == "run_comparison":  # lazy: pulls in MLflow and the evaluator
        from .runner import run_comparison
        return run_comparison
    raise AttributeError(name)
