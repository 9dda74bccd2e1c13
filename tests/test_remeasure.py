"""Tests of ras_deap.evaluation.remeasure: the selected architecture's fitness
re-measured on fresh evaluation seeds (mean, sd and 95 % CI over trainings).
Fast: a fake evaluator returns canned results, nothing is trained."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from types import SimpleNamespace

import pytest

from ras_deap.evaluation import (
    EvaluationResult,
    Remeasurement,
    mean_sd_ci95,
    remeasure,
    remeasure_seeds,
)
from ras_deap.genome.random_init import random_model
from ras_deap.seeding import derive_seed as evolution_seed
from ras_deap.seeding import evaluation_seed as derive_seed


class CannedEvaluator:
    """``evaluate`` returns the next canned (fitness, failure) pair and
    records the seeds and generations it was asked for."""

    def __init__(self, seed: int, canned: list[tuple[float, str | None]]) -> None:
        self.seed = seed
        self.canned = list(canned)
        self.calls: list[dict] = []

    def evaluate(self, model, generation, *, seed=None, with_test=False):
        self.calls.append({"genome": model.id, "generation": generation, "seed": seed,
                           "with_test": with_test})
        fitness, failure = self.canned[len(self.calls) - 1]
        metrics = {"accuracy": fitness * 0.6, "robustness": fitness * 0.4, "fitness": fitness}
        return EvaluationResult(fitness=fitness, metrics=metrics, failure=failure,
                                genome_id=model.id, seed=seed or 0)


@pytest.fixture
def model():
    return random_model(random.Random(3))


def test_mean_sd_and_95_ci_match_hand_computed_values(model):
    fake = CannedEvaluator(7, [(1.50, None), (1.56, None), (1.62, None)])
    rm = remeasure(fake, model, repeats=3)
    assert rm.fitness == (1.50, 1.56, 1.62)
    assert rm.mean == pytest.approx(1.56)
    assert rm.sd == pytest.approx(0.06)  # sample sd: sqrt((0.06² + 0 + 0.06²) / 2)
    # t_{0.975, 2} = 4.302653: 4.302653 * 0.06 / sqrt(3) = 0.149048
    assert rm.ci95 == pytest.approx(0.149048, abs=1e-6)
    assert rm.accuracy == pytest.approx((0.90, 0.936, 0.972))
    assert rm.accuracy_mean == pytest.approx(0.936)
    assert rm.robustness_mean == pytest.approx(0.624)
    assert rm.repeats == 3 and rm.failures == 0 and rm.failure_reasons == ()
    assert rm.describe() == "1.5600 ± 0.0600 (95% CI ±0.1490) over 3 trainings"
    assert all(not c["with_test"] for c in fake.calls)  # no test set in a re-measurement


def test_default_is_three_trainings_and_result_is_frozen(model):
    fake = CannedEvaluator(0, [(1.0, None)] * 5)
    rm = remeasure(fake, model)
    assert rm.repeats == 3 == len(fake.calls)
    assert isinstance(rm, Remeasurement)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rm.mean = 2.0  # type: ignore[misc]
    assert rm.sd == 0.0 and rm.ci95 == 0.0  # identical trainings: no spread


def test_seeds_are_fresh_distinct_and_deterministic(model):
    fake = CannedEvaluator(11, [(1.0, None)] * 5)
    rm = remeasure(fake, model, repeats=5, generation=4)
    seeds = [c["seed"] for c in fake.calls]
    assert list(rm.seeds) == seeds and len(set(seeds)) == 5
    assert {c["generation"] for c in fake.calls} == {4}
    assert {c["genome"] for c in fake.calls} == {model.id}
    # deterministic: the same evaluator seed, genome, generation and salt give the same seeds
    again = CannedEvaluator(11, [(1.0, None)] * 5)
    assert remeasure(again, model, repeats=5, generation=4).seeds == rm.seeds
    assert remeasure_seeds(11, model.id, 4, 5) == rm.seeds
    # fresh: not the seed the evaluator gives the genome in a search, nor any seed the
    # evolution or the comparison's budgeted baselines derive
    search_seeds = {derive_seed(11, model.id, g) for g in range(50)}
    search_seeds |= {evolution_seed(11, g, i) for g in range(50) for i in range(100)}
    search_seeds |= {evolution_seed(11, m, i) for m in ("random", "tpe", "mu_plus_lambda", "ras")
                     for i in range(200)}
    assert not set(rm.seeds) & search_seeds
    # and they change with everything they are derived from
    others = [remeasure_seeds(12, model.id, 4, 5), remeasure_seeds(11, "M-other", 4, 5),
              remeasure_seeds(11, model.id, 5, 5), remeasure_seeds(11, model.id, 4, 5, "tune")]
    for other in others:
        assert not set(other) & set(rm.seeds)
    # a longer re-measurement extends a shorter one (the first repeats are the same trainings)
    assert remeasure_seeds(11, model.id, 4, 3) == rm.seeds[:3]


def test_failed_trainings_count_as_zero_and_are_reported(model):
    fake = CannedEvaluator(0, [(1.5, None), (0.0, "nan_loss: diverged"), (1.2, None),
                               (float("nan"), None)])
    rm = remeasure(fake, model, repeats=4)
    assert rm.fitness == (1.5, 0.0, 1.2, 0.0)
    assert rm.accuracy[1] == 0.0 and rm.robustness[3] == 0.0
    assert rm.failures == 2
    assert rm.failure_reasons == ("nan_loss: diverged", "non-finite fitness nan")
    assert rm.mean == pytest.approx(0.675)
    assert rm.sd == pytest.approx(statistics.stdev([1.5, 0.0, 1.2, 0.0]))
    assert "(2 failed, counted as 0)" in rm.describe()


def test_a_failure_reporting_a_fitness_still_counts_as_zero(model):
    fake = CannedEvaluator(0, [(1.7, "out_of_memory: ")])
    rm = remeasure(fake, model, repeats=1)
    assert rm.fitness == (0.0,) and rm.mean == 0.0 and rm.failures == 1


def test_one_training_has_no_spread(model):
    rm = remeasure(CannedEvaluator(0, [(1.3, None)]), model, repeats=1)
    assert rm.mean == 1.3 and math.isnan(rm.sd) and math.isnan(rm.ci95)
    assert rm.describe() == "1.3000 ± n/a (95% CI ±n/a) over 1 training"


@pytest.mark.parametrize("repeats", [0, -1, 2.0, True, None])
def test_repeats_is_validated(model, repeats):
    with pytest.raises(ValueError, match="repeats"):
        remeasure(CannedEvaluator(0, []), model, repeats=repeats)


def test_evaluator_needs_a_seed(model):
    evaluator = SimpleNamespace(evaluate=lambda *a, **k: None)
    with pytest.raises(TypeError, match="seed"):
        remeasure(evaluator, model)


def test_to_dict_is_plain_data(model):
    rm = remeasure(CannedEvaluator(3, [(1.0, None), (1.2, None), (1.1, None)]), model)
    data = rm.to_dict()
    assert data["repeats"] == 3 and data["fitness"] == [1.0, 1.2, 1.1]
    assert data["genome_id"] == model.id and data["salt"] == "remeasure"
    assert isinstance(data["seeds"], list) and data["mean"] == pytest.approx(1.1)


def test_mean_sd_ci95_edge_cases():
    assert all(math.isnan(x) for x in mean_sd_ci95([]))
    mean, sd, ci = mean_sd_ci95([2.0, 4.0])
    assert (mean, sd) == (3.0, pytest.approx(math.sqrt(2)))
    assert ci == pytest.approx(12.7062047 * math.sqrt(2) / math.sqrt(2))


class Killed(Exception):
    """A session's end in the middle of a re-measurement."""


def test_a_cut_remeasurement_resumes_from_its_journal(model, tmp_path):
    """The trainings finished before a cut are taken from the journal; only
    the rest train, and the result is the uninterrupted one (failures too)."""
    canned = [(1.5, None), (0.0, "nan_loss: diverged"), (1.2, None), (float("nan"), None)]
    whole = remeasure(CannedEvaluator(0, canned), model, repeats=4, generation=2)
    journal = tmp_path / "remeasure.partial.jsonl"

    class Dying(CannedEvaluator):
        def evaluate(self, model, generation, **kw):
            if len(self.calls) == 2:
                raise Killed
            return super().evaluate(model, generation, **kw)

    with pytest.raises(Killed):
        remeasure(Dying(0, canned), model, repeats=4, generation=2, journal=journal,
                  journal_key={"budget": 5})
    assert len(journal.read_text().splitlines()) == 2
    with journal.open("a") as fh:  # a torn line from the kill is ignored
        fh.write('{"key": "trunc')
    rest = CannedEvaluator(0, canned[2:])
    again = remeasure(rest, model, repeats=4, generation=2, journal=journal,
                      journal_key={"budget": 5})
    assert [c["seed"] for c in rest.calls] == list(whole.seeds[2:])
    assert dataclasses.replace(again, seconds=0) == dataclasses.replace(whole, seconds=0)
    # other settings share nothing with the journal
    other = CannedEvaluator(0, canned)
    remeasure(other, model, repeats=4, generation=2, journal=journal, journal_key={"budget": 6})
    assert len(other.calls) == 4
