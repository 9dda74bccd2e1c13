"""Export a search's winner: ``model.py``, ``weights.pt``, ``model.onnx``,
``architecture.svg``, ``test_split.npz`` and ``README.md`` in one folder,
for use without ras_deap.

The genome and weights come from
:func:`ras_deap.assess.target.resolve_target` (a run folder, an MLflow run
id, or a genome JSON with ``--weights``). The generated module is checked
against the compiled network before anything is written.

``test_split.npz`` is the run's quarantined test split (``images`` float32
N x C x H x W in [0, 1], ``labels`` int64), so the export can be checked
where ras_deap is not installed: ``model.py`` classifies it with the test
accuracy the run reported. It is written only when the dataset's training
statistics for the run's seed equal the normalisation stored in the
weights, i.e. when it is the split these weights were tested on.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..assess.target import AssessTarget, TargetError
from ..atomic import write_atomic, write_bytes_atomic
from .codegen import CLASS_NAME, generate_source, rename_state_dict

__all__ = ["DATASET_SHAPES", "ExportResult", "export_target", "load_generated"]

# Image shape (C, H, W) and pixel levels of each dataset, as its loader gives
# them (tests/test_export.py checks the embedded ones against the loaders).
DATASET_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 17),
    "mnist10k": ((1, 28, 28), 256),
    "mnist": ((1, 28, 28), 256),
    "fashion-mnist": ((1, 28, 28), 256),
    "cifar10": ((3, 32, 32), 256),
}
ATOL = 1e-5  # logits of the generated module and the ONNX model vs the compiled network
ONNX_HINT = ("skipped model.onnx: the onnx package is not installed "
             "(pip install 'ras_deap[export]' or pip install onnx)")


@dataclass
class ExportResult:
    files: dict[str, Path]
    genome_id: str
    max_diff: float                    # generated module vs compiled network
    onnx_diff: float | None = None     # onnxruntime vs compiled network (None: not run)
    test_accuracy: float | None = None  # model.py on test_split.npz (None: not written)
    test_images: int = 0
    notes: list[str] = field(default_factory=list)


def load_generated(path: Path, name: str = "ras_deap_exported_model") -> Any:
    """The module of a generated ``model.py`` (imported from its file)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _load_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise TargetError(f"{path} is not a state dict torch can read: "
                          f"{type(exc).__name__}: {_first_line(exc)}") from exc
    if not isinstance(state, dict) or "head.weight" not in state:
        raise TargetError(f"{path} is not the state dict of a compiled ras_deap network "
                          "(no head.weight)")
    return state


def _run_metrics(folder: Path) -> dict[str, Any]:
    """What the run folder recorded: the search summary (checkpoint) and the
    direct assessment (assess.json), numbers only."""
    from ..checkpoint import CheckpointError, load_checkpoint

    metrics: dict[str, Any] = {}
    try:
        checkpoint = load_checkpoint(folder)
    except (CheckpointError, OSError, ValueError):
        checkpoint = None
    summary = (checkpoint.completed or {}).get("summary", {}) if checkpoint else {}
    for key, value in summary.items():
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value):
            metrics[key] = value
    assess = folder / "assess.json"
    if assess.is_file():
        try:
            data = json.loads(assess.read_text())
            if isinstance(data.get("test_accuracy"), int | float):
                metrics["assess/test_accuracy"] = data["test_accuracy"]
            for row in data.get("rows", []):
                if isinstance(row.get("accuracy"), int | float):
                    metrics[f"assess/{row['key']}_accuracy"] = row["accuracy"]
        except (OSError, ValueError, AttributeError, KeyError):
            pass
    return metrics


# The README's first metrics table (the rest go in a folded one).
MAIN_METRICS = ("final_test_accuracy", "final_accuracy", "final_robustness", "final_fitness",
                "assess/test_accuracy", "fitness", "accuracy", "robustness", "parameters",
                "flops", "generation_found", "evaluations")


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


TEST_SPLIT = "test_split.npz"
SVG = "architecture.svg"


def _test_split(target: AssessTarget, mean: Any, std: Any) -> tuple[Any, Any] | str:
    """The run's test images and labels, or why they are not exported."""
    import numpy as np

    from ..data import DatasetError, load_dataset

    cfg = target.config
    try:
        data = load_dataset(cfg.dataset, cfg.data_dir, download=False, seed=cfg.seed)
    except (DatasetError, OSError) as exc:
        return f"no {TEST_SPLIT}: dataset {cfg.dataset} did not load ({_first_line(exc)})"
    if not (np.allclose(data.mean, mean.flatten().tolist(), rtol=0, atol=1e-6)
            and np.allclose(data.std, std.flatten().tolist(), rtol=0, atol=1e-6)):
        return (f"no {TEST_SPLIT}: the weights' normalisation is not that of {cfg.dataset} "
                f"seed {cfg.seed}, so its test split is not the one they were tested on")
    return data.test.x, data.test.y


def _write_test_split(path: Path, images: Any, labels: Any, module: Any) -> float:
    """Save the split and return ``module``'s accuracy on it, read back from
    the file as a user of ``model.py`` reads it (argmax of the logits)."""
    import numpy as np
    import torch

    write_bytes_atomic(path, lambda fh: np.savez_compressed(fh, images=images, labels=labels))
    with np.load(path) as saved:
        x, y = saved["images"], saved["labels"]
    with torch.no_grad():  # batches of 1000 (the embedded datasets' test splits are no larger)
        predicted = np.concatenate([module(part).argmax(1).numpy()
                                    for part in torch.from_numpy(x).split(1000)])
    return float((predicted == y).mean())


def _files_section(result: ExportResult, has_onnx: bool) -> list[str]:
    """The table of the export's files (and the architecture drawing)."""
    rows = ["| `model.py` | the network as a plain `nn.Module` (`Network`); imports only torch |",
            "| `weights.pt` | its state dict (`torch.save`) |"]
    if has_onnx:
        rows.append("| `model.onnx` | the same network in ONNX (input `images`, output "
                    "`logits`, any batch size) |")
    rows.append("| `genome.json` | the genome (`ras_deap.genome.Model.from_json`) |")
    if SVG in result.files:
        rows.append(f"| `{SVG}` | the architecture: blocks, and the layers inside each |")
    if TEST_SPLIT in result.files:
        rows.append(f"| `{TEST_SPLIT}` | the run's test split: `images` (float32, [0, 1]) and "
                    "`labels` |")
    drawing = ["", f"![Genome {result.genome_id}]({SVG})"] if SVG in result.files else []
    return ["| file | what |", "| --- | --- |", *rows, *drawing]


def _usage_section(net: Any, levels: int) -> list[str]:
    """What the network takes and gives, and how to load it."""
    c, h, w = net.input_shape
    mean = [round(float(v), 6) for v in net.normalize.mean.flatten().tolist()]
    std = [round(float(v), 6) for v in net.normalize.std.flatten().tolist()]
    return [
        "## Input",
        "",
        f"- float32 tensor N x {c} x {h} x {w} (channels, height, width), values in "
        f"**[0, 1]** ({levels} levels per pixel: steps of 1/{levels - 1})",
        f"- the network normalises by itself: (x - mean) / std per channel, mean = {mean}, "
        f"std = {std}; do not normalise before",
        f"- output: N x {net.num_classes} logits; the class is their argmax",
        "",
        "## How to load it",
        "",
        "```python",
        "import torch",
        "from model import Network",
        "net = Network().eval()",
        'net.load_state_dict(torch.load("weights.pt"))',
        f"classes = net(torch.rand(4, {c}, {h}, {w})).argmax(1)  # images in [0, 1]",
        "```",
        "",
        "or from a shell: `python model.py weights.pt images.pt` (a saved N x "
        f"{c} x {h} x {w} tensor) prints the classes.",
        "",
    ]


def _test_section(target: AssessTarget, result: ExportResult) -> list[str]:
    """How to classify the exported test split, with the accuracy it prints."""
    if result.test_accuracy is None:
        return []
    return [
        "## Classify the test split",
        "",
        "```python",
        "import numpy as np, torch",
        "from model import Network",
        "net = Network().eval()",
        'net.load_state_dict(torch.load("weights.pt"))',
        f'test = np.load("{TEST_SPLIT}")',
        "with torch.no_grad():",
        '    predicted = net(torch.from_numpy(test["images"])).argmax(1).numpy()',
        'print((predicted == test["labels"]).mean())',
        "```",
        "",
        f"prints {result.test_accuracy:.4f} ({result.test_images} images of dataset "
        f"`{target.config.dataset}`, seed {target.config.seed}).",
        "",
    ]


def _metrics_section(target: AssessTarget, metrics: dict[str, Any]) -> list[str]:
    """The run's metrics: the main ones in a table, every other in a fold."""
    lines = ["## Metrics of the run", ""]
    main = [k for k in MAIN_METRICS if k in metrics]
    rest = [k for k in metrics if k not in main]
    if main:
        lines += ["`final_*`: the architecture retrained on the full training set; the "
                  "others: as measured during the search; `assess/*`: "
                  "python -m ras_deap.assess.", "",
                  "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(metrics[k])} |" for k in main]
    if rest:
        lines += ["", "<details><summary>every number the run recorded</summary>", "",
                  "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(metrics[k])} |" for k in rest]
        lines += ["", "</details>"]
    if not metrics:
        lines.append("None recorded beside the weights"
                     + (f"; see MLflow run `{target.run_id}`." if target.run_id else "."))
    return lines


def _checks_section(result: ExportResult) -> list[str]:
    """What the export checked: the generated module (and ONNX) against the
    package's network, and the test accuracy."""
    lines = ["## Checks made at export", "",
             f"- `model.py` with `weights.pt` vs the ras_deap network: largest logit difference "
             f"{result.max_diff:.2e} (tolerance {ATOL:g})"]
    if result.onnx_diff is not None:
        lines.append(f"- `model.onnx` under onnxruntime: largest logit difference "
                     f"{result.onnx_diff:.2e}")
    if result.test_accuracy is not None:
        lines.append(f"- `model.py` on `{TEST_SPLIT}`: test accuracy "
                     f"{result.test_accuracy:.4f} ({result.test_images} images)")
    return lines + [f"- {note}" for note in result.notes]


def _readme(target: AssessTarget, net: Any, levels: int, metrics: dict[str, Any],
            result: ExportResult, has_onnx: bool) -> str:
    """The export's README.md: its files, how to use them, the run's metrics
    and what the export checked."""
    lines = [
        f"# Genome {result.genome_id}",
        "",
        f"Exported by `python -m ras_deap.export` from {target.description}"
        f" (dataset `{target.config.dataset}`, seed {target.config.seed}"
        + (f", MLflow run `{target.run_id}`" if target.run_id else "") + ").",
        "",
        *_files_section(result, has_onnx),
        "",
        *_usage_section(net, levels),
        *_test_section(target, result),
        *_metrics_section(target, metrics),
        "",
        *_checks_section(result),
    ]
    return "\n".join(lines) + "\n"


def _export_onnx(module: Any, example: Any, path: Path) -> None:
    import onnx
    import torch

    # The TorchScript exporter: the torch.export one needs onnxscript too, and
    # this network (no control flow) traces exactly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        buffer = io.BytesIO()  # the legacy exporter writes a file-like object
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["images"],
                          output_names=["logits"], opset_version=17,
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()), full_check=True)
    write_bytes_atomic(path, lambda fh: fh.write(buffer.getvalue()))


def _onnxruntime_diff(path: Path, x: Any, reference: Any) -> float:
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    return float(np.abs(logits - reference.numpy()).max())


def export_target(target: AssessTarget, out: str | Path, *, onnx: bool = True,
                  test_split: bool = True, metrics_dir: Path | None = None,
                  log: Callable[[str], None] = lambda m: None) -> ExportResult:
    """Write ``model.py``, ``weights.pt``, ``genome.json``, ``architecture.svg``,
    ``README.md``, (with ``test_split``) ``test_split.npz`` and (when the onnx
    package is importable) ``model.onnx`` into ``out``; the README's metrics
    come from ``metrics_dir`` (default: the target's folder). Raises
    :class:`TargetError` with one line when the target cannot be exported."""
    import torch

    from ..errors import BuildError
    from ..evaluation.compiler import compile_model
    from ..report import draw_model

    if target.weights is None:
        raise TargetError(f"{target.description} has no weights (best_model.pt): the search "
                          "ended without final training; retrain it (python -m ras_deap.run "
                          "--resume) or pass a genome JSON with --weights")
    dataset = target.config.dataset
    if dataset not in DATASET_SHAPES:
        raise TargetError(f"unknown image shape of dataset {dataset!r}")
    shape, levels = DATASET_SHAPES[dataset]
    state = _load_state(target.weights)
    mean = state.get("normalize.mean")
    std = state.get("normalize.std")
    if mean is None or std is None or mean.numel() != shape[0]:
        raise TargetError(f"{target.weights} does not hold the {shape[0]}-channel "
                          f"normalisation of {dataset} (normalize.mean/std)")
    try:
        net = compile_model(target.genome, shape, int(state["head.weight"].shape[0]),
                            mean.flatten().tolist(), std.flatten().tolist())
        net.load_state_dict(state)
    except (BuildError, RuntimeError, ValueError) as exc:
        raise TargetError(f"{target.weights} does not fit genome {target.genome.id} on "
                          f"{dataset} ({_first_line(exc)})") from exc
    net.eval()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"model.py": folder / "model.py", "weights.pt": folder / "weights.pt",
             "genome.json": folder / "genome.json"}
    write_atomic(files["model.py"], generate_source(net, genome_id=target.genome.id,
                                                   levels=levels))
    renamed = rename_state_dict(net.state_dict())
    write_bytes_atomic(files["weights.pt"], lambda fh: torch.save(renamed, fh))
    write_atomic(files["genome.json"], target.genome.to_json())
    module = getattr(load_generated(files["model.py"]), CLASS_NAME)()
    module.load_state_dict(torch.load(files["weights.pt"], map_location="cpu",
                                      weights_only=True))
    module.eval()
    x = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = net(x)
        diff = float((module(x) - reference).abs().max())
    if not diff <= ATOL:
        raise TargetError(f"the generated model.py differs from the network by {diff:.2e} "
                          f"(> {ATOL:g}) on genome {target.genome.id}: please report it")
    result = ExportResult(files=files, genome_id=target.genome.id, max_diff=diff)
    files[SVG] = draw_model(target.genome, folder / SVG)
    split = _test_split(target, mean, std) if test_split else None
    if isinstance(split, str):
        log(split)
        result.notes.append(split)
    elif split is not None:
        files[TEST_SPLIT] = folder / TEST_SPLIT
        result.test_accuracy = _write_test_split(files[TEST_SPLIT], *split, module)
        result.test_images = len(split[1])
    has_onnx = False
    if onnx and _importable("onnx"):
        files["model.onnx"] = folder / "model.onnx"
        _export_onnx(module, x, files["model.onnx"])
        has_onnx = True
        result.notes.append("`model.onnx` passes `onnx.checker.check_model(full_check=True)`")
        if _importable("onnxruntime"):
            result.onnx_diff = _onnxruntime_diff(files["model.onnx"], x, reference)
            if not result.onnx_diff <= 1e-4:
                raise TargetError(f"model.onnx differs from the network by "
                                  f"{result.onnx_diff:.2e} under onnxruntime: please report it")
        else:
            result.notes.append("onnxruntime is not installed: model.onnx was not run")
    elif onnx:
        log(ONNX_HINT)
        result.notes.append(ONNX_HINT)
    metrics_dir = metrics_dir or target.out_dir
    metrics = _run_metrics(metrics_dir) if metrics_dir.is_dir() else {}
    files["README.md"] = folder / "README.md"
    write_atomic(files["README.md"], _readme(target, net, levels, metrics, result, has_onnx))
    return result
