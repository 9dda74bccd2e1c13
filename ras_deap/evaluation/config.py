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
from dataclasses import asdict, field
from typing import Any

from ..config import OPTIONS, TRAINING_FIELDS
from ..constants import OPTIMIZERS
from ..validate import check_choice, check_int

__all__ = ["OPTIMIZERS", "TrainConfig"]


class _TrainConfigMethods:
    """The behaviour of :class:`TrainConfig` (its fields are generated)."""

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("batch_size", "max_epochs", "full_epochs", "subset_size", "patience",
                     "eval_batch_size"):
            check_int(name, getattr(self, name))
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (BatchNorm needs two samples per batch)")
        check_int("full_every", self.full_every, minimum=0,
                  hint="0 = never train on the full training set")
        if self.lr <= 0 or self.min_delta < 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0, min_delta and weight_decay >= 0")
        check_int("max_parameters", self.max_parameters, allow_none=True,
                  hint="or None for no limit")

    @classmethod
    def paper(cls, **overrides: Any) -> Any:
        """The paper's budgets: at most 200 epochs (subset generations) and
        50 epochs (full generations), patience 15, min_delta 0.001."""
        return cls(**{"max_epochs": 200, "full_epochs": 50, **overrides})

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
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; valid ones are "
                             f"{sorted(names)}")
        return cls(**data)


TrainConfig: Any = dataclasses.make_dataclass(
    "TrainConfig",
    [*((name, OPTIONS[name].kind, field(default=OPTIONS[name].default))
       for name in TRAINING_FIELDS),
     ("momentum", float, field(default=0.9)),
     ("weight_decay", float, field(default=0.0)),
     ("eval_batch_size", int, field(default=1024)),
     ("max_parameters", int | None, field(default=50_000_000))],
    bases=(_TrainConfigMethods,), frozen=True)
TrainConfig.__module__ = __name__
TrainConfig.__doc__ = """How every candidate network is trained.

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
``full_every=0`` never trains on the full set (a search requires >= 1).

The fields named in :data:`ras_deap.config.TRAINING_FIELDS` are the
search's training options (same names, types and defaults); ``momentum``
and ``weight_decay`` apply to SGD and Adam, ``eval_batch_size`` to
predictions, and ``max_parameters`` refuses (fitness 0, failure recorded)
networks too big to train on the machine (``None`` disables the limit).
"""
