"""The package's split is part of its design: the genome and the evolution
are pure Python (fast to import, testable without torch), torch lives only in
evaluation/attacks, MLflow only in tracking. A fresh interpreter per case so
nothing imported by another test hides a violation."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules, forbidden", [
    (["ras_deap.genome", "ras_deap.evolution", "ras_deap.config", "ras_deap.bank",
      "ras_deap.data"], ["torch", "mlflow", "optuna"]),
    (["ras_deap.evaluation"], ["mlflow", "optuna"]),
    (["ras_deap.tracking", "ras_deap.report"], ["torch"]),
])
def test_layers_import_only_what_they_may(modules, forbidden):
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"{modules} imported {out}"
