"""Seconds per attacked image in every attack setting, and a bank's build time.

    python benchmarks/bench_attacks.py            # tiny config (~1 min on 2 cores)
    python benchmarks/bench_attacks.py --full     # the shipped digits bank's default config

Runs a real build (``ras_deap.attacks.build_bank``) into a temporary folder
and prints the per-(source, attack setting) timings recorded in its manifest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ras_deap.attacks import BuildConfig, SourceConfig, build_bank

TINY = BuildConfig(images_per_setting=3, max_iter=5, sources=("resnet", "fs"),
                   source=SourceConfig(epochs=5))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true",
                   help="the default (shipped digits bank) config instead of the tiny one")
    args = p.parse_args()
    cfg = BuildConfig() if args.full else TINY
    torch.set_num_threads(1)
    print(f"cpu cores: {os.cpu_count()}; config: images/setting {cfg.images_per_setting}, "
          f"max_iter {cfg.max_iter}, sources {','.join(cfg.sources)}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        bank = build_bank(cfg, Path(tmp) / "bench.npz", show_progress=False,
                          log=lambda m: None)
        wall = time.perf_counter() - start
    m = bank.manifest
    print(f"{'source':8} {'setting':18} {'s/image':>8} {'success':>8}")
    for src, per_setting in m["attack_cells"].items():
        for key, c in per_setting.items():
            print(f"{src:8} {key:18} {c['seconds_per_image']:8.3f} "
                  f"{c['succeeded']:>3}/{c['attacked']:<3}")
    train = {k: v["train_seconds"] for k, v in m["source_models"].items()}
    print(f"training seconds: {train}")
    print(f"attack seconds: {m['seconds']['attack']}; build wall time: {wall:.1f} s; "
          f"samples: {len(bank)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
