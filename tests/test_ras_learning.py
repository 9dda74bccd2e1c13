"""Options for a RAS that learns (issue #27): children shared by niche rank,
representatives re-measured and ranked by the mean of their measurements.
The paper's behaviour (the defaults) is unchanged."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ras_deap.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ras_deap.config import PRESETS, SearchConfig
from ras_deap.evolution import (
    build_toolbox,
    ea_spectrum_niching,
    initial_state,
    make_individual,
    measurements_of,
    niche_shares,
    step,
)
from ras_deap.genome import random_model


def noisy(ind):
    """A fitness of the genome plus a noise of the evaluation seed (up to 0.1)."""
    base = (int(ind.genome.id[2:10], 16) % 1000) / 1000
    noise = ((ind.eval_seed or 0) % 97) / 970
    return (1.0 + base + noise,)


def fingerprint(pop, logbook) -> str:
    doc = {"logbook": [{k: r[k] for k in ("gen", "nevals", "max", "mean", "min")}
                       for r in logbook],
           "population": [(i.genome.id, i.fitness.values[0]) for i in pop]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def test_the_paper_loop_is_unchanged():
    """Recorded with the loop before these options existed (commit 7339d4d)."""
    state = initial_state(3, 6)
    pop, logbook = ea_spectrum_niching(state, build_toolbox(state, evaluate=noisy), 4, children=2)
    assert fingerprint(pop, logbook) == (
        "062d61d19e953f52e5291c43e21cc8ed4919b9efdb837e0d82a12d71bfccf13a")
    assert PRESETS["paper"].get("niche_children", "equal") == "equal"
    paper = SearchConfig(**PRESETS["paper"])
    assert (paper.niche_children, paper.remeasure_every) == ("equal", 0)


def _population(fitnesses):
    import random

    rng = random.Random(0)
    pop = []
    for f in fitnesses:
        ind = make_individual(random_model(rng))
        if f is not None:
            ind.fitness.values = (f,)
        pop.append(ind)
    return pop


@settings(max_examples=60, deadline=None)
@given(fitnesses=st.lists(st.one_of(st.floats(0, 2, allow_subnormal=False),
                                    st.just(float("nan"))),
                          min_size=1, max_size=30),
       children=st.integers(1, 4))
def test_rank_shares_keep_the_total_and_favour_the_fitter(fitnesses, children):
    pop = _population(fitnesses)
    assert niche_shares(pop, children, "equal") == [children] * len(pop)
    shares = niche_shares(pop, children, "rank")
    assert sum(shares) == children * len(pop)
    assert all(s >= 0 for s in shares)

    def key(i):
        f = fitnesses[i]
        return float("-inf") if f != f else f

    for i in range(len(pop)):
        for j in range(len(pop)):
            if key(i) > key(j):
                assert shares[i] >= shares[j]


def test_rank_shares_of_a_known_population():
    pop = _population([1.0, 3.0, 2.0, 0.5])
    assert niche_shares(pop, 2, "rank") == [2, 3, 2, 1]  # weights 2,4,3,1 of 10 for 8
    with pytest.raises(ValueError, match="niche_children"):
        niche_shares(pop, 2, "tournament")


def test_rank_mode_breeds_more_children_of_fitter_niches():
    state = initial_state(5, 6)
    toolbox = build_toolbox(state, evaluate=noisy)
    step(state, toolbox, children=2)
    shares = niche_shares(state.population, 2, "rank")
    step(state, toolbox, children=2, niche_children="rank")
    assert state.logbook[-1]["nevals"] == 12
    assert max(shares) > 2 > min(shares)


def test_remeasured_representatives_carry_the_mean_of_their_measurements(tmp_path):
    state = initial_state(7, 5)
    toolbox = build_toolbox(state, evaluate=noisy)
    for _ in range(5):
        step(state, toolbox, children=1, remeasure_every=1)
    remeasured = [ind for ind in state.population if len(ind.measurements) > 1]
    assert remeasured, "some representative survived a generation and was re-measured"
    for ind in remeasured:
        values = measurements_of(ind)
        assert ind.fitness.values[0] == pytest.approx(sum(values) / len(values))
    # each generation: one re-measurement per representative + one child per niche
    assert all(r["nevals"] == 10 for r in state.logbook[1:])

    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, Checkpoint(config={}, state=state, history=[]))
    restored = load_checkpoint(path).state
    assert [(i.genome.id, i.fitness.values, i.measurements) for i in restored.population] == [
        (i.genome.id, i.fitness.values, tuple(i.measurements)) for i in state.population]
    toolbox2 = build_toolbox(restored, evaluate=noisy)
    step(restored, toolbox2, children=1, remeasure_every=1)
    step(state, toolbox, children=1, remeasure_every=1)
    assert fingerprint(restored.population, restored.logbook) == fingerprint(
        state.population, state.logbook)


@pytest.mark.parametrize(("remeasure_every", "winner_fitness"), [(0, 1.9), (1, 1.8)])
def test_a_lucky_measurement_is_diluted(remeasure_every, winner_fitness):
    """A representative whose one measurement was lucky (1.9; it measures
    1.5 again) holds its niche against a better child (1.8) for ever in the
    paper's loop; re-measured, its mean (1.7) loses to the child."""
    state = initial_state(11, 1)
    toolbox = build_toolbox(state, evaluate=lambda ind: (1.5,))
    step(state, toolbox, children=1)
    state.population[0].fitness.values = (1.9,)  # the lucky draw
    toolbox.register("evaluate", lambda ind: (1.5,) if ind.mutations == () else (1.8,))
    step(state, toolbox, children=1, remeasure_every=remeasure_every)
    rep = state.population[0]
    assert rep.fitness.values[0] == pytest.approx(winner_fitness)
    assert bool(rep.mutations) == (remeasure_every > 0)  # the child took the niche


@pytest.mark.parametrize("module", ["ras_deap.run", "ras_deap.compare"])
def test_the_options_have_flags_in_every_command(module):
    import importlib

    cli = importlib.import_module(module + (".cli" if module.endswith("compare") else ""))
    text = cli.build_parser().format_help()
    assert "--niche-children" in text and "--remeasure-every" in text


def test_tune_has_a_learning_space():
    from ras_deap.tune.space import get_space

    space = get_space("learning")
    assert set(space.tunes) == {"mutations", "niche_children", "remeasure_every",
                                "screen_epochs", "screen_keep"}
