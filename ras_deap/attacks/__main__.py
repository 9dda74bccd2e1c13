"""``python -m ras_deap.attacks``: see :mod:`ras_deap.attacks.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
