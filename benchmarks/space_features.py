"""Which architectural features do a search's networks have, and do they pay? (issue #27)

Reads the evaluation journals of finished ``compare`` cells and, per method,
reports for a few features of the genome the share of the evaluated
networks that have it, their mean search fitness with and without it, and
its share among the method's ``--top`` fittest networks (pooled over seeds):

* ``stride2``: some convolution has stride 2 (on 8x8 digits, two of them
  leave a 2x2 map);
* ``dense->conv``: a dense layer feeds a convolution (inside a block, or
  from one block to the next).

    python benchmarks/space_features.py docs/results/table2-digits-cells \
        --methods random,regularized,tpe

A RAS-space method's journal and TPE's chains are read alike: a chain is a
one-block model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from ras_deap.atomic import read_json_lines

FEATURES = ("stride2", "dense->conv")


def features(genome: dict[str, Any]) -> dict[str, bool]:
    """The features of one genome (its ``to_dict`` form)."""
    layers, blocks, model = genome["layers"], genome["blocks"], genome["model"]

    def kinds(block: str) -> list[str]:
        return [layers[name]["kind"] for name in blocks[block]["layers"]]

    stride2 = any(layers[name]["kind"] == "conv" and layers[name]["stride"] == 2
                  for block in model["blocks"] for name in blocks[block]["layers"])
    dense_conv = any(kinds(block)[i] == "dense" and kinds(block)[j] == "conv"
                     for block in model["blocks"] for i, j in blocks[block]["edges"])
    dense_conv = dense_conv or any(
        "dense" in kinds(model["blocks"][i]) and "conv" in kinds(model["blocks"][j])
        for i, j in model["edges"])
    return {"stride2": stride2, "dense->conv": dense_conv}


def _rows(out: Path, method: str) -> list[tuple[dict[str, bool], float]]:
    rows = []
    for journal in sorted((out / "cells").glob(f"{method}-seed*/evaluations.jsonl")):
        for entry in read_json_lines(journal):
            rows.append((features(entry["genome"]), float(entry.get("fitness") or 0.0)))
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("compare_out", type=Path, help="a compare --out folder")
    p.add_argument("--methods", required=True, help="comma-separated methods with journals")
    p.add_argument("--top", type=int, default=50, help="the fittest networks per method")
    args = p.parse_args(argv)
    table = []
    print("| method | feature | networks with it | mean fitness with | without | "
          f"share of the top {args.top} |")
    print("|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        rows = _rows(args.compare_out, method)
        if not rows:
            sys.exit(f"no journal of {method!r} under {args.compare_out}/cells")
        top = sorted(rows, key=lambda r: -r[1])[:args.top]
        for name in FEATURES:
            with_ = [f for feats, f in rows if feats[name]]
            without = [f for feats, f in rows if not feats[name]]
            row = {"method": method, "feature": name, "networks": len(rows),
                   "share": len(with_) / len(rows),
                   "mean_with": statistics.fmean(with_) if with_ else None,
                   "mean_without": statistics.fmean(without) if without else None,
                   "top_share": sum(feats[name] for feats, _ in top) / len(top)}
            table.append(row)

            def num(x: float | None) -> str:
                return "-" if x is None else f"{x:.3f}"

            print(f"| {method} | {name} | {row['share']:.0%} of {len(rows)} | "
                  f"{num(row['mean_with'])} | {num(row['mean_without'])} | "
                  f"{row['top_share']:.0%} |")
    return table


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
