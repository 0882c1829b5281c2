"""Doctest namespace: docstring examples may use torch and the spec classes without importing them."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pytest  # noqa: E402
import torch  # noqa: E402

import rlbench.specs  # noqa: E402


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["torch"] = torch
    doctest_namespace.update({name: getattr(rlbench.specs, name) for name in rlbench.specs.__all__})
