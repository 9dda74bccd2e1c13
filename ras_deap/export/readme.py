"""The README.md of an export folder: its files, how to load and use the
network without ras_deap, the run's metrics, and what the export checked."""

from __future__ import annotations

from typing import Any

from ..assess.target import AssessTarget
from .result import ATOL, ONNX_ATOL, SVG, TEST_SPLIT, ExportResult

__all__ = ["MAIN_METRICS", "readme_text"]

# The README's first metrics table (the rest go in a folded one).
MAIN_METRICS = ("final_test_accuracy", "final_accuracy", "final_robustness", "final_fitness",
                "assess/test_accuracy", "fitness", "accuracy", "robustness", "parameters",
                "flops", "generation_found", "evaluations")


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


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
             "On 8 images of uniform noise; a difference is in units of the logits' scale, "
             "max(1, largest |logit|).", "",
             f"- `model.py` with `weights.pt` vs the ras_deap network: largest logit difference "
             f"{result.max_diff:.2e} (tolerance {ATOL:g})"]
    if result.onnx_diff is not None:
        lines.append(f"- `model.onnx` under onnxruntime: largest logit difference "
                     f"{result.onnx_diff:.2e} (tolerance {ONNX_ATOL:g})")
    if result.test_accuracy is not None:
        lines.append(f"- `model.py` on `{TEST_SPLIT}`: test accuracy "
                     f"{result.test_accuracy:.4f} ({result.test_images} images)")
    if result.onnx_test_accuracy is not None:
        lines.append(f"- `model.onnx` under onnxruntime on `{TEST_SPLIT}`: test accuracy "
                     f"{result.onnx_test_accuracy:.4f}, the same class as `model.py` on every "
                     "image whose two best logits differ by more than "
                     f"{ONNX_ATOL:g} of their scale")
    return lines + [f"- {note}" for note in result.notes]


def readme_text(target: AssessTarget, net: Any, levels: int, metrics: dict[str, Any],
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
