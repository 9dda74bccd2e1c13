"""Check this machine's kernels: the parameter gradients of compiled networks
against a float64 reference that does not use oneDNN.

Why: torch's CPU convolutions go through oneDNN, whose kernels differ by
instruction set. One of them (the AVX2 1x1 weight gradient for channels-last
inputs with 1-4 channels, oneDNN #6035) wrote past its buffer and, where it
did not crash, returned wrong gradients; on AVX-512 the channels-last path
for one-channel images was off by up to 4% too. Nothing fails loudly when
gradients are wrong, so they are compared, not trusted.

``python -m ras_deap.evaluation.gradcheck`` checks the first population of a
search (``--population``, ``--seed``) or genomes from a JSON file
(``--genomes``: a list of model documents) on images given in both layouts,
with 1 and 2 torch threads; it prints one JSON object per check and exits 1
when any error exceeds ``--tolerance``. Run it under
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` to exercise the AVX2
kernels on an AVX-512 machine. A kernel that corrupts memory may crash or
hang instead: callers run it in a subprocess with a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from ras_deap.genome import Model

from ..flags import OptionParser
from .compiler import compile_model

__all__ = ["LAYOUTS", "TOLERANCE", "build_parser", "gradient_error", "main"]

TOLERANCE = 1e-3  # largest |float32 - float64| gradient, relative to the largest gradient
LAYOUTS = ("canonical", "channels_last")
BATCH = 64  # the default training batch: kernels are chosen by shape
# A ReLU input within float32 rounding of zero can fall on the other side of
# it than in float64, which changes the gradients legitimately, and in a large
# network it happens on almost every input (seen: a 2e-2 error in float32
# without oneDNN too). So the reference takes the float32 network's ReLU
# decisions (:func:`_tied_relus`); only the arithmetic is compared. An error
# also has to show on each of these input draws, as a kernel bug does.
DRAWS = (0, 1, 2)


def _inputs(shape: Sequence[int], layout: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((BATCH, *shape), generator=gen)
    y = torch.randint(0, 10, (BATCH,), generator=gen)
    if layout == "channels_last":  # for one channel: the strides x[:, None][idx] has
        x = x.to(memory_format=torch.channels_last)
    return x, y


def _gradients(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    net.zero_grad(set_to_none=True)
    out = net(x)
    F.cross_entropy(out, y).backward()
    return [out.detach().double(), *(p.grad.detach().double() for p in net.parameters()
                                     if p.grad is not None)]


def gradient_error(model: Model, shape: Sequence[int] = (1, 8, 8), *,
                   layout: str = "canonical") -> float:
    """The smallest, over the input draws :data:`DRAWS`, of the largest
    difference between the logits and parameter gradients of one training
    step computed as a search computes it (float32, oneDNN, the input in
    ``layout``) and a float64 reference without oneDNN, relative to the
    reference's largest gradient."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: choose one of {LAYOUTS}")
    return min(_draw_error(model, shape, layout, seed) for seed in DRAWS)


@contextlib.contextmanager
def _tied_relus(net: torch.nn.Module, reference: torch.nn.Module) -> Iterator[None]:
    """Record each ReLU's decisions (input > 0) in ``net``'s forward passes
    and make ``reference``'s ReLU of the same name apply them (input times
    the recorded mask), so that both compute the same piecewise-linear
    function and differ only by rounding."""
    masks: dict[str, torch.Tensor] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_mod: torch.nn.Module, inputs: tuple[torch.Tensor, ...], _out: Any) -> None:
            masks[name] = inputs[0].detach() > 0
        return hook

    def apply(name: str) -> Callable[..., torch.Tensor]:
        def hook(_mod: torch.nn.Module, inputs: tuple[torch.Tensor, ...],
                 _out: Any) -> torch.Tensor:
            return inputs[0] * masks[name].to(inputs[0].dtype)
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in net.named_modules()
               if isinstance(m, torch.nn.ReLU)]
    handles += [m.register_forward_hook(apply(n)) for n, m in reference.named_modules()
                if isinstance(m, torch.nn.ReLU)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _draw_error(model: Model, shape: Sequence[int], layout: str, seed: int) -> float:
    x, y = _inputs(shape, layout, seed)
    torch.manual_seed(seed)
    net = compile_model(model, tuple(shape), 10)
    reference = copy.deepcopy(net).double()
    with _tied_relus(net, reference):
        got = _gradients(net, x, y)  # first: the reference replays its ReLU decisions
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the flags warn about TF32 on Intel GPUs
            with torch.backends.mkldnn.flags(enabled=False):
                expected = _gradients(
                    reference, x.double().clone(memory_format=torch.contiguous_format), y)
    scale = max(float(t.abs().max()) for t in expected[1:])
    return max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True)) / scale


def _shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r}: write C x H x W as 1x8x8") from None
    return c, h, w


def _models(args: argparse.Namespace) -> list[Model]:
    if args.genomes is not None:
        documents = json.loads(Path(args.genomes).read_text(encoding="utf-8"))
        return [Model.from_dict(d) for d in documents]
    from ras_deap.evolution import initial_state

    return [ind.genome for ind in initial_state(args.seed, args.population).offspring]


def build_parser() -> OptionParser:
    parser = OptionParser(prog="python -m ras_deap.evaluation.gradcheck",
                          description=__doc__.split("\n\n")[0])
    parser.add_argument("--genomes", help="JSON file: a list of model documents")
    parser.add_argument("--population", type=int, default=25,
                        help="without --genomes: check the first population of this size")
    parser.add_argument("--seed", type=int, default=0, help="the search seed of that population")
    parser.add_argument("--shapes", type=lambda s: [_shape(v) for v in s.split(",")],
                        default=[(1, 8, 8), (3, 8, 8)], help="image shapes (default 1x8x8,3x8x8)")
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 2], help="torch thread counts (default 1,2)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    worst = 0.0
    for model in _models(args):
        for threads in args.threads:
            torch.set_num_threads(threads)
            for shape in args.shapes:
                for layout in LAYOUTS:
                    error = gradient_error(model, shape, layout=layout)
                    worst = max(worst, error)
                    print(json.dumps({"genome": model.id, "threads": threads,
                                      "shape": list(shape), "layout": layout,
                                      "error": error}), flush=True)
    ok = worst <= args.tolerance
    print(f"{'ok' if ok else 'FAILED'}: largest relative gradient error {worst:.2e} "
          f"(tolerance {args.tolerance:.0e})", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
