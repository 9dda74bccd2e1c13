"""Entry point of ``python -m ras_deap.compare``."""

import sys

from .cli import main

sys.exit(main())
