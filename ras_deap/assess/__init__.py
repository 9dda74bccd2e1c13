"""Direct attacks on a search's best model: ``python -m ras_deap.assess RUN``.

The paper measures robustness by transfer only (a bank of samples crafted on
other models). This attacks the trained winner itself with IBM ART on the
dataset's quarantined test images: Linf FGSM and PGD over an eps grid on the
data's own intensity scale, L0 PixelAttack with differential evolution at
1/3/5/10 pixels, and reports the transfer bank beside them.
Torch, ART and MLflow are imported only when an assessment runs.
"""

from .assess_config import ATTACKS, AssessConfig, default_eps_steps
from .result import METRIC_PREFIX, Assessment, AttackRow, format_table
from .target import AssessTarget, TargetError, resolve_target

__all__ = [
    "ATTACKS",
    "METRIC_PREFIX",
    "AssessConfig",
    "AssessTarget",
    "Assessment",
    "AttackRow",
    "TargetError",
    "assess_network",
    "assess_target",
    "default_eps_steps",
    "format_table",
    "resolve_target",
]


def __getattr__(name: str):
    if name == "assess_network":  # lazy: torch and ART
        from .attacks import assess_network
        return assess_network
    if name == "assess_target":
        from .run import assess_target
        return assess_target
    raise AttributeError(name)
