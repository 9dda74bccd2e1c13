"""The configuration of a RAS search: one dataclass that is also the option schema.

Every field is declared once, with :func:`~ras_deap.options.option`: type,
default, the paper's value, help text, group and what ``--resume`` may do
with it. The flags of ``python -m ras_deap.run`` (and the search flags of
``tune`` and ``compare``), the keys of the TOML config file, the resume
check and the training options handed to the evaluator all derive from
these declarations (:data:`OPTIONS`). Values come from the defaults, then a
preset, then the TOML file, then the flags; validation happens before any
work starts, and every error names the parameter and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .constants import (
    DATASET_NAMES,
    DISTANCES,
    FINAL_TRAININGS,
    INITIAL_POPULATIONS,
    MO_SELECTIONS,
    NICHE_CHILDREN,
    OPTIMIZERS,
    ROBUSTNESS,
)
from .errors import ConfigError
from .evolution.objectives import objective_names
from .options import (
    FIXED,
    FROM_FOLDER,
    MAY_CHANGE,
    Option,
    check_options,
    option,
    options_of,
    paper_values,
)

__all__ = ["ConfigError", "SearchConfig", "PRESETS", "PRESET_OPTION", "OPTIONS",
           "EXECUTION_FIELDS", "FINAL_TRAININGS", "MULTIOBJECTIVE_ONLY", "OMIT_AT_DEFAULT",
           "RESUMABLE_OVERRIDES", "TRAINING_FIELDS", "DATASET_NAMES",
           "DISTANCES", "OPTIMIZERS", "ROBUSTNESS", "check_resumable", "is_multiobjective",
           "load_toml", "stored_values", "training_values"]

_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_S, _T, _F, _X = "search", "training", "final", "execution"


@dataclass
class SearchConfig:
    """The settings of one search (see the module docstring). The epoch
    budgets are not the paper's by default: the paper trains on 1000 random
    samples for up to 200 epochs and every 10th generation on the full set
    for 50, which makes one evaluation minutes long on a CPU; the defaults
    keep the default run near 10 minutes on 2 cores (measured: docs/guide/costs.md),
    and ``--preset paper`` restores 200/50."""

    # search: the data, the evolution and the seed
    dataset: str = option("digits", "dataset to search on (digits and mnist10k are embedded)",
                          _S, choices=DATASET_NAMES)
    data_dir: str | None = option(None, "folder holding cifar10/mnist/fashion-mnist files "
                                  "(torchvision layout)", _S, metavar="DIR")
    download: bool = option(False, "let torchvision download the dataset into --data-dir "
                            "(needs internet)", _S)
    bank: str | None = option(None, "adversarial bank (.npz from `python -m ras_deap.attacks "
                              "build`)", _S, metavar="NPZ",
                              none_means="the bank shipped for the dataset")
    robustness: str = option("bank", "robustness half of the fitness: bank (the paper's "
                             "transfer bank), direct (PGD and JSMA on each trained network), "
                             "both (their mean)", _S, paper="bank", choices=ROBUSTNESS)
    generations: int = option(5, "generations after the initial one (0 is intended: evaluate only "
                              "the initial population, then finish)", _S, paper=100,
                              minimum=0, resume=MAY_CHANGE)
    population: int = option(25, "initial clusters, each a random model", _S, paper=25,
                             minimum=1)
    children: int = option(2, "children per cluster and generation", _S, paper=2, minimum=1)
    mutations: int = option(5, "mutations applied to make each child", _S, paper=5,
                            minimum=1)
    initial: str = option("random", "what the initial population is drawn from: random (random "
                          "RAS models, the paper) or chains (random chains from TPE's chain "
                          "space: one block, convolutions then dense layers)", _S,
                          paper="random", choices=INITIAL_POPULATIONS, omit_default=True)
    niche_children: str = option("equal", "how a generation's children are shared among the "
                                 "niches: equal (--children each, the paper), rank (the "
                                 "same total by the representatives' fitness rank, best first) "
                                 "or tournament (each child's parent the fittest of 5 "
                                 "representatives drawn at random, as regularized evolution "
                                 "picks parents); with 2+ --objectives equal or crowded (each "
                                 "child's parent the winner of a binary tournament on "
                                 "non-domination rank, then crowding distance, as NSGA-II "
                                 "picks parents)",
                                 _S, paper="equal", choices=NICHE_CHILDREN)
    remeasure_every: int = option(0, "re-measure a representative that survived N generations "
                                  "since its last measurement and rank it by the mean of its "
                                  "measurements (0: never; the paper keeps one measurement)", _S,
                                  paper=0, minimum=0)
    niche_age: int = option(0, "age the niches: a representative that has held its niche N "
                            "generations or more gives it to the fittest child that met it "
                            "this generation, even a less fit one, as regularized evolution "
                            "ages out lucky measurements (0: never; the paper keeps the "
                            "fitter)", _S, paper=0, minimum=0, omit_default=True)
    screen_epochs: int = option(0, "screen children cheaply: train each child this many epochs "
                                "first and give the full schedule only to the best "
                                "--screen-keep fraction of a generation's children; the others "
                                "keep their low-fidelity fitness, which never meets selection "
                                "(0: off; the paper trains every child fully)", _S, paper=0,
                                minimum=0)
    screen_keep: float = option(0.5, "with --screen-epochs: the fraction of a generation's "
                                "screened children promoted to the full schedule", _S,
                                minimum=0, closed=False, below=1)
    layer_limit: int = option(100, "over this many layers created in a generation only "
                              "swap-layer is left", _S, paper=100, minimum=1)
    block_limit: int = option(100, "over this many blocks created in a generation only "
                              "swap-block is left", _S, paper=100, minimum=1)
    distance: str = option("raw", "spectrum distance for niching: raw (plain Euclidean; the "
                           "paper does not specify) or per-feature normalized", _S,
                           choices=DISTANCES)
    objectives: str = option("fitness", "what the search maximises: fitness (accuracy + "
                             "robustness, one number: the paper) or two or more of fitness, "
                             "accuracy, robustness, comma-separated (e.g. accuracy,robustness; "
                             "robustness is the measure --robustness names): a multi-objective "
                             "search whose survivors are chosen by non-dominated sorting and "
                             "whose result is the accuracy-robustness front", _S,
                             paper="fitness", metavar="NAMES", omit_default=True)
    mo_selection: str = option("crowding", "with 2+ --objectives: how the last non-dominated "
                               "front that does not fit is truncated: crowding (NSGA-II's "
                               "crowding distance; larger re-measured fronts on 4 of 5 digits "
                               "seeds, docs/results/pareto-digits.md) or spectrum (the paper's "
                               "niching distance: the objectives' ends, then the most "
                               "different architectures; the default until that measurement, "
                               "so settings stored without it mean spectrum)", _S,
                               choices=MO_SELECTIONS, omit_default=True, absent="spectrum")
    max_evaluations: int | None = option(None, "stop after exactly N trained individuals", _S,
                                         metavar="N", minimum=1, resume=MAY_CHANGE,
                                         none_means="no limit")
    budget_epochs: int | None = option(None, "stop once the networks trained so far have used N "
                                       "epoch-equivalents (an epoch over --subset-size samples "
                                       "counts 1, a full-set epoch train size / --subset-size): "
                                       "a budget in training compute, not in networks, for "
                                       "searches that train differently (--screen-epochs)", _S,
                                       metavar="N", minimum=1, resume=MAY_CHANGE,
                                       none_means="no limit")
    # training schedule (paper section 5.3)
    subset_size: int = option(1000, "training samples drawn in ordinary generations", _T,
                              paper=1000, minimum=1)
    full_every: int = option(10, "train on the full training set every N generations", _T,
                             paper=10, minimum=1)
    full_epochs: int = option(20, "max epochs of full-set training (and of the final "
                              "re-training)", _T, paper=50, minimum=1)
    max_epochs: int = option(10, "max epochs of subset training", _T, paper=200, minimum=1)
    patience: int = option(15, "early stopping: epochs without a change of min-delta in train "
                           "or validation accuracy", _T, paper=15, minimum=1)
    min_delta: float = option(0.001, "early stopping threshold", _T, paper=0.001, minimum=0,
                              below=1)
    batch_size: int = option(64, "training batch size (at least 2: BatchNorm needs two samples "
                             "per batch)", _T, minimum=2)
    lr: float = option(1e-3, "learning rate", _T, minimum=0, closed=False, below=10)
    optimizer: str = option("adam", "optimizer of every training", _T, choices=OPTIMIZERS)
    augment: bool = option(False, "random crop + horizontal flip of training images (for "
                           "cifar10)", _T)
    # the winner's final training, after the search (never a search's result)
    final_training: str = option("standard", "how the winner is retrained at the end: standard "
                                 "(as every candidate), or trained so and then fine-tuned "
                                 "adversarially for 10 epochs with pgd-at (Madry et al.) or "
                                 "trades (Zhang et al., beta 6) at L-inf eps 2/16 on digits, "
                                 "10/255 on 8-bit data", _F,
                                 paper="standard", choices=FINAL_TRAININGS, omit_default=True)
    front_remeasure: int = option(0, "with 2+ --objectives: train each member of the final "
                                  "front N more times on fresh evaluation seeds and report the "
                                  "means beside the search's values (front.json, front.png); "
                                  "use N >= 3 for numbers you report (0: the search's values "
                                  "only)", _F, minimum=0, omit_default=True)
    # execution and tracking: never the result
    workers: int = option(2, "evaluate N individuals in parallel processes (results are "
                          "identical for any N; the default is sized for 2 cores)", _X,
                          minimum=1, resume=MAY_CHANGE)
    isolate: bool = option(False, "with --workers 1, evaluate each individual in a child "
                           "process, so one that crashes natively (a signal, an abort) gets "
                           "fitness 0 instead of ending the search; with more workers "
                           "evaluations are always isolated", _X, resume=MAY_CHANGE)
    scheduler: str | None = option(None, "evaluate on a Dask cluster: tcp://host:port of a "
                                   "running scheduler, or 'local' for a LocalCluster of "
                                   "--workers processes", _X, metavar="ADDRESS",
                                   resume=MAY_CHANGE)
    threads: int = option(1, "torch threads per evaluation", _X, minimum=1, resume=MAY_CHANGE)
    device: str | None = option(None, "torch device", _X, resume=MAY_CHANGE,
                                none_means="cuda if available, else cpu")
    seed: int = option(0, "fixes every random choice", _S, minimum=0)
    experiment: str = option("ras_deap", "MLflow experiment name", _X, resume=MAY_CHANGE)
    tracking_uri: str | None = option(None, "MLflow tracking URI, e.g. http://host:5000 for a "
                                      "shared mlflow server", _X, metavar="URI",
                                      resume=MAY_CHANGE,
                                      none_means="sqlite:///mlruns/mlflow.db, artifacts in "
                                                 "mlruns/artifacts")
    run_dir: str = option("runs", "where run folders (checkpoints, weights, figures) go", _X,
                          metavar="DIR", resume=FROM_FOLDER)
    run_name: str | None = option(None, "name of this run's folder and MLflow run", _X,
                                  resume=FROM_FOLDER,
                                  none_means="<dataset>-seed<seed>-<time>-<random suffix>")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Each option against its declaration, then what one declaration cannot say."""
        check_options(self, OPTIONS)
        if not self.experiment.strip():
            raise ConfigError("experiment='': give a non-empty MLflow experiment name (default "
                              "ras_deap)")
        if not self.run_dir.strip():
            raise ConfigError("run_dir='': give a folder for run folders (default runs)")
        if self.run_name is not None and (not self.run_name.strip() or "/" in self.run_name
                                          or self.run_name in (".", "..")
                                          or self.run_name.startswith(".")):
            raise ConfigError(f"run_name={self.run_name!r}: give a plain folder name (no '/', "
                              "not starting with '.'), or leave it out for a unique default")
        uri = (self.tracking_uri or "").strip()
        if uri and not uri.startswith("databricks") and not _URI_SCHEME.match(uri):
            raise ConfigError(f"tracking_uri={uri!r} is a path, not a URI: use "
                              f"sqlite:///{uri.rstrip('/')}/mlflow.db for a local database "
                              "(default sqlite:///mlruns/mlflow.db) or http://host:port for an "
                              "MLflow server")
        self._check_objectives()
        if self.screen_epochs and self.screen_epochs >= self.max_epochs:
            raise ConfigError(f"screen_epochs={self.screen_epochs}: screening must train fewer "
                              f"epochs than --max-epochs ({self.max_epochs}); lower it, or 0 "
                              "to train every child fully")
        if self.bank is not None and Path(self.bank).is_dir():
            raise ConfigError(f"bank={self.bank!r} is a directory, not a bank file; pass the "
                              ".npz file that `python -m ras_deap.attacks build` wrote")
        if self.bank is not None and not Path(self.bank).is_file():
            raise ConfigError(f"bank={self.bank!r}: no such file; build one with "
                              "`python -m ras_deap.attacks build` or omit --bank")
        if self.scheduler is not None and not (self.scheduler == "local"
                                               or self.scheduler.startswith("tcp://")):
            raise ConfigError(f"scheduler={self.scheduler!r}: give tcp://host:port of a Dask "
                              "scheduler, or 'local' for a local Dask cluster")

    def _check_objectives(self) -> None:
        """Valid names, written canonically (so ``accuracy, robustness`` and
        ``accuracy,robustness`` are one setting), and only the options that
        mean something with them."""
        try:
            names = objective_names(self.objectives)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self.objectives = ",".join(names)
        if len(names) > 1:
            if self.remeasure_every:
                raise ConfigError(f"remeasure_every={self.remeasure_every} with objectives="
                                  f"{self.objectives}: re-measurements average the fitness, "
                                  "not each objective; use --remeasure-every 0 with several "
                                  "objectives")
            if self.niche_age:
                raise ConfigError(f"niche_age={self.niche_age} with objectives="
                                  f"{self.objectives}: aging hands a niche to its fittest "
                                  "child, which needs one fitness; use --niche-age 0 with "
                                  "several objectives")
            if self.niche_children not in ("equal", "crowded"):
                raise ConfigError(f"niche_children={self.niche_children!r} with objectives="
                                  f"{self.objectives}: ranking niches needs one fitness; use "
                                  "--niche-children equal or crowded with several objectives")
        elif self.niche_children == "crowded":
            raise ConfigError(f"niche_children='crowded' with objectives={self.objectives}: "
                              "the crowded tournament ranks several objectives; add "
                              "--objectives accuracy,robustness or choose equal, rank or "
                              "tournament")
        elif self.front_remeasure:
            raise ConfigError(f"front_remeasure={self.front_remeasure} with objectives="
                              f"{self.objectives}: only a multi-objective search has a front; "
                              "add --objectives accuracy,robustness or leave "
                              "--front-remeasure out")
        if len(names) == 1 and self.mo_selection != OPTIONS["mo_selection"].default:
            raise ConfigError(f"mo_selection={self.mo_selection!r} with objectives="
                              f"{self.objectives}: the selection of a multi-objective search "
                              "needs two or more objectives; add --objectives "
                              "accuracy,robustness or leave --mo-selection out")

    @property
    def multiobjective(self) -> bool:
        return is_multiobjective(self.objectives)

    def replace(self, **changes: Any) -> SearchConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every option, except those declared ``omit_default`` that have the
        value stored settings without them mean (so a config's dict is what it
        was before they existed, or their default changed), and those only a
        multi-objective search reads, in a single-objective config. Read it
        back with :meth:`from_stored`."""
        data = dataclasses.asdict(self)
        for name in OMIT_AT_DEFAULT:
            unread = name in MULTIOBJECTIVE_ONLY and not self.multiobjective
            if unread or data[name] == OPTIONS[name].stored_default:
                del data[name]
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any], source: str = "config") -> SearchConfig:
        """The config that stored settings (a checkpoint's, a comparison's, a
        run's folder or params, possibly of an older ras_deap) were made with:
        :func:`stored_values`, validated."""
        return cls.from_dict(stored_values(data), source=source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> SearchConfig:
        """The config a user's settings ask for: an option they leave out gets
        its default (stored settings: :meth:`from_stored`)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; valid keys are "
                              f"{sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


OPTIONS: dict[str, Option] = options_of(SearchConfig)
# Options that never change a search's result (they may differ between the
# sessions of one study or run, and a reproducing command leaves them out).
EXECUTION_FIELDS = tuple(n for n, o in OPTIONS.items() if o.group == "execution")
# Options that may change when a run is resumed; the others must match the
# checkpoint, or the resumed search would not be the same search.
RESUMABLE_OVERRIDES = tuple(n for n, o in OPTIONS.items() if o.resume == MAY_CHANGE)
# The training options, handed to the evaluator's TrainConfig as they are.
TRAINING_FIELDS = tuple(n for n, o in OPTIONS.items() if o.group == "training")
# Options a config's dict leaves out while they have their default.
OMIT_AT_DEFAULT = tuple(n for n, o in OPTIONS.items() if o.omit_default)
# Options only a multi-objective search reads: a single-objective config keeps
# them at their default, and its dict leaves them out.
MULTIOBJECTIVE_ONLY = ("mo_selection", "front_remeasure")


def is_multiobjective(objectives: Any) -> bool:
    """Whether ``objectives`` (a config's, or stored settings' value, None where
    they left out the paper's one fitness) names several objectives."""
    return "," in str(objectives)


def stored_values(stored: Mapping[str, Any]) -> dict[str, Any]:
    """What stored settings mean, as a complete dict: the keys they hold, and
    every option they lack at the value settings without it meant
    (:attr:`~ras_deap.options.Option.stored_default`: the default, or what it
    was before it changed), except that an option only a multi-objective
    search reads keeps today's default in single-objective settings."""
    values = {name: opt.stored_default for name, opt in OPTIONS.items()}
    values.update(stored)
    if not is_multiobjective(values["objectives"]):
        values.update({n: OPTIONS[n].default for n in MULTIOBJECTIVE_ONLY if n not in stored})
    return values


def training_values(config: SearchConfig) -> dict[str, Any]:
    """The training options of ``config`` (keyword arguments of TrainConfig)."""
    return {name: getattr(config, name) for name in TRAINING_FIELDS}


def check_resumable(stored: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Refuse to resume a checkpoint made with ``stored`` settings with
    ``values`` that differ in an option ``--resume`` may not change. An
    option the checkpoint does not hold counts with what it meant then
    (:func:`stored_values`: what the resumed search gets for it)."""
    def fixed(name: str) -> bool:
        opt = OPTIONS.get(name)
        return opt is None or opt.resume == FIXED

    meant = stored_values(stored)

    def then(name: str) -> Any:
        return meant.get(name)

    changed = sorted(k for k, v in values.items() if fixed(k) and then(k) != v)
    if changed:
        allowed = ", ".join(OPTIONS[n].flag for n in RESUMABLE_OVERRIDES)
        raise ConfigError(f"cannot change {', '.join(changed)} when resuming: the checkpoint "
                          f"was made with {', '.join(f'{k}={then(k)!r}' for k in changed)}, "
                          f"and the search would not be the same search; only {allowed} may "
                          "change on --resume (and the run folder is the one resumed)")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file (keys may use dashes or underscores; a
    ``[search]`` table is accepted too)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory, not a TOML file; pass "
                          "the file itself")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text ({exc}); save it as "
                          "UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    if "search" in data:
        if not isinstance(data["search"], dict):
            raise ConfigError(f"config file {str(path)!r}: 'search' must be a [search] table")
        outside = sorted(k for k in data if k != "search")
        if outside:
            raise ConfigError(f"config file {str(path)!r}: keys {outside} are outside the "
                              "[search] table and would be ignored; move them under [search] "
                              "(or drop the [search] header)")
        data = data["search"]
    return {key.replace("-", "_"): value for key, value in data.items()}


# Named presets: starting points that flags and --config refine.
PRESETS: dict[str, dict[str, Any]] = {
    # Under a minute on one worker: a check that everything works end to end.
    "smoke": {"generations": 2, "population": 4, "children": 1, "subset_size": 300,
              "max_epochs": 3, "full_every": 100, "patience": 2, "workers": 1},
    # The default run: a complete small RAS search on digits (its time: docs/guide/costs.md)
    # (25 clusters, 5 generations of 50 children, 10 epochs on 1000 samples).
    "default": {},
    # A smaller complete search on the embedded 8-bit mnist10k data, because 28 x 28
    # images cost 3.5x as much per evaluation as 8 x 8 digits (docs/guide/costs.md): 12
    # clusters, 4 generations of 2 children (108 trained networks), 5 epochs on 500 samples,
    # final training 5 epochs on the full 6000.
    "mnist10k": {"dataset": "mnist10k", "population": 12, "generations": 4, "children": 2,
                 "subset_size": 500, "max_epochs": 5, "full_epochs": 5},
    # The paper's settings (days of compute on CIFAR-10 with a GPU): the paper= of
    # every option that has one.
    "paper": paper_values(OPTIONS),
}

# --preset, shared by run and tune (tune's trials start from "smoke").
PRESET_OPTION = Option(
    name="preset", kind=str, default="default", group="search", choices=tuple(sorted(PRESETS)),
    help="named starting point: smoke (under a minute: a check that everything works end to "
         "end), default, mnist10k (a smaller search on mnist10k), paper (the paper's "
         "generations and epochs)")
