"""ras_deap: Robust Architecture Search (Kotyan & Vargas) on DEAP.

The package is split so that the genome and the evolution import no torch
(fast, testable on their own); torch lives in ``ras_deap.evaluation`` and
MLflow in ``ras_deap.tracking``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
