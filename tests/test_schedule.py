"""Comparable fitness across the subset/full schedule: a representative whose
fitness was measured under another schedule than the current generation's is
re-evaluated before any child is compared with it (pure Python, no torch)."""

from __future__ import annotations

import pickle

import pytest

import ras_deap.evolution.niching as niching
from ras_deap.evolution import (
    SearchState,
    build_toolbox,
    ea_spectrum_niching,
    initial_state,
    make_individual,
    sel_spectrum_niching,
)
from ras_deap.evolution.measurement import CONSTANT_SCHEDULE, measured_schedule, schedule_of
from ras_deap.genome import random_model
from ras_deap.seeding import derive_seed

FULL_BONUS = 0.5


def gen2_full(generation: int) -> str:
    return "full" if generation == 2 else "subset"


def base_fitness(genome) -> float:
    """A fixed, genome-dependent subset fitness in [0, 0.4): below the full
    schedule's bonus, so a full-schedule fitness beats any subset one."""
    return 0.4 * derive_seed(genome.id) / 2**31


def make_evaluate(schedule=gen2_full, calls: list | None = None):
    """Like the torch evaluator: the schedule comes from the individual's
    generation, and training on the full set gives a higher accuracy."""

    def evaluate(ind) -> tuple[float]:
        full = schedule(ind.generation) == "full"
        if calls is not None:
            calls.append((ind.generation, ind.genome.id, ind.reevaluation_of, ind.eval_seed))
        return (base_fitness(ind.genome) + (FULL_BONUS if full else 0.0),)

    return evaluate


def record_comparisons(monkeypatch, state: SearchState) -> list[tuple]:
    """Every (generation, child, representative, child won) of selection."""
    seen: list[tuple] = []
    fitter = niching._fitter

    def recording(child, rep):
        won = fitter(child, rep)
        seen.append((state.generation, child, rep, won))
        return won

    monkeypatch.setattr(niching, "_fitter", recording)
    return seen


def search(seed=0, population=5, ngen=4, schedule=gen2_full, register=True, **kwargs):
    state = initial_state(seed, population)
    toolbox = build_toolbox(state, evaluate=make_evaluate(schedule),
                            schedule=schedule if register else None)
    pop, logbook = ea_spectrum_niching(state, toolbox, ngen, **kwargs)
    return state, pop, logbook


def outcome(state: SearchState):
    return ([i.genome.id for i in state.population],
            [i.fitness.values for i in state.population],
            list(state.logbook), state.evaluations,
            [i.genome.id for i in state.halloffame])


# -------------------------------------------------------------- the problem
def test_without_the_fix_a_full_schedule_child_beats_representatives_trivially(monkeypatch):
    # the evaluator trains generation 2 on the full set, but the loop does not know
    state = initial_state(0, 5)
    toolbox = build_toolbox(state, evaluate=make_evaluate())
    seen = record_comparisons(monkeypatch, state)
    ea_spectrum_niching(state, toolbox, 2)
    # generation-2 children (full set) against representatives measured on the subset
    mixed = [(child, rep, won) for gen, child, rep, won in seen
             if gen == 2 and rep.generation < 2]
    assert mixed
    # every such child wins, whatever its architecture is worth on the subset schedule
    assert all(won for _, _, won in mixed)
    assert any(base_fitness(child.genome) <= base_fitness(rep.genome)
               for child, rep, _ in mixed)


# ------------------------------------------------------------------ the fix
def test_every_comparison_is_between_fitnesses_of_the_same_schedule(monkeypatch):
    state = initial_state(0, 5)
    toolbox = build_toolbox(state, evaluate=make_evaluate(), schedule=gen2_full)
    seen = record_comparisons(monkeypatch, state)
    ea_spectrum_niching(state, toolbox, 4)
    assert {gen for gen, *_ in seen} == {1, 2, 3, 4}
    for gen, child, rep, won in seen:
        assert child.schedule == rep.schedule == gen2_full(gen)
        for ind in (child, rep):  # and each fitness really was measured under it
            bonus = FULL_BONUS if ind.schedule == "full" else 0.0
            assert ind.fitness.values[0] == pytest.approx(base_fitness(ind.genome) + bonus)
        assert won == (base_fitness(child.genome) > base_fitness(rep.genome))


def test_reevaluations_are_bred_counted_and_seeded(monkeypatch):
    calls: list[tuple] = []
    state = initial_state(1, 4)
    toolbox = build_toolbox(state, evaluate=make_evaluate(calls=calls), schedule=gen2_full)
    history: list[tuple] = []

    def on_generation(st: SearchState, record: dict) -> None:
        history.append((st.generation, [(i.genome.id, i.schedule, i.reevaluation_of,
                                         i.fitness.values[0]) for i in st.population]))

    logged: list = []
    _, logbook = ea_spectrum_niching(state, toolbox, 4, on_generation=on_generation,
                                     on_evaluated=lambda st, ind: logged.append(ind))
    # generation 2 (full) re-evaluates the 4 subset representatives, generation 3
    # (subset) the 4 full ones; generations 1 and 4 none
    assert logbook.select("nevals") == [4, 8, 8 + 4, 8 + 4, 8]
    assert state.evaluations == 4 + 4 * 8 + 2 * 4 == len(calls) == len(logged)
    reevals = [c for c in calls if c[2] is not None]
    assert [(gen, cluster) for gen, _, cluster, _ in reevals] == \
        [(g, c) for g in (2, 3) for c in range(4)]
    assert [seed for *_, seed in reevals] == \
        [derive_seed(1, g, "reeval", c) for g in (2, 3) for c in range(4)]
    for ind in logged:
        if ind.reevaluation_of is not None:
            assert ind.mutations == () and ind.cluster == ind.reevaluation_of
            assert ind.schedule == gen2_full(ind.generation)
    # a re-evaluated representative stays the representative unless a child beats it
    reps_after = dict(history)
    for gen in (2, 3):
        before = reps_after[gen - 1]
        for cluster, (gid, schedule, reeval, fitness) in enumerate(reps_after[gen]):
            assert schedule == gen2_full(gen)
            if gid == before[cluster][0]:
                assert reeval == cluster  # the clone replaced the stale representative
            else:
                assert reeval is None and fitness > base_fitness(
                    next(i.genome for i in logged if i.genome.id == before[cluster][0])) + (
                    FULL_BONUS if gen == 2 else 0.0)
    assert all(s == "subset" for _, s, _, _ in reps_after[4])


def test_a_constant_schedule_changes_nothing():
    def subset(generation: int) -> str:
        return "subset"

    plain = search(seed=3, ngen=5, schedule=subset, register=False)[0]
    constant = search(seed=3, ngen=5, schedule=subset)[0]
    assert outcome(plain) == outcome(constant)
    assert plain.evaluations == 5 + 5 * 10
    assert all(i.reevaluation_of is None for i in plain.population)
    assert {i.schedule for i in plain.population} == {CONSTANT_SCHEDULE}
    assert {i.schedule for i in constant.population} == {"subset"}


def test_the_budget_counts_reevaluations_and_spends_them_first():
    state, _, logbook = search(seed=2, population=4, ngen=10, budget=4 + 8 + 6)
    assert state.evaluations == 18
    # generation 2: 4 re-evaluations first, then only 2 of its 8 children
    assert logbook.select("nevals") == [4, 8, 6]
    assert all(i.schedule == "full" for i in state.population)


@pytest.mark.parametrize("after", [2, 6])  # within the re-evaluations, within the children
def test_resume_from_a_checkpoint_in_the_middle_of_a_schedule_change(after):
    reference = search(seed=4, population=4, ngen=4)[0]
    state = initial_state(4, 4)
    toolbox = build_toolbox(state, evaluate=make_evaluate(), schedule=gen2_full)
    saved: list[bytes] = []

    def on_evaluated(st: SearchState, ind) -> None:
        if st.generation == 2 and sum(i.fitness.valid for i in st.offspring) == after \
                and not saved:
            saved.append(pickle.dumps(st))

    ea_spectrum_niching(state, toolbox, 4, on_evaluated=on_evaluated)
    assert outcome(state) == outcome(reference)
    restored: SearchState = pickle.loads(saved[0])
    assert restored.phase == "evaluate" and restored.generation == 2
    assert sum(i.reevaluation_of is not None for i in restored.offspring) == 4
    calls: list[tuple] = []
    toolbox = build_toolbox(restored, evaluate=make_evaluate(calls=calls), schedule=gen2_full)
    ea_spectrum_niching(restored, toolbox, 4)
    assert len(calls) == (12 - after) + 12 + 8  # the rest of gen 2, then gens 3 and 4
    assert outcome(restored) == outcome(reference)


def test_schedule_of_and_measured_schedule_defaults():
    state = initial_state(0, 1)
    plain = build_toolbox(state)
    scheduled = build_toolbox(state, schedule=gen2_full)
    assert schedule_of(plain, 2) == CONSTANT_SCHEDULE
    assert [schedule_of(scheduled, g) for g in range(4)] == ["subset", "subset", "full",
                                                             "subset"]
    ind = make_individual(random_model(__import__("random").Random(0)), generation=2)
    assert ind.schedule is None and ind.reevaluation_of is None
    assert measured_schedule(scheduled, ind) == "full"  # from its generation
    ind.schedule = "subset"
    assert measured_schedule(scheduled, ind) == "subset"


def test_schedule_attributes_pickle():
    import random

    ind = make_individual(random_model(random.Random(1)), generation=3, schedule="full",
                          reevaluation_of=2)
    ind.fitness.values = (0.7,)
    again = pickle.loads(pickle.dumps(ind))
    assert (again.schedule, again.reevaluation_of, again.fitness.values) == ("full", 2, (0.7,))


def test_every_individual_has_every_attribute_the_loop_reads():
    """The loop reads attributes directly (no getattr defaults for old
    checkpoints): the constructor sets each one the checkpoint knows."""
    import random

    from ras_deap.checkpoint import _ATTRS

    ind = make_individual(random_model(random.Random(2)))
    assert set(vars(ind)) >= _ATTRS


def test_selection_refuses_to_compare_fitnesses_of_different_schedules():
    import random

    rng = random.Random(0)
    rep = make_individual(random_model(rng), schedule="subset")
    child = make_individual(random_model(rng), schedule="full")
    rep.fitness.values, child.fitness.values = (0.3,), (0.9,)
    with pytest.raises(ValueError, match="re-evaluate the representative"):
        sel_spectrum_niching([rep, child], 1)
    child.schedule = None  # an individual that records none is not checked
    assert sel_spectrum_niching([rep, child], 1) == [child]


# ------------------------------------------------------------ through run_search
class ScheduleFakeEvaluator:
    """Stands in for the torch evaluator: no data, no training; every
    ``full_every``-th generation (not 0) gets the full-schedule bonus."""

    def __init__(self, full_every: int) -> None:
        self.full_every = full_every

    def data(self) -> None:
        return None

    def __call__(self, ind) -> tuple[float]:
        g = int(ind.generation)
        full = g > 0 and g % self.full_every == 0
        return (base_fitness(ind.genome) + (FULL_BONUS if full else 0.0),)


def test_run_search_registers_the_schedule_and_logs_reevaluations(tmp_path):
    from mlflow import MlflowClient

    import ras_deap.search as search
    from ras_deap.config import PRESETS, SearchConfig

    config = SearchConfig(**{**PRESETS["smoke"], "population": 3, "children": 1,
                             "generations": 3, "full_every": 2,
                             "run_dir": str(tmp_path / "runs"), "run_name": "s",
                             "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
                             "experiment": "test"})
    result = search.run_search(config, progress=False, final_training=False,
                               evaluator=ScheduleFakeEvaluator(config.full_every))
    # generation 2 (full) re-evaluates the 3 subset representatives, generation 3 the 3 full
    assert result.evaluations == 3 + 3 * 3 + 2 * 3
    assert [r["nevals"] for r in result.history] == [3, 3, 6, 6]
    assert {i.schedule for i in result.population} == {"subset"}

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("test")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
                              max_results=1000)
    params = [r.data.params for r in runs]
    assert len(params) == result.evaluations
    assert len({p["key"] for p in params}) == len(params)
    reevals = [p for p in params if p["reevaluation"] == "true"]
    assert sorted((int(p["generation"]), int(p["cluster"])) for p in reevals) == \
        [(g, c) for g in (2, 3) for c in range(3)]
    assert all(p["mutation_ops"] == "none" for p in reevals)
    assert all(p["mutation_ops"] != "none" for p in params if p["reevaluation"] == "false"
               and p["generation"] != "0")
    assert {p["schedule"] for p in params if p["generation"] == "2"} == {"full"}
    assert {p["schedule"] for p in params if p["generation"] != "2"} == {"subset"}


def test_the_registered_schedule_is_the_evaluators():
    from ras_deap.config import SearchConfig
    from ras_deap.evaluation import TrainConfig
    from ras_deap.search import training_schedule as _training_schedule

    class WithConfig:
        train_config = TrainConfig(full_every=3)

    config = SearchConfig(full_every=10)
    assert [_training_schedule(config, WithConfig())(g) for g in range(7)] == \
        ["subset", "subset", "subset", "full", "subset", "subset", "full"]
    assert [_training_schedule(config, object())(g) for g in (0, 10, 11, 20)] == \
        ["subset", "full", "subset", "full"]
