"""One error base: every error a user can fix subclasses UsageError, so the
CLIs map it to one line and exit 2 without looking types up by name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ras_deap
from ras_deap.errors import EXIT_USAGE, UsageError, exit_code_for

# Errors that mean a bug or a failing individual (caught and scored 0), not bad input.
INTERNAL = {
    "ras_deap.errors.BuildError",      # a genome that does not compile: fitness 0
    "ras_deap.errors.TrainingError",   # training diverged: fitness 0
    "ras_deap.compare.budget.BudgetExhausted",    # a cell's budget spent: the method stops
    "ras_deap.tracking.writer.WriterError",       # the background MLflow writer failed
}


def _package_errors() -> dict[str, type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(ras_deap.__path__, "ras_deap."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Exception)
                    and obj.__module__ == info.name and not name.startswith("_")):
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_user_facing_error_subclasses_usage_error():
    errors = _package_errors()
    assert "ras_deap.errors.BankError" in errors and len(errors) > 10
    stray = sorted(name for name, cls in errors.items()
                   if name not in INTERNAL and not issubclass(cls, UsageError))
    assert stray == [], f"derive from UsageError (or list as internal): {stray}"
    for name, cls in errors.items():  # ... and so end in one line and exit 2
        assert (exit_code_for(cls.__new__(cls)) == EXIT_USAGE) == (name not in INTERNAL), name
