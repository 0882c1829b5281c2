"""Doctest namespace: docstring examples may use torch and the spec classes without importing them."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pytest  # noqa: E402
import torch  # noqa: E402

import rlbench.specs  # noqa: E402

# The suite runs as two xdist workers on two cores: more intra-op threads per worker only oversubscribe
# the CPU, and tiny tensor ops then slow down by an order of magnitude under load.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["torch"] = torch
    doctest_namespace.update({name: getattr(rlbench.specs, name) for name in rlbench.specs.__all__})
