"""Observers of the evolutionary loop: what runs around it, not in it.

:func:`~ras_deap.evolution.ea_spectrum_niching` is the one loop of the
package, the one a DEAP user calls and the one ``run_search`` drives. What
a real search needs on top (progress bars, MLflow, checkpoints, timings)
hangs on the loop's three moments as a list of observers, so the loop stays
a plain ``eaMuPlusLambda``-style function and each concern stays in one
small class. An observer overrides the moments it cares about; observers
are called in list order, and an exception from one stops the loop (that is
how a caller, e.g. an Optuna pruner, stops a search).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .algorithm import SearchState
    from .individual import Individual

__all__ = ["CallbackObserver", "LoopObserver", "notify"]


class LoopObserver:
    """Base class of loop observers: every moment is a no-op here."""

    def bred(self, state: SearchState) -> None:
        """A new generation's offspring exist, none evaluated yet (a resumed
        search must find them in its checkpoint: a second breeding would
        draw other children)."""

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        """``individual`` has its fitness (called in evaluation order)."""

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        """A generation is selected; ``record`` is its logbook entry."""


class CallbackObserver(LoopObserver):
    """Plain callbacks as an observer (the loop's ``on_*`` arguments)."""

    def __init__(self, on_bred: Callable[[SearchState], None] | None = None,
                 on_evaluated: Callable[[SearchState, Individual], None] | None = None,
                 on_generation: Callable[[SearchState, dict[str, Any]], None] | None = None
                 ) -> None:
        self.on_bred, self.on_evaluated, self.on_generation = (on_bred, on_evaluated,
                                                               on_generation)

    def bred(self, state: SearchState) -> None:
        if self.on_bred is not None:
            self.on_bred(state)

    def evaluated(self, state: SearchState, individual: Individual) -> None:
        if self.on_evaluated is not None:
            self.on_evaluated(state, individual)

    def generation(self, state: SearchState, record: dict[str, Any]) -> None:
        if self.on_generation is not None:
            self.on_generation(state, record)


def notify(observers: Sequence[LoopObserver], moment: str, *args: Any) -> None:
    """Call ``moment`` ("bred", "evaluated" or "generation") on every observer."""
    for observer in observers:
        getattr(observer, moment)(*args)
