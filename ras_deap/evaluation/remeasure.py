"""Re-measuring a selected architecture on fresh evaluation seeds.

A search (or a study, or a comparison) that keeps the highest fitness it saw
keeps, to a large part, the luckiest training run: with a seed-to-seed
fitness spread of about 0.06, the maximum over many evaluations is biased
upwards and says little about the architecture. :func:`remeasure` trains the
selected genome again ``repeats`` times, exactly as the evaluation that
selected it (same evaluator, same generation, hence the same training
schedule), but with evaluation seeds no search uses, and returns the mean
with its spread. That number, not the maximum, is what tuning and
comparisons optimise and report.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..atomic import append_line, read_json_lines
from ..seeding import evaluation_seed
from ..validate import check_int

__all__ = ["DEFAULT_REPEATS", "Remeasurement", "mean_sd_ci95", "remeasure",
           "remeasure_seeds", "t_quantile_975"]

DEFAULT_REPEATS = 3


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (the
    factor of a two-sided 95 % interval)."""
    if df < 1:
        raise ValueError(f"df={df} must be >= 1")
    from scipy.stats import t  # scipy comes with scikit-learn

    return float(t.ppf(0.975, df))


def mean_sd_ci95(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and the half-width of the 95 %
    t-interval of the mean (``t_{0.975, n-1} * sd / sqrt(n)``). With one
    value the spread is unknown: sd and half-width are NaN (not 0, which
    would claim a precision nobody measured). No values: all NaN."""
    xs = [float(v) for v in values]
    if not xs:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, math.nan, math.nan
    sd = statistics.stdev(xs)
    return mean, sd, t_quantile_975(len(xs) - 1) * sd / math.sqrt(len(xs))


def remeasure_seeds(seed: int, genome_id: str, generation: int, repeats: int,
                    salt: str = "remeasure") -> tuple[int, ...]:
    """The ``repeats`` evaluation seeds of a re-measurement: derived from the
    evaluator's seed, the genome id, the generation, the salt and the repeat
    index, so they are deterministic, distinct from each other and from the
    seeds searches use (``evaluation_seed(seed, genome_id, generation)`` of the
    evaluator and the 31-bit seeds of the evolution and the baselines)."""
    seeds: list[int] = []
    for repeat in range(repeats):
        value = evaluation_seed(seed, f"{genome_id}|{salt}|{repeat}", generation)
        bump = 0
        while value in seeds:  # a 63-bit collision: astronomically rare, but never reuse one
            bump += 1
            value = evaluation_seed(seed, f"{genome_id}|{salt}|{repeat}+{bump}", generation)
        seeds.append(value)
    return tuple(seeds)


@dataclass(frozen=True)
class Remeasurement:
    """``repeats`` fresh trainings of one genome. ``fitness``, ``accuracy``
    and ``robustness`` hold one value per training (a failed training counts
    as 0 everywhere; ``failures`` counts them and ``failure_reasons`` says
    why); ``mean``, ``sd`` (sample sd, NaN for one training) and ``ci95``
    (half-width of the 95 % t-interval of the mean, NaN for one training)
    summarise the fitness."""

    genome_id: str
    generation: int
    salt: str
    seeds: tuple[int, ...]
    fitness: tuple[float, ...]
    accuracy: tuple[float, ...]
    robustness: tuple[float, ...]
    failures: int
    failure_reasons: tuple[str, ...]
    mean: float
    sd: float
    ci95: float
    seconds: float = 0.0

    @property
    def repeats(self) -> int:
        return len(self.fitness)

    @property
    def accuracy_mean(self) -> float:
        return statistics.fmean(self.accuracy) if self.accuracy else math.nan

    @property
    def robustness_mean(self) -> float:
        return statistics.fmean(self.robustness) if self.robustness else math.nan

    def describe(self, digits: int = 4) -> str:
        """``mean ± sd (95% CI ±x) over N trainings`` (and the failures)."""
        def num(x: float) -> str:
            return "n/a" if math.isnan(x) else f"{x:.{digits}f}"

        n = self.repeats
        text = (f"{self.mean:.{digits}f} ± {num(self.sd)} (95% CI ±{num(self.ci95)}) over "
                f"{n} training{'s' if n != 1 else ''}")
        if self.failures:
            text += f" ({self.failures} failed, counted as 0)"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("seeds", "fitness", "accuracy", "robustness", "failure_reasons"):
            data[key] = list(data[key])
        data["repeats"] = self.repeats
        return data


def _metric(metrics: Any, key: str) -> float:
    try:
        value = float((metrics or {}).get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return value


def _journalled(path: Path | None, key: str) -> dict[int, dict[str, Any]]:
    """The trainings stored under ``key`` in the journal, by seed (a torn
    last line, from a kill, is ignored)."""
    done: dict[int, dict[str, Any]] = {}
    if path is None or not Path(path).is_file():
        return done
    for entry in read_json_lines(path, ordered=False):
        if isinstance(entry, dict) and entry.get("key") == key:
            done[int(entry["seed"])] = entry
    return done


def remeasure(evaluator: Any, model: Any, *, repeats: int = DEFAULT_REPEATS,
              generation: int = 0, salt: str = "remeasure",
              journal: Path | None = None, journal_key: Any = None) -> Remeasurement:
    """Train ``model`` ``repeats`` times with ``evaluator`` as generation
    ``generation`` (pass the generation the model was selected at, so only
    the seeds change) on fresh seeds (:func:`remeasure_seeds` from
    ``evaluator.seed``, the genome id, the generation and ``salt``).

    ``evaluator`` needs ``seed`` and ``evaluate(model, generation, *, seed,
    with_test)`` returning an object with ``fitness``, ``metrics`` and
    ``failure`` (:class:`ras_deap.evaluation.Evaluator`). A failed training
    (``failure`` set, or a non-finite fitness) counts as fitness 0: an
    architecture that fails to train on some seeds is worse for it.

    ``journal``: a JSON-lines file each finished training is appended to,
    under a key of the genome, generation, salt and ``journal_key`` (the
    caller's settings); a re-measurement started again takes the trainings
    stored under its key and runs only the rest. One training of a large
    mnist10k winner costs tens of CPU-minutes, so a cut must not lose them.
    """
    check_int("repeats", repeats, hint=f"trainings of the selected model; {DEFAULT_REPEATS} or "
                                        "more for a reported number")
    if not hasattr(evaluator, "seed"):
        raise TypeError(f"{type(evaluator).__name__} has no 'seed': remeasure derives its "
                        "fresh evaluation seeds from the evaluator's seed")
    genome_id = str(model.id)
    seeds = remeasure_seeds(int(evaluator.seed), genome_id, int(generation), repeats, salt)
    start = time.perf_counter()
    fitness: list[float] = []
    accuracy: list[float] = []
    robustness: list[float] = []
    reasons: list[str] = []
    key = json.dumps({"genome_id": genome_id, "generation": int(generation), "salt": salt,
                      "settings": journal_key}, sort_keys=True, default=str)
    stored = _journalled(journal, key)
    for seed in seeds:
        if seed in stored:
            entry = stored[seed]
            value, failure = float(entry["fitness"]), entry.get("failure")
            metrics = {"accuracy": entry.get("accuracy"), "robustness": entry.get("robustness")}
        else:
            result = evaluator.evaluate(model, int(generation), seed=seed, with_test=False)
            value, metrics = float(result.fitness), result.metrics
            failure = getattr(result, "failure", None)
            if failure is None and not math.isfinite(value):
                failure = f"non-finite fitness {value}"
            if journal is not None:
                append_line(journal, json.dumps(
                    {"key": key, "seed": seed, "fitness": value if math.isfinite(value) else 0.0,
                     "failure": None if failure is None else str(failure),
                     "accuracy": _metric(metrics, "accuracy"),
                     "robustness": _metric(metrics, "robustness")}))
        if failure is not None:
            reasons.append(str(failure))
            fitness.append(0.0)
            accuracy.append(0.0)
            robustness.append(0.0)
            continue
        fitness.append(value)
        accuracy.append(_metric(metrics, "accuracy"))
        robustness.append(_metric(metrics, "robustness"))
    mean, sd, ci95 = mean_sd_ci95(fitness)
    return Remeasurement(genome_id=genome_id, generation=int(generation), salt=salt,
                         seeds=seeds, fitness=tuple(fitness), accuracy=tuple(accuracy),
                         robustness=tuple(robustness), failures=len(reasons),
                         failure_reasons=tuple(reasons), mean=mean, sd=sd, ci95=ci95,
                         seconds=time.perf_counter() - start)
