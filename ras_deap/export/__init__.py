"""Export a search's winner to plain PyTorch (``model.py`` + ``weights.pt``)
and ONNX: ``python -m ras_deap.export RUN --out DIR``."""

from .codegen import generate_source, rename_state_dict
from .result import ExportResult
from .run import DATASET_SHAPES, export_target, load_generated

__all__ = ["DATASET_SHAPES", "ExportResult", "export_target", "generate_source",
           "load_generated", "rename_state_dict"]
