"""What AutoAttack has cost on a comparison's winners, read from the parts
their assessments stored.

AutoAttack runs in parts of 50 images (``ras_deap.assess.autoattack.
PART_IMAGES``), each stored when it ends with the time of each component
(``autoattack-parts.jsonl`` in the cell; parts of an older run also sit in
its ``heldout*.partial.jsonl``). This reads them without attacking anything
and prints, per winner and eps, the parts and images done, the share still
robust after APGD-CE, APGD-T and Square, each component's summed wall time
and the CPU time per part (parts stored since 2026-12-08 record it);
then, per eps, the mean time of a part over every winner measured, and what
a whole assessment (``--images`` per winner, ``--winners`` winners) costs
at that pace.

    python benchmarks/autoattack_costs.py docs/results/table2-mnist10k-cells

Times are each part's own, on whichever machine, load and number of torch
threads ran it: on a shared machine the wall time overstates the CPU time,
and before 2026-12-08 a second torch thread could double the CPU time too.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from ras_deap.assess.assess_config import AUTOATTACK_COMPONENTS
from ras_deap.assess.journal import PARTS_NAME, valid_part
from ras_deap.atomic import read_json_lines

__all__ = ["autoattack_costs", "main"]

COMPONENTS = tuple(name for name, _ in AUTOATTACK_COMPONENTS)


def _parts(folder: Path) -> dict[str, dict[str, Any]]:
    """The cell's stored parts by key (the parts file last: it wins)."""
    found: dict[str, dict[str, Any]] = {}
    for path in [*sorted(folder.glob("heldout*.partial.jsonl")), folder / PARTS_NAME]:
        for entry in read_json_lines(path, ordered=False):
            if isinstance(entry, dict) and isinstance(entry.get("part_key"), str) \
                    and valid_part(entry.get("part")):
                found[entry["part_key"]] = entry["part"]
    return found


def autoattack_costs(out: Path) -> list[dict[str, Any]]:
    """One record per cell and eps: ``parts``, ``images``, ``robust_after``
    (component -> share of the images still robust, clean errors counted
    robust as the part stores them), ``seconds`` (component -> summed wall
    time), ``cpu_seconds`` (each part's CPU time, for the parts that have it)."""
    rows = []
    for folder in sorted(p for p in (out / "cells").iterdir() if p.is_dir()):
        by_eps: dict[float, list[dict[str, Any]]] = defaultdict(list)
        for key, part in _parts(folder).items():
            try:
                settings = json.loads(key)["part"]
                by_eps[float(settings["eps"])].append(part)
            except (ValueError, KeyError, TypeError):
                continue  # not a part this script knows
        for eps, parts in sorted(by_eps.items()):
            images = sum(len(p["ok"]) for p in parts)
            if not images:
                continue
            rows.append({
                "cell": folder.name, "eps": eps, "parts": len(parts), "images": images,
                "robust_after": {c: sum(p["robust_after"][c].count("1") for p in parts) / images
                                 for c in COMPONENTS},
                "seconds": {c: sum(float(p["seconds"][c]) for p in parts) for c in COMPONENTS},
                # CPU time: only parts written since it was recorded (2026-12-08) have it
                "cpu_seconds": [sum(map(float, p["cpu_seconds"].values())) for p in parts
                                if isinstance(p.get("cpu_seconds"), dict)]})
    return rows


def _eps_label(eps: float) -> str:
    steps = eps * 255
    return f"{round(steps)}/255" if math.isclose(steps, round(steps), abs_tol=1e-6) else f"{eps:g}"


def _cpu(seconds: list[float], parts: int) -> str:
    """Mean CPU-s of the parts that recorded it (how many, when not all)."""
    if not seconds:
        return "-"
    mean = f"{statistics.fmean(seconds):.0f}"
    return mean if len(seconds) == parts else f"{mean} ({len(seconds)} of {parts} parts)"


def format_costs(rows: list[dict[str, Any]], images: int, winners: int,
                 part_images: int = 50) -> str:
    lines = ["| winner | eps | parts | images | robust after APGD-CE / APGD-T / Square | "
             "APGD-CE s | APGD-T s | Square s | s per part | CPU-s per part |",
             "|---" * 10 + "|"]
    for r in rows:
        after = " / ".join(f"{100 * r['robust_after'][c]:.0f} %" for c in COMPONENTS)
        s = r["seconds"]
        lines.append(f"| {r['cell']} | {_eps_label(r['eps'])} | {r['parts']} | {r['images']} | "
                     f"{after} | {s['apgd-ce']:.0f} | {s['apgd-t']:.0f} | {s['square']:.0f} | "
                     f"{sum(s.values()) / r['parts']:.0f} | "
                     + _cpu(r["cpu_seconds"], r["parts"]) + " |")
    per_eps: dict[float, list[float]] = defaultdict(list)
    for r in rows:
        per_eps[r["eps"]] += [sum(r["seconds"].values()) / r["parts"]] * r["parts"]
    parts_per_winner = math.ceil(images / part_images)
    lines += ["", f"At the mean pace of the parts measured ({images} images = "
                  f"{parts_per_winner} parts per winner, {winners} winners):", ""]
    for eps, seconds in sorted(per_eps.items()):
        mean = statistics.fmean(seconds)
        lines.append(f"* {_eps_label(eps)}: {mean:.0f} s per part over {len(seconds)} parts; "
                     f"{mean * parts_per_winner / 3600:.2f} h per winner, "
                     f"{mean * parts_per_winner * winners / 3600:.1f} h for {winners}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="a python -m ras_deap.compare --out folder")
    p.add_argument("--images", type=int, default=200, help="AutoAttack images per winner")
    p.add_argument("--winners", type=int, default=20, help="winners to assess in all")
    args = p.parse_args(argv)
    if not (args.out / "cells").is_dir():
        print(f"{args.out} holds no cells/ folder: pass a python -m ras_deap.compare --out "
              "folder", file=sys.stderr)
        return 2
    rows = autoattack_costs(args.out)
    if not rows:
        print(f"no AutoAttack parts stored under {args.out}/cells yet")
        return 0
    print(format_costs(rows, args.images, args.winners))
    return 0


if __name__ == "__main__":
    sys.exit(main())
