"""benchmarks/cell_costs.py reads a comparison's committed files into the
cost table of #28: per-cell evaluation times and network sizes, post-phases,
and what is left at the measured pace, naming what has no pace yet."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():
    path = ROOT / "benchmarks" / "cell_costs.py"
    spec = importlib.util.spec_from_file_location("cell_costs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _journal(folder: Path, seconds: list[float], parameters: list[float]) -> None:
    folder.mkdir(parents=True)
    lines = [json.dumps({"index": i, "seconds": s, "metrics": {"parameters": p}})
             for i, (s, p) in enumerate(zip(seconds, parameters, strict=True))]
    (folder / "evaluations.jsonl").write_text("\n".join(lines) + "\n{\"cut by a kill")


def test_costs_from_journals_results_and_sessions(tmp_path, capsys):
    costs = _module()
    out = tmp_path / "cmp"
    _journal(out / "cells" / "tpe-seed0", [10.0, 10.0, 30.0, 30.0], [1e6, 1e6, 3e6, 5e6])
    (out / "cells" / "tpe-seed0" / "result.json").write_text(json.dumps({
        "outcome": {"evaluations": 4, "seconds": 1.0}, "remeasured": {"seconds": 360.0},
        "retrain_seconds": 720.0, "assessment": {"rows": [{"seconds": 360.0}]},
        "cpu_seconds": 900.0, "final": {"parameters": 5e6}}))
    _journal(out / "cells" / "tpe-seed1", [20.0], [2e6])
    (out / "cells" / "ras-seed0").mkdir(parents=True)
    # a running RAS cell: no journal; its checkpoint counts and times its evaluations
    (out / "cells" / "ras-seed1").mkdir(parents=True)
    (out / "ras_runs" / "ras-seed1").mkdir(parents=True)
    (out / "ras_runs" / "ras-seed1" / "checkpoint.json").write_text(json.dumps(
        {"state": {"evaluations": 2, "extra": {"timings": {"evaluation": 30.0, "x": "y"}}}}))
    (out / "comparison.json").write_text(json.dumps({
        "settings": {"budget": 4},
        "sessions": [{"seconds": 3600.0}, {"seconds": 1800.0, "cpu_seconds": 3600.0}]}))
    rows = {r["cell"]: r for r in costs.cell_costs(out, stretch=2)}
    tpe = rows["tpe-seed0"]
    assert tpe["finished"] and tpe["evaluations"] == 4 and tpe["evaluation_seconds"] == 80.0
    assert (tpe["parameters_first"], tpe["parameters_last"]) == (1e6, 4e6)  # medians of 2
    assert costs._post(tpe) == 1440.0
    assert not rows["tpe-seed1"]["finished"] and rows["ras-seed0"]["evaluations"] == 0
    assert (rows["ras-seed1"]["evaluations"], rows["ras-seed1"]["evaluation_seconds"]) == (2, 30.0)
    assert costs.main([str(out), "--stretch", "2"]) == 0
    printed = capsys.readouterr().out
    assert "| tpe-seed0 | 4 | 20 | 0.0 h | 1.0 M to 4.0 M | 0.4 h" in printed
    assert "| tpe-seed1 (running) | 1 |" in printed and "| ras-seed0 (not started) | 0 |" in printed
    assert "2 recorded, 1.5 h of wall time; 1 record their CPU time, 1.0 h" in printed
    assert "| ras-seed1 (running) | 2 | 15 | 0.0 h | n/a to n/a |" in printed
    # tpe-seed1: 3 evaluations at the mean pace (20 s, 20 s) + the mean post-phase (1440 s);
    # ras: 4 + 2 evaluations at 15 s; no RAS cell has finished, so no post-phase pace
    assert "about 0.4 h of cell time, without ras's post-phases, which" in printed
    # a cell not started has no folder in git: --methods and --seeds count it
    assert costs.main([str(out), "--stretch", "2", "--methods", "tpe", "--seeds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| tpe-seed2 (not started) | 0 |" in printed and "ras-seed0" not in printed
    # + tpe-seed2: 4 evaluations at 20 s and a post-phase of 1440 s: 1500 + 1520 s
    assert "about 0.8 h of cell time." in printed


def test_a_folder_that_is_no_comparison_is_refused(tmp_path, capsys):
    assert _module().main([str(tmp_path)]) == 2
    assert "has no comparison.json" in capsys.readouterr().err


def test_autoattack_costs_from_stored_parts(tmp_path, capsys):
    """benchmarks/autoattack_costs.py sums each winner's stored AutoAttack
    parts per eps (old parts in a held-out journal too, damaged lines left
    out) and prices a whole assessment at their mean pace."""
    path = ROOT / "benchmarks" / "autoattack_costs.py"
    spec = importlib.util.spec_from_file_location("autoattack_costs", path)
    costs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(costs)

    def line(eps: float, start: int, ok: str, seconds: float, cpu: bool = False) -> str:
        key = json.dumps({"network": "n", "seed": 1, "part": {
            "attack": "autoattack", "eps": eps, "images": [start, start + len(ok)]}})
        times = {"apgd-ce": seconds, "apgd-t": seconds, "square": 2 * seconds}
        return json.dumps({"part_key": key, "part": {
            "ok": ok, "robust_after": {"apgd-ce": "1" * len(ok), "apgd-t": ok, "square": ok},
            "seconds": times, **({"cpu_seconds": times} if cpu else {})}})

    cell = tmp_path / "cmp" / "cells" / "ras-seed0"
    cell.mkdir(parents=True)
    (cell / "heldout.partial.jsonl").write_text(line(3 / 255, 0, "1100", 10.0) + "\n")
    (cell / "autoattack-parts.jsonl").write_text("\n".join([
        line(3 / 255, 4, "1111", 30.0), line(0.3, 0, "0000", 1.0, cpu=True),
        json.dumps({"part_key": "x", "part": {"ok": "1"}}), '{"part_key": "cut']) + "\n")
    (tmp_path / "cmp" / "cells" / "tpe-seed0").mkdir()  # nothing stored yet
    rows = costs.autoattack_costs(tmp_path / "cmp")
    assert [(r["cell"], r["eps"], r["parts"], r["images"]) for r in rows] == [
        ("ras-seed0", 3 / 255, 2, 8), ("ras-seed0", 0.3, 1, 4)]
    assert rows[0]["robust_after"] == {"apgd-ce": 1.0, "apgd-t": 0.75, "square": 0.75}
    assert rows[0]["seconds"] == {"apgd-ce": 40.0, "apgd-t": 40.0, "square": 80.0}
    assert costs.main([str(tmp_path / "cmp"), "--images", "200", "--winners", "10"]) == 0
    text = capsys.readouterr().out
    assert "| ras-seed0 | 3/255 | 2 | 8 | 100 % / 75 % / 75 % | 40 | 40 | 80 | 80 | - |" in text
    cut = tmp_path / "cmp" / "cells" / "ras-seed0" / "heldout.partial.jsonl"
    cut.write_text(line(3 / 255, 0, "1100", 10.0, cpu=True) + "\n")
    assert costs.main([str(tmp_path / "cmp")]) == 0
    assert "| 80 | 40 (1 of 2 parts) |" in capsys.readouterr().out
    assert "| ras-seed0 | 0.3 | 1 | 4 | 100 % / 0 % / 0 % | 1 | 1 | 2 | 4 | 4 |" in text
    # 80 s per part, 4 parts per winner: 320 s = 0.09 h; 10 winners: 0.9 h
    assert "* 3/255: 80 s per part over 2 parts; 0.09 h per winner, 0.9 h for 10" in text
    assert "* 0.3: 4 s per part" in text
    assert costs.main([str(tmp_path / "nothing")]) == 2
