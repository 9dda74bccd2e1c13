"""Options for a RAS that learns (issue #27): children shared by niche rank,
representatives re-measured and ranked by the mean of their measurements,
representatives aged out of their niche. The paper's behaviour (the
defaults) is unchanged."""

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
    sel_spectrum_niching,
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
    assert (paper.niche_children, paper.remeasure_every, paper.niche_age) == ("equal", 0, 0)
    assert paper.initial == "random"


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
        niche_shares(pop, 2, "lottery")
    with pytest.raises(ValueError, match="pass rng"):
        niche_shares(pop, 2, "tournament")


@settings(max_examples=60, deadline=None)
@given(fitnesses=st.lists(st.one_of(st.floats(0, 2, allow_subnormal=False),
                                    st.just(float("nan"))),
                          min_size=1, max_size=30),
       children=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_tournament_shares_keep_the_total_and_the_worst_breed_only_in_small_niches(
        fitnesses, children, seed):
    """A tournament's winner is the fittest of 5 drawn: the total is kept, the
    4 least fit representatives (NaN last, ties by index) never win once there
    are 5 or more, and the same rng state draws the same shares."""
    import random

    from ras_deap.evolution.measurement import NICHE_TOURNAMENT

    pop = _population(fitnesses)
    shares = niche_shares(pop, children, "tournament", random.Random(seed))
    assert sum(shares) == children * len(pop) and all(s >= 0 for s in shares)
    assert shares == niche_shares(pop, children, "tournament", random.Random(seed))
    n = len(pop)
    if n >= NICHE_TOURNAMENT:
        def key(i):
            f = fitnesses[i]
            return (float("-inf") if f != f else f, -i)

        worst = sorted(range(n), key=key)[:NICHE_TOURNAMENT - 1]
        assert all(shares[i] == 0 for i in worst)


def test_tournament_mode_breeds_from_the_search_rng_and_resumes(tmp_path):
    """--niche-children tournament draws from the search's seeded RNG: the
    same seed gives the same search, and a checkpoint resumes it exactly."""
    def run(gens, state=None):
        state = state or initial_state(11, 8)
        toolbox = build_toolbox(state, evaluate=noisy)
        for _ in range(gens):
            step(state, toolbox, children=2, niche_children="tournament")
        return state

    a, b = run(3), run(3)
    assert fingerprint(a.population, a.logbook) == fingerprint(b.population, b.logbook)
    assert all(r["nevals"] == 16 for r in a.logbook[1:])
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, Checkpoint(config={}, state=run(2), history=[]))
    resumed = run(1, load_checkpoint(path).state)
    assert fingerprint(resumed.population, resumed.logbook) == fingerprint(a.population,
                                                                          a.logbook)


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
    assert "--niche-children" in text and "--remeasure-every" in text and "--niche-age" in text
    assert "--initial" in text


def test_tune_has_a_learning_space():
    from ras_deap.tune.space import get_space

    space = get_space("learning")
    assert set(space.tunes) == {"mutations", "niche_children", "remeasure_every",
                                "niche_age", "screen_epochs", "screen_keep"}


def test_a_learning_study_made_before_tournament_keeps_its_niche_children_choices():
    """Optuna refuses to change a categorical's choices within a study: a study
    whose trials drew niche_children from (equal, rank) goes on with those; a
    new study draws from all three."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    from ras_deap.config import SearchConfig
    from ras_deap.tune.space import get_space

    suggest = get_space("learning").suggest
    old = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    old.add_trial(optuna.trial.create_trial(
        params={"niche_children": "rank"},
        distributions={"niche_children": CategoricalDistribution(["equal", "rank"])}, value=1.0))
    trial = old.ask()
    suggest(trial, SearchConfig())
    assert list(trial.distributions["niche_children"].choices) == ["equal", "rank"]
    new = optuna.create_study(direction="maximize")
    trial = new.ask()
    suggest(trial, SearchConfig())
    assert list(trial.distributions["niche_children"].choices) == ["equal", "rank", "tournament"]


def _niche(rep_fitness, children):
    """One niche: a representative measured in generation 0 and children
    ``(fitness, generation, failure)``; every child is closest to it (k=1)."""
    rep, *kids = _population([rep_fitness, *(f for f, _, _ in children)])
    rep.generation = 0
    for kid, (_, generation, failure) in zip(kids, children, strict=True):
        kid.generation, kid.failure = generation, failure
    return rep, kids


@pytest.mark.parametrize(("max_age", "aged_out"), [(0, False), (1, True), (3, True), (4, False)])
def test_an_old_representative_gives_its_niche_to_its_fittest_child(max_age, aged_out):
    """A representative of generation 0 (its one lucky measurement, 1.9) meets
    children of generation 3 (1.5 and 1.6): with --niche-age N <= 3 the niche
    goes to the fitter child, 1.6; younger than N, or with 0, it stays."""
    rep, kids = _niche(1.9, [(1.5, 3, None), (1.6, 3, None)])
    (winner,) = sel_spectrum_niching([rep, *kids], 1, max_age=max_age)
    assert winner is (kids[1] if aged_out else rep)


def test_aging_never_hands_a_niche_to_a_failed_child_and_a_fitter_child_always_wins():
    rep, kids = _niche(1.9, [(0.0, 3, "BuildError: too big"), (float("nan"), 3, None)])
    assert sel_spectrum_niching([rep, *kids], 1, max_age=1) == [rep]
    rep, kids = _niche(1.0, [(1.5, 1, None)])
    assert sel_spectrum_niching([rep, *kids], 1, max_age=5) == [kids[0]]
    with pytest.raises(ValueError, match="max_age"):
        sel_spectrum_niching([rep, *kids], 1, max_age=-1)


@settings(max_examples=60, deadline=None)
@given(reps=st.lists(st.floats(0, 2, allow_subnormal=False), min_size=1, max_size=6),
       kids=st.lists(st.tuples(st.floats(0, 2, allow_subnormal=False), st.booleans()),
                     min_size=0, max_size=12),
       rep_generations=st.lists(st.integers(0, 4), min_size=6, max_size=6),
       max_age=st.integers(1, 5))
def test_aging_only_replaces_old_representatives_by_usable_children(reps, kids,
                                                                    rep_generations, max_age):
    """Against the paper's selection of the same individuals: aging returns
    references (DEAP's contract), changes only niches whose paper winner is
    an old representative, and gives those only to children that trained."""
    import random

    rng = random.Random(len(reps) * 31 + len(kids))
    pop = []
    for f in [*reps, *(f for f, _ in kids)]:
        ind = make_individual(random_model(rng))
        ind.fitness.values = (f,)
        pop.append(ind)
    for ind, generation in zip(pop[:len(reps)], rep_generations, strict=False):
        ind.generation = generation
    for ind, (_, failed) in zip(pop[len(reps):], kids, strict=True):
        ind.generation, ind.failure = 5, ("RuntimeError: diverged" if failed else None)
    paper = sel_spectrum_niching(pop, len(reps))
    aged = sel_spectrum_niching(pop, len(reps), max_age=max_age)
    assert len(aged) == len(reps) and all(any(a is p for p in pop) for a in aged)
    for j, (before, after) in enumerate(zip(paper, aged, strict=True)):
        if after is before:
            continue
        assert before is pop[j] and 5 - before.generation >= max_age
        assert after in pop[len(reps):] and after.failure is None


def test_aged_niches_survive_checkpoint_and_resume(tmp_path):
    """--niche-age through the loop: the representatives' generations (their
    age) are in the checkpoint, so a resumed search ages the same niches."""
    state = initial_state(13, 5)
    toolbox = build_toolbox(state, evaluate=noisy, niche_age=1)
    for _ in range(3):
        step(state, toolbox, children=2)
    paper_state = initial_state(13, 5)
    paper_toolbox = build_toolbox(paper_state, evaluate=noisy)
    for _ in range(3):
        step(paper_state, paper_toolbox, children=2)
    assert [i.genome.id for i in state.population] != [i.genome.id
                                                        for i in paper_state.population]
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, Checkpoint(config={}, state=state, history=[]))
    restored = load_checkpoint(path).state
    step(restored, build_toolbox(restored, evaluate=noisy, niche_age=1), children=2)
    step(state, toolbox, children=2)
    assert fingerprint(restored.population, restored.logbook) == fingerprint(
        state.population, state.logbook)


def test_niche_age_needs_one_fitness():
    from ras_deap.config import ConfigError

    with pytest.raises(ConfigError, match="niche_age"):
        SearchConfig(niche_age=2, objectives="accuracy,robustness")
    assert "niche_age" not in SearchConfig().to_dict()  # stored settings of old runs still match


# -- --initial chains: RAS starting where random search over chains already does well --------
@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_random_chain_is_a_seeded_chain_of_tpes_space(seed):
    import random

    from ras_deap.genome import ChainSpace, random_chain

    chain = random_chain(random.Random(seed))
    assert chain == random_chain(random.Random(seed))  # pure: the RNG state decides
    assert len(chain.nodes) == 1 and chain.edges == ()
    block = chain.nodes[0]
    assert block.edges == tuple((i, i + 1) for i in range(len(block.nodes) - 1))
    kinds = [layer.kind for layer in block.nodes]
    n_conv = kinds.count("conv")
    assert kinds == ["conv"] * n_conv + ["dense"] * (len(kinds) - n_conv)
    space = ChainSpace()
    assert space.min_conv <= n_conv <= space.max_conv
    assert len(kinds) - n_conv <= space.max_dense and kinds


def test_initial_chains_start_from_chains_and_the_paper_start_is_unchanged():
    paper = initial_state(3, 6)
    assert [i.genome.id for i in paper.offspring] == [
        i.genome.id for i in initial_state(3, 6, "random").offspring]
    chains = initial_state(3, 6, "chains")
    assert all(len(i.genome.nodes) == 1 for i in chains.offspring)
    assert [i.genome.id for i in chains.offspring] == [
        i.genome.id for i in initial_state(3, 6, "chains").offspring]
    assert [i.eval_seed for i in chains.offspring] == [i.eval_seed for i in paper.offspring]
    # the gene pool holds the chains' layers and blocks, so mutations reuse them
    assert {b.id for i in chains.offspring for b in i.genome.nodes} <= set(chains.pool.blocks)
    with pytest.raises(ValueError, match="initial='nope'"):
        initial_state(3, 6, "nope")
    with pytest.raises(ValueError, match="max_blocks"):
        initial_state(3, 6, "chains", max_blocks=2)


def test_initial_is_an_option_that_old_settings_read_as_random():
    config = SearchConfig(initial="chains")
    assert config.to_dict()["initial"] == "chains"
    assert SearchConfig.from_dict(config.to_dict()) == config
    assert "initial" not in SearchConfig().to_dict()  # stored settings of old runs still match
    assert SearchConfig.from_stored(SearchConfig().to_dict()).initial == "random"
    from ras_deap.config import ConfigError

    with pytest.raises(ConfigError, match="initial"):
        SearchConfig(initial="nope")


def test_a_chains_search_evolves_from_chains(tmp_path):
    """The search core hands --initial to generation 0, and the chains' children are
    RAS children (the 13 mutations act on them as on any model)."""
    from ras_deap.search import run_search

    config = SearchConfig(population=4, generations=2, children=1, initial="chains", seed=5,
                          workers=1, run_dir=str(tmp_path / "runs"), experiment="chains",
                          tracking_uri=f"sqlite:///{tmp_path}/m.db")
    seen = []

    class Fake:
        """A fitness of the genome alone; records what was evaluated."""

        def data(self) -> None:
            return None

        def __call__(self, individual):
            from types import SimpleNamespace

            seen.append((individual.generation, individual.genome))
            fitness = (int(individual.genome.id[2:10], 16) % 1000) / 1000
            return SimpleNamespace(fitness=fitness, failure=None,
                                   metrics={"fitness": fitness, "accuracy": fitness})

    result = run_search(config, progress=False, final_training=False, evaluator=Fake())
    assert result.evaluations == 4 + 2 * 4
    first = [m for g, m in seen if g == 0]
    assert len(first) == 4 and all(len(m.nodes) == 1 for m in first)
    assert {m.id for m in first} == {i.genome.id for i in initial_state(5, 4, "chains").offspring}
