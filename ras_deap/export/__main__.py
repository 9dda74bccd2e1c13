"""Entry point of ``python -m ras_deap.export``."""

import sys

from .cli import main

sys.exit(main())
