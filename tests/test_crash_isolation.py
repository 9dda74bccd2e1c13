"""A native crash never ends a search (issue #25): an individual whose
evaluation kills its process is retried once in a fresh process, then gets
fitness 0 with the reason logged; the search finishes with every evaluation
logged exactly once."""

from __future__ import annotations

import pytest
from crashing_evaluator import CrashingEvaluator
from mlflow.tracking import MlflowClient

from ras_deap.config import SearchConfig
from ras_deap.evolution import initial_state
from ras_deap.parallel import SerialMap, make_map
from ras_deap.search import run_search

POPULATION, GENERATIONS, CHILDREN = 4, 2, 1
EXPECTED = POPULATION * (1 + GENERATIONS * CHILDREN)


def children_of(tmp_path, run_id):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/m.db")
    experiment = client.get_experiment_by_name("crash").experiment_id
    return client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run_id}'",
                              max_results=10_000)


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "isolate"), [(2, False), (1, True)],
                         ids=["2-workers", "1-worker-isolated"])
def test_an_aborting_individual_gets_zero_fitness_and_the_search_goes_on(
        tmp_path, workers, isolate):
    genomes = [ind.genome.id for ind in initial_state(0, POPULATION).offspring]
    killer, flaky = genomes[1], genomes[2]
    config = SearchConfig(population=POPULATION, generations=GENERATIONS, children=CHILDREN,
                          workers=workers, isolate=isolate, seed=0, experiment="crash",
                          run_dir=str(tmp_path / "runs"), tracking_uri=f"sqlite:///{tmp_path}/m.db")
    evaluator = CrashingEvaluator(always={killer}, once={flaky}, marker_dir=tmp_path)
    result = run_search(config, progress=False, final_training=False, evaluator=evaluator)

    assert result.evaluations == EXPECTED
    runs = children_of(tmp_path, result.run_id)
    keys = [r.data.tags.get("ras_deap.key") for r in runs]
    assert len(keys) == len(set(keys)) == EXPECTED  # nothing lost, nothing duplicated
    assert all(r.info.status != "RUNNING" for r in runs)
    by_genome = {}
    for r in runs:
        by_genome.setdefault(r.data.tags.get("genome_id"), []).append(r)
    dead = by_genome[killer][0]
    assert dead.data.tags["failure"] == "worker died: SIGABRT"
    assert dead.data.metrics["fitness"] == 0.0
    assert dead.info.status == "FAILED"
    survivor = by_genome[flaky][0]  # crashed once, then evaluated in a fresh process
    assert "failure" not in survivor.data.tags
    assert survivor.data.metrics["fitness"] > 1.0
    assert (tmp_path / f"{flaky}.tried").exists()


def test_one_worker_runs_in_process_unless_isolated():
    assert isinstance(make_map(1), SerialMap)
    isolated = make_map(1, isolate=True)
    try:
        assert not isinstance(isolated, SerialMap)
        assert isolated.description == "1 process"
    finally:
        isolated.close()
