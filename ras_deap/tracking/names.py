"""What things are called in MLflow: metric sections and the meaning of each name.

The MLflow UI groups metric charts into sections by the prefix before a
``/``. The evaluator and the search keep flat names (``robustness_L0_th1``,
``best_fitness``: dict keys that other code reads); only what is *logged*
is renamed, here, in one place:

* an individual's run: ``fitness``, ``accuracy``, ``robustness``,
  ``test_accuracy``, ``parameters`` and ``flops`` keep their names (the
  columns one sorts by); ``robustness/<part>`` (the bank per (norm,
  threshold), per norm and per source model, ``robustness/bank``,
  ``robustness/direct`` and the direct attacks per (norm, threshold)
  ``robustness/direct_<norm>_th<t>``), ``spectrum/<feature>``,
  ``training/<…>`` (epochs, train accuracy, early stop, samples),
  ``timing/<…>_seconds`` and ``diag/<…>`` (constant bookkeeping: failed,
  bank fallback, full training, bank size);
* the search run, one point per generation: ``population/…`` (fitness
  max/mean/min over the cluster representatives, accuracy and robustness
  of the fittest representative and their mean/max/min, evaluations,
  subpopulation sizes), ``architecture/<statistic>_mean|min|max``
  (Figure 4), ``spectrum/<feature>`` (population mean) and
  ``timing/<phase>_seconds`` (cumulative);
* the final retraining of the best architecture: ``final/<name>`` on the
  best individual's run.

"Fittest" is the individual with the highest fitness (accuracy +
robustness); its accuracy is *not* the highest accuracy of the population
(that is ``population/accuracy_max``), so it can fall from one generation to
the next while the fitness rises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SECTIONS", "final_metric_names", "generation_metric_name",
           "individual_metric_name", "individual_metric_names"]

# the chart sections, in the order a user meets them
SECTIONS = ("population", "architecture", "robustness", "spectrum", "training", "timing",
            "diag", "final")

_TOP_LEVEL = frozenset({"fitness", "accuracy", "robustness", "test_accuracy", "parameters",
                        "flops"})
_DIAG = frozenset({"failed", "bank_fallback", "full_training", "bank_size"})
_TRAINING = frozenset({"epochs", "train_accuracy", "stopped_early", "train_samples"})
_QUALITIES = ("fitness", "accuracy", "robustness")
_POPULATION = frozenset({"evaluations", "models", "layer_subpopulation",
                         "block_subpopulation"})
_STATS = ("mean", "min", "max")
# (prefix, MLflow name) in the order they are tried: {rest} is the key less
# the prefix, {key} the whole key
_INDIVIDUAL_PREFIXES = (("robustness_", "robustness/{rest}"), ("direct_", "robustness/{key}"),
                        ("spectrum_", "spectrum/{rest}"))
_GENERATION_PREFIXES = (
    ("spectrum_", "spectrum/{rest}"),
    ("seconds_", "timing/{rest}_seconds"),
    ("front_", "front/{rest}"),  # a multi-objective search's front (size, hypervolume)
    # architecture statistics (Figure 4)
    *((f"{stat}_", f"architecture/{{rest}}_{stat}") for stat in _STATS),
)


def _by_prefix(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    """``key`` renamed by the first rule whose prefix it starts with; as it is
    if none."""
    for prefix, name in rules:
        if key.startswith(prefix):
            return name.format(key=key, rest=key.removeprefix(prefix))
    return key


def individual_metric_name(key: str) -> str:
    """The MLflow name of an evaluator metric on an individual's run."""
    if key in _TOP_LEVEL:
        return key
    if key in _DIAG:
        return f"diag/{key}"
    if key in _TRAINING:
        return f"training/{key}"
    if key.endswith("_seconds"):
        return f"timing/{key}"
    return _by_prefix(key, _INDIVIDUAL_PREFIXES)


def individual_metric_names(metrics: Mapping[str, Any],
                            spectrum: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An individual's metrics (and spectrum features) under their MLflow names."""
    out = {individual_metric_name(k): v for k, v in metrics.items()}
    out.update({f"spectrum/{k}": v for k, v in (spectrum or {}).items()})
    return out


def generation_metric_name(key: str) -> str:
    """The MLflow name of a per-generation metric of the search run (the
    keys of ``run_search``'s history; anything else keeps its name)."""
    if key == "best_fitness":  # the fittest representative's fitness is the maximum
        return "population/fitness_max"
    for quality in _QUALITIES:
        if key == f"fittest_{quality}":
            return f"population/{quality}_of_fittest"
        for stat in _STATS:
            if key == f"{stat}_{quality}":
                return f"population/{quality}_{stat}"
    if key in _POPULATION:
        return f"population/{key}"
    return _by_prefix(key, _GENERATION_PREFIXES)


def final_metric_names(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The final retraining's metrics as ``final/<evaluator key>``."""
    return {f"final/{k}": v for k, v in metrics.items()}
