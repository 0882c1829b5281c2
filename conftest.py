"""Test-wide settings: headless rendering and one torch thread per test process.

Doctests see only their own module's names (the standard doctest rule): nothing is injected here,
so an example's imports are the ones it shows, plus the module it documents.
"""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import torch  # noqa: E402

# The suite runs as two xdist workers on two cores: more intra-op threads per worker only oversubscribe
# the CPU, and tiny tensor ops then slow down by an order of magnitude under load.
torch.set_num_threads(1)
