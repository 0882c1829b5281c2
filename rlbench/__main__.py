"""``python -m rlbench ...`` runs the ``rlbench`` command (see :mod:`rlbench.cli`)."""
import sys

from .cli import main

sys.exit(main())
