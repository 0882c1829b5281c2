"""``python -m rlbench ...`` runs the ``rlbench`` command (see :mod:`rlbench.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":  # guarded: doctest collection imports this module too
    sys.exit(main())
