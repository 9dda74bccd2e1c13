"""Cheap screening of children (multi-fidelity) and compute budgets (issue #27):
a screened child's low-fidelity fitness never meets selection, the best
fraction is promoted to the full schedule, resumes are exact, and a budget in
epoch-equivalents is never overspent."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from ras_deap.checkpoint import Checkpoint, checkpoint_text, load_checkpoint, save_checkpoint
from ras_deap.config import SearchConfig
from ras_deap.errors import ConfigError
from ras_deap.evolution import build_toolbox, ea_spectrum_niching, initial_state, step


@dataclass
class Result:
    fitness: float
    metrics: dict = field(default_factory=dict)
    failure: str | None = None


FULL_EPOCHS = 10


def true_value(ind) -> float:
    return (int(ind.genome.id[2:10], 16) % 1000) / 1000


def fidelity_aware(ind) -> Result:
    """Screened (``epochs`` set): a value shrunk towards 0.5 plus a seed
    noise, so a low-fidelity fitness is visibly not a full one; full: the
    value plus a smaller noise. Cost: epochs x 1 (subset samples)."""
    epochs = ind.epochs or FULL_EPOCHS
    noise = ((ind.eval_seed or 0) % 89) / 890
    value = true_value(ind)
    fitness = 1.0 + (0.5 + 0.3 * (value - 0.5) + noise if ind.epochs else value + noise / 3)
    return Result(fitness, {"cost_epochs": float(epochs), "fitness": fitness})


def toolbox_for(state, evaluate=fidelity_aware):
    toolbox = build_toolbox(state, evaluate=evaluate)
    toolbox.register("cost", lambda ind: float(ind.epochs or FULL_EPOCHS))
    return toolbox


def screened(ind) -> bool:
    return ind.epochs is not None


def test_screened_children_never_meet_selection_and_the_best_are_promoted():
    state = initial_state(4, 6)
    toolbox = toolbox_for(state)
    step(state, toolbox, children=2)
    seen = []
    step(state, toolbox, children=2, screen_epochs=2, screen_keep=0.25,
         on_evaluated=lambda st, ind: seen.append(ind))
    children = [ind for ind in seen if screened(ind)]
    promoted = [ind for ind in seen if ind.promoted_from is not None]
    assert len(children) == 12 and all(c.schedule == "constant@2ep" for c in children)
    assert len(promoted) == math.ceil(0.25 * 12)
    best = sorted(range(12), key=lambda i: (-children[i].fitness.values[0], i))[:3]
    assert sorted(p.promoted_from for p in promoted) == sorted(best)
    for clone in promoted:
        assert clone.schedule == "constant" and clone.epochs is None
        assert clone.genome.id == seen[clone.promoted_from].genome.id
        assert clone.eval_seed != seen[clone.promoted_from].eval_seed
    assert state.logbook[-1]["nevals"] == 12 + 3
    assert not any(screened(ind) for ind in state.population)
    assert all("@" not in ind.schedule for ind in state.population)
    assert not any(screened(ind) for ind in state.halloffame)


def test_failed_children_are_never_promoted():
    def failing(ind):
        if ind.epochs:  # every screened child fails, with a high number
            return Result(9.0, {"cost_epochs": 1.0}, failure="nan_loss: boom")
        return fidelity_aware(ind)

    state = initial_state(2, 4)
    toolbox = toolbox_for(state, failing)
    step(state, toolbox, children=2)
    before = [ind.genome.id for ind in state.population]
    step(state, toolbox, children=2, screen_epochs=3)
    assert [ind.genome.id for ind in state.population] == before
    assert state.logbook[-1]["nevals"] == 8


def _run(state, toolbox, **kw):
    return ea_spectrum_niching(state, toolbox, 4, children=2, screen_epochs=2,
                               screen_keep=0.5, **kw)


@pytest.mark.parametrize("stop_after", [3, 7, 14, 20, 31])
def test_a_screened_search_resumes_exactly(tmp_path, stop_after):
    """Killed after any evaluation (screened child or promoted clone), the
    restored search ends exactly where the uninterrupted one does."""
    state = initial_state(9, 5)
    pop, log = _run(state, toolbox_for(state))
    expected = [(i.genome.id, i.fitness.values) for i in pop], len(log)

    snaps = []
    state = initial_state(9, 5)
    toolbox = toolbox_for(state)
    with pytest.raises(KeyboardInterrupt):
        def on_evaluated(st, ind):
            snaps.append(checkpoint_text(Checkpoint(config={}, state=st, history=[])))
            if len(snaps) == stop_after:
                raise KeyboardInterrupt
        _run(state, toolbox, on_evaluated=on_evaluated)
    path = tmp_path / "checkpoint.json"
    path.write_text(snaps[-1])
    restored = load_checkpoint(path).state
    pop2, log2 = _run(restored, toolbox_for(restored))
    assert ([(i.genome.id, i.fitness.values) for i in pop2], len(log2)) == expected


def test_a_compute_budget_is_never_overspent_and_can_be_raised(tmp_path):
    state = initial_state(6, 5)
    toolbox = toolbox_for(state)
    _, log = ea_spectrum_niching(state, toolbox, 50, children=2, screen_epochs=2,
                                 cost_budget=200)
    spent = state.extra["cost_epochs"]
    # 5 x 10 (initial) + per generation 10 x 2 (screened) + 5 x 10 (promoted)
    assert 200 - 10 < spent <= 200
    assert state.extra["budget_spent"] == 200
    assert len(log) < 50
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, Checkpoint(config={}, state=state, history=[]))
    restored = load_checkpoint(path).state
    ea_spectrum_niching(restored, toolbox_for(restored), 50, children=2, screen_epochs=2,
                        cost_budget=200)  # the same budget: nothing more
    assert restored.extra["cost_epochs"] == spent and restored.evaluations == state.evaluations
    ea_spectrum_niching(restored, toolbox_for(restored), 50, children=2, screen_epochs=2,
                        cost_budget=400)
    assert 390 < restored.extra["cost_epochs"] <= 400


def test_screening_examines_more_candidates_at_equal_compute():
    counts = {}
    for screen in (0, 2):
        state = initial_state(1, 5)
        seen: list = []
        ea_spectrum_niching(state, toolbox_for(state), 100, children=2, screen_epochs=screen,
                            screen_keep=0.2, cost_budget=600,
                            on_evaluated=lambda st, ind, seen=seen: seen.append(ind))
        counts[screen] = len({i.genome.id for i in seen})
    assert counts[2] >= 2 * counts[0]


def test_options_are_checked_with_one_line():
    with pytest.raises(ConfigError, match=r"screen_epochs=10: .*--max-epochs"):
        SearchConfig(screen_epochs=10, max_epochs=10)
    with pytest.raises(ConfigError, match="screen_keep=1"):
        SearchConfig(screen_keep=1.0)
    with pytest.raises(ConfigError, match="budget_epochs=0"):
        SearchConfig(budget_epochs=0)
    assert SearchConfig(screen_epochs=2).screen_keep == 0.5


@pytest.mark.parametrize(("module", "flags"), [
    ("ras_deap.run", ("--screen-epochs", "--screen-keep", "--budget-epochs")),
    ("ras_deap.compare.cli", ("--screen-epochs", "--screen-keep")),
    ("ras_deap.tune.cli", ("--budget-epochs",))])
def test_the_options_have_flags(module, flags):
    import importlib

    text = " ".join(importlib.import_module(module).build_parser().format_help().split())
    for flag in flags:
        assert flag in text


def test_the_evaluator_caps_epochs_and_reports_the_cost():
    import random

    from ras_deap.evaluation import Evaluator, TrainConfig
    from ras_deap.genome import random_model

    model = random_model(random.Random(3))
    ev = Evaluator("digits", train_config=TrainConfig(max_epochs=4, subset_size=500))
    low = ev.evaluate(model, 1, seed=5, epochs=1)
    assert low.failure is None
    assert low.metrics["epochs"] == 1 and low.metrics["cost_epochs"] == pytest.approx(1.0)
    full = ev.evaluate(model, 1, seed=5)
    assert full.metrics["cost_epochs"] == pytest.approx(full.metrics["epochs"])
    assert full.metrics["epochs"] > 1


def test_baselines_get_the_evaluations_that_fit_in_a_compute_budget():
    from ras_deap.compare.budget import evaluations_within
    from ras_deap.compare.cells import cell_budget
    from ras_deap.compare.compare_config import CompareConfig
    from ras_deap.evaluation import TrainConfig

    train = TrainConfig(max_epochs=10, full_epochs=20, subset_size=1000, full_every=2)
    # generation 0: 4 x 10; generation 1: 8 x 10; generation 2 (full, 3000 samples): 60 each
    assert evaluations_within(40, 4, 2, train, 3000) == 4
    assert evaluations_within(119.9, 4, 2, train, 3000) == 11
    assert evaluations_within(120, 4, 2, train, 3000) == 12
    assert evaluations_within(179, 4, 2, train, 3000) == 12
    assert evaluations_within(180, 4, 2, train, 3000) == 13

    class Fake:
        train_config = train

    search = SearchConfig(population=4, children=2, max_epochs=10, full_epochs=20,
                          full_every=2, budget_epochs=120)
    cfg = CompareConfig(search=search, budget=5)
    assert cell_budget(cfg, search, Fake(), "random") == 12  # the compute budget, not 5
    assert cell_budget(cfg, search, Fake(), "ras") >= 10**6  # RAS counts compute itself
    plain = SearchConfig(population=4, children=2)
    assert cell_budget(CompareConfig(search=plain, budget=5), plain, Fake(), "random") == 5
