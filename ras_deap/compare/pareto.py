"""``python -m ras_deap.compare.pareto``: the accuracy-robustness front of
the multi-objective methods against what the single-objective methods found,
paired by seed, by hypervolume (issue #31; ``docs/results/pareto-digits.md``).

Input: comparison folders (``--cells``, the ``--out`` of
``python -m ras_deap.compare``) made with the same settings (dataset, bank,
budget, training, re-measurements; only the objectives may differ). Their
cells are read as stored; nothing is trained. Each (method, seed) cell gives
a set of (accuracy, robustness) points, and which values they are is part of
the result:

* a multi-objective cell (``nsga2``, ``ras_mo``: result.json ``front``): its
  front, i.e. the non-dominated members of its final population, each
  **re-measured** (mean of ``--remeasure`` fresh trainings, as the search
  trained it); the search's own values of the same members are reported
  beside them;
* a single-objective cell: its winner **re-measured** (the means of the
  accuracies and robustnesses of the fresh trainings the comparison reports
  as the re-measured fitness), plus its final population **as the search
  measured it** (one training each): stored in result.json ``population`` by
  cells written since issue #31, else, for regularized evolution, the last P
  evaluations of its journal (the aging queue's final content, exact); the
  other methods' populations are not recovered from older cells (random
  search and TPE keep none; (mu+lambda)'s could be rebuilt by replaying its
  journal, which replays fully since the replay reseeds the global
  ``random`` DEAP draws from, but this report does not do it; RAS keeps it
  in a checkpoint a comparison does not commit), so those cells give their
  winner only.

The hypervolume is the area the points dominate above a fixed reference
point (default (0, 0): a failed network's accuracy and robustness, so every
trained network adds area and the number is in [0, 1]), computed by
``moocore`` (DEAP's own dependency, :func:`ras_deap.evolution.points_hypervolume`).
Per seed and per multi-objective method the page compares its re-measured
front with each single-objective method's points and with the union of all
of them, and at the paper's weight (accuracy + robustness) its best member
with the single-objective RAS winner, both re-measured.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import read_json_lines
from ..errors import UsageError
from ..evolution import points_hypervolume
from ..flags import OptionParser
from .compare_config import METHOD_ORDER

__all__ = ["VARIANT_LABELS", "CellPoints", "ParetoError", "SeedRow", "cell_method",
           "compare_fronts", "load_cells", "main", "method_order", "nondominated",
           "read_folder"]

OBJECTIVES = ("accuracy", "robustness")
# settings that may differ between the folders: what the searches maximise, and where
# they were logged
FREE_SETTINGS = ("objectives", "mo_selection", "front_remeasure", "experiment", "tracking_uri")
# everything else that decides a cell's numbers must be equal to pair them by seed
COMPARED = ("search", "budget", "remeasure", "final_generation")
# a ras_mo folder made with another --mo-selection is another method here, so that the
# two survival rules can be paired by seed (issue #31: spectrum vs crowding, by measurement)
VARIANT_LABELS = {"ras_mo_crowding": "Multi-objective RAS, crowding distance instead of "
                                     "spectrum (--mo-selection crowding)"}


class ParetoError(UsageError):
    """Bad input to the front comparison (exit 2, one line)."""


@dataclass
class CellPoints:
    """The (accuracy, robustness) points of one cell and where they come from.

    ``points``: what its hypervolume is computed from (a multi-objective
    cell's re-measured front; a single-objective cell's re-measured winner
    plus its final population, search's values). ``search_points``: the
    search's own values (the front's members, or the final population;
    empty when unknown). ``source``: how ``points`` were obtained."""

    method: str
    seed: int
    folder: Path
    multiobjective: bool
    points: list[tuple[float, float]]
    search_points: list[tuple[float, float]]
    source: str
    winner: tuple[float, float]  # the cell's winner, re-measured
    winner_fitness: float  # its re-measured fitness (mean accuracy + robustness)
    # multi-objective cells: per member (search's sum, re-measured sum)
    member_sums: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class SeedRow:
    """One seed: the hypervolume of every cell's points, the union of the
    single-objective ones, and the sums at the paper's weight."""

    seed: int
    hv: dict[str, float]  # method -> hypervolume of its points
    hv_search: dict[str, float]  # method -> hypervolume of its search's values (NaN: unknown)
    hv_single_union: float  # all single-objective points of the seed
    # multi-objective method -> (re-measured sum of the member with the best search sum,
    # best re-measured sum of any member)
    sums: dict[str, tuple[float, float]]
    ras_winner_fitness: float  # the single-objective RAS winner's re-measured fitness


# -- reading ------------------------------------------------------------------------
def _mean(values: Sequence[Any]) -> float:
    xs = [float(v) for v in values]
    return statistics.fmean(xs) if xs else math.nan


def _journal_tail(folder: Path, count: int, expected: int) -> list[tuple[float, float]] | None:
    """The (accuracy, robustness) of the last ``count`` of ``expected``
    journal entries (0 for a failed network), None if the journal is not
    complete."""
    from .cells import JOURNAL_NAME

    path = folder / JOURNAL_NAME
    if not path.is_file():
        return None
    entries = read_json_lines(path)
    if len(entries) != expected or count < 1:
        return None
    out = []
    for e in entries[-count:]:
        m = e.get("metrics") or {}
        if e.get("failure"):
            out.append((0.0, 0.0))
        elif all(k in m for k in OBJECTIVES):
            out.append((float(m["accuracy"]), float(m["robustness"])))
        else:
            return None
    return out


def _stored_population(result: dict[str, Any]) -> list[tuple[float, float]] | None:
    records = result.get("population")
    if not records:
        return None
    try:
        return [(float(r["objectives"]["accuracy"]), float(r["objectives"]["robustness"]))
                for r in records]
    except (KeyError, TypeError, ValueError):
        return None


def _cell_points(method: str, seed: int, folder: Path, result: dict[str, Any],
                 settings: dict[str, Any]) -> CellPoints | None:
    measured = result.get("remeasured") or {}
    winner = (_mean(measured.get("accuracy", [])), _mean(measured.get("robustness", [])))
    winner_fitness = float(measured.get("mean", math.nan))
    front = result.get("front")
    if front:
        if list(front.get("objectives", [])) != list(OBJECTIVES):
            return None  # another pair of objectives: not on these axes
        members = front["front"]
        if not all(m.get("remeasured") for m in members):
            raise ParetoError(f"{folder}: its front was not re-measured; rerun the comparison "
                              "with --remeasure 1 or more")
        points = [(float(m["remeasured"]["objectives"]["accuracy"]),
                   float(m["remeasured"]["objectives"]["robustness"])) for m in members]
        search = [(float(m["objectives"]["accuracy"]), float(m["objectives"]["robustness"]))
                  for m in members]
        sums = [(a + r, a2 + r2) for (a, r), (a2, r2) in zip(search, points, strict=True)]
        plural = "s" if len(points) != 1 else ""
        return CellPoints(method, seed, folder, True, points, search,
                          f"front of the final population ({len(points)} member{plural}), each "
                          f"re-measured ({members[0]['remeasured'].get('trainings', '?')} "
                          "fresh trainings)", winner, winner_fitness, sums)
    population = _stored_population(result)
    source = "population stored in result.json"
    if population is None and method == "regularized":
        search = settings.get("search", {})
        p = settings.get("aging_population") or search.get("population", 25)
        population = _journal_tail(folder, int(p), int(result["outcome"]["evaluations"]))
        source = f"last {p} evaluations of the journal (the aging queue)"
    if population is None:
        return CellPoints(method, seed, folder, False, [winner], [],
                          "winner only (no final population stored)", winner, winner_fitness)
    return CellPoints(method, seed, folder, False, [winner, *population], population,
                      f"winner re-measured + final population ({len(population)}, search's "
                      f"values; {source})", winner, winner_fitness)


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that must agree to pair two folders by seed, with the
    search options a folder does not hold filled in with what they meant when
    it was made (:func:`~ras_deap.config.stored_values`)."""
    from ..config import stored_values

    search = json.loads(json.dumps(stored_values(settings.get("search", {})), default=str))
    for key in FREE_SETTINGS:
        search.pop(key, None)
    out = {k: settings.get(k) for k in COMPARED}
    out["search"] = search
    return out


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new))
                for d in _differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} there, {new!r} here"]


def read_folder(folder: str | Path) -> tuple[dict[str, Any], list[tuple[str, int, Path,
                                                                         dict[str, Any]]]]:
    """The settings of comparison folder ``folder`` and its finished cells
    ``(method, seed, cell folder, result)``."""
    folder = Path(folder)
    manifest = folder / "comparison.json"
    if not manifest.is_file():
        raise ParetoError(f"--cells {folder}: no comparison.json there; give the --out folder "
                          "of python -m ras_deap.compare")
    try:
        settings = json.loads(manifest.read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ParetoError(f"--cells {folder}: {manifest} is not a comparison manifest "
                          f"({exc})") from exc
    cells = []
    for path in sorted((folder / "cells").glob("*/result.json")):
        try:
            result = json.loads(path.read_text())
            method, seed = str(result["method"]), int(result["seed"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unfinished or damaged: the comparison runs it again
        cells.append((method, seed, path.parent, result))
    if not cells:
        raise ParetoError(f"--cells {folder}: no finished cell (cells/*/result.json); run or "
                          "resume the comparison first")
    return settings, cells


def cell_method(method: str, settings: dict[str, Any]) -> str:
    """The name a cell goes by here: its method, suffixed by its folder's
    ``mo_selection`` where that is not spectrum, the truncation ``ras_mo`` was
    first measured with (only ``ras_mo`` takes it; a folder that holds none
    was made when spectrum was the default)."""
    from ..config import OPTIONS

    stored = OPTIONS["mo_selection"].stored_default
    selection = (settings.get("search") or {}).get("mo_selection", stored)
    return f"{method}_{selection}" if method == "ras_mo" and selection != "spectrum" else method


def load_cells(folders: Sequence[str | Path]
               ) -> tuple[list[CellPoints], list[str], dict[str, Any]]:
    """The points of every cell of ``folders`` (checked to share their
    settings), notes on what was left out, and the first folder's settings.
    A (method, seed) found in several folders is taken from the first."""
    if not folders:
        raise ParetoError("--cells: give one or more comparison folders")
    reference: tuple[Path, dict[str, Any]] | None = None
    first: dict[str, Any] = {}
    seen: dict[tuple[str, int], Path] = {}
    out, notes = [], []
    for folder in folders:
        settings, cells = read_folder(folder)
        mine = _comparable(settings)
        if reference is None:
            reference, first = (Path(folder), mine), settings
        elif mine != reference[1]:
            changed = _differences(reference[1], mine)
            raise ParetoError(f"--cells {folder}: made with other settings than "
                              f"{reference[0]} ({'; '.join(changed[:4])}); its cells cannot "
                              "be paired by seed with those")
        for stored, seed, cell, result in cells:
            method = cell_method(stored, settings)
            if (method, seed) in seen:
                notes.append(f"{method}-seed{seed} of {cell} left out: taken from "
                             f"{seen[(method, seed)]}")
                continue
            points = _cell_points(method, seed, cell, result, settings)
            if points is None:
                notes.append(f"{method}-seed{seed} of {cell} left out: its front is over other "
                             "objectives than accuracy and robustness")
                continue
            seen[(method, seed)] = cell
            out.append(points)
    return out, notes, first


# -- computing ----------------------------------------------------------------------
def nondominated(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point dominates (both maximised), sorted by the
    first objective, duplicates once."""
    unique = sorted(set(points))
    return [p for p in unique
            if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in unique)]


def method_order(method: str) -> tuple[int, str]:
    """Where a method's column goes: the compare order, a variant right
    after its method."""
    if method in METHOD_ORDER:
        return METHOD_ORDER.index(method), method
    bases = [m for m in METHOD_ORDER if method.startswith(m + "_")]
    return (METHOD_ORDER.index(max(bases, key=len)) if bases else len(METHOD_ORDER)), method


def compare_fronts(cells: Sequence[CellPoints], reference: tuple[float, float] = (0.0, 0.0)
                   ) -> list[SeedRow]:
    """One row per seed that has a multi-objective cell."""
    seeds = sorted({c.seed for c in cells if c.multiobjective})
    rows = []
    for seed in seeds:
        mine = sorted((c for c in cells if c.seed == seed), key=lambda c: method_order(c.method))
        hv = {c.method: points_hypervolume(c.points, reference) for c in mine}
        hv_search = {c.method: (points_hypervolume(c.search_points, reference)
                                if c.search_points else math.nan) for c in mine}
        single = [p for c in mine if not c.multiobjective for p in c.points]
        sums = {}
        for c in mine:
            if c.multiobjective and c.member_sums:
                by_search = max(c.member_sums, key=lambda s: s[0])[1]
                sums[c.method] = (by_search, max(s[1] for s in c.member_sums))
        ras = next((c for c in mine if c.method == "ras" and not c.multiobjective), None)
        rows.append(SeedRow(seed=seed, hv=hv, hv_search=hv_search,
                            hv_single_union=(points_hypervolume(single, reference) if single
                                             else math.nan),
                            sums=sums,
                            ras_winner_fitness=ras.winner_fitness if ras else math.nan))
    return rows


# -- the command --------------------------------------------------------------------
def _parser() -> Any:
    p = OptionParser(
        prog="python -m ras_deap.compare.pareto",
        description="Compare the re-measured accuracy-robustness fronts of the multi-objective "
                    "methods (nsga2, ras_mo) with the points the single-objective methods found "
                    "(their re-measured winners and final populations), by hypervolume and "
                    "paired by seed, over comparison folders made with the same settings. "
                    "Reads the stored cells; trains nothing.")
    p.add_argument("--cells", action="append", default=[], metavar="DIR", required=True,
                   help="a comparison's --out folder (repeat: e.g. the multi-objective cells "
                        "and the committed Table-2 cells); a (method, seed) in several is "
                        "taken from the first")
    p.add_argument("--out", required=True, metavar="MD",
                   help="the page to write (Markdown, .md), with its CSV and figure beside it, "
                        "e.g. docs/results/pareto-digits.md")
    p.add_argument("--reference", default="0,0", metavar="ACC,ROB",
                   help="the hypervolume's reference point (default 0,0: a failed network; "
                        "both in [0, 1))")
    return p


def _reference(text: str) -> tuple[float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or not all(0.0 <= v < 1.0 for v in values):
        raise ParetoError(f"--reference {text!r}: give accuracy,robustness, each in [0, 1), "
                          "e.g. 0,0")
    return values  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import run_cli

    parser = _parser()
    args = parser.parse_args(argv)
    command = "python -m ras_deap.compare.pareto " + " ".join(
        sys.argv[1:] if argv is None else list(argv))

    def work() -> int:
        from .pareto_report import write_page

        if not args.out.endswith(".md"):
            raise ParetoError(f"--out {args.out}: give a Markdown file name ending in .md")
        reference = _reference(args.reference)
        cells, notes, settings = load_cells(args.cells)
        if not any(c.multiobjective for c in cells):
            raise ParetoError("--cells: no multi-objective cell (nsga2, ras_mo) in "
                              f"{', '.join(args.cells)}; run python -m ras_deap.compare "
                              "--methods nsga2,ras_mo with the same settings first")
        rows = compare_fronts(cells, reference)
        written = write_page(Path(args.out), cells, rows, reference=reference, notes=notes,
                             command=command, settings=settings)
        print(f"wrote {', '.join(str(p) for p in written)}")
        return 0

    return run_cli(parser.prog, work, usage=lambda: parser.print_usage(sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
