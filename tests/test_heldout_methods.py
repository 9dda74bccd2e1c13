"""The methods report of ``compare.heldout`` with one arm: winners of one
comparison's methods paired by seed against a reference method, with the
pre-registered AutoAttack test Holm-corrected."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ras_deap.compare.heldout import main
from ras_deap.compare.heldout_methods import (
    holm,
    paired_methods,
    verdict,
    write_methods_report,
)


def _rows() -> list[dict[str, Any]]:
    rows = []
    for seed in range(5):
        wobble = (seed % 3) / 200
        rows.append({"arm": "bank", "method": "ras", "seed": seed, "test_accuracy": 0.97,
                     "autoattack_eps3": 0.40 + wobble, "autoattack_eps0.1": 0.10,
                     "heldout_bank": 0.50 + wobble, "square_mean": 0.6})
        rows.append({"arm": "bank", "method": "tpe", "seed": seed, "test_accuracy": 0.968,
                     "autoattack_eps3": 0.50 + wobble + seed / 1000,
                     "heldout_bank": 0.55 + wobble, "square_mean": 0.62})
        rows.append({"arm": "bank", "method": "random", "seed": seed, "test_accuracy": 0.98,
                     "autoattack_eps3": 0.40 + wobble + (-1) ** seed / 100,
                     "heldout_bank": 0.50, "square_mean": 0.6})
    return rows


def test_holm_adjusts_in_rank_order_and_keeps_nan() -> None:
    adjusted = holm([0.01, math.nan, 0.04, 0.03])
    assert adjusted[0] == pytest.approx(0.03)
    assert math.isnan(adjusted[1])
    assert adjusted[3] == pytest.approx(0.06) and adjusted[2] == pytest.approx(0.06)


def test_verdict_needs_the_corrected_test_the_bank_and_the_accuracy() -> None:
    rows = _rows()
    aa = paired_methods(rows, "tpe", "ras", "autoattack_eps3")
    bank = paired_methods(rows, "tpe", "ras", "heldout_bank")
    acc = paired_methods(rows, "tpe", "ras", "test_accuracy")
    assert aa.n == 5 and aa.diff_mean == pytest.approx(0.102)
    assert verdict("tpe", "ras", aa, 0.001, bank, acc).more_robust
    assert not verdict("tpe", "ras", aa, 0.2, bank, acc).more_robust  # not significant
    worse = [dict(r, test_accuracy=0.95) if r["method"] == "tpe" else r for r in rows]
    lost = paired_methods(worse, "tpe", "ras", "test_accuracy")
    assert not verdict("tpe", "ras", aa, 0.001, bank, lost).more_robust  # 2 points lost
    one = paired_methods([r for r in rows if r["seed"] == 0], "tpe", "ras", "autoattack_eps3")
    assert "not tested" in verdict("tpe", "ras", one, math.nan, bank, acc).reason


def test_report_tables_every_eps_and_names_the_preregistered_test(tmp_path: Path) -> None:
    config = SimpleNamespace(autoattack_images=200, images=200)
    md, csv_path = write_methods_report(
        tmp_path / "h.md", _rows(), reference="ras", methods=["random", "tpe", "ras"],
        command="python -m ras_deap.compare.heldout ...", config=config,
        heldout_bank=tmp_path / "b.npz", bank_notes=["328 samples"], missing=["ras-seed5"])
    text = md.read_text()
    assert "AutoAttack 3/255" in text and "AutoAttack 0.1" in text
    assert "Holm-corrected over the 2 methods" in text
    assert "TPE (chain space)" in text or "tpe" in text.lower()
    assert text.count("**more robust**") == 1  # tpe; random is noise around ras
    assert "Not finished yet" in text and "ras-seed5" in text
    assert csv_path.read_text().count("\n") == 16  # header + 15 winners


def test_cli_one_arm_needs_its_reference_method_among_the_methods(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "comparison.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main(["--arm", f"bank={tmp_path}", "--methods", "random,tpe",
              "--heldout-bank", str(tmp_path / "b.npz")])
    assert exc.value.code == 2
    assert "--reference-method 'ras' is not one of --methods" in capsys.readouterr().err


def test_heldout_command_takes_the_assessments_options_from_the_schema(tmp_path):
    """``compare.heldout``'s --images, --square-iter and --autoattack-images are
    the assessment's options: same defaults, same checks (one line, exit 2)."""
    from ras_deap.assess.assess_config import AssessConfig
    from ras_deap.compare.heldout import _checked, _parser

    (tmp_path / "comparison.json").write_text("{}")
    base = ["--arm", f"bank={tmp_path}", "--heldout-bank", "h.npz"]
    parser = _parser()
    _, _, config = _checked(parser, parser.parse_args(base))
    d = AssessConfig()
    assert (config.images, config.square_iter, config.autoattack_images) == (
        d.images, d.square_iter, d.autoattack_images)
    _, _, config = _checked(parser, parser.parse_args([*base, "--images", "7", "--autoattack"]))
    assert config.images == 7 and "autoattack" in config.attacks and not config.bank
    with pytest.raises(SystemExit) as exc:
        _checked(parser, parser.parse_args([*base, "--square-iter", "0"]))
    assert exc.value.code == 2


def test_heldout_sessions_are_counted_once_across_arms_and_a_lost_one_is_named(tmp_path):
    import json

    from ras_deap.compare.heldout_sessions import HeldoutSession, compute_line, load_sessions

    arms = [tmp_path / "a", tmp_path / "b"]
    for arm in arms:
        arm.mkdir()
    with HeldoutSession(arms, "heldout", "python -m ras_deap.compare.heldout ...", {"cpus": 2},
                        log=print) as session:
        session.winners = 3
    paths = [arm / "heldout.sessions.json" for arm in arms]
    first = load_sessions(paths)
    assert len(first) == 1 and first[0]["ended"] == "finished" and first[0]["winners"] == 3
    lost = {"id": "x", "started": "2026-12-01T00:00:00+00:00", "seconds": 3600.0,
            "cpu_seconds": 7200.0, "last_seen": "2026-12-01T01:00:00+00:00"}
    data = json.loads(paths[1].read_text())
    data["sessions"].insert(0, lost)
    paths[1].write_text(json.dumps(data))
    both = load_sessions(paths)
    assert [s["id"] for s in both] == ["x", first[0]["id"]]
    line = compute_line(both)
    assert line.startswith("Compute: 2 held-out commands from 2026-12-01T00:00 to ")
    cpu = (7200.0 + first[0]["cpu_seconds"]) / 3600
    wall = (3600.0 + first[0]["seconds"]) / 3600
    assert f"{wall:.2f} h of wall time, {cpu:.2f} CPU-hours" in line
    assert "1 of them ended without a record" in line
    assert compute_line([]).startswith("Compute: no held-out command")
    with pytest.raises(KeyboardInterrupt), HeldoutSession(arms[:1], "other", "c", {}):
        raise KeyboardInterrupt
    assert load_sessions([arms[0] / "other.sessions.json"])[0]["ended"] == "interrupted"
    (arms[0] / "planted.sessions.json").write_text('{"sessions": [1, "x"]}')
    assert load_sessions([arms[0] / "planted.sessions.json", tmp_path / "none.json"]) == []
