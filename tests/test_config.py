"""SearchConfig: validation, TOML loading, presets, and agreement with the
evaluator's TrainConfig (the search config is the flat, user-facing copy of
its training options, so their defaults must not drift apart)."""

from __future__ import annotations

import dataclasses

import pytest

from ras_deap.config import PRESETS, ConfigError, SearchConfig, load_toml
from ras_deap.evaluation import TrainConfig
from ras_deap.search import make_evaluator


def test_training_defaults_agree_with_the_evaluator():
    search = SearchConfig()
    train = TrainConfig()
    shared = set(TrainConfig.__dataclass_fields__) & set(SearchConfig.__dataclass_fields__)
    assert {"max_epochs", "full_epochs", "subset_size", "patience", "lr"} <= shared
    for name in shared:
        assert getattr(search, name) == getattr(train, name), name


def test_make_evaluator_passes_every_training_option():
    config = SearchConfig(max_epochs=7, full_epochs=9, subset_size=123, lr=0.01,
                          optimizer="sgd", batch_size=32, patience=4, min_delta=0.01,
                          full_every=3, augment=True, threads=2, seed=5)
    evaluator = make_evaluator(config)
    train = evaluator.train_config
    assert (train.max_epochs, train.full_epochs, train.subset_size, train.lr, train.optimizer,
            train.batch_size, train.patience, train.min_delta, train.full_every,
            train.augment) == (7, 9, 123, 0.01, "sgd", 32, 4, 0.01, 3, True)
    assert (evaluator.num_threads, evaluator.seed) == (2, 5)


@pytest.mark.parametrize("changes, message", [
    ({"population": 0}, "population=0"),
    ({"generations": -1}, "generations=-1"),
    ({"children": 1.5}, "children=1.5"),
    ({"dataset": "imagenet"}, "unknown dataset"),
    ({"optimizer": "rmsprop"}, "optimizer="),
    ({"distance": "cosine"}, "distance="),
    ({"robustness": "pgd"}, "robustness='pgd'"),
    ({"min_delta": 2.0}, "min_delta="),
    ({"max_evaluations": 0}, "max_evaluations=0"),
])
def test_bad_values_name_the_parameter(changes, message):
    with pytest.raises(ConfigError, match=message):
        SearchConfig(**changes)


def test_presets_are_valid_configs():
    for values in PRESETS.values():
        SearchConfig(**values)  # raises if a preset drifted out of range
    assert PRESETS["paper"]["max_epochs"] == 200 and PRESETS["paper"]["full_epochs"] == 50


def test_toml_with_dashes_and_a_search_table(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[search]\nmax-epochs = 4\nseed = 3\n')
    assert load_toml(path) == {"max_epochs": 4, "seed": 3}
    with pytest.raises(ConfigError, match="unknown keys"):
        SearchConfig.from_dict({"epochs": 3})


def test_robustness_choice_reaches_the_evaluator(tmp_path):
    assert make_evaluator(SearchConfig()).robustness == "bank"  # the paper's measure
    path = tmp_path / "c.toml"
    path.write_text('robustness = "direct"\n')
    config = SearchConfig.from_dict(load_toml(path))
    assert make_evaluator(config).robustness == "direct"
    assert PRESETS["paper"]["robustness"] == "bank"


def test_round_trip_through_dict():
    config = SearchConfig(seed=4, population=7)
    assert SearchConfig.from_dict(config.to_dict()) == config
    assert dataclasses.replace(config, seed=5).seed == 5
