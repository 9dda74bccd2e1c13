"""The front comparison (python -m ras_deap.compare.pareto, issue #31) on
small synthetic comparison folders: hypervolumes of known fronts, where each
front's points come from, the sums at the paper's weight, and bad input as
one line with exit 2."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from ras_deap.compare.pareto import (
    compare_fronts,
    load_cells,
    main,
    nondominated,
)

SETTINGS = {"search": {"dataset": "digits", "population": 3, "children": 2},
            "budget": 9, "remeasure": 2, "final_generation": None, "tournament_size": 3,
            "aging_population": None, "aging_sample": 5, "assess": None}


def write_folder(root, cells, settings=SETTINGS):
    root.mkdir(parents=True, exist_ok=True)
    (root / "comparison.json").write_text(json.dumps({"settings": settings}))
    for result in cells:
        cell = root / "cells" / f"{result['method']}-seed{result['seed']}"
        cell.mkdir(parents=True, exist_ok=True)
        journal = result.pop("_journal", None)
        if journal is not None:
            (cell / "evaluations.jsonl").write_text(
                "".join(json.dumps(e) + "\n" for e in journal))
        (cell / "result.json").write_text(json.dumps(result))
    return root


def remeasured(acc, rob):
    fits = [a + r for a, r in zip(acc, rob, strict=True)]
    return {"accuracy": acc, "robustness": rob, "fitness": fits,
            "mean": statistics.fmean(fits)}


def so_cell(method, seed, winner, population=None, evaluations=9, journal=None):
    """A single-objective cell: its winner re-measured twice (accuracies and
    robustnesses), its final population (search's values) if stored."""
    result = {"method": method, "seed": seed, "remeasured": remeasured(*winner),
              "outcome": {"evaluations": evaluations}}
    if population is not None:
        result["population"] = [{"genome_id": f"M-{i}", "objectives": {
            "accuracy": a, "robustness": r}} for i, (a, r) in enumerate(population)]
    if journal is not None:
        result["_journal"] = journal
    return result


def mo_cell(method, seed, members, winner=((0.5, 0.5), (0.5, 0.5))):
    """A multi-objective cell: members (search acc, search rob, re-measured
    acc, re-measured rob)."""
    return {"method": method, "seed": seed, "remeasured": remeasured(*winner),
            "outcome": {"evaluations": 9},
            "front": {"objectives": ["accuracy", "robustness"], "front": [
                {"genome_id": f"M-{i}", "objectives": {"accuracy": sa, "robustness": sr},
                 "remeasured": {"objectives": {"accuracy": ra, "robustness": rr},
                                "trainings": 2}}
                for i, (sa, sr, ra, rr) in enumerate(members)]}}


def test_nondominated_keeps_the_front_once():
    pts = [(0.5, 0.5), (0.9, 0.1), (0.4, 0.4), (0.5, 0.5), (0.2, 0.9), (0.2, 0.8)]
    assert nondominated(pts) == [(0.2, 0.9), (0.5, 0.5), (0.9, 0.1)]


def test_pareto_hypervolumes_of_known_fronts_paired_by_seed(tmp_path, capsys):
    mo = write_folder(tmp_path / "mo", [
        # re-measured front {(0.9, 0.5), (0.6, 0.8)}: 0.9 x 0.5 + 0.6 x 0.3 = 0.63
        mo_cell("nsga2", 0, [(0.95, 0.55, 0.9, 0.5), (0.65, 0.85, 0.6, 0.8)]),
        # seed 1: one member (0.5, 0.5): 0.25
        mo_cell("nsga2", 1, [(0.6, 0.6, 0.5, 0.5)]),
    ])
    so = write_folder(tmp_path / "so", [
        # winner re-measured (0.8, 0.6) + population {(0.7, 0.7)}: 0.48 + 0.07 = 0.55
        so_cell("ras", 0, ((0.7, 0.9), (0.5, 0.7)), population=[(0.7, 0.7)]),
        # winner only (0.4, 0.4): 0.16
        so_cell("random", 0, ((0.4, 0.4), (0.4, 0.4))),
        so_cell("ras", 1, ((0.6, 0.6), (0.6, 0.6))),  # 0.36
    ])
    out = tmp_path / "page" / "pareto.md"
    assert main(["--cells", str(mo), "--cells", str(so), "--out", str(out)]) == 0
    with out.with_suffix(".csv").open() as fh:
        rows = {(r["method"], int(r["seed"])): r for r in csv.DictReader(fh)}
    assert float(rows["nsga2", 0]["hypervolume"]) == pytest.approx(0.63)
    assert float(rows["nsga2", 0]["hypervolume_search"]) == pytest.approx(
        0.95 * 0.55 + 0.65 * 0.30)
    assert float(rows["ras", 0]["hypervolume"]) == pytest.approx(0.55)
    assert float(rows["ras", 0]["hypervolume_search"]) == pytest.approx(0.49)  # population
    assert float(rows["random", 0]["hypervolume"]) == pytest.approx(0.16)
    assert rows["random", 0]["hypervolume_search"] == "nan"  # no population known
    assert float(rows["nsga2", 1]["hypervolume"]) == pytest.approx(0.25)
    assert float(rows["ras", 1]["hypervolume"]) == pytest.approx(0.36)
    # at the paper's weight: the member with the best search sum is (0.65, 0.85) -> 1.4
    # re-measured; the best re-measured sum is also 1.4; the RAS winner re-measured 1.4
    assert float(rows["nsga2", 0]["sum_picked_by_search"]) == pytest.approx(1.4)
    assert float(rows["ras", 0]["winner_fitness"]) == pytest.approx(1.4)
    page = out.read_text()
    assert "| 0 | 0.6300 | 0.1600 | 0.5500 |" in page  # random before ras, then the union
    assert "| `nsga2` | `ras` | 2 | 0.4400 | 0.4550 |" in page
    assert "on 1 of 2 seeds" in page
    assert "winner only (no final population stored)" in page
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_pareto_reads_regularized_evolutions_population_from_its_journal(tmp_path):
    """Older cells stored no population: regularized evolution's is the last
    P journal entries (the aging queue), a failed network counting (0, 0);
    an incomplete journal gives the winner only."""
    journal = [{"index": i, "metrics": {"accuracy": 0.1 * i, "robustness": 1 - 0.1 * i},
                "failure": "nan_loss" if i == 7 else None} for i in range(9)]
    folder = write_folder(tmp_path / "c", [
        mo_cell("ras_mo", 0, [(0.5, 0.5, 0.5, 0.5)]),
        so_cell("regularized", 0, ((0.3, 0.3), (0.3, 0.3)), journal=journal),
        so_cell("regularized", 1, ((0.3, 0.3), (0.3, 0.3)), journal=journal[:5]),
        mo_cell("ras_mo", 1, [(0.5, 0.5, 0.5, 0.5)]),
    ])
    cells, _, _ = load_cells([folder])
    reg = {c.seed: c for c in cells if c.method == "regularized"}
    assert reg[0].search_points == [(0.6000000000000001, 0.3999999999999999), (0.0, 0.0),
                                    (0.8, 0.19999999999999996)]
    assert "last 3 evaluations of the journal" in reg[0].source
    assert reg[1].points == [(0.3, 0.3)] and reg[1].search_points == []
    rows = compare_fronts(cells)
    assert rows[0].hv["regularized"] == pytest.approx(0.6 * 0.4 + 0.2 * 0.2)


def test_pareto_with_another_reference_point_and_a_duplicate_cell(tmp_path):
    a = write_folder(tmp_path / "a", [mo_cell("nsga2", 0, [(1, 1, 0.9, 0.8)])])
    b = write_folder(tmp_path / "b", [mo_cell("nsga2", 0, [(1, 1, 0.1, 0.1)]),
                                      so_cell("ras", 0, ((0.6, 0.6), (0.9, 0.9)))])
    out = tmp_path / "p.md"
    assert main(["--cells", str(a), "--cells", str(b), "--out", str(out),
                 "--reference", "0.5,0.5"]) == 0
    with out.with_suffix(".csv").open() as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    assert float(rows["nsga2"]["hypervolume"]) == pytest.approx(0.4 * 0.3)  # a's, not b's
    assert float(rows["ras"]["hypervolume"]) == pytest.approx(0.1 * 0.4)
    page = out.read_text()
    assert "reference point (0.5, 0.5)" in page and "nsga2-seed0 of" in page


def test_a_crowding_folders_ras_mo_is_its_own_method_paired_with_spectrums(tmp_path):
    """ras_mo cells of a folder made with --mo-selection crowding go by
    ras_mo_crowding, beside the spectrum folder's ras_mo (not left out as a
    duplicate), and the page pairs the two fronts by seed."""
    spectrum = write_folder(tmp_path / "s", [
        mo_cell("ras_mo", 0, [(1, 1, 0.9, 0.8)]),  # 0.72
        mo_cell("ras_mo", 1, [(1, 1, 0.5, 0.5)]),  # 0.25
        so_cell("ras", 0, ((0.6, 0.6), (0.9, 0.9))), so_cell("ras", 1, ((0.6, 0.6), (0.9, 0.9)))])
    crowding = write_folder(tmp_path / "c", [
        mo_cell("ras_mo", 0, [(1, 1, 0.8, 0.8)]),  # 0.64
        mo_cell("ras_mo", 1, [(1, 1, 0.6, 0.5)])],  # 0.30
        {**SETTINGS, "search": {**SETTINGS["search"], "mo_selection": "crowding"}})
    cells, notes, _ = load_cells([spectrum, crowding])
    assert not notes
    assert sorted((c.method, c.seed) for c in cells if c.multiobjective) == [
        ("ras_mo", 0), ("ras_mo", 1), ("ras_mo_crowding", 0), ("ras_mo_crowding", 1)]
    out = tmp_path / "p.md"
    assert main(["--cells", str(spectrum), "--cells", str(crowding), "--out", str(out)]) == 0
    page = out.read_text()
    assert "## Multi-objective methods against each other" in page
    assert "| `ras_mo` | `ras_mo_crowding` | 2 | 0.4850 | 0.4700 | +0.0150 ±" in page
    assert "--mo-selection crowding" in page  # the variant's label
    # columns: the variant right after its method, the single-objective ones after
    assert "| Seed | `ras_mo` (re-measured front) | `ras_mo_crowding` (re-measured front) |" in page


def test_method_order_puts_a_variant_after_its_method():
    from ras_deap.compare.pareto import method_order

    names = ["zzz", "ras_mo_crowding", "ras", "ras_mo", "nsga2", "random"]
    assert sorted(names, key=method_order) == [
        "random", "ras", "nsga2", "ras_mo", "ras_mo_crowding", "zzz"]


@pytest.mark.slow
def test_pareto_reads_what_compare_writes(tmp_path):
    """A real (torch-free) comparison of nsga2 and regularized evolution, then
    the page: the front and population come from the cells as stored."""
    from test_compare import TradeOff

    from ras_deap.compare import CompareConfig
    from ras_deap.compare.runner import run_comparison
    from ras_deap.config import SearchConfig

    search = SearchConfig(population=3, children=2, mutations=1, full_every=100,
                          tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="p")
    cfg = CompareConfig(search=search, budget=9, seeds=1, remeasure=1, assess=None,
                        methods=("regularized", "nsga2"), out=str(tmp_path / "cmp"))
    result = run_comparison(cfg, evaluator_factory=lambda c: TradeOff(), log=lambda m: None)
    assert not result.failed
    out = tmp_path / "p.md"
    assert main(["--cells", str(tmp_path / "cmp"), "--out", str(out)]) == 0
    cells, _, _ = load_cells([tmp_path / "cmp"])
    nsga2 = next(c for c in cells if c.method == "nsga2")
    stored = result.runs[1].data["front"]["front"]
    assert nsga2.points == [(m["remeasured"]["objectives"]["accuracy"],
                             m["remeasured"]["objectives"]["robustness"]) for m in stored]
    reg = next(c for c in cells if c.method == "regularized")
    assert len(reg.search_points) == 3 and "stored in result.json" in reg.source


@pytest.mark.parametrize("problem, message", [
    ("missing", "no comparison.json"),
    ("other-settings", "other settings"),
    ("no-mo", "no multi-objective cell"),
    ("reference", "--reference"),
    ("not-md", "ending in .md"),
    ("empty", "no finished cell"),
])
def test_pareto_bad_input_is_one_line_and_exit_2(tmp_path, capsys, problem, message):
    mo = write_folder(tmp_path / "mo", [mo_cell("nsga2", 0, [(1, 1, 0.9, 0.8)])])
    so = write_folder(tmp_path / "so", [so_cell("ras", 0, ((0.6, 0.6), (0.9, 0.9)))])
    args = {"missing": ["--cells", str(tmp_path / "nope")],
            "other-settings": ["--cells", str(mo), "--cells", str(write_folder(
                tmp_path / "other", [so_cell("ras", 0, ((0.6, 0.6), (0.9, 0.9)))],
                {**SETTINGS, "budget": 275}))],
            "no-mo": ["--cells", str(so)],
            "reference": ["--cells", str(mo), "--reference", "0,2"],
            "not-md": ["--cells", str(mo), "--out", str(tmp_path / "p.txt")],
            "empty": ["--cells", str(write_folder(tmp_path / "empty", []))]}[problem]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "p.md")]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "p.md").exists()
