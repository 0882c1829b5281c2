"""Data shared by the buffer tests (imported as ``_buffer_data``, like tests/trainers/_setups.py).

Not a conftest.py: with ``--doctest-modules`` a second conftest module clashes with tests/conftest.py.
"""
import torch
from tensordict import TensorDict


def transitions(n, start=0):
    """N transitions whose observation rows are ``[i, i, i, i]`` for i in start..start+n-1."""
    obs = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(-1).expand(n, 4).clone()
    return TensorDict({
        "observation": obs,
        "action": torch.arange(start, start + n).unsqueeze(-1) % 2,
        "next": {"observation": obs + 1, "reward": torch.ones(n, 1),
                 "done": torch.zeros(n, 1, dtype=torch.bool)},
    }, [n])
