"""What a study run needs (:class:`TuneSettings`): declared with the option
schema and validated by it, as every settings class, so a bad value is one
:class:`~ras_deap.errors.ConfigError` naming it (and the flag that sets it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import OPTIONS, PRESETS, ConfigError
from ..options import check_options, option, options_of
from .objective import DEFAULT_REMEASURE
from .space import SPACES, get_space
from .storage import DEFAULT_STORAGE

__all__ = ["PRUNERS", "RESERVED", "SAMPLERS", "TUNE_OPTIONS", "TuneSettings"]

SAMPLERS = ("tpe", "grid", "random")
PRUNERS = ("median", "hyperband", "none")
# Search options the study sets itself -> the flag to use instead of --set: the
# ones with a flag of the same name here, and those the study derives.
RESERVED = {
    **{name: OPTIONS[name].flag for name in ("max_evaluations", "seed", "tracking_uri",
                                             "experiment")},
    "generations": f"{OPTIONS['max_evaluations'].flag} (the budget ends a trial)",
    "run_dir": "--out-dir", "run_name": "--study-name"}


_S = "study"


@dataclass
class TuneSettings:
    """Everything a study run needs; the CLI flags map one to one. ``overrides``:
    other SearchConfig fields (``--set``); ``enqueue``: trials to run first with
    these parameters (Optuna's enqueue_trial), e.g. the paper's setting as the
    study's own reference, skipped when already in the study."""

    study_name: str | None = option(None, "study to create or continue", _S,
                                    none_means="ras-<space>", hint="--study-name")
    storage: str = option(DEFAULT_STORAGE, "Optuna storage: any SQLAlchemy URL", _S,
                          hint="--storage")
    space: str = option("evolution", "what to tune", _S, choices=tuple(SPACES),
                        hint="--space")
    n_trials: int | None = option(None, "trials to add in this session", _S, minimum=1,
                                  none_means="8, or the remaining grid for a grid sampler",
                                  hint="--n-trials")
    timeout: float | None = option(None, "seconds for this session's trials", _S, minimum=0,
                                   closed=False, none_means="no limit", hint="--timeout")
    budget: int = option(24, "evaluations per trial (the search's max_evaluations)", _S,
                         minimum=1, hint=OPTIONS["max_evaluations"].flag)
    preset: str = option("smoke", "the preset the trials start from", _S,
                         choices=tuple(PRESETS), hint="--preset")
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = option(0, "the first search seed; also seeds the sampler", _S, minimum=0,
                       hint="--seed")
    sampler: str | None = option(None, "Optuna sampler", _S, choices=SAMPLERS,
                                 none_means="the space's", hint="--sampler")
    pruner: str | None = option(None, "Optuna pruner", _S, choices=PRUNERS,
                                none_means="the space's", hint="--pruner")
    startup_trials: int = option(4, "random trials before TPE models, complete trials before "
                                 "pruning", _S, minimum=1, hint="--startup-trials")
    replicates: int = option(3, "seeds per variant in a grid", _S, minimum=1,
                             hint="--replicates")
    report_every: int | None = option(None, "evaluations between pruning checks", _S,
                                      minimum=1, none_means="budget // 10",
                                      hint="--report-every")
    out_dir: str = option("studies/out", "where plots, reports and run folders go", _S,
                          hint="--out-dir")
    tracking_uri: str | None = option(None, "MLflow tracking URI", _S, hint="--tracking-uri")
    experiment: str = option("ras_deap-tune", "MLflow experiment name", _S,
                             hint="--experiment")
    track: bool = option(True, "log trials to MLflow", _S)
    final_training: bool = option(False, "retrain each trial's best model on the full set", _S)
    progress: bool = option(False, "show each search's progress bars", _S)
    # fresh trainings of each trial's best architecture; their mean is the trial's value,
    # so a trial costs budget + remeasure trainings
    remeasure: int = option(DEFAULT_REMEASURE, "fresh trainings of each trial's best "
                            "architecture", _S, minimum=1, hint="--remeasure")
    # searches per trial, on seeds seed .. seed + tuning_seeds - 1: the value is their mean
    tuning_seeds: int = option(1, "searches per trial, on seeds seed, seed + 1, ...", _S,
                               minimum=1, hint="--tuning-seeds")
    enqueue: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_options(self, TUNE_OPTIONS)
        if self.study_name is None:
            self.study_name = f"ras-{self.space}"
        space = get_space(self.space)
        known = set(OPTIONS)
        for key in self.overrides:
            if key not in known:
                raise ConfigError(f"--set {key}=...: SearchConfig has no field {key!r}; valid "
                                  f"fields are {', '.join(sorted(known))}")
            if key in RESERVED:
                raise ConfigError(f"--set {key}=...: {key} is set by the study itself; use "
                                  f"{RESERVED[key]}")
            if key in space.tunes:
                raise ConfigError(f"--set {key}=...: the {space.name!r} space tunes {key}; "
                                  "fix it with another --space, or drop --set")
        for params in self.enqueue:
            unknown = sorted(set(params) - set(space.tunes))
            if unknown or not params:
                raise ConfigError(f"--enqueue {_assignments(params)}: the {space.name!r} space "
                                  f"tunes {', '.join(space.tunes)}; "
                                  f"{'not ' + ', '.join(unknown) if unknown else 'name some'}")


TUNE_OPTIONS = options_of(TuneSettings)


def _assignments(params: dict[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in params.items())
