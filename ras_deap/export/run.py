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
from pathlib import Path
from typing import Any

from ..assess.target import AssessTarget, TargetError
from ..atomic import write_atomic, write_bytes_atomic
from .codegen import CLASS_NAME, generate_source, rename_state_dict
from .readme import readme_text
from .result import ATOL, ONNX_ATOL, SVG, TEST_SPLIT, ExportResult, logit_error

__all__ = ["DATASET_SHAPES", "export_target", "load_generated"]

# Image shape (C, H, W) and pixel levels of each dataset, as its loader gives
# them (tests/test_export.py checks the embedded ones against the loaders).
DATASET_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 17),
    "mnist10k": ((1, 28, 28), 256),
    "mnist": ((1, 28, 28), 256),
    "fashion-mnist": ((1, 28, 28), 256),
    "cifar10": ((3, 32, 32), 256),
}
ONNX_HINT = ("skipped model.onnx: the onnx package is not installed "
             "(pip install 'ras_deap[export]' or pip install onnx)")


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


def _write_test_split(path: Path, images: Any, labels: Any) -> tuple[Any, Any]:
    """Save the split and read it back as a user of the export reads it."""
    import numpy as np

    write_bytes_atomic(path, lambda fh: np.savez_compressed(fh, images=images, labels=labels))
    with np.load(path) as saved:
        return saved["images"], saved["labels"]


def _split_logits(module: Any, images: Any) -> Any:
    """``module``'s logits on ``images`` (batches of 1000: the embedded
    datasets' test splits are no larger)."""
    import numpy as np
    import torch

    with torch.no_grad():
        return np.concatenate([module(part).numpy() for part in torch.from_numpy(images)
                               .split(1000)])


def _onnx_split_check(session: Any, images: Any, labels: Any, logits: Any) -> float:
    """``model.onnx``'s test accuracy under onnxruntime; :class:`TargetError`
    if it predicts another class than ``model.py`` (``logits``) on an image
    whose two best logits ``model.py`` separates by more than float32 can
    blur (``ONNX_ATOL`` of the logits' scale: there either answer is the
    network's)."""
    import numpy as np

    onnx_logits = np.concatenate([
        session.run(["logits"], {"images": images[i:i + 1000].astype(np.float32)})[0]
        for i in range(0, len(images), 1000)])
    predicted, expected = onnx_logits.argmax(1), logits.argmax(1)
    top2 = np.sort(logits, axis=1)[:, -2:]
    scale = np.maximum(1.0, np.abs(logits).max(axis=1))
    clear = (top2[:, 1] - top2[:, 0]) > ONNX_ATOL * scale
    wrong = int(((predicted != expected) & clear).sum())
    if wrong:
        raise TargetError(f"model.onnx predicts another class than model.py on {wrong} of "
                          f"{len(images)} test images under onnxruntime: please report it")
    return float((predicted == labels).mean())


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


def _onnx_session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _onnxruntime_diff(session: Any, x: Any, reference: Any) -> float:
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    return logit_error(logits, reference.numpy())


def _compiled_network(target: AssessTarget, shape: tuple[int, ...]) -> Any:
    """The target's network compiled and loaded with its weights, in eval mode;
    :class:`TargetError` when the weights do not fit the genome or the data."""
    from ..errors import BuildError
    from ..evaluation.compiler import compile_model

    dataset = target.config.dataset
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
    return net.eval()


def _write_module(target: AssessTarget, net: Any, folder: Path, shape: tuple[int, ...],
                  levels: int) -> tuple[ExportResult, Any, Any, Any]:
    """``model.py``, ``weights.pt`` and ``genome.json``, then the generated
    module loaded back and checked against ``net`` on random images. Returns
    the result so far, the module, the images and ``net``'s logits on them."""
    import torch

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
        diff = logit_error(module(x), reference)
    if not diff <= ATOL:
        raise TargetError(f"the generated model.py differs from the network by {diff:.2e} of "
                          f"its logits' scale (> {ATOL:g}) on genome {target.genome.id}: please "
                          "report it")
    return ExportResult(files=files, genome_id=target.genome.id, max_diff=diff), module, x, \
        reference


def _write_onnx(result: ExportResult, module: Any, x: Any, reference: Any, folder: Path,
                log: Callable[[str], None], split: tuple[Any, Any, Any] | None) -> bool:
    """``model.onnx`` when the onnx package is importable, checked under
    onnxruntime when that is (on ``x`` against ``reference``, and on the
    written test split, ``(images, labels, model.py's logits)``); whether it
    was written."""
    if not _importable("onnx"):
        log(ONNX_HINT)
        result.notes.append(ONNX_HINT)
        return False
    result.files["model.onnx"] = folder / "model.onnx"
    _export_onnx(module, x, result.files["model.onnx"])
    result.notes.append("`model.onnx` passes `onnx.checker.check_model(full_check=True)`")
    if _importable("onnxruntime"):
        session = _onnx_session(result.files["model.onnx"])
        result.onnx_diff = _onnxruntime_diff(session, x, reference)
        if not result.onnx_diff <= ONNX_ATOL:
            raise TargetError(f"model.onnx differs from the network by {result.onnx_diff:.2e} "
                              f"of its logits' scale (> {ONNX_ATOL:g}) under onnxruntime: "
                              "please report it")
        if split is not None:
            result.onnx_test_accuracy = _onnx_split_check(session, *split)
    else:
        result.notes.append("onnxruntime is not installed: model.onnx was not run")
    return True


def export_target(target: AssessTarget, out: str | Path, *, onnx: bool = True,
                  test_split: bool = True, metrics_dir: Path | None = None,
                  log: Callable[[str], None] = lambda m: None) -> ExportResult:
    """Write ``model.py``, ``weights.pt``, ``genome.json``, ``architecture.svg``,
    ``README.md``, (with ``test_split``) ``test_split.npz`` and (when the onnx
    package is importable) ``model.onnx`` into ``out``; the README's metrics
    come from ``metrics_dir`` (default: the target's folder). Raises
    :class:`TargetError` with one line when the target cannot be exported."""
    from ..report import draw_model

    if target.weights is None:
        raise TargetError(f"{target.description} has no weights (best_model.pt): the search "
                          "ended without final training; retrain it (python -m ras_deap.run "
                          "--resume) or pass a genome JSON with --weights")
    dataset = target.config.dataset
    if dataset not in DATASET_SHAPES:
        raise TargetError(f"unknown image shape of dataset {dataset!r}")
    shape, levels = DATASET_SHAPES[dataset]
    net = _compiled_network(target, shape)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result, module, x, reference = _write_module(target, net, folder, shape, levels)
    files = result.files
    files[SVG] = draw_model(target.genome, folder / SVG)
    split = _test_split(target, net.normalize.mean, net.normalize.std) if test_split else None
    if isinstance(split, str):
        log(split)
        result.notes.append(split)
    written = None
    if split is not None and not isinstance(split, str):
        files[TEST_SPLIT] = folder / TEST_SPLIT
        images, labels = _write_test_split(files[TEST_SPLIT], *split)
        logits = _split_logits(module, images)
        result.test_accuracy = float((logits.argmax(1) == labels).mean())
        result.test_images = len(labels)
        written = (images, labels, logits)
    has_onnx = onnx and _write_onnx(result, module, x, reference, folder, log, written)
    metrics_dir = metrics_dir or target.out_dir
    metrics = _run_metrics(metrics_dir) if metrics_dir.is_dir() else {}
    files["README.md"] = folder / "README.md"
    write_atomic(files["README.md"], readme_text(target, net, levels, metrics, result, has_onnx))
    return result
