"""RAS against NAS baselines under one evaluation budget (the paper's Table 2).

``python -m ras_deap.compare`` runs random search, TPE over a chain space,
(mu+lambda) without niching, regularized (aging) evolution and RAS, 275
trained models per method and seed over 5 seeds by default (the default
search's budget), re-measures and re-trains each winner the same way, attacks
it directly (:mod:`ras_deap.assess`) and writes the tables with 95 % CIs,
paired per-seed tests, CSVs, a figure and MLflow runs. Every (method, seed)
cell is stored when it ends; an interrupted comparison resumes, and
``--workers N`` runs N cells at once. Torch and MLflow are imported only
when a comparison runs.
"""

from .aging import ea_regularized, sel_sample_best
from .baselines import (
    METHODS,
    MethodContext,
    MethodOutcome,
    mu_plus_lambda_plan,
    ras_generations,
    regularized_plan,
    run_method,
)
from .budget import (
    BudgetedEvaluator,
    BudgetExhausted,
    EvaluationJournal,
    EvaluationRecord,
    ras_generation,
)
from .chain import ChainSpace, chain_model, suggest_chain
from .config import (
    COMPARE_PRESETS,
    METHOD_LABELS,
    METHOD_ORDER,
    REFERENCE_BUDGET,
    REFERENCE_SEEDS,
    CompareConfig,
)
from .stats import PairedResult, paired_comparison, paired_table

__all__ = [
    "COMPARE_PRESETS",
    "METHODS",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "REFERENCE_BUDGET",
    "REFERENCE_SEEDS",
    "BudgetExhausted",
    "BudgetedEvaluator",
    "ChainSpace",
    "CompareConfig",
    "EvaluationJournal",
    "EvaluationRecord",
    "MethodContext",
    "MethodOutcome",
    "PairedResult",
    "chain_model",
    "ea_regularized",
    "mu_plus_lambda_plan",
    "paired_comparison",
    "paired_table",
    "ras_generation",
    "ras_generations",
    "regularized_plan",
    "run_comparison",
    "run_method",
    "sel_sample_best",
    "suggest_chain",
]


def __getattr__(name: str):
    if name == "run_comparison":  # lazy: pulls in MLflow and the evaluator
        from .runner import run_comparison
        return run_comparison
    raise AttributeError(name)
