"""RAS against NAS baselines under one evaluation budget (the paper's Table 2).

``python -m ras_deap.compare`` runs random search, TPE over a chain space,
(mu+lambda) without niching, regularized (aging) evolution and RAS, 275
trained models per method and seed over 5 seeds by default (the default
search's budget), re-measures and re-trains each winner the same way, attacks
it directly (:mod:`ras_deap.assess`) and writes the tables with 95 % CIs,
paired per-seed tests, CSVs, a figure and MLflow runs. Every (method, seed)
cell is stored when it ends; an interrupted comparison resumes, and
``--parallel-cells N`` runs N cells at once. Torch and MLflow are imported only
when a comparison runs.

Named in ``--methods``, ``nsga2`` (plain NSGA-II on the RAS genome,
:mod:`.nsga2`) and ``ras_mo`` (multi-objective RAS) search accuracy and
robustness; their cells keep their re-measured front (:mod:`.front`), which
``python -m ras_deap.compare.pareto`` compares with the single-objective
methods' by hypervolume, paired by seed (issue #31).
"""

from ..genome.chain import ChainSpace, chain_model, suggest_chain
from .aging import ea_regularized, regularized_plan, sel_sample_best
from .baselines import METHODS, mu_plus_lambda_plan, run_method
from .budget import (
    BudgetedEvaluator,
    BudgetExhausted,
    EvaluationJournal,
    EvaluationRecord,
    ras_generation,
)
from .compare_config import (
    COMPARE_PRESETS,
    DEFAULT_METHODS,
    EXTRA_METHODS,
    METHOD_LABELS,
    METHOD_ORDER,
    MO_METHODS,
    REFERENCE_BUDGET,
    REFERENCE_SEEDS,
    CompareConfig,
)
from .method import MethodContext, MethodOutcome
from .nsga2 import ea_nsga2, nsga2_plan
from .ras import ras_generations
from .stats import PairedResult, paired_comparison, paired_table

__all__ = [
    "COMPARE_PRESETS",
    "DEFAULT_METHODS",
    "EXTRA_METHODS",
    "METHODS",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "MO_METHODS",
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
    "ea_nsga2",
    "ea_regularized",
    "mu_plus_lambda_plan",
    "nsga2_plan",
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
