"""Multi-objective RAS (issue #31): non-dominated sorting, the survival
selections (spectrum diversity and NSGA-II crowding) and their DEAP
contract, the loop in multi-objective mode and its exact resume, and the
options through the one schema."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ras_deap.checkpoint import Checkpoint, checkpoint_text, load_checkpoint
from ras_deap.config import OPTIONS, SearchConfig, check_resumable, stored_values
from ras_deap.constants import OBJECTIVE_NAMES
from ras_deap.errors import ConfigError
from ras_deap.evolution import (
    OBJECTIVES,
    build_toolbox,
    cached_spectrum,
    crowded_ranks,
    ea_spectrum_niching,
    initial_state,
    make_individual,
    nondominated_fronts,
    objective_values,
    objectives_from,
    pareto_front,
    sel_nsga2,
    sel_nsga_spectrum,
    sel_spectrum_niching,
    sel_tournament_crowded,
)
from ras_deap.genome import random_model

OBJS = ("accuracy", "robustness")
# a few architectures, so spectra repeat (the diversity rule has to choose)
MODELS = [random_model(random.Random(s)) for s in range(8)]


def member(acc: float, rob: float, model: int = 0, failed: bool = False):
    ind = make_individual(MODELS[model], schedule="constant")
    ind.metrics = {"accuracy": acc, "robustness": rob}
    ind.failure = "nan_loss: test" if failed else None
    ind.fitness.values = (0.0 if failed else acc + rob,)
    return ind


def values(ind) -> tuple[float, ...]:
    return objective_values(ind, objectives_from(OBJS))


def dominates(a, b) -> bool:
    va, vb = values(a), values(b)
    return all(x >= y for x, y in zip(va, vb, strict=True)) and va != vb


grid = st.integers(0, 10).map(lambda i: i / 10)  # coarse: ties and duplicates are common
members = st.lists(st.tuples(grid, grid, st.integers(0, len(MODELS) - 1),
                             st.integers(0, 9).map(lambda i: i == 0)),
                   min_size=1, max_size=60)


def population(spec):
    return [member(*s) for s in spec]


# ------------------------------------------------------------------ sorting
@settings(max_examples=150, deadline=None)
@given(members)
def test_nondominated_sorting_orders_by_dominance(spec):
    pop = population(spec)
    fronts = nondominated_fronts(pop, OBJS)
    flat = [id(i) for f in fronts for i in f]
    assert sorted(flat) == sorted(id(i) for i in pop)  # a partition of the input
    for k, front in enumerate(fronts):
        later = [i for f in fronts[k:] for i in f]
        assert not any(dominates(b, a) for a in front for b in later)
        if k + 1 < len(fronts):
            earlier = [i for f in fronts[:k + 1] for i in f]
            assert all(any(dominates(b, a) for b in earlier) for a in fronts[k + 1])
    assert pareto_front(pop, OBJS) == fronts[0]


def test_hypervolume_above_the_zero_reference():
    from ras_deap.evolution import hypervolume

    pop = [member(0.5, 0.5), member(0.9, 0.1), member(0.4, 0.4), member(1.0, 0.0),
           member(0.95, 0.9, failed=True)]
    assert hypervolume(pop, OBJS) == pytest.approx(0.5 * 0.5 + 0.4 * 0.1)
    assert hypervolume(pop[2:4], OBJS) == pytest.approx(0.16)
    assert hypervolume([], OBJS) == 0.0


def test_failed_individuals_score_zero_on_every_objective():
    failed = member(0.9, 0.8, failed=True)
    assert values(failed) == (0.0, 0.0)
    assert objective_values(failed, objectives_from("fitness,accuracy,robustness")) == (0, 0, 0)
    assert pareto_front([failed, member(0.1, 0.0)], OBJS)[0].metrics["accuracy"] == 0.1


def test_the_objectives_are_the_schema_names():
    assert tuple(OBJECTIVES) == OBJECTIVE_NAMES
    ind = make_individual(MODELS[1])
    ind.fitness.values = (1.0,)  # a fitness without the evaluator's metrics
    with pytest.raises(ValueError, match="no 'robustness' metric"):
        objective_values(ind, objectives_from(("fitness", "robustness")))


# ---------------------------------------------------------------- selection
def _check_references(pop, chosen, k):
    assert len(chosen) == k
    ids = {id(i) for i in pop}
    assert all(id(c) in ids for c in chosen)  # references to the input, as DEAP's sel*
    assert len({id(c) for c in chosen}) == k  # each at most once


@pytest.mark.parametrize("select", [sel_nsga_spectrum, sel_nsga2])
@settings(max_examples=60, deadline=None)
@given(spec=members, data=st.data())
def test_selection_returns_k_references_for_any_size(select, spec, data):
    pop = population(spec)
    k = data.draw(st.integers(1, len(pop)))
    chosen = select(pop, k, objectives=OBJS)
    _check_references(pop, chosen, k)
    first = pareto_front(pop, OBJS)
    if len(first) <= k:  # elitism: the first front survives whole when it fits
        assert {id(i) for i in first} <= {id(c) for c in chosen}


@pytest.mark.parametrize("select", [sel_nsga_spectrum, sel_nsga2])
@pytest.mark.parametrize("size", [1, 4, 25, 60])
def test_rass_population_sizes_from_parents_and_children(select, size):
    """RAS's shape: ``size`` representatives + 2 children each -> ``size``
    (25 is the paper's population, not a multiple of 4)."""
    rng = random.Random(size)
    pop = [member(rng.random(), rng.random(), rng.randrange(len(MODELS)))
           for _ in range(3 * size)]
    _check_references(pop, select(pop, size, objectives=OBJS), size)


@settings(max_examples=150, deadline=None)
@given(spec=members, data=st.data())
def test_spectrum_truncation_keeps_each_objectives_best_and_new_architectures(spec, data):
    """The spectrum variant's guarantees (ras_deap.evolution.multiobjective):
    (1) with k >= 2 the best value of every objective survives; (2) in the
    truncated front, only the objectives' ends may repeat a survivor's
    spectrum while a member with a new spectrum is left out."""
    pop = population(spec)
    k = data.draw(st.integers(1, len(pop)))
    chosen = sel_nsga_spectrum(pop, k, objectives=OBJS)
    if k >= len(OBJS):
        for j in range(len(OBJS)):
            assert max(values(c)[j] for c in chosen) == max(values(i)[j] for i in pop)
    kept = {id(c) for c in chosen}
    cut = next((f for f in nondominated_fronts(pop, OBJS)
                if not {id(i) for i in f} <= kept), None)
    if cut is None or not any(id(i) in kept for i in cut):
        return
    spectra = [cached_spectrum(c.genome) for c in chosen]
    left_new = any(id(u) not in kept and cached_spectrum(u.genome) not in spectra for u in cut)
    if left_new:
        repeats = [c for c in cut if id(c) in kept
                   and spectra.count(cached_spectrum(c.genome)) > 1]
        assert len(repeats) <= len(OBJS)


@settings(max_examples=150, deadline=None)
@given(models=st.lists(st.integers(0, 3), min_size=2, max_size=40), data=st.data())
def test_truncating_one_front_keeps_every_architecture_it_can(models, data):
    """All on one front (accuracy + robustness = 1): the k survivors hold
    min(k, number of distinct spectra) spectra, up to the two ends, which are
    kept whatever their architecture."""
    n = len(models)
    pop = [member(i / (n - 1), 1 - i / (n - 1), m) for i, m in enumerate(models)]
    k = data.draw(st.integers(2, n))
    chosen = sel_nsga_spectrum(pop, k, objectives=OBJS)
    assert pop[0] in chosen and pop[-1] in chosen  # the ends
    distinct = len({cached_spectrum(i.genome) for i in pop})
    kept = len({cached_spectrum(c.genome) for c in chosen})
    assert kept >= min(k, distinct) - 1  # the ends may share one architecture


def test_spectrum_truncation_prefers_a_new_architecture_to_a_copy():
    # one front of four: ends (1, 0) and (0, 1), and two middle members, one a
    # copy of an end's architecture, one new; k = 3 keeps the new one
    a, b = member(1.0, 0.0, 0), member(0.0, 1.0, 1)
    copy, new = member(0.6, 0.5, 0), member(0.5, 0.6, 2)
    assert sel_nsga_spectrum([a, b, copy, new], 3, objectives=OBJS) == [a, b, new]


# ------------------------------------------- NSGA-II's parents (compare's nsga2)
@settings(max_examples=60, deadline=None)
@given(spec=members, data=st.data())
def test_parent_tournament_returns_references_for_any_size(spec, data):
    """Binary tournament on (rank, crowding): references to the input for any
    population size and any number of parents (more than the population
    too, repeats allowed), where DEAP's selTournamentDCD needs a multiple of
    4; the same seed draws the same parents."""
    pop = population(spec)
    k = data.draw(st.integers(1, 3 * len(pop)))
    seed = data.draw(st.integers(0, 1000))
    chosen = sel_tournament_crowded(pop, k, objectives=OBJS, rng=random.Random(seed))
    assert len(chosen) == k
    ids = {id(i) for i in pop}
    assert all(id(c) in ids for c in chosen)
    again = sel_tournament_crowded(pop, k, objectives=OBJS, rng=random.Random(seed))
    assert [id(c) for c in again] == [id(c) for c in chosen]


@pytest.mark.parametrize("size", [1, 2, 5, 25, 26])
def test_parent_tournament_prefers_lower_rank_then_larger_crowding(size):
    """A member dominating every other wins every tournament it is drawn in;
    one dominated by every other never wins (its opponent is always another
    member) - at RAS's population of 25 and at sizes DEAP's DCD refuses."""
    rng = random.Random(size)
    pop = [member(0.2 + 0.6 * rng.random() * 0.9, 0.2 + 0.6 * rng.random() * 0.9,
                  rng.randrange(len(MODELS))) for _ in range(size)]
    best, worst = member(0.99, 0.99), member(0.01, 0.01)
    pop = [best, *pop, worst] if size > 1 else [best]
    chosen = sel_tournament_crowded(pop, 4000, objectives=OBJS, rng=random.Random(1))
    if size > 1:
        assert worst not in chosen
        n = len(pop)
        assert chosen.count(best) / 4000 == pytest.approx(2 / n, abs=0.03)  # drawn in 2/n
    else:
        assert chosen == [best] * 4000
    ranks = crowded_ranks(pop, OBJS)
    assert ranks[0] == (0, math.inf) and ranks[-1][0] == max(r for r, _ in ranks)


def test_crowded_ranks_match_deaps_crowding_distance():
    # one front of four on a line: the ends are infinite, the middle ones get
    # (next - previous) / (objectives x range) summed over both objectives
    a, b, c, d = member(0.0, 1.0), member(0.2, 0.8), member(0.6, 0.4), member(1.0, 0.0)
    e = member(0.1, 0.1)  # dominated: the second front, alone (infinite crowding)
    ranks = crowded_ranks([a, b, c, d, e], OBJS)
    assert [r for r, _ in ranks] == [0, 0, 0, 0, 1]
    assert ranks[0][1] == ranks[3][1] == ranks[4][1] == math.inf
    assert ranks[1][1] == pytest.approx(2 * (0.6 - 0.0) / 2)
    assert ranks[2][1] == pytest.approx(2 * (1.0 - 0.2) / 2)
    # every unordered pair is drawn with probability 1/10: b wins only against e (rank),
    # c against b (crowding) and e, a against b, c, e and half of its tie with d
    pop = [a, b, c, d, e]
    chosen = sel_tournament_crowded(pop, 20000, objectives=OBJS, rng=random.Random(0))
    share = [chosen.count(i) / 20000 for i in pop]
    assert share == pytest.approx([0.35, 0.1, 0.2, 0.35, 0.0], abs=0.02)


def test_parent_tournament_refuses_bad_input():
    with pytest.raises(ValueError, match="k=0"):
        sel_tournament_crowded([member(0.5, 0.5)], 0, objectives=OBJS, rng=random.Random(0))
    with pytest.raises(ValueError, match="empty"):
        sel_tournament_crowded([], 1, objectives=OBJS, rng=random.Random(0))


def test_points_hypervolume_with_a_reference_point():
    from ras_deap.evolution import points_hypervolume

    pts = [(0.5, 0.5), (0.9, 0.1), (0.4, 0.4)]
    assert points_hypervolume(pts) == pytest.approx(0.5 * 0.5 + 0.4 * 0.1)
    # above (0.2, 0.2): (0.9, 0.1) is below the reference's robustness and adds nothing
    assert points_hypervolume(pts, (0.2, 0.2)) == pytest.approx(0.3 * 0.3)
    assert points_hypervolume([(1.0, 1.0)], (0.5, 0.0)) == pytest.approx(0.5)
    assert points_hypervolume([], (0.1, 0.1)) == 0.0
    with pytest.raises(ValueError, match="2 objectives"):
        points_hypervolume([(0.5, 0.5, 0.5)], (0.0, 0.0))


def test_selections_refuse_mixed_schedules_and_unevaluated_individuals():
    a, b = member(0.5, 0.5), member(0.4, 0.6)
    b.schedule = "full"
    for select in (sel_nsga_spectrum, sel_nsga2):
        with pytest.raises(ValueError, match="schedules"):
            select([a, b], 1, objectives=OBJS)
    with pytest.raises(ValueError, match="no fitness"):
        sel_nsga2([make_individual(MODELS[0]), a], 1, objectives=OBJS)
    with pytest.raises(ValueError, match="k=3"):
        sel_nsga_spectrum([a], 3, objectives=OBJS)


# ------------------------------------------------------------------ the loop
@dataclass
class Result:
    fitness: float
    metrics: dict = field(default_factory=dict)
    failure: str | None = None


def fake_evaluate(ind) -> Result:
    """Accuracy and robustness from the genome id and the evaluation seed
    (a trade-off: robustness at most 1 - accuracy); one in 13 fails."""
    h = int(ind.genome.id[2:10], 16) + (ind.eval_seed or 0) % 101
    acc = (h % 997) / 997
    rob = (h // 997 % 991) / 991 * (1 - acc)
    if h % 13 == 0:
        return Result(0.0, {"accuracy": 0.0, "robustness": 0.0}, "nan_loss: fake")
    return Result(acc + rob, {"accuracy": acc, "robustness": rob, "fitness": acc + rob})


def test_the_default_toolbox_keeps_the_papers_niching():
    state = initial_state(0, 3)
    assert build_toolbox(state).select.func is sel_spectrum_niching
    assert build_toolbox(state, objectives=("fitness",)).select.func is sel_spectrum_niching
    assert build_toolbox(state, objectives=OBJS).select.func is sel_nsga2
    assert build_toolbox(state, objectives="accuracy,robustness",
                         mo_selection="spectrum").select.func is sel_nsga_spectrum


def _run(state, mo_selection, **kw):
    toolbox = build_toolbox(state, evaluate=fake_evaluate, objectives=OBJS,
                            mo_selection=mo_selection)
    return ea_spectrum_niching(state, toolbox, 4, children=2, **kw)


@pytest.mark.parametrize("mo_selection,niche_children", [
    ("spectrum", "equal"), ("crowding", "equal"), ("crowding", "crowded")])
def test_a_multiobjective_search_keeps_its_size_and_each_objectives_best(mo_selection,
                                                                         niche_children):
    seen = []
    state = initial_state(5, 25)
    pop, log = _run(state, mo_selection, niche_children=niche_children,
                    on_evaluated=lambda st, ind: seen.append(ind))
    assert len(pop) == 25 and len(log) == 5
    assert state.evaluations == len(seen) == 25 + 4 * 50
    assert [ind.cluster for ind in pop] == list(range(25))
    # (mu+lambda) keeps the ends of the first front: the best accuracy and the
    # best robustness ever measured are in the final population
    for j in range(2):
        assert max(values(i)[j] for i in pop) == max(values(i)[j] for i in seen)
    assert not any(i.failure for i in pareto_front(pop, OBJS))


@pytest.mark.parametrize("stop_after,selection,niche_children", [
    (3, "spectrum", "equal"), (26, "spectrum", "equal"), (60, "spectrum", "equal"),
    (111, "spectrum", "equal"), (26, "crowding", "crowded"), (111, "crowding", "crowded")])
def test_a_multiobjective_search_resumes_to_the_same_front(tmp_path, stop_after, selection,
                                                           niche_children):
    """Killed after any evaluation, a search restored from its checkpoint
    ends with the same population and front as the uninterrupted one: the
    objectives are read from metrics the checkpoint stores exactly, and the
    crowded tournaments draw from the checkpointed RNG."""
    state = initial_state(11, 25)
    pop, _ = _run(state, selection, niche_children=niche_children)
    expected = [(i.genome.id, i.fitness.values, values(i)) for i in pop]
    front = [i.genome.id for i in pareto_front(pop, OBJS)]

    snaps = []
    state = initial_state(11, 25)

    def on_evaluated(st, ind):
        snaps.append(checkpoint_text(Checkpoint(config={}, state=st, history=[])))
        if len(snaps) == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(state, selection, niche_children=niche_children, on_evaluated=on_evaluated)
    path = tmp_path / "checkpoint.json"
    path.write_text(snaps[-1])
    restored = load_checkpoint(path).state
    pop2, _ = _run(restored, selection, niche_children=niche_children)
    assert [(i.genome.id, i.fitness.values, values(i)) for i in pop2] == expected
    assert [i.genome.id for i in pareto_front(pop2, OBJS)] == front


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), children=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_crowded_shares_keep_the_total_and_favour_the_first_front(n, children, seed):
    """--niche-children crowded: one child per binary crowded tournament, so
    the total is kept, the same RNG gives the same shares, and a
    representative every other dominates (rank last, alone) never wins a
    tournament it could lose: it breeds only when the population is itself."""
    from ras_deap.evolution.measurement import niche_shares

    rng = random.Random(seed)
    pop = [member(rng.uniform(0.5, 1), rng.uniform(0.5, 1)) for _ in range(n - 1)]
    pop.append(member(0.1, 0.1))  # dominated by every other member
    shares = niche_shares(pop, children, "crowded", random.Random(seed), OBJS)
    assert sum(shares) == children * n
    assert shares == niche_shares(pop, children, "crowded", random.Random(seed), OBJS)
    assert shares[-1] == (children if n == 1 else 0)
    with pytest.raises(ValueError, match="two or more objectives"):
        niche_shares(pop, children, "crowded", random.Random(seed), ("fitness",))


# ---------------------------------------------------------------- the options
def test_objectives_options_are_checked_and_written_canonically():
    assert SearchConfig(objectives="accuracy, robustness").objectives == "accuracy,robustness"
    for bad, message in [({"objectives": "acc"}, "unknown objective 'acc'"),
                         ({"objectives": "accuracy"}, "single objective must be fitness"),
                         ({"objectives": "accuracy,accuracy"}, "named twice"),
                         ({"mo_selection": "spectrum"}, "mo_selection='spectrum' with "),
                         ({"mo_selection": "pareto"}, "mo_selection='pareto'"),
                         ({"front_remeasure": 3}, "front_remeasure=3 with objectives=fitness"),
                         ({"objectives": "accuracy,robustness", "front_remeasure": -1},
                          "front_remeasure=-1"),
                         ({"objectives": "accuracy,robustness", "remeasure_every": 2},
                          "remeasure_every=2"),
                         ({"objectives": "accuracy,robustness", "niche_children": "rank"},
                          "niche_children='rank'"),
                         ({"niche_children": "crowded"}, "niche_children='crowded' with "
                                                         "objectives=fitness")]:
        with pytest.raises(ConfigError, match=message):
            SearchConfig(**bad)


def test_default_settings_serialise_as_before_and_old_ones_resume():
    data = SearchConfig().to_dict()
    for name in ("objectives", "mo_selection", "front_remeasure"):
        assert name not in data and OPTIONS[name].omit_default
    check_resumable(data, SearchConfig().to_dict())  # stored before the options existed
    mo = SearchConfig(objectives="accuracy,robustness").to_dict()
    assert mo["objectives"] == "accuracy,robustness" and mo["mo_selection"] == "crowding"
    with pytest.raises(ConfigError, match="objectives"):
        check_resumable(data, mo)
    assert SearchConfig.from_stored(mo).objectives == "accuracy,robustness"


@settings(max_examples=60, deadline=None)
@given(objectives=st.sampled_from(["fitness", "accuracy,robustness", "fitness,robustness",
                                   "accuracy,robustness,fitness"]),
       mo_selection=st.sampled_from(["spectrum", "crowding", None]),
       front_remeasure=st.sampled_from([0, 2]), niche_age=st.sampled_from([0, 3]))
def test_stored_settings_read_back_as_the_config_that_wrote_them(objectives, mo_selection,
                                                                  front_remeasure, niche_age):
    """from_stored(to_dict(c)) == c for every config, whichever options its
    dict leaves out; a single-objective dict never holds the options only a
    multi-objective search reads."""
    values = {"objectives": objectives}
    if "," not in objectives:
        values["niche_age"] = niche_age  # single objective only
    else:
        values["front_remeasure"] = front_remeasure
        if mo_selection is not None:
            values["mo_selection"] = mo_selection
    config = SearchConfig(**values)
    data = json.loads(json.dumps(config.to_dict()))
    assert SearchConfig.from_stored(data) == config
    check_resumable(data, stored_values(config.to_dict()))
    if "," not in objectives:
        assert "mo_selection" not in data and "front_remeasure" not in data


def test_settings_stored_before_crowding_became_the_default_keep_spectrum():
    """Until #31's measurement a multi-objective search truncated by spectrum
    and stored no mo_selection: such a run resumes, reads and compares as
    spectrum, and a default (crowding) search is refused on it by name."""
    old = {"objectives": "accuracy,robustness", "seed": 3}  # as 1.x wrote it
    assert OPTIONS["mo_selection"].default == "crowding"
    assert OPTIONS["mo_selection"].stored_default == "spectrum"
    assert SearchConfig.from_stored(old).mo_selection == "spectrum"
    assert SearchConfig.from_dict(old).mo_selection == "crowding"  # a user's settings
    now = SearchConfig(objectives="accuracy,robustness", seed=3)
    with pytest.raises(ConfigError, match="mo_selection='spectrum'"):
        check_resumable(old, stored_values(now.to_dict()))
    with pytest.raises(ConfigError, match="mo_selection='spectrum'"):
        check_resumable(old, {"mo_selection": "crowding"})  # the flag given on --resume
    check_resumable(old, stored_values(now.replace(mo_selection="spectrum").to_dict()))
    # a comparison's manifest, and the pairing of comparison folders
    from ras_deap.compare.manifest import _differences, _upgraded
    from ras_deap.compare.pareto import cell_method

    stored = {"budget": 5, "search": old}
    current = {"budget": 5, "search": now.to_dict()}
    assert _differences(_upgraded(stored, current), current) == [
        "search.mo_selection: 'spectrum' then, 'crowding' now"]
    spectrum = {"budget": 5, "search": now.replace(mo_selection="spectrum").to_dict()}
    assert not _differences(_upgraded(stored, spectrum), spectrum)
    assert cell_method("ras_mo", stored) == "ras_mo"
    assert cell_method("ras_mo", current) == "ras_mo_crowding"


def test_a_study_stored_before_the_switch_continues_only_with_spectrum(tmp_path):
    """Tune's stored base config: a multi-objective study made before the
    switch (no mo_selection) is refused with crowding, naming it, and
    continues with spectrum; a single-objective one continues as before."""
    from ras_deap.errors import TuneError
    from ras_deap.tune.storage import open_study

    url = f"sqlite:///{tmp_path}/s.db"
    mo = SearchConfig(objectives="accuracy,robustness")
    old = {k: v for k, v in mo.to_dict().items() if k != "mo_selection"}
    open_study("mo", url, attrs={"space": "learning", "config": old})
    with pytest.raises(TuneError, match="mo_selection='spectrum' \\(now 'crowding'\\)"):
        open_study("mo", url, attrs={"space": "learning", "config": mo.to_dict()})
    spectrum = mo.replace(mo_selection="spectrum").to_dict()
    open_study("mo", url, attrs={"space": "learning", "config": spectrum})
    open_study("so", url, attrs={"space": "learning", "config": SearchConfig().to_dict()})
    open_study("so", url, attrs={"space": "learning", "config": SearchConfig().to_dict()})


def test_a_single_objective_comparison_keeps_its_ras_mo_cells_truncation(tmp_path):
    """A single-objective comparison's ras_mo cells take accuracy,robustness
    and the default truncation, which its settings now record; one stored
    before the switch, whose ras_mo cells truncated by spectrum, is refused
    in one line naming the way out, while one without ras_mo cells (Table 2)
    resumes as before."""
    from ras_deap.compare import cli as compare_cli
    from ras_deap.compare.manifest import CompareError, open_manifest, stored_result
    from ras_deap.compare.pareto import cell_method

    def config(out, *extra):
        argv = ["--max-evaluations", "30", "--seeds", "1", "--methods", "nsga2,ras_mo",
                "--out", str(out), *extra]
        return compare_cli.config_from_args(compare_cli.build_parser().parse_args(argv))

    new = config(tmp_path / "new")
    assert new.settings()["search"]["mo_selection"] == "crowding"
    assert cell_method("ras_mo", new.settings()) == "ras_mo_crowding"
    old_settings = new.settings()
    del old_settings["search"]["mo_selection"]  # as a comparison before the switch stored it
    assert cell_method("ras_mo", old_settings) == "ras_mo"
    for name, cells in [("with", ["nsga2-seed0", "ras_mo-seed0"]), ("without", ["random-seed0"])]:
        out = tmp_path / name
        for cell in cells:
            (out / "cells" / cell).mkdir(parents=True)
        (out / "comparison.json").write_text(json.dumps({
            "format": "ras_deap.compare/2", "settings": json.loads(json.dumps(old_settings)),
            "sessions": []}))
    with pytest.raises(CompareError, match=r"truncated their fronts by spectrum.*another --out"):
        open_manifest(config(tmp_path / "with"))
    assert open_manifest(config(tmp_path / "without"))[1]
    # a finished cell's result: a ras_mo one made before is not taken for a new one
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"method": "ras_mo", "settings": old_settings}))
    assert stored_result(result, new) is None
    result.write_text(json.dumps({"method": "nsga2", "settings": old_settings}))
    assert stored_result(result, new) is not None


def test_objectives_reach_run_tune_and_compare_through_the_schema():
    from ras_deap.compare import cli as compare_cli
    from ras_deap.run import build_parser, config_from_args
    from ras_deap.tune import cli as tune_cli

    flags = ["--objectives", "accuracy,robustness", "--mo-selection", "spectrum"]
    run = config_from_args(build_parser().parse_args(flags))
    assert (run.objectives, run.mo_selection) == ("accuracy,robustness", "spectrum")
    assert config_from_args(build_parser().parse_args(flags[:2])).mo_selection == "crowding"
    cmp = compare_cli.config_from_args(compare_cli.build_parser().parse_args(flags))
    assert (cmp.search.objectives, cmp.search.mo_selection) == ("accuracy,robustness",
                                                                "spectrum")
    settings = tune_cli.settings_from_args(tune_cli.build_parser().parse_args(flags))
    assert settings.overrides["objectives"] == "accuracy,robustness"
    assert settings.overrides["mo_selection"] == "spectrum"
    for module in (build_parser(), compare_cli.build_parser(), tune_cli.build_parser()):
        text = " ".join(module.format_help().split())
        assert "--objectives NAMES" in text and "--mo-selection" in text


@pytest.mark.parametrize("module", ["ras_deap.run", "ras_deap.compare.cli", "ras_deap.tune.cli"])
def test_a_bad_objective_is_one_line_and_exit_2(module, capsys, tmp_path):
    import importlib

    main = importlib.import_module(module).main
    args = ["--objectives", "accuracy,speed"]
    if module == "ras_deap.run":
        args += ["--run-dir", str(tmp_path / "runs")]
    elif module == "ras_deap.compare.cli":
        args += ["--out", str(tmp_path / "cmp")]
    else:
        args += ["--storage", f"sqlite:///{tmp_path}/s.db", "--out-dir", str(tmp_path / "t"),
                 "--no-mlflow"]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "objectives='accuracy,speed'" in lines[0], err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cmp").exists()


# ------------------------------------------------------- a real search, resumed
@pytest.mark.slow
def test_a_real_multiobjective_search_resumes_to_the_same_front(tmp_path):
    """A tiny real search (preset smoke, accuracy and robustness), stopped
    after its 7th trained network and resumed, ends with the front of the
    uninterrupted search; front.json and front.png are in the run folder and
    on the search run, and exactly the front's child runs are tagged."""
    import json

    from mlflow import MlflowClient

    from ras_deap.config import PRESETS
    from ras_deap.search import run_search
    from ras_deap.tracking import FRONT_TAG, PARENT_TAG

    def config(name):
        return SearchConfig(**{**PRESETS["smoke"], "max_epochs": 2, "subset_size": 200,
                               "objectives": "accuracy,robustness", "front_remeasure": 1,
                               "run_dir": str(tmp_path / "runs"), "run_name": name,
                               "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
                               "experiment": "mo"})

    seen = []

    def stop(ind):
        seen.append(ind)
        if len(seen) == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(config("stopped"), progress=False, final_training=False, on_individual=stop)
    resumed = run_search(config("stopped"), resume=tmp_path / "runs" / "stopped",
                         progress=False, final_training=False)
    straight = run_search(config("straight"), progress=False, final_training=False)
    assert resumed.evaluations == straight.evaluations == 4 + 2 * 4

    def front(result):
        return [(m["genome_id"], m["objectives"]) for m in result.front["front"]]

    assert front(resumed) == front(straight) and front(straight)
    written = json.loads((resumed.run_dir / "front.json").read_text())
    assert [(m["genome_id"], m["objectives"]) for m in written["front"]] == front(resumed)
    assert (resumed.run_dir / "front.png").stat().st_size > 0
    assert written["objectives"] == ["accuracy", "robustness"]
    assert 0 < written["hypervolume"] == resumed.summary["front_hypervolume"] <= 1
    # per generation: the front's size and hypervolume in the history and on the run
    assert [h["front_size"] for h in resumed.history] == \
        [h["front_size"] for h in straight.history]
    assert resumed.history[-1]["front_hypervolume"] == written["hypervolume"]
    # re-measured once on a fresh seed: other numbers, of the same members
    assert written["remeasure_repeats"] == 1
    again = [m["remeasured"] for m in written["front"]]
    assert all(r["trainings"] == 1 and len(r["seeds"]) == 1 for r in again)
    assert [r["objectives"] for r in again] != [m["objectives"] for m in written["front"]]
    assert resumed.summary["front_remeasured_hypervolume"] == written["remeasured_hypervolume"]
    assert [m["remeasured"] for m in straight.front["front"]] == again  # deterministic seeds

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("mo").experiment_id
    logged = client.get_metric_history(resumed.run_id, "front/hypervolume")
    assert sorted(m.step for m in logged) == [0, 1, 2]
    artifacts = {a.path for a in client.list_artifacts(resumed.run_id, "front")}
    assert artifacts == {"front/front.json", "front/front.png", "front/genomes"}
    genomes = {a.path for a in client.list_artifacts(resumed.run_id, "front/genomes")}
    assert genomes == {f"front/genomes/{m['genome_id']}.json" for m in written["front"]}
    children = client.search_runs([exp], f"tags.`{PARENT_TAG}` = '{resumed.run_id}'",
                                  max_results=1000)
    tagged = {r.info.run_id for r in children if r.data.tags.get(FRONT_TAG) == "true"}
    assert tagged == {m["run_id"] for m in written["front"]}
    assert len(tagged) == len(written["front"])
    # assess takes a front member as easily as the best (no final training here: no best)
    from ras_deap.assess.target import resolve_target

    first = written["front"][0]
    target = resolve_target(str(resumed.run_dir), member=first["genome_id"])
    assert target.genome.id == first["genome_id"] and target.weights is None
    assert target.run_id == first["run_id"] and target.config.objectives == "accuracy,robustness"
    assert target.out_dir == resumed.run_dir / "front" / first["genome_id"]
    # export re-trains the member once and keeps its weights for assess
    from ras_deap.export.cli import main as export_main

    out = tmp_path / "export"
    assert export_main([str(resumed.run_dir), "--member", first["genome_id"], "--out", str(out),
                        "--no-onnx", "--no-test-split"]) == 0
    from ras_deap.genome import Model

    assert Model.from_json((out / "genome.json").read_text()).id == first["genome_id"]
    kept = resolve_target(str(resumed.run_dir), member=first["genome_id"]).weights
    assert kept == target.out_dir / "best_model.pt" and kept.is_file()
    assert (out / "weights.pt").is_file() and (out / "model.py").is_file()
    # a resumed run that had ended returns the same front without training
    again = run_search(config("stopped"), resume=tmp_path / "runs" / "stopped",
                       progress=False, final_training=False)
    assert again.already_finished and front(again) == front(resumed)


def test_assess_refuses_a_member_not_in_the_front(tmp_path):
    import json

    from ras_deap.assess.target import TargetError, resolve_target

    folder = tmp_path / "run"
    (folder / "front").mkdir(parents=True)
    search = SearchConfig(objectives="accuracy,robustness").to_dict()
    (folder / "config.json").write_text(json.dumps({"search": search}))
    with pytest.raises(TargetError, match=r"no front\.json"):
        resolve_target(str(folder), member="M-0")
    model = MODELS[2]
    (folder / "front.json").write_text(json.dumps(
        {"front": [{"genome_id": model.id, "run_id": None}]}))
    with pytest.raises(TargetError, match=f"not in the front .*{model.id}"):
        resolve_target(str(folder), member="M-0")
    with pytest.raises(TargetError, match="is missing"):
        resolve_target(str(folder), member=model.id)
    (folder / "front" / f"{model.id}.json").write_text(model.to_json())
    assert resolve_target(str(folder), member=model.id).genome == model
    with pytest.raises(TargetError, match="give the run folder"):
        resolve_target("0" * 32, member=model.id)
