"""Settings of a comparison: the shared search/training settings plus the
budget, seeds and methods."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..config import SearchConfig

__all__ = ["COMPARE_PRESETS", "METHOD_LABELS", "METHOD_ORDER", "CompareConfig"]

METHOD_ORDER = ("random", "tpe", "mu_plus_lambda", "ras")
METHOD_LABELS = {
    "random": "Random search (RAS space)",
    "tpe": "TPE* (chain space, DeepArchitect-like)",
    "mu_plus_lambda": "(mu+lambda)-EA* (RAS without niching)",
    "ras": "RAS (spectrum niching)",
}

# Training and evolution sizes of a comparison (SearchConfig fields) plus
# its budget. "default" finishes in well under an hour on 2 CPU cores with
# digits; "tiny" is a seconds-long end-to-end check.
COMPARE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"budget": 4, "population": 2, "children": 1, "subset_size": 200,
             "max_epochs": 2, "patience": 1, "full_every": 100, "full_epochs": 2},
    "default": {"budget": 30, "population": 6, "children": 2, "subset_size": 1000,
                "max_epochs": 30, "patience": 5, "full_every": 100, "full_epochs": 40},
    "paper": {"budget": 5025, "population": 25, "children": 2, "subset_size": 1000,
              "max_epochs": 200, "patience": 15, "full_every": 10, "full_epochs": 50},
}


@dataclass
class CompareConfig:
    """``search`` holds everything the methods share (dataset, bank,
    population and children of RAS and mu+lambda, mutations, training); the
    searches run with seeds ``search.seed``, ``search.seed + 1``, ...

    ``final_generation`` is the generation the best models are re-trained as
    (full training set, ``full_epochs`` epochs); None: ``search.full_every``.

    ``remeasure``: each method's winner (per seed) is trained this many more
    times, exactly as the search trained it but on fresh seeds; their mean
    fitness is the reported number (the search's maximum is mostly luck).
    """

    search: SearchConfig = field(default_factory=SearchConfig)
    budget: int = 30
    seeds: int = 3
    methods: tuple[str, ...] = METHOD_ORDER
    out: str = "compare_out"
    tournament_size: int = 3
    final_generation: int | None = None
    remeasure: int = 3

    def __post_init__(self) -> None:
        for name in ("budget", "seeds", "tournament_size", "remeasure"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        self.methods = tuple(self.methods)
        unknown = [m for m in self.methods if m not in METHOD_ORDER]
        if unknown or not self.methods:
            raise ValueError(f"methods={list(self.methods)}: choose one or more of "
                             f"{list(METHOD_ORDER)}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods={list(self.methods)} lists a method twice")
        if self.search.full_every < 1 and self.final_generation is None:
            raise ValueError("full_every=0 never trains on the full training set; set "
                             "full_every >= 1 (or final_generation) so the best models can be "
                             "re-trained on all of it")
        if self.final_generation is not None and self.final_generation < 1:
            raise ValueError(f"final_generation={self.final_generation} must be >= 1")

    @property
    def seed_list(self) -> list[int]:
        return [self.search.seed + i for i in range(self.seeds)]

    @property
    def retrain_generation(self) -> int:
        return self.final_generation or self.search.full_every

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["methods"] = list(self.methods)
        return data
