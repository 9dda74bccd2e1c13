"""The configuration of a RAS search: one dataclass, validated up front.

Every field is a command-line flag of ``python -m ras_deap.run`` (underscores
become dashes) and a key of the optional TOML config file; flags override the
file, which overrides the defaults. Validation happens before any work
starts, and every error names the parameter and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import UsageError

__all__ = ["ConfigError", "SearchConfig", "PRESETS", "load_toml"]


class ConfigError(UsageError, ValueError):
    """A bad configuration value; the message names the parameter."""


# fields that must be text (None allowed where the default is None), and flags
_TEXT_FIELDS = ("dataset", "data_dir", "bank", "robustness", "distance", "optimizer",
                "scheduler", "device", "experiment", "tracking_uri", "run_dir", "run_name")
_BOOL_FIELDS = ("download", "augment")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


DATASET_NAMES = ("digits", "mnist10k", "cifar10", "mnist", "fashion-mnist")
OPTIMIZERS = ("adam", "sgd")
DISTANCES = ("raw", "normalized")
ROBUSTNESS = ("bank", "direct", "both")


@dataclass
class SearchConfig:
    # data
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    bank: str | None = None  # None: the bank shipped for the dataset, if any
    # robustness half of the fitness: "bank" (the paper's transfer bank),
    # "direct" (PGD + JSMA on the trained network) or "both" (their mean)
    robustness: str = "bank"
    # evolution (paper defaults)
    generations: int = 5
    population: int = 25
    children: int = 2
    mutations: int = 5
    layer_limit: int = 100
    block_limit: int = 100
    distance: str = "raw"
    max_evaluations: int | None = None  # stop once this many individuals were evaluated
    # training schedule. The paper trains on 1000 random samples for up to 200
    # epochs, and every 10th generation on the full set for 50 epochs, stopping
    # early once the training or the validation accuracy has not changed by more
    # than 0.001 for 15 epochs; the defaults cap the epochs to keep the default
    # run near 10 minutes on 2 cores. `--preset paper` restores 200/50.
    subset_size: int = 1000
    full_every: int = 10
    full_epochs: int = 20
    max_epochs: int = 10
    patience: int = 15
    min_delta: float = 0.001
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    augment: bool = False
    # execution (results do not depend on these). Two worker processes: the
    # default run is sized for a 2-core machine.
    workers: int = 2
    scheduler: str | None = None  # tcp://host:port of a Dask scheduler, or "local"
    threads: int = 1  # torch threads per evaluation
    device: str | None = None
    seed: int = 0
    # tracking and checkpoints
    experiment: str = "ras_deap"
    tracking_uri: str | None = None  # None: sqlite:///mlruns/mlflow.db
    run_dir: str = "runs"
    run_name: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def positive(name: str, allow_zero: bool = False) -> None:
            value = getattr(self, name)
            low = 0 if allow_zero else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name}={value!r}: must be an integer >= {low}")

        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name}={value!r}: must be text (a quoted string in TOML), "
                                  f"not {type(value).__name__}")
        for name in _BOOL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"{name}={value!r}: must be true or false (unquoted in TOML; "
                                  f"the text {value!r} is not a boolean)")
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
        if self.dataset not in DATASET_NAMES:
            raise ConfigError(f"dataset={self.dataset!r}: unknown dataset; choose one of "
                              f"{', '.join(DATASET_NAMES)}")
        for name in ("population", "children", "mutations", "layer_limit", "block_limit",
                     "subset_size", "full_every", "full_epochs", "max_epochs", "patience",
                     "batch_size", "workers", "threads"):
            positive(name)
        positive("generations", allow_zero=True)
        positive("seed", allow_zero=True)
        if self.max_evaluations is not None:
            positive("max_evaluations")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise ConfigError(f"lr={self.lr!r}: must be a number in (0, 10)")
        if not (isinstance(self.min_delta, (int, float)) and 0 <= self.min_delta < 1):
            raise ConfigError(f"min_delta={self.min_delta!r}: must be a number in [0, 1)")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r}: choose one of {OPTIMIZERS}")
        if self.robustness not in ROBUSTNESS:
            raise ConfigError(f"robustness={self.robustness!r}: choose one of "
                              f"{', '.join(ROBUSTNESS)}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"distance={self.distance!r}: choose one of {DISTANCES}")
        if self.bank is not None and not Path(self.bank).is_file():
            raise ConfigError(f"bank={self.bank!r}: no such file; build one with "
                              "`python -m ras_deap.attacks build` or omit --bank")
        if self.scheduler is not None and not (self.scheduler == "local"
                                               or self.scheduler.startswith("tcp://")):
            raise ConfigError(f"scheduler={self.scheduler!r}: give tcp://host:port of a Dask "
                              "scheduler, or 'local' for a local Dask cluster")

    def replace(self, **changes: Any) -> SearchConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> SearchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; valid keys are "
                              f"{sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file (keys may use dashes or underscores; a
    ``[search]`` table is accepted too)."""
    path = Path(path)
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
    # A few seconds of evolution: a quick check that everything works end to end.
    "smoke": {"generations": 2, "population": 4, "children": 1, "subset_size": 300,
              "max_epochs": 3, "full_every": 100, "patience": 2, "workers": 1},
    # The default run: a complete small RAS search on digits in about 5 minutes on 2 free cores
    # (25 clusters, 5 generations of 50 children, 10 epochs on 1000 samples).
    "default": {},
    # A smaller complete search on the embedded 8-bit mnist10k data, because 28 x 28
    # images cost more per evaluation than 8 x 8 digits (its wall time is still to be
    # measured, README "Costs"): 12 clusters, 4 generations of 2 children (108 trained
    # networks), 5 epochs on 500 samples, final training 5 epochs on the full 6000.
    "mnist10k": {"dataset": "mnist10k", "population": 12, "generations": 4, "children": 2,
                 "subset_size": 500, "max_epochs": 5, "full_epochs": 5},
    # The paper's settings (days of compute on CIFAR-10 with a GPU).
    "paper": {"robustness": "bank",
              "generations": 100, "population": 25, "children": 2, "subset_size": 1000,
              "full_every": 10, "full_epochs": 50, "max_epochs": 200, "patience": 15,
              "min_delta": 0.001},
}
