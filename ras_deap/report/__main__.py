"""Entry point of ``python -m ras_deap.report`` (draw an architecture)."""

import sys

from .cli import main

sys.exit(main())
