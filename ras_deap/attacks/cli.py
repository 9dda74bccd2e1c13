"""``python -m ras_deap.attacks build|heldout|show``: build an adversarial
bank, build a held-out transfer set (:mod:`ras_deap.attacks.heldout`), or
print a bank's counts. Bad arguments exit with code 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..bank import HELDOUT_SPLITS, load_bank
from ..flags import OptionParser, old_names
from .build import BankBuildError, build_bank, parse_int_list, parse_name_list
from .build_config import BUILD_OPTIONS, SELECTIONS, BuildConfig
from .heldout import build_heldout_bank, heldout_table
from .heldout_config import HELDOUT_OPTIONS, HELDOUT_SELECTIONS, HeldoutConfig
from .heldout_sources import HELDOUT_SOURCE_OPTIONS, HeldoutSourceConfig
from .settings import AttackSettingError
from .source_models import SOURCE_OPTIONS, SourceConfig, SourceModelError

__all__ = ["format_table", "main"]


def _parser() -> argparse.ArgumentParser:
    p = OptionParser(prog="python -m ras_deap.attacks",
                     description="Transferable adversarial bank (paper section 4.1)")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build",
                       help="train source models, attack, save the bank (resumable)")
    d, o = BuildConfig(), BUILD_OPTIONS  # defaults and help from BuildConfig's declarations
    b.add_argument("--dataset", default=d.dataset, help=o["dataset"].help)
    b.add_argument("--out", required=True, help="output bank path, must end in .npz")
    b.add_argument("--data-dir", default=None, help=o["data_dir"].help)
    b.add_argument("--seed", type=int, default=d.seed)
    for name in ("images_per_setting", "linf_images_per_setting", "max_iter"):
        old, note = old_names("attacks build", o[name].flag)
        b.add_argument(o[name].flag, *old, dest=name, type=int, metavar="N",
                       default=getattr(d, name), help=o[name].help + note)
    b.add_argument("--sources", default=",".join(d.sources), help=o["sources"].help)
    b.add_argument("--l0-th", default=",".join(map(str, d.l0_th)), help=o["l0_th"].help)
    b.add_argument("--linf-th", default=None, help=o["linf_th"].help)
    b.add_argument("--optimizers", default=",".join(d.optimizers), help=o["optimizers"].help)
    b.add_argument("--select", default=d.select, choices=SELECTIONS, help=o["select"].help)
    b.add_argument("--pool", type=int, default=None, help=o["pool"].help)
    b.add_argument("--epochs", type=int, default=d.source.epochs,
                   help=SOURCE_OPTIONS["epochs"].help)
    b.add_argument("--at-epochs", type=int, default=d.source.at_epochs,
                   help=SOURCE_OPTIONS["at_epochs"].help)
    b.add_argument("--keep-work", action="store_true",
                   help="keep the OUT.partial work folder after a finished build")
    b.add_argument("--workers", type=int, default=1,
                   help="processes training and attacking sources at once (the same bank "
                        "for any number; 2 uses both cores of a 2-core machine)")
    b.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    h = sub.add_parser("heldout",
                       help="build a held-out transfer set: base images, source families and "
                            "attacks that built no fitness bank")
    hd, ho = HeldoutConfig(), HELDOUT_OPTIONS  # defaults and help from the declarations
    h.add_argument("--dataset", default=hd.dataset, help=ho["dataset"].help)
    h.add_argument("--out", required=True, help="output bank path, must end in .npz")
    h.add_argument("--data-dir", default=None, help=ho["data_dir"].help)
    h.add_argument("--split", default=hd.split, choices=HELDOUT_SPLITS, help=ho["split"].help)
    h.add_argument("--seed", type=int, default=hd.seed, help=ho["seed"].help)
    h.add_argument("--sources", default=",".join(hd.sources), help=ho["sources"].help)
    h.add_argument("--attacks", default=",".join(hd.attacks), help=ho["attacks"].help)
    h.add_argument("--linf-th", default=None, help=ho["linf_th"].help)
    h.add_argument("--images", type=int, default=None, help=ho["images"].help)
    h.add_argument("--select", default=hd.select, choices=HELDOUT_SELECTIONS,
                   help=ho["select"].help)
    for name in ("candidates", "hsj_max_iter", "hsj_max_eval", "hsj_init_eval", "pgd_steps"):
        h.add_argument(ho[name].flag, type=int, default=getattr(hd, name), help=ho[name].help)
    h.add_argument("--epochs", type=int, default=hd.source.epochs,
                   help=HELDOUT_SOURCE_OPTIONS["epochs"].help)
    h.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    s = sub.add_parser("show",
                       help="print the Table-1-style counts of a bank")
    s.add_argument("path", help="bank .npz path")
    s.add_argument("--json", action="store_true", help="print the whole manifest")
    return p


def format_table(manifest: dict) -> str:
    """Rows source x optimizer, columns norm x th, as the paper's Table 1."""
    from .build import table_rows

    rows = table_rows(manifest)
    cols = list(dict.fromkeys(c for _, _, cs, _ in rows for c in cs))
    head = ["source", "optimizer", *cols, "total"]
    body = [[s, o, *[str(cs.get(c, 0)) for c in cols], str(t)] for s, o, cs, t in rows]
    totals = ["total", "", *[str(sum(r[2].get(c, 0) for r in rows)) for c in cols],
              str(sum(r[3] for r in rows))]
    widths = [max(len(r[i]) for r in [head, *body, totals]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), *(fmt.format(*r) for r in body), fmt.format(*totals)]
    grid = manifest.get("linf_grid")
    if grid:
        lines.append(f"Linf th unit: {grid['unit']} = {grid['step_255']:g}/255 "
                     f"({grid['levels']} intensity levels)")
    counts = manifest.get("counts", {})
    if "base_images" in counts:
        lines.append(f"{counts['total']} samples from {counts['base_images']} distinct base "
                     "images of the quarantined bank split")
    acc = manifest.get("source_models", {})
    if acc:
        lines.append("clean test accuracy: " + ", ".join(
            f"{k} {v['test_accuracy']:.4f}" for k, v in acc.items()))
    rates = [f"{s}/{k}: {c['succeeded']}/{c['attacked']}"
             for s, per_setting in manifest.get("attack_cells", {}).items()
             for k, c in per_setting.items()]
    lines.append("success per (source, attack setting): " + "; ".join(rates))
    return "\n".join(lines)


def _build_config(args: argparse.Namespace) -> BuildConfig:
    """The bank a ``build`` command line describes (tests compare it with the
    records of the shipped banks)."""
    src = SourceConfig(epochs=args.epochs, at_epochs=args.at_epochs)
    return BuildConfig(
        dataset=args.dataset, data_dir=args.data_dir, seed=args.seed,
        images_per_setting=args.images_per_setting, max_iter=args.max_iter,
        linf_images_per_setting=args.linf_images_per_setting,
        sources=parse_name_list(args.sources), l0_th=parse_int_list(args.l0_th, "--l0-th"),
        linf_th=None if args.linf_th is None else parse_int_list(args.linf_th, "--linf-th"),
        optimizers=parse_name_list(args.optimizers), source=src, select=args.select,
        pool=args.pool)


def _build(args: argparse.Namespace) -> int:
    cfg = _build_config(args)
    start = time.perf_counter()
    bank = build_bank(cfg, args.out, show_progress=not args.no_progress,
                      keep_work=args.keep_work, log=lambda m: print(m, file=sys.stderr),
                      workers=args.workers)
    print(format_table(bank.manifest))
    print(f"saved {len(bank)} samples to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def _heldout(args: argparse.Namespace) -> int:
    cfg = HeldoutConfig(
        dataset=args.dataset, data_dir=args.data_dir, split=args.split, seed=args.seed,
        sources=parse_name_list(args.sources), attacks=parse_name_list(args.attacks),
        linf_th=None if args.linf_th is None else parse_int_list(args.linf_th, "--linf-th"),
        images=args.images, hsj_max_iter=args.hsj_max_iter, hsj_max_eval=args.hsj_max_eval,
        hsj_init_eval=args.hsj_init_eval, pgd_steps=args.pgd_steps,
        source=HeldoutSourceConfig(epochs=args.epochs), select=args.select,
        candidates=args.candidates)
    start = time.perf_counter()
    bank = build_heldout_bank(cfg, args.out, show_progress=not args.no_progress,
                              log=lambda m: print(m, file=sys.stderr))
    print(heldout_table(bank.manifest))
    print(f"saved {len(bank)} samples to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..errors import run_cli

    parser = _parser()
    args = parser.parse_args(argv)

    def work() -> int:
        try:
            if args.command == "build":
                return _build(args)
            if args.command == "heldout":
                return _heldout(args)
            bank = load_bank(Path(args.path))
            print(json.dumps(bank.manifest, indent=2) if args.json
                  else heldout_table(bank.manifest) if "heldout" in bank.manifest
                  else format_table(bank.manifest))
            sys.stdout.flush()  # a closed pipe (`show ... | head`) fails here, inside run_cli
            return 0
        except (AttackSettingError, BankBuildError, SourceModelError) as exc:
            from ..errors import UsageError

            raise UsageError(str(exc)) from exc

    return run_cli(parser.prog, work)
