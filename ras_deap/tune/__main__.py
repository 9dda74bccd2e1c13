"""``python -m ras_deap.tune``: see :mod:`ras_deap.tune.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
