"""One settings layer: every settings class is declared with ``option()`` and
validated by ``Option.check``, so a bad value of any command is one
ConfigError naming it; the evaluator's TrainConfig takes the schema's training
declarations; the paper presets are the schema's ``paper=`` values; and the
serialised forms that checkpoints, banks and stored comparisons hold are what
they were before."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from ras_deap.assess.assess_config import ASSESS_OPTIONS, AssessConfig
from ras_deap.attacks import BuildConfig
from ras_deap.attacks.build_config import BUILD_OPTIONS
from ras_deap.attacks.heldout_config import HELDOUT_OPTIONS, HeldoutConfig
from ras_deap.attacks.heldout_sources import HELDOUT_SOURCE_OPTIONS, HeldoutSourceConfig
from ras_deap.attacks.source_models import SOURCE_OPTIONS, SourceConfig
from ras_deap.compare.compare_config import COMPARE_OPTIONS, COMPARE_PRESETS, CompareConfig
from ras_deap.config import OPTIONS, PRESETS, TRAINING_FIELDS, SearchConfig
from ras_deap.errors import ConfigError, UsageError
from ras_deap.evaluation.train_config import TRAIN_OPTIONS, TrainConfig
from ras_deap.options import ABSENT, Option, paper_values
from ras_deap.tune.settings import TUNE_OPTIONS, TuneSettings

# What TrainConfig().to_dict() was when it was generated with make_dataclass: checkpoints
# and committed results store it, so its keys, their order and values must not move.
TRAIN_DICT = {"subset_size": 1000, "full_every": 10, "full_epochs": 20, "max_epochs": 10,
              "patience": 15, "min_delta": 0.001, "batch_size": 64, "lr": 0.001,
              "optimizer": "adam", "augment": False, "momentum": 0.9, "weight_decay": 0.0,
              "eval_batch_size": 1024, "max_parameters": 50_000_000}
# The paper presets as they were written out by hand, before they derived from paper=.
OLD_PAPER = {"robustness": "bank", "generations": 100, "population": 25, "children": 2,
             "subset_size": 1000, "full_every": 10, "full_epochs": 50, "max_epochs": 200,
             "patience": 15, "min_delta": 0.001}
OLD_COMPARE_PAPER = {"population": 25, "children": 2, "subset_size": 1000, "max_epochs": 200,
                     "patience": 15, "full_every": 10, "full_epochs": 50}


def test_train_config_keeps_its_stored_form():
    assert list(TrainConfig().to_dict().items()) == list(TRAIN_DICT.items())
    assert TrainConfig.from_dict(TRAIN_DICT) == TrainConfig()
    with pytest.raises(ConfigError, match="unknown training options"):
        TrainConfig.from_dict({**TRAIN_DICT, "epochs": 3})


def test_train_config_takes_the_schemas_training_declarations():
    """Written-out fields (so type checkers see them) with the schema's name, type,
    default, help and paper value; only two bounds are the trainer's wider ones."""
    body = ast.parse(inspect.getsource(TrainConfig)).body[0].body
    written = [n.target.id for n in body if isinstance(n, ast.AnnAssign)]
    assert written == list(TRAIN_OPTIONS)  # every field written out in the class body
    assert [n for n in TRAIN_OPTIONS if n in OPTIONS] == list(TRAINING_FIELDS)
    widened = {"full_every": {"minimum": 0}, "min_delta": {"below": None}}
    for name in TRAINING_FIELDS:
        assert TRAIN_OPTIONS[name] == dataclasses.replace(OPTIONS[name],
                                                          **widened.get(name, {})), name
    assert TrainConfig(full_every=0).full_every == 0  # never the full set: the trainer can
    assert TrainConfig(min_delta=1.0).min_delta == 1.0  # every change counts as flat
    with pytest.raises(ConfigError, match="full_every=0"):
        SearchConfig(full_every=0)  # ... a search cannot
    evaluator_only = {n: o for n, o in TRAIN_OPTIONS.items() if n not in OPTIONS}
    assert set(evaluator_only) == {"momentum", "weight_decay", "eval_batch_size",
                                   "max_parameters"}
    assert all(o.group == "evaluator" for o in evaluator_only.values())


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 1}, r"batch_size=1: must be an integer >= 2"),
    ({"lr": 0}, r"lr=0: must be a number in \(0, 10\)"),
    ({"optimizer": "rmsprop"}, r"optimizer='rmsprop': unknown optimizer; choose one of adam"),
    ({"weight_decay": -0.1}, r"weight_decay=-0.1: must be a number >= 0"),
    ({"max_parameters": 0}, r"max_parameters=0: must be an integer >= 1"),
    ({"augment": "yes"}, r"augment='yes': must be true or false"),
])
def test_a_bad_training_value_is_one_config_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)
    assert TrainConfig(max_parameters=None).max_parameters is None


def test_paper_presets_derive_from_the_schema():
    assert PRESETS["paper"] == paper_values(OPTIONS)
    assert all(OPTIONS[k].paper == v for k, v in PRESETS["paper"].items())
    assert OLD_PAPER.items() <= PRESETS["paper"].items()
    # the options the hand-written preset left out have their paper value as default
    assert all(OPTIONS[k].default == v for k, v in PRESETS["paper"].items()
               if k not in OLD_PAPER)
    assert SearchConfig(**PRESETS["paper"]) == SearchConfig(**OLD_PAPER)
    paper = TrainConfig.paper()
    assert paper == TrainConfig(**{k: v for k, v in OLD_PAPER.items() if k in TRAINING_FIELDS})
    assert (paper.max_epochs, paper.full_epochs) == (200, 50)
    compare = dict(COMPARE_PRESETS["paper"])
    assert (compare.pop("budget"), compare.pop("seeds")) == (5025, 5)
    assert SearchConfig(**compare) == SearchConfig(**OLD_COMPARE_PAPER)


@pytest.mark.parametrize("make, message", [
    (lambda: CompareConfig(budget=0), r"budget=0: must be an integer >= 1 \(--max-evaluations\)"),
    (lambda: CompareConfig(methods=()), r"methods=\[\]: give one or more names \(--methods\)"),
    (lambda: CompareConfig(methods=("ras", "ras")), r"methods=.*lists a value twice"),
    (lambda: CompareConfig(methods=("ras", "nope")), r"unknown \['nope'\]; choose from random"),
    (lambda: CompareConfig(aging_population=0), r"aging_population=0.*--aging-population"),
    (lambda: CompareConfig(final_generation=0), r"final_generation=0"),
    (lambda: AssessConfig(pixel_th=()), r"pixel_th=\[\]: give one or more integers"),
    (lambda: AssessConfig(eps_steps=(0, 1)), r"eps_steps=\[0, 1\]: 0 is not valid: each must "
                                             r"be an integer >= 1"),
    (lambda: AssessConfig(autoattack_eps=(0.5, 1.0)), r"1.0 is not valid: each must be a "
                                                      r"number in \(0, 1\)"),
    (lambda: AssessConfig(bank="no"), r"bank='no': must be true or false"),
    (lambda: BuildConfig(seed=-1), r"seed=-1: must be an integer >= 0"),
    (lambda: BuildConfig(sources=("fs", "fs")), r"sources=\['fs', 'fs'\]: lists a value twice"),
    (lambda: BuildConfig(optimizers=("PSO",)), r"unknown \['PSO'\]; choose from DE, CMA-ES"),
    (lambda: BuildConfig(l0_th=(), linf_th=()), r"no thresholds"),
    (lambda: SourceConfig(at_eps=1.0), r"at_eps=1.0: must be a number in \(0, 1\)"),
    (lambda: HeldoutConfig(attacks=("hsj", "square")), r"unknown \['square'\]; choose from hsj"),
    (lambda: HeldoutConfig(linf_th=()), r"linf_th=\[\]: give one or more integers"),
    (lambda: HeldoutConfig(select="margin"), r"select='margin' needs candidates"),
    (lambda: HeldoutSourceConfig(lr=0), r"lr=0: must be a number > 0"),
    (lambda: TuneSettings(sampler="cmaes"), r"sampler='cmaes': unknown sampler; choose one of "
                                            r"tpe, grid, random \(--sampler\)"),
    (lambda: TuneSettings(timeout=0), r"timeout=0: must be a number > 0 \(--timeout\)"),
    (lambda: TuneSettings(preset="huge"), r"preset='huge': unknown preset"),
    (lambda: TuneSettings(space="all"), r"space='all': unknown space"),
    (lambda: TuneSettings(n_trials=0), r"n_trials=0: must be an integer >= 1 \(--n-trials\)"),
])
def test_every_settings_class_raises_one_config_error(make, message):
    with pytest.raises(ConfigError, match=message) as info:
        make()
    assert isinstance(info.value, UsageError)  # one line, exit 2, in every command


@pytest.mark.parametrize("options", [OPTIONS, TRAIN_OPTIONS, COMPARE_OPTIONS, ASSESS_OPTIONS,
                                     BUILD_OPTIONS, SOURCE_OPTIONS, HELDOUT_OPTIONS,
                                     HELDOUT_SOURCE_OPTIONS, TUNE_OPTIONS])
def test_every_declared_default_passes_its_own_check(options):
    for opt in options.values():
        opt.check(opt.default)
        assert opt.kind in (int, float, str, bool, tuple), opt.name
        assert (opt.item is not None) == (opt.kind is tuple), opt.name
        assert opt.paper is ABSENT or opt.check(opt.paper) is None


def test_tuple_options_check_each_item():
    opt = Option("ths", tuple, (1,), "thresholds", "bank", item=int, minimum=1, nonempty=True,
                 unique=True, hint="--ths")
    opt.check((1, 3))
    opt.check([1, 3])  # a list from JSON or TOML is a sequence too
    for bad, message in [((), "give one or more integers"), ((1, 1), "lists a value twice"),
                         ((1, True), "True is not valid"), ("1,3", "must be a sequence"),
                         ((1, 0), "0 is not valid: each must be an integer >= 1 \\(--ths\\)")]:
        with pytest.raises(ConfigError, match=message):
            opt.check(bad)
