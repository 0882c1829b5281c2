"""Shared fixtures of the buffer tests."""
import pytest
import torch
from tensordict import TensorDict


def _transitions(n, start=0):
    obs = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(-1).expand(n, 4).clone()
    return TensorDict({
        "observation": obs,
        "action": torch.arange(start, start + n).unsqueeze(-1) % 2,
        "next": {"observation": obs + 1, "reward": torch.ones(n, 1),
                 "done": torch.zeros(n, 1, dtype=torch.bool)},
    }, [n])


@pytest.fixture
def transitions():
    """``transitions(n, start=0)``: n transitions with observation rows ``[i, i, i, i]`` for i in start..start+n-1."""
    return _transitions
