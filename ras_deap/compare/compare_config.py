"""Settings of a comparison: the shared search/training settings plus the
budget, seeds, methods, the baselines' own knobs and the direct attacks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..assess.assess_config import AssessConfig
from ..config import OPTIONS, PRESETS, ConfigError, SearchConfig
from ..options import check_options, option, options_of

__all__ = ["COMPARE_OPTIONS", "COMPARE_PRESETS", "DEFAULT_METHODS", "EXTRA_METHODS", "MO_METHODS",
           "MO_OBJECTIVES", "MULTIOBJECTIVE", "RAS_METHODS", "UNSTORED_FIELDS", "METHOD_LABELS",
           "METHOD_ORDER", "REFERENCE_BUDGET", "REFERENCE_SEEDS", "CompareConfig"]

# The methods of the paper's Table 2: what a comparison runs by default.
DEFAULT_METHODS = ("random", "tpe", "mu_plus_lambda", "regularized", "ras")
# The multi-objective methods of issue #31 (accuracy and robustness), run when named in
# --methods; their cells also keep the re-measured front.
MO_METHODS = ("nsga2", "ras_mo")
MULTIOBJECTIVE = frozenset(MO_METHODS)
# Baselines outside the paper's Table 2, run when named in --methods: random search
# over TPE's chain space tells TPE's sampler from its space (issue #27).
EXTRA_METHODS = ("random_chain",)
MO_OBJECTIVES = "accuracy,robustness"
# The methods that run RAS's own search (its checkpoint, no journal, its own budget).
RAS_METHODS = frozenset({"ras", "ras_mo"})
# Every method, in the order of the tables and figures.
METHOD_ORDER = DEFAULT_METHODS + EXTRA_METHODS + MO_METHODS
METHOD_LABELS = {
    "random": "Random search (RAS space)",
    "tpe": "TPE* (chain space, DeepArchitect-like)",
    "random_chain": "Random search (chain space)",
    "mu_plus_lambda": "(mu+lambda)-EA* (RAS without niching)",
    "regularized": "Regularized evolution* (aging, Real et al. 2019)",
    "ras": "RAS (spectrum niching)",
    "nsga2": "NSGA-II* (accuracy, robustness; RAS genome, no niching)",
    "ras_mo": "Multi-objective RAS (accuracy, robustness)",
}

# The reference setting: the default search's budget (25 initial models + 5
# generations x 50 children = 275 trained networks per method and seed) with
# its training schedule (SearchConfig defaults), over 5 seeds.
REFERENCE_BUDGET = 275
REFERENCE_SEEDS = 5

# Training and evolution sizes (SearchConfig fields) plus budget and seeds.
# "reference" (the default) is the comparison docs/findings.md reports; "quick"
# and "tiny" are checks that the machinery works, not results.
COMPARE_PRESETS: dict[str, dict[str, Any]] = {
    "reference": {"budget": REFERENCE_BUDGET, "seeds": REFERENCE_SEEDS},
    "quick": {"budget": 30, "seeds": 3, "population": 6, "children": 2, "subset_size": 1000,
              "max_epochs": 10, "patience": 5, "full_every": 100, "full_epochs": 20},
    "tiny": {"budget": 4, "seeds": 1, "population": 2, "children": 1, "subset_size": 200,
             "max_epochs": 2, "patience": 1, "full_every": 100, "full_epochs": 2},
    # the paper's search (run --preset paper) with the budget of its 100 generations
    # (25 + 100 x 50 = 5025 networks), which replaces the generations
    "paper": {"budget": PRESETS["paper"]["population"] * (1 + PRESETS["paper"]["generations"]
                                                          * PRESETS["paper"]["children"]),
              "seeds": REFERENCE_SEEDS,
              **{k: v for k, v in PRESETS["paper"].items() if k != "generations"}},
}

# CompareConfig fields that do not change any cell's result: a resumed
# comparison may differ in these (seeds and methods only choose which cells
# are run and reported; every cell is keyed by method and seed).
UNSTORED_FIELDS = ("seeds", "methods", "out")
# Search options left out of the stored settings: the seed (each cell has its
# own) and where a cell's search runs (its folder and processes, which the
# comparison sets itself). This is the format of the manifests and cells
# already stored (ras_deap.compare/2), so it is spelled out rather than
# derived from the schema's execution group: threads, device and the MLflow
# options have always been part of a comparison's settings.
UNSTORED_SEARCH_FIELDS = ("seed", "workers", "scheduler", "run_dir", "run_name")
_C = "comparison"


@dataclass
class CompareConfig:
    """``search`` holds everything the methods share (dataset, bank,
    population and children of RAS and mu+lambda, mutations, training); the
    searches run with seeds ``search.seed``, ``search.seed + 1``, ...

    ``final_generation`` is the generation the best models are re-trained as
    (full training set, ``full_epochs`` epochs); None: ``search.full_every``
    (a search always has ``full_every >= 1``).

    ``remeasure``: each method's winner (per seed) is trained this many more
    times, exactly as the search trained it but on fresh seeds; their mean
    fitness is the reported number (the search's maximum is mostly luck).

    ``aging_population`` / ``aging_sample``: P and S of regularized evolution
    (None: P = ``search.population``, 25 by default, RAS's initial
    population; S = 5). ``assess``: the direct attacks run on every re-trained
    winner (None: none).
    """

    search: SearchConfig = field(default_factory=SearchConfig)
    budget: int = option(REFERENCE_BUDGET, "evaluations of every method and seed", _C,
                         minimum=1, hint=OPTIONS["max_evaluations"].flag)
    seeds: int = option(REFERENCE_SEEDS, "seeds per method", _C, minimum=1, hint="--seeds")
    methods: tuple[str, ...] = option(DEFAULT_METHODS, "the methods compared", _C,
                                      choices=METHOD_ORDER, nonempty=True, unique=True,
                                      hint="--methods")
    out: str = option("compare_out", "output folder", _C)
    tournament_size: int = option(3, "tournament size of (mu+lambda)", _C, minimum=1,
                                  hint="--tournament-size")
    final_generation: int | None = option(None, "the generation the winners are re-trained "
                                          "as", _C, minimum=1, none_means="full_every")
    remeasure: int = option(3, "train each method's winner N more times on fresh evaluation "
                            "seeds (as its search trained it) and report their mean fitness "
                            "instead of the search's luckiest maximum", _C, minimum=1,
                            metavar="N", hint="--remeasure")
    aging_population: int | None = option(None, "P of regularized evolution", _C, minimum=1,
                                          metavar="P", hint="--aging-population",
                                          none_means="--population, 25 = RAS's initial "
                                                     "population")
    aging_sample: int = option(5, "S of regularized evolution: models sampled per cycle", _C,
                               minimum=1, metavar="S", hint="--aging-sample")
    assess: AssessConfig | None = field(default_factory=AssessConfig)

    def __post_init__(self) -> None:
        self.methods = tuple(self.methods)
        check_options(self, COMPARE_OPTIONS)
        if "ras_mo" in self.methods and not self.search.multiobjective:
            try:  # the settings ras_mo searches with must be valid ones, before any cell runs
                self.search.replace(objectives=MO_OBJECTIVES)
            except ConfigError as exc:
                raise ConfigError(f"--methods ras_mo searches with objectives={MO_OBJECTIVES}: "
                                  f"{exc}") from exc
        if isinstance(self.assess, dict):
            self.assess = AssessConfig.from_dict(self.assess)

    @property
    def seed_list(self) -> list[int]:
        return [self.search.seed + i for i in range(self.seeds)]

    @property
    def retrain_generation(self) -> int:
        return self.final_generation or self.search.full_every

    @property
    def population_p(self) -> int:
        """P of regularized evolution."""
        return self.aging_population or self.search.population

    @property
    def is_reference(self) -> bool:
        """Whether this is at least the documented reference setting (budget
        275, 5 seeds, the default search's population and training)."""
        d = SearchConfig()
        s = self.search
        same_training = all(getattr(s, k) == getattr(d, k) for k in (
            "population", "children", "mutations", "subset_size", "max_epochs", "patience",
            "full_every", "full_epochs", "batch_size", "lr", "optimizer"))
        return self.budget >= REFERENCE_BUDGET and self.seeds >= REFERENCE_SEEDS and same_training

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["search"] = self.search.to_dict()  # its own dict: defaults it omits stay out
        data["methods"] = list(self.methods)
        data["assess"] = self.assess.to_dict() if self.assess is not None else None
        return data

    def settings(self) -> dict[str, Any]:
        """Everything that decides a cell's result: the config without the
        fields that never change a cell (see :data:`UNSTORED_FIELDS`)."""
        data = self.to_dict()
        for key in UNSTORED_FIELDS:
            data.pop(key, None)
        data["search"] = {k: v for k, v in data["search"].items()
                          if k not in UNSTORED_SEARCH_FIELDS}
        if not self.search.multiobjective:
            # what ras_mo cells truncate their fronts by (the method sets their
            # objectives), kept whatever --methods is, as that may change on resume
            data["search"]["mo_selection"] = self.search.mo_selection
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareConfig:
        """The config a comparison stored (its search settings read as stored
        settings: :meth:`SearchConfig.from_stored`)."""
        values = dict(data)
        values["search"] = SearchConfig.from_stored(values.get("search", {}), source="comparison")
        values["methods"] = tuple(values.get("methods", DEFAULT_METHODS))
        if values.get("assess") is not None:
            values["assess"] = AssessConfig.from_dict(values["assess"])
        return cls(**values)


COMPARE_OPTIONS = options_of(CompareConfig)
