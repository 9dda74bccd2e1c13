"""Entry point of ``python -m ras_deap.assess``."""

import sys

from .cli import main

sys.exit(main())
