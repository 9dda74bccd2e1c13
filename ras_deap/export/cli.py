"""``python -m ras_deap.export RUN --out DIR``: a search's winner as plain PyTorch and ONNX."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config import DATASET_NAMES
from ..errors import EXIT_USAGE
from ..flags import OptionParser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = OptionParser(
        prog="python -m ras_deap.export",
        description="Export a search's best model for use without ras_deap: model.py (a "
                    "readable nn.Module that imports only torch), weights.pt (its state "
                    "dict), model.onnx (when the onnx package is installed: pip install "
                    "'ras_deap[export]'), genome.json, architecture.svg (a drawing of the "
                    "blocks and their layers), test_split.npz (the run's test images and "
                    "labels) and README.md (input shape, normalisation, metrics, how to "
                    "load it).")
    p.add_argument("target", metavar="RUN",
                   help="a run folder (runs/<name> from python -m ras_deap.run, or a cell "
                        "folder of python -m ras_deap.compare), an MLflow run id, or a genome "
                        "JSON (best_genome.json) with --weights")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into "
                   "(created; files of the same names are replaced)")
    p.add_argument("--weights", metavar="PT", help="state dict (best_model.pt) of a genome file")
    p.add_argument("--member", metavar="GENOME_ID",
                   help="with a run folder of a multi-objective search: export this member "
                        "of its front (front.json) instead of the best; it is re-trained as "
                        "the final training does, once (the weights are kept as "
                        "RUN/front/GENOME_ID/best_model.pt, which assess --member then loads)")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="the genome's dataset (taken from the run; needed for a genome file "
                        "not searched on the default digits)")
    p.add_argument("--tracking-uri", help="MLflow store of an MLflow run id (default: "
                   "sqlite:///mlruns/mlflow.db)")
    p.add_argument("--no-onnx", action="store_true", help="do not write model.onnx")
    p.add_argument("--no-test-split", action="store_true",
                   help="do not write test_split.npz (the run's test images and labels, "
                        "float32, compressed: 11 kB on digits, 0.26 MB on mnist10k, tens of MB for "
                        "the 10,000 test images of cifar10)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def usage(message: str) -> int:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    import tempfile

    from ..assess.target import TargetError, resolve_target
    from ..config import ConfigError
    from .run import export_target

    try:
        # an MLflow run's artifacts are downloaded here, not into the export
        with tempfile.TemporaryDirectory(prefix="ras_deap_export_") as tmp:
            run_id = _is_run_id(args.target)
            target = resolve_target(args.target, weights=args.weights,
                                    tracking_uri=args.tracking_uri, out=tmp if run_id else None,
                                    dataset=args.dataset, member=args.member)
            if args.member and target.weights is None:
                from ..assess.target import retrain_member

                target = retrain_member(target, log=lambda m: print(m, file=sys.stderr,
                                                                    flush=True))
            # the run folder of an MLflow run whose folder is still here holds its metrics
            metrics_dir = (target.weights.parent if run_id and target.weights
                           and not target.weights.is_relative_to(tmp) else None)
            result = export_target(target, args.out, onnx=not args.no_onnx,
                                   test_split=not args.no_test_split, metrics_dir=metrics_dir,
                                   log=lambda m: print(m, file=sys.stderr, flush=True))
    except (TargetError, ConfigError) as exc:
        return usage(str(exc))
    except OSError as exc:
        return usage(f"cannot write the export into {args.out}: {exc}")
    print(f"exported genome {result.genome_id} from {target.description}: "
          f"{', '.join(str(p) for p in result.files.values())}")
    print(f"model.py reproduces the network's logits within {result.max_diff:.1e} of their "
          "scale" + (f"; model.onnx under onnxruntime within {result.onnx_diff:.1e}"
                     if result.onnx_diff is not None else ""))
    if result.test_accuracy is not None:
        print(f"model.py classifies test_split.npz ({result.test_images} images) with "
              f"accuracy {result.test_accuracy:.4f}"
              + (f"; model.onnx with {result.onnx_test_accuracy:.4f}"
                 if result.onnx_test_accuracy is not None else ""))
    return 0


def _is_run_id(text: str) -> bool:
    from pathlib import Path

    from ..assess.target import _RUN_ID

    return not Path(text).exists() and bool(_RUN_ID.match(text))
