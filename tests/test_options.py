"""The option schema is the one declaration of every search option: the
parsers of run, tune and compare, the resume check, the training options and
tune's reserved keys derive from it; the search takes its evaluator as a
typed contract and drives the one evolutionary loop."""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from ras_deap.compare import cli as compare_cli
from ras_deap.config import (
    EXECUTION_FIELDS,
    OMIT_AT_DEFAULT,
    OPTIONS,
    PRESET_OPTION,
    PRESETS,
    RESUMABLE_OVERRIDES,
    TRAINING_FIELDS,
    ConfigError,
    SearchConfig,
    check_resumable,
)
from ras_deap.contracts import FitnessEvaluator, MapBackend, RetrainingEvaluator, Tracker
from ras_deap.options import ABSENT, FIXED, FROM_FOLDER, MAY_CHANGE
from ras_deap.run import build_parser as run_parser
from ras_deap.tune import cli as tune_cli
from ras_deap.tune.runner import base_config, study_attrs
from ras_deap.tune.settings import RESERVED, TuneSettings

REPO = Path(__file__).resolve().parents[1]
PARSERS = {"run": run_parser, "tune": tune_cli.build_parser, "compare": compare_cli.build_parser}
# Flags a command has for an option of its own that shares a name with another
# command's: compare's presets are comparison presets, and its --parallel-cells
# (old name --workers, kept for the commands in docs/results) runs cells in
# parallel (each cell searches in one process).
OWN_MEANING = {("compare", "--preset"), ("compare", "--parallel-cells")}


def visible_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def schema_actions(command: str) -> dict[str, argparse.Action]:
    """dest -> action of every visible flag of ``command`` that is a schema option."""
    out = {}
    for action in visible_actions(PARSERS[command]()):
        if (command, action.option_strings[0]) in OWN_MEANING:
            continue
        if action.dest in OPTIONS or action.dest == "preset":
            out[action.dest] = action
    return out


def schema_of(dest: str):
    return PRESET_OPTION if dest == "preset" else OPTIONS[dest]


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_parsers_help_matches_the_schema(command):
    actions = schema_actions(command)
    assert actions, command
    for dest, action in actions.items():
        opt = schema_of(dest)
        assert action.option_strings == [opt.flag], (command, dest)
        assert action.help.startswith(opt.help), (command, dest)
        if opt.kind is bool:
            assert action.nargs == 0 and action.const is True
        else:
            assert action.type is opt.kind, (command, dest)
            assert tuple(action.choices or ()) == tuple(opt.choices or ()), (command, dest)
            assert " (" in action.help and action.help.endswith(")")
            if opt.paper is not ABSENT:  # the paper's value is stated wherever the option is
                assert f"paper {opt.paper}; " in action.help, (command, dest)
        assert action.default is argparse.SUPPRESS  # only what the user gave is in the namespace


def test_run_has_every_option_with_the_schemas_default_and_paper_value():
    actions = schema_actions("run")
    assert set(actions) == {*OPTIONS, "preset"}
    for dest, action in actions.items():
        opt = schema_of(dest)
        assert action.help == opt.help_text(), dest


def test_the_same_option_has_the_same_flag_everywhere():
    flags: dict[str, set[str]] = {}
    dests: dict[str, set[str]] = {}
    for command in PARSERS:
        for action in visible_actions(PARSERS[command]()):
            if (command, action.option_strings[0]) in OWN_MEANING:
                continue
            flags.setdefault(action.dest, set()).update(action.option_strings)
            for flag in action.option_strings:
                dests.setdefault(flag, set()).add(action.dest)
    for dest in OPTIONS:
        assert flags.get(dest, {OPTIONS[dest].flag}) == {OPTIONS[dest].flag}, dest
    assert all(len(d) == 1 for flag, d in dests.items() if flag != "-h"), dests
    shared = {d for d in OPTIONS if all(d in schema_actions(c) for c in PARSERS)}
    assert {"max_evaluations", "max_epochs", "full_epochs", "dataset", "seed", "tracking_uri",
            "experiment"} <= shared


def test_tune_help_states_the_defaults_the_code_uses():
    actions = schema_actions("tune")
    base = base_config(TuneSettings())
    settings = TuneSettings()
    assert f"(default {settings.budget})" in actions["max_evaluations"].help
    assert base.max_evaluations == settings.budget
    preset = PRESETS[settings.preset]
    assert f"default {preset['max_epochs']} with --preset {settings.preset}" in \
        actions["max_epochs"].help and base.max_epochs == preset["max_epochs"]
    assert base.full_epochs == min(OPTIONS["full_epochs"].default, base.max_epochs)
    assert f"min({OPTIONS['full_epochs'].default}, --max-epochs)" in actions["full_epochs"].help
    assert f"(default {settings.preset})" in actions["preset"].help


def test_flags_renamed_before_1_0_are_gone(capsys):
    """No hidden aliases before 1.0 (issue #30): an old name is an unknown flag."""
    for command, argv in (("tune", ["--epochs", "2"]), ("tune", ["--budget", "5"]),
                          ("compare", ["--budget", "7"])):
        with pytest.raises(SystemExit) as exc:
            PARSERS[command]().parse_args(argv)
        assert exc.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_compare_max_evaluations_is_the_budget_of_every_method_and_seed():
    cfg = compare_cli.config_from_args(compare_cli.build_parser().parse_args(
        ["--preset", "tiny", "--max-evaluations", "9", "--seed", "4", "--population", "3"]))
    assert (cfg.budget, cfg.search.seed, cfg.search.population) == (9, 4, 3)
    reference = compare_cli.config_from_args(compare_cli.build_parser().parse_args([]))
    assert reference.budget == 275 and reference.search == SearchConfig()


@pytest.mark.parametrize("folder", ["table2-digits-cells", "fitness-choice-digits-cells"])
def test_stored_comparisons_resume_with_their_documented_command(tmp_path, folder):
    """A manifest written before the options were unified still matches the
    settings of the command that started it (docs/results/README.md)."""
    from ras_deap.compare.manifest import open_manifest

    stored = REPO / "docs" / "results" / folder / "comparison.json"
    if not stored.is_file():
        pytest.skip(f"{stored} is not in this checkout")
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(stored, out / "comparison.json")
    argv = ["--max-evaluations", "275", "--seeds", "5", "--methods", "random,regularized,ras",
            "--workers", "1", "--out", str(out)]
    if folder.startswith("fitness-choice"):
        argv += ["--robustness", "direct"]
    cfg = compare_cli.config_from_args(compare_cli.build_parser().parse_args(argv))
    manifest, existed = open_manifest(cfg)
    assert existed and manifest["settings"] == json.loads(stored.read_text())["settings"]


def test_groups_and_resume_policies_derive_the_lists():
    assert EXECUTION_FIELDS == ("workers", "isolate", "scheduler", "threads", "device",
                                "experiment", "tracking_uri", "run_dir", "run_name")
    assert set(RESUMABLE_OVERRIDES) == {n for n, o in OPTIONS.items() if o.resume == MAY_CHANGE}
    assert {n for n, o in OPTIONS.items() if o.resume == FROM_FOLDER} == {"run_dir", "run_name"}
    assert {"generations", "max_evaluations"} <= set(RESUMABLE_OVERRIDES)
    assert set(TRAINING_FIELDS) == {"subset_size", "full_every", "full_epochs", "max_epochs",
                                    "patience", "min_delta", "batch_size", "lr", "optimizer",
                                    "augment"}
    # tune's reserved keys: the study sets them; each names the flag to use instead
    assert RESERVED["max_evaluations"] == "--max-evaluations"
    assert RESERVED["seed"] == OPTIONS["seed"].flag
    assert {"run_dir", "run_name", "tracking_uri", "experiment"} <= set(RESERVED)
    # a study's identity leaves out exactly the execution options, and the options a
    # config's dict omits at their default (so studies made before them continue)
    base = base_config(TuneSettings())
    assert OMIT_AT_DEFAULT == ("initial", "niche_age", "objectives", "mo_selection",
                               "final_training", "front_remeasure")
    assert set(study_attrs(TuneSettings(), base)["config"]) == set(OPTIONS) - set(
        EXECUTION_FIELDS) - set(OMIT_AT_DEFAULT)
    hard = base_config(TuneSettings(overrides={"final_training": "trades"}))
    assert study_attrs(TuneSettings(), hard)["config"]["final_training"] == "trades"


def test_resume_check_derives_from_the_schema():
    stored = SearchConfig().to_dict()
    for name, opt in OPTIONS.items():
        if opt.kind is bool:
            changed = not opt.default
        elif opt.choices:
            changed = next(c for c in opt.choices if c != opt.default)
        elif opt.kind is str:
            changed = "other"
        else:
            changed = (opt.default or 1) + 1
        if opt.resume == FIXED:
            with pytest.raises(ConfigError, match=f"cannot change {name} when resuming"):
                check_resumable(stored, {name: changed})
        else:
            check_resumable(stored, {name: changed})  # may change, or is the resumed folder
    # an option the checkpoint predates counts with its default
    older = {k: v for k, v in stored.items() if k != "robustness"}
    check_resumable(older, {"robustness": "bank"})
    with pytest.raises(ConfigError, match="robustness"):
        check_resumable(older, {"robustness": "direct"})


def test_the_cli_refuses_to_resume_with_a_fixed_option_changed(tmp_path, capsys):
    from ras_deap.checkpoint import CHECKPOINT_NAME
    from ras_deap.run import main

    config = SearchConfig(population=2, generations=1, children=1, max_epochs=1,
                          subset_size=64, workers=1, run_dir=str(tmp_path), run_name="r",
                          tracking_uri=f"sqlite:///{tmp_path}/m.db")
    from ras_deap.search import run_search

    run_search(config, progress=False, final_training=False, evaluator=FakeEvaluator())
    assert (tmp_path / "r" / CHECKPOINT_NAME).is_file()
    code = main(["--resume", str(tmp_path / "r"), "--population", "3"])
    assert code == 2 and "cannot change population" in capsys.readouterr().err


class FakeEvaluator:
    """A deterministic fitness of the genome alone: the search logic runs for real."""

    def __init__(self) -> None:
        self.calls = 0

    def data(self) -> None:
        return None

    def __call__(self, individual):
        self.calls += 1
        fitness = (int(individual.genome.id[2:10], 16) % 1000) / 1000
        return SimpleNamespace(fitness=fitness, failure=None,
                               metrics={"fitness": fitness, "accuracy": fitness})


def test_run_search_takes_an_evaluator(tmp_path):
    from ras_deap.search import run_search

    fake = FakeEvaluator()
    config = SearchConfig(population=3, generations=2, children=1, workers=1,
                          run_dir=str(tmp_path), tracking_uri=f"sqlite:///{tmp_path}/m.db")
    result = run_search(config, progress=False, final_training=False, evaluator=fake)
    assert result.evaluations == fake.calls == 3 + 2 * 3
    assert [r["gen"] for r in result.logbook] == [0, 1, 2]
    assert result.best.fitness.values[0] == max(r["max"] for r in result.logbook)
    with pytest.raises(TypeError, match="FitnessEvaluator"):
        run_search(config, progress=False, final_training=False, evaluator=object())
    with pytest.raises(TypeError, match="RetrainingEvaluator"):
        run_search(config, progress=False, final_training=True, evaluator=fake)


def test_a_checkpoint_carried_to_another_store_resumes_only_when_asked(tmp_path):
    """A run folder committed with a comparison resumes in a checkout without
    its MLflow store: refused by default (the wrong --tracking-uri is the
    usual cause), logged to a new run with new_run_if_lost."""
    from ras_deap.search import run_search
    from ras_deap.tracking.store import TrackingError

    config = SearchConfig(population=3, generations=1, children=1, workers=1,
                          run_dir=str(tmp_path), run_name="r",
                          tracking_uri=f"sqlite:///{tmp_path}/first.db")
    first = run_search(config, progress=False, final_training=False,
                       evaluator=FakeEvaluator())
    more = config.replace(generations=2, tracking_uri=f"sqlite:///{tmp_path}/other.db")
    with pytest.raises(TrackingError, match="not in"):
        run_search(more, progress=False, final_training=False, evaluator=FakeEvaluator(),
                   resume=tmp_path / "r")
    fake = FakeEvaluator()
    with pytest.warns(UserWarning, match="new MLflow run"):
        result = run_search(more, progress=False, final_training=False, evaluator=fake,
                            resume=tmp_path / "r", new_run_if_lost=True)
    assert fake.calls == 3 and result.evaluations == first.evaluations + 3
    assert result.run_id != first.run_id


def test_run_search_drives_the_one_loop():
    import ast

    import ras_deap.search.core as core

    tree = ast.parse(inspect.getsource(core))
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.While)]
    calls = {n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not loops and "step" not in calls and "ea_spectrum_niching" in calls


def test_the_real_implementations_satisfy_the_contracts(tmp_path):
    from ras_deap.evaluation import Evaluator
    from ras_deap.parallel import DaskMap, ProcessMap, SerialMap
    from ras_deap.search import make_evaluator
    from ras_deap.tracking import SearchTracker

    assert isinstance(Evaluator(), RetrainingEvaluator)
    assert isinstance(make_evaluator(SearchConfig()), FitnessEvaluator)
    assert isinstance(FakeEvaluator(), FitnessEvaluator)
    assert not isinstance(FakeEvaluator(), RetrainingEvaluator)
    assert isinstance(SerialMap(), MapBackend)
    pool = ProcessMap(1)
    try:
        assert isinstance(pool, MapBackend)
    finally:
        pool.close()
    dask = DaskMap.__new__(DaskMap)  # without a cluster: the methods are what is checked
    dask.description = "dask"
    assert isinstance(dask, MapBackend)
    tracker = SearchTracker(f"sqlite:///{tmp_path}/m.db", "contracts")
    assert isinstance(tracker, Tracker)
    for contract in (FitnessEvaluator, RetrainingEvaluator, MapBackend, Tracker):
        assert len(inspect.getdoc(contract) or "") > 200, contract  # the contract is stated


def test_no_cli_accepts_an_abbreviated_flag():
    """An abbreviation silently becomes a longer flag (``--budget 275`` was
    ``--budget-epochs 275``): every parser in the package is a
    :class:`~ras_deap.flags.OptionParser` (sub-commands inherit its class),
    which refuses them."""
    import ast

    from ras_deap.attacks.cli import _parser as attacks_parser

    package = REPO / "ras_deap"
    for path in package.rglob("*.py"):
        if path == package / "flags.py":
            continue  # OptionParser itself
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "ArgumentParser":
                raise AssertionError(f"{path}:{node.lineno} builds a plain ArgumentParser")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_parser":
                assert not any(k.arg == "parser_class" for k in node.keywords), path
    with pytest.raises(SystemExit):
        run_parser().parse_args(["--max-eval", "5"])
    build = ["build", "--dataset", "digits", "--out", "x.npz"]
    assert attacks_parser().parse_args([*build, "--images-per-setting", "3"]).command == "build"
    with pytest.raises(SystemExit):  # a sub-command's parser refuses them too
        attacks_parser().parse_args([*build, "--images-per-sett", "3"])


def test_old_flag_names_are_accepted_only_where_a_recorded_command_needs_them():
    """Each old name in ``OLD_FLAGS`` parses as its new flag, and the file it is
    kept for still uses it: when that record changes, the exception goes."""
    from ras_deap.attacks.cli import _parser as attacks_parser
    from ras_deap.compare.cli import build_parser as compare_parser
    from ras_deap.flags import OLD_FLAGS

    parsers = {"compare": (compare_parser, []),
               "attacks build": (attacks_parser, ["build", "--out", "x.npz"])}
    assert OLD_FLAGS
    for flag in OLD_FLAGS:
        factory, prefix = parsers[flag.command]
        old = factory().parse_args([*prefix, flag.old, "3"])
        new = factory().parse_args([*prefix, flag.new, "3"])
        assert vars(old) == vars(new), flag
        recorded = (REPO / flag.recorded_in.split()[0]).read_text()
        assert f"{flag.old} " in recorded, f"{flag.recorded_in} no longer uses {flag.old}"


@pytest.mark.parametrize("value, expected", [(3, 3.0), (2.5, 2.5), (float("inf"), float("inf")),
                                             (True, None), (float("nan"), None), ("1", None),
                                             (None, None), ([1], None)])
def test_json_number_reads_planted_values_as_unknown(value, expected):
    from ras_deap.validate import json_number

    assert json_number(value) == expected
