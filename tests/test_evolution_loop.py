"""The DEAP individual and the RAS loop with a synthetic (spectrum) fitness."""

from __future__ import annotations

import copy
import itertools
import json
import os
import pickle
import random
import subprocess
import sys
import warnings
from pathlib import Path
from typing import ClassVar

import pytest
from deap import creator

from ras_deap.evolution import (
    SearchState,
    assign_result,
    build_toolbox,
    ea_spectrum_niching,
    ensure_creator,
    initial_state,
    make_individual,
)
from ras_deap.evolution.individual import Individual
from ras_deap.genome import Model, random_model, spectrum

ROOT = Path(__file__).resolve().parents[1]


def synthetic_fitness(individual) -> tuple[float]:
    """Rewards conv->conv paths and block connections, penalises dense layers."""
    s = spectrum(individual.genome)
    return (0.5 * s[9] + 0.3 * s[2] + 0.1 * s[5] - 0.2 * s[4],)


def python(code: str, stdin: bytes = b"") -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], input=stdin, env=env,
                          capture_output=True, check=False, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


# ------------------------------------------------------------ deap.creator
def test_creator_classes_are_created_once():
    fitness_cls, ind_cls = ensure_creator()
    assert ensure_creator() == (fitness_cls, ind_cls)
    assert creator.RasFitness is fitness_cls and creator.RasIndividual is ind_cls
    assert fitness_cls.weights == (1.0,) and issubclass(ind_cls, Individual)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = initial_state(0, 2)
        build_toolbox(state)
        build_toolbox(state, distance="normalized")
        ensure_creator()
        make_individual(state.offspring[0].genome)
    assert [str(w.message) for w in caught] == []


def test_importing_twice_and_two_toolboxes_do_not_warn_in_a_fresh_process():
    out = python(
        "import importlib, warnings\n"
        "import ras_deap.evolution as ev\n"
        "import ras_deap.evolution.individual as individual\n"
        "first = individual.ensure_creator()\n"
        "importlib.reload(individual)\n"  # re-runs the module-level ensure_creator()
        "importlib.reload(ev)\n"
        "ev.build_toolbox(ev.initial_state(0, 2))\n"
        "ev.build_toolbox(ev.initial_state(1, 2))\n"
        "assert individual.ensure_creator() == first\n"
        # control: re-creating a class does warn, so -W error would have caught it
        "from deap import base, creator\n"
        "try:\n"
        "    creator.create('RasFitness', base.Fitness, weights=(1.0,))\n"
        "except RuntimeWarning:\n"
        "    print('control ok')\n"
    )
    assert out.strip() == "control ok"


# ------------------------------------------------------------- individuals
def evaluated_individual():
    model = random_model(random.Random(5))
    ind = make_individual(model, generation=4, parent_id="M-parent", mutations=("add_layer",),
                          cluster=3, eval_seed=99)
    ind.fitness.values = (1.25,)
    ind.metrics = {"accuracy": 0.75, "robustness": 0.5}
    ind.failure = None
    return ind


def fields(ind) -> dict:
    return {"type": type(ind).__name__, "genome": ind.genome.to_json(),
            "fitness": list(ind.fitness.values), "valid": ind.fitness.valid,
            "generation": ind.generation, "parent_id": ind.parent_id,
            "mutations": list(ind.mutations), "cluster": ind.cluster,
            "eval_seed": ind.eval_seed, "metrics": ind.metrics, "failure": ind.failure}


def test_individuals_pickle_and_deepcopy_share_the_genome():
    ind = evaluated_individual()
    again = pickle.loads(pickle.dumps(ind))
    assert type(again) is creator.RasIndividual and fields(again) == fields(ind)
    blank = pickle.loads(pickle.dumps(make_individual(ind.genome)))
    assert not blank.fitness.valid and blank.metrics == {}
    for clone in (copy.deepcopy(ind), build_toolbox(initial_state(0, 1)).clone(ind)):
        assert clone is not ind and fields(clone) == fields(ind)
        assert clone.genome is ind.genome  # the immutable record is shared
        assert clone.fitness is not ind.fitness and clone.metrics is not ind.metrics
        clone.fitness.values = (0.0,)
        clone.metrics["accuracy"] = 0.0
        assert ind.fitness.values == (1.25,) and ind.metrics["accuracy"] == 0.75


def test_individuals_unpickle_in_a_process_that_never_imported_ras_deap():
    ind = evaluated_individual()
    out = python(
        "import json, pickle, sys\n"
        "assert not any(m.startswith('ras_deap') for m in sys.modules)\n"
        "ind = pickle.loads(sys.stdin.buffer.read())\n"
        "assert 'ras_deap.evolution.individual' in sys.modules\n"
        "print(json.dumps({'type': type(ind).__name__, 'genome': ind.genome.to_json(),\n"
        "    'fitness': list(ind.fitness.values), 'valid': ind.fitness.valid,\n"
        "    'generation': ind.generation, 'parent_id': ind.parent_id,\n"
        "    'mutations': list(ind.mutations), 'cluster': ind.cluster,\n"
        "    'eval_seed': ind.eval_seed, 'metrics': ind.metrics, 'failure': ind.failure}))\n",
        stdin=pickle.dumps(ind))
    assert json.loads(out) == fields(ind)


def test_assign_result_accepts_tuples_and_evaluator_results():
    class Result:
        fitness = 0.9
        metrics: ClassVar[dict[str, float]] = {"accuracy": 0.6, "robustness": 0.3}
        failure = None

    ind = make_individual(random_model(random.Random(0)))
    assign_result(ind, (0.4,))
    assert ind.fitness.values == (0.4,)
    assign_result(ind, Result())
    assert ind.fitness.values == (0.9,) and ind.metrics == Result.metrics


# --------------------------------------------------------------------- loop
def run(seed: int, ngen: int = 10, population: int = 8, **kwargs):
    state = initial_state(seed, population)
    toolbox = build_toolbox(state, evaluate=synthetic_fitness, **kwargs)
    history: list[dict] = []

    def on_generation(st: SearchState, record: dict) -> None:
        reps = [ind.fitness.values[0] for ind in st.population]
        history.append({"gen": record["gen"], "best": st.halloffame[0].fitness.values[0],
                        "reps": reps,
                        "pool_ok": (set(st.pool.blocks) ==
                                    {b.id for i in st.population for b in i.genome.blocks}
                                    and set(st.pool.layers) ==
                                    {x.id for i in st.population for x in i.genome.layers()})})

    pop, logbook = ea_spectrum_niching(state, toolbox, ngen, on_generation=on_generation)
    return state, pop, logbook, history


def test_ten_generations_with_a_synthetic_fitness():
    state, pop, logbook, history = run(seed=1)
    assert len(logbook) == 11 and logbook.select("gen") == list(range(11))
    assert logbook.select("nevals") == [8] + [16] * 10
    assert state.evaluations == 8 + 10 * 16
    assert pop is state.population and len(pop) == 8
    assert [h["gen"] for h in history] == list(range(11))
    best = [h["best"] for h in history]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(best)), best
    assert best[-1] > best[0]  # the synthetic objective is easy to improve
    # a representative is only ever replaced by a strictly fitter child, so
    # every niche's fitness is non-decreasing
    for before, after in itertools.pairwise(history):
        assert all(a >= b for a, b in zip(after["reps"], before["reps"], strict=True))
    assert all(h["pool_ok"] for h in history)  # pruned to what the clusters use
    assert best[-1] == max(ind.fitness.values[0] for ind in pop)
    assert logbook[-1]["max"] == pytest.approx(max(ind.fitness.values[0] for ind in pop))
    assert [ind.cluster for ind in pop] == list(range(8))
    for ind in pop:
        assert Model.from_json(ind.genome.to_json()) == ind.genome
        assert ind.fitness.values == synthetic_fitness(ind)
    assert {"spectrum_blocks", "spectrum_conv_to_conv", "layers", "blocks"} <= set(logbook[0])


def _breeding_orders(seed: int, ngen: int = 6, population: int = 8) -> list[list[int]]:
    """The clusters in the order ``toolbox.mutate`` saw them, per generation."""
    state = initial_state(seed, population)
    toolbox = build_toolbox(state, evaluate=synthetic_fitness)
    mutate = toolbox.mutate
    seen: dict[int, list[int]] = {}

    def recording(individual):
        seen.setdefault(state.generation, []).append(individual.cluster)
        return mutate(individual)

    toolbox.register("mutate", recording)
    ea_spectrum_niching(state, toolbox, ngen)
    orders = []
    for gen in range(1, ngen + 1):
        clusters = seen[gen]
        assert clusters[::2] == clusters[1::2]  # two children of a cluster in a row
        orders.append(clusters[::2])
    return orders


def test_clusters_breed_in_a_fresh_seeded_permutation_every_generation():
    orders = _breeding_orders(0)
    assert all(sorted(order) == list(range(8)) for order in orders)
    assert len({tuple(order) for order in orders}) == len(orders)  # fresh every generation
    assert orders != [list(range(8))] * len(orders)
    assert _breeding_orders(0) == orders  # deterministic for a seed
    assert _breeding_orders(1) != orders


def test_same_seed_same_search_different_seed_different_search():
    a = run(seed=2, ngen=6)
    b = run(seed=2, ngen=6)
    c = run(seed=3, ngen=6)
    assert list(a[2]) == list(b[2])
    assert a[0].halloffame[0].genome.id == b[0].halloffame[0].genome.id
    assert [i.genome.id for i in a[1]] == [i.genome.id for i in b[1]]
    assert list(a[2]) != list(c[2])
    assert [i.genome.id for i in a[1]] != [i.genome.id for i in c[1]]


def test_normalized_distance_and_more_children_run():
    _, pop, logbook, _ = run(seed=4, ngen=3, population=5, distance="normalized",
                             n_mutations=2)
    assert len(logbook) == 4 and len(pop) == 5
    state2 = initial_state(4, 5)
    toolbox = build_toolbox(state2, evaluate=synthetic_fitness)
    _, logbook2 = ea_spectrum_niching(state2, toolbox, 2, children=3)
    assert logbook2.select("nevals") == [5, 15, 15]


def test_the_evaluation_budget_is_spent_exactly():
    state = initial_state(6, 5)
    toolbox = build_toolbox(state, evaluate=synthetic_fitness)
    _, logbook = ea_spectrum_niching(state, toolbox, 50, budget=23)
    assert state.evaluations == 23
    assert logbook.select("nevals") == [5, 10, 8]
    assert len(state.population) == 5


def test_a_search_resumes_from_a_pickled_state_without_reevaluating():
    reference = run(seed=7, ngen=5, population=6)
    state = initial_state(7, 6)
    toolbox = build_toolbox(state, evaluate=synthetic_fitness)
    saved: list[bytes] = []

    def on_evaluated(st: SearchState, ind) -> None:
        # checkpoint in the middle of generation 3, after 4 of its 12 children
        if st.generation == 3 and sum(i.fitness.valid for i in st.offspring) == 4 and not saved:
            saved.append(pickle.dumps(st))

    ea_spectrum_niching(state, toolbox, 5, on_evaluated=on_evaluated)
    assert list(state.logbook) == list(reference[2])
    restored: SearchState = pickle.loads(saved[0])
    assert restored.phase == "evaluate" and restored.generation == 3
    calls: list[str] = []

    def counting_fitness(ind):
        calls.append(ind.genome.id)
        return synthetic_fitness(ind)

    toolbox = build_toolbox(restored, evaluate=counting_fitness)
    pop, logbook = ea_spectrum_niching(restored, toolbox, 5)
    assert len(calls) == (12 - 4) + 2 * 12  # the rest of gen 3, then gens 4 and 5
    assert list(logbook) == list(reference[2])
    assert [i.genome.id for i in pop] == [i.genome.id for i in reference[1]]
    assert restored.evaluations == reference[0].evaluations


def test_a_checkpoint_from_before_invariant_ids_is_refused_with_the_fix(tmp_path):
    import pickle

    from ras_deap.checkpoint import (
        CHECKPOINT_NAME,
        Checkpoint,
        CheckpointError,
        load_checkpoint,
        save_checkpoint,
    )

    state = initial_state(0, 2)
    save_checkpoint(tmp_path / CHECKPOINT_NAME, Checkpoint(config={}, state=state, history=[]))
    assert load_checkpoint(tmp_path).state.seed == 0
    old = tmp_path / "old"
    old.mkdir()  # formats 1 and 2 were pickles: refused unread
    (old / "checkpoint.pkl").write_bytes(pickle.dumps({"format": "ras_deap.checkpoint/1"}))
    with pytest.raises(CheckpointError, match=r"(?s)checkpoint\.pkl.*format 1.*start a new run"):
        load_checkpoint(old)
