"""Shared pytest set-up: headless rendering and a fixed seed for every test."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # before anything imports pygame
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

# The suite runs as two xdist workers on two cores: more intra-op threads per worker only oversubscribe
# the CPU, and tiny tensor ops then slow down by an order of magnitude under load.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
