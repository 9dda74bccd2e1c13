"""Training configuration and the paper's full/subset schedule (section 5.3).

The training options a user sets (epochs, schedule, early stopping,
optimiser, ...) are declared once, in the option schema
(:class:`ras_deap.config.SearchConfig`, group "training"): :class:`TrainConfig`
is built from those declarations, with their names, types and defaults, plus
the few settings only the evaluator has (momentum, weight decay, evaluation
batch size, the parameter limit). A search hands its training options over
unchanged (:func:`ras_deap.config.training_values`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from ..config import OPTIONS, TRAINING_FIELDS, SearchConfig
from ..constants import OPTIMIZERS
from ..errors import ConfigError
from ..options import check_options, option, option_from, options_of, paper_values

__all__ = ["OPTIMIZERS", "TRAIN_OPTIONS", "TrainConfig"]

_E = "evaluator"


@dataclass(frozen=True)
class TrainConfig:
    """How every candidate network is trained.

    The early-stopping rule and the schedule follow the paper (section 5.3:
    "early stopping if accuracy or validation accuracy do not change more
    than 0.001 in the span of 15 epochs": training stops as soon as the
    training accuracy *or* the validation accuracy has not moved more than
    ``min_delta`` over ``patience`` epochs; every 10th generation trains on
    the full training set, the others on 1000 random training samples). The
    epoch budgets are NOT the paper's by default: 200 / 50 max epochs make
    one evaluation minutes long on a CPU (and on a small validation set one
    changed prediction already moves the accuracy by more than 0.001), while
    the default search must finish in minutes. ``max_epochs=10`` (subset)
    and ``full_epochs=20`` keep a digits evaluation at ~1-3 s on one CPU
    core; :meth:`paper` gives the paper's 200 / 50. The optimiser is Adam
    with lr 1e-3 because a search cannot tune the learning rate per
    architecture and Adam is much less sensitive to it than plain SGD over
    very different networks; SGD with momentum is available (``"sgd"``).

    The first fields are the search's training options
    (:data:`ras_deap.config.TRAINING_FIELDS`), declared by the schema: their
    names and types are written here so that type checkers see them, their
    defaults, bounds, help and paper values are the schema's (the module
    refuses to import if a name or type drifts). The trainer accepts two
    values a search never asks for: ``full_every=0`` (never the full set; a
    search requires >= 1) and any ``min_delta >= 0`` (1 or more: every
    change counts as flat). The evaluator's own settings follow: ``momentum``
    and ``weight_decay`` apply to SGD and Adam, ``eval_batch_size`` to
    predictions, and ``max_parameters`` refuses (fitness 0, failure recorded)
    networks too big to train on the machine (``None`` disables the limit).
    """

    subset_size: int = option_from(SearchConfig, "subset_size")
    full_every: int = option_from(SearchConfig, "full_every", minimum=0)
    full_epochs: int = option_from(SearchConfig, "full_epochs")
    max_epochs: int = option_from(SearchConfig, "max_epochs")
    patience: int = option_from(SearchConfig, "patience")
    min_delta: float = option_from(SearchConfig, "min_delta", below=None)
    batch_size: int = option_from(SearchConfig, "batch_size")
    lr: float = option_from(SearchConfig, "lr")
    optimizer: str = option_from(SearchConfig, "optimizer")
    augment: bool = option_from(SearchConfig, "augment")
    momentum: float = option(0.9, "momentum of SGD", _E, minimum=0)
    weight_decay: float = option(0.0, "L2 weight decay of SGD and Adam", _E, minimum=0)
    eval_batch_size: int = option(1024, "batch size of predictions (no gradients)", _E,
                                  minimum=1)
    max_parameters: int | None = option(50_000_000, "networks with more parameters are "
                                        "refused (fitness 0, failure recorded) instead of "
                                        "trained", _E, minimum=1, none_means="no limit")

    def __post_init__(self) -> None:
        check_options(self, TRAIN_OPTIONS)

    @classmethod
    def paper(cls, **overrides: Any) -> TrainConfig:
        """The paper's schedule (the ``paper=`` of the training options): at most
        200 epochs (subset generations) and 50 epochs (full generations),
        patience 15, min_delta 0.001."""
        return cls(**{**paper_values(TRAIN_OPTIONS), **overrides})

    def is_full_generation(self, generation: int) -> bool:
        """Whether ``generation`` trains on the full training set: every
        ``full_every``-th generation, but not generation 0 (the random initial
        population is screened cheaply on the subset like any other
        generation, and "every 10 generations" first happens at 10)."""
        return self.full_every > 0 and generation > 0 and generation % self.full_every == 0

    def epochs_for(self, generation: int) -> int:
        return self.full_epochs if self.is_full_generation(generation) else self.max_epochs

    def epoch_equivalents(self, epochs: float, samples: float) -> float:
        """Training compute in the unit of ``--budget-epochs``: one epoch over
        ``subset_size`` samples counts 1."""
        return epochs * samples / self.subset_size

    def worst_case_cost(self, generation: int, train_size: int,
                        epochs: int | None = None) -> float:
        """The most an evaluation in ``generation`` can cost (its epoch cap,
        ``epochs`` when screened, on its samples; early stopping only saves):
        what a compute budget must leave room for."""
        samples = (train_size if self.is_full_generation(generation)
                   else min(self.subset_size, train_size))
        return self.epoch_equivalents(epochs or self.epochs_for(generation), samples)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; valid ones are "
                              f"{sorted(names)}")
        return cls(**data)


TRAIN_OPTIONS = options_of(TrainConfig)


def _check_against_schema() -> None:
    """The training options are the schema's, by name, order and type: a field
    renamed or retyped on one side only must not import."""
    names = [n for n, o in TRAIN_OPTIONS.items() if o.group != _E]
    drift = [n for n in TRAINING_FIELDS if n not in TRAIN_OPTIONS
             or TRAIN_OPTIONS[n].kind is not OPTIONS[n].kind]
    if names != list(TRAINING_FIELDS) or drift:
        raise TypeError(f"TrainConfig's training fields {names} differ from the schema's "
                        f"{list(TRAINING_FIELDS)} (names, order or types; {drift})")


_check_against_schema()
