"""``ScaleToBounds``: squash a network's output into an action box."""
from __future__ import annotations

import torch

__all__ = ["ScaleToBounds"]


class ScaleToBounds(torch.nn.Module):
    """``low + (tanh(x) + 1) / 2 * (high - low)``: squash a network's output into the action box.

    The last layer of a deterministic policy (DDPG, TD3): any real output lands inside ``[low, high]``
    and the centre of the box is the output of ``x = 0``.

    Args:
        low: lower bounds (a tensor broadcastable to the action).
        high: upper bounds (same shape as ``low``).

    Example:
        >>> squash = ScaleToBounds(torch.tensor([-2.0]), torch.tensor([2.0]))
        >>> squash(torch.tensor([[-100.0], [0.0], [100.0]])).squeeze(-1)
        tensor([-2.,  0.,  2.])
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        # buffers: they follow .to(device) and are saved with the actor
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_width", (high - low) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The squashed ``x``."""
        return self.center + self.half_width * torch.tanh(x)
