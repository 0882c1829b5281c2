"""Small deterministic envs and helpers shared by rlbench's tests and by users' own tests."""
from __future__ import annotations

import torch
from tensordict import TensorDict

from .envs.common import EnvBase
from .specs import Bounded, Categorical, Composite, Unbounded

__all__ = ["CountingEnv", "ContinuousCountingEnv"]


class CountingEnv(EnvBase):
    """Counts its steps: the observation is the step count, done once it reaches ``max_steps``.

    The action adds ``action`` (0 or 1) to a separate ``"total"`` counter, so tests can check
    which actions reached the env. Reward is 1 per step. Sub-envs of a batch can finish at
    different times when ``max_steps`` is a tensor.

    Example:
        >>> env = CountingEnv(max_steps=3)
        >>> env.rollout(10)["next", "observation"].squeeze(-1).tolist()
        [1.0, 2.0, 3.0]
    """

    def __init__(self, max_steps=5, batch_size=(), device=None):
        super().__init__(batch_size=batch_size, device=device)
        b = self.batch_size
        max_steps = torch.as_tensor(max_steps, device=self.device)
        if max_steps.ndim and max_steps.shape == b:  # one limit per sub-env: add the trailing event dim
            max_steps = max_steps.unsqueeze(-1)
        self.max_steps = max_steps.expand(*b, 1).clone()
        self.observation_spec = Composite(
            observation=Unbounded((*b, 1), device=self.device),
            total=Unbounded((*b, 1), device=self.device),
            shape=b,
            device=self.device,
        )
        self.action_spec = Categorical(2, b, device=self.device)
        self.count = torch.zeros(*b, 1, device=self.device)
        self.total = torch.zeros(*b, 1, device=self.device)

    def _reset(self, td):
        mask = None if td is None else td.get("_reset", None)
        if mask is None:
            self.count.zero_()
            self.total.zero_()
        else:
            self.count[mask.reshape(self.count.shape)] = 0
            self.total[mask.reshape(self.total.shape)] = 0
        return TensorDict(
            {"observation": self.count.clone(), "total": self.total.clone()}, self.batch_size, device=self.device
        )

    def _step(self, td):
        action = td.get("action")
        self.count += 1
        self.total += action.reshape(self.total.shape).to(self.total.dtype)
        done = self.count >= self.max_steps
        return TensorDict(
            {
                "observation": self.count.clone(),
                "total": self.total.clone(),
                "reward": torch.ones_like(self.count),
                "terminated": done,
                "truncated": torch.zeros_like(done),
                "done": done.clone(),
            },
            self.batch_size,
            device=self.device,
        )

    def _set_seed(self, seed):
        pass


class ContinuousCountingEnv(CountingEnv):
    """:class:`CountingEnv` with a continuous action in ``[-1, 1]^action_dim`` (its sum is counted).

    Example:
        >>> env = ContinuousCountingEnv(batch_size=[2], action_dim=3)
        >>> td = env.rollout(4)
        >>> td["action"].shape, env.action_spec.is_in(td["action"])
        (torch.Size([2, 4, 3]), True)
    """

    def __init__(self, max_steps=5, batch_size=(), action_dim: int = 2, device=None):
        super().__init__(max_steps, batch_size, device)
        self.action_spec = Bounded(-1.0, 1.0, (*self.batch_size, action_dim), device=self.device)

    def _step(self, td):
        action = td.get("action").sum(-1)
        return super()._step(td.clone(False).set("action", action))
