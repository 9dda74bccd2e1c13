"""Which CPU kernels trained a network: tags for the search's MLflow run.

Why: torch's CPU results depend on the instruction set its kernels use
(oneDNN and ATen pick AVX-512 or AVX2 paths at run time). The same seed gives
other weights, and hence other fitness, on another CPU or under
``ONEDNN_MAX_CPU_ISA``; a number in MLflow is only reproducible next to the
machine that produced it. The tags describe the process that runs the search
(its evaluation processes share the machine; Dask workers may not).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

__all__ = ["ISA_VARIABLES", "cpu_model", "machine_record", "machine_tags"]

# the environment variables that change which kernels run
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine_record() -> dict[str, str]:
    """The CPU, the kernel capability ATen chose, the ISA overrides in force,
    torch's version and its thread count: what a stored result (a bank, a
    comparison session, a tuning trial) needs beside it to be reproducible."""
    record = {
        "cpu": cpu_model(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "cores": str(os.cpu_count() or 0),
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
    }
    for name in ISA_VARIABLES:
        record[name.lower()] = os.environ.get(name, "unset")
    return record


def machine_tags() -> dict[str, str]:
    """:func:`machine_record` as ``machine.*`` tags of a search's MLflow run."""
    return {f"machine.{key}": value for key, value in machine_record().items()}
