"""Small deterministic envs with known dynamics: counters whose every observation, reward and done can be predicted."""
from __future__ import annotations

import time

import torch
from tensordict import TensorDict

from ..envs.common import EnvBase
from ..specs import Bounded, Categorical, Composite, Unbounded

__all__ = [
    "CountingEnv",
    "ContinuousCountingEnv",
    "PixelCountingEnv",
    "DoubleCountingEnv",
    "SlowCountingEnv",
]


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


class PixelCountingEnv(CountingEnv):
    """:class:`CountingEnv` that also shows its count as a ``uint8`` image ``"pixels"``, for image transforms.

    The image is shaped ``[*batch, height, width, 3]`` (gymnasium's layout).

    Pixel ``(row, col, channel)`` holds ``(count + 2 * row + 3 * col + 50 * channel) % 256``, so
    crops, flips and channel orders are all visible in the values.

    Example:
        >>> env = PixelCountingEnv(height=4, width=6)
        >>> td = env.reset()
        >>> td["pixels"].shape, td["pixels"].dtype, int(td["pixels"][1, 2, 0])
        (torch.Size([4, 6, 3]), torch.uint8, 8)
    """

    def __init__(self, max_steps=5, batch_size=(), height: int = 8, width: int = 8, device=None):
        super().__init__(max_steps, batch_size, device)
        self.height, self.width = int(height), int(width)
        b = self.batch_size
        self.observation_spec["pixels"] = Bounded(0, 255, (*b, self.height, self.width, 3), torch.uint8, self.device)
        rows = torch.arange(self.height, device=self.device).reshape(-1, 1, 1) * 2
        cols = torch.arange(self.width, device=self.device).reshape(1, -1, 1) * 3
        chans = torch.arange(3, device=self.device).reshape(1, 1, -1) * 50
        self._pattern = rows + cols + chans

    def _pixels(self):
        count = self.count.to(torch.int64).reshape(*self.batch_size, 1, 1, 1)
        return ((count + self._pattern) % 256).to(torch.uint8)

    def _reset(self, td):
        return super()._reset(td).set("pixels", self._pixels())

    def _step(self, td):
        return super()._step(td).set("pixels", self._pixels())


class DoubleCountingEnv(ContinuousCountingEnv):
    """:class:`ContinuousCountingEnv` in float64, for dtype-transform tests.

    Observations, reward and action are all float64, as many gymnasium envs produce.

    Example:
        >>> env = DoubleCountingEnv()
        >>> td = env.rollout(2)
        >>> td["next", "observation"].dtype, td["action"].dtype
        (torch.float64, torch.float64)
    """

    def __init__(self, max_steps=5, batch_size=(), action_dim: int = 2, device=None):
        super().__init__(max_steps, batch_size, action_dim, device)
        b, f64 = self.batch_size, torch.float64
        self.observation_spec = Composite(
            observation=Unbounded((*b, 1), f64, self.device), total=Unbounded((*b, 1), f64, self.device),
            shape=b, device=self.device,
        )
        self.action_spec = Bounded(-1.0, 1.0, (*b, action_dim), f64, self.device)
        self.reward_spec = Unbounded((*b, 1), f64, self.device)

    @staticmethod
    def _to_double(td):
        for key in ("observation", "total", "reward"):
            if key in td.keys():
                td.set(key, td.get(key).to(torch.float64))
        return td

    def _reset(self, td):
        return self._to_double(super()._reset(td))

    def _step(self, td):
        return self._to_double(super()._step(td))


class SlowCountingEnv(CountingEnv):
    """:class:`CountingEnv` whose every step sleeps ``seconds``: a stand-in for a slow or stuck simulator.

    Tests of worker processes use it for timeouts, interrupts and "whichever worker is ready first".

    Example:
        >>> env = SlowCountingEnv(seconds=0.001, max_steps=2)
        >>> env.rollout(5).shape
        torch.Size([2])
    """

    def __init__(self, seconds: float = 30.0, max_steps=100, batch_size=(), device=None):
        super().__init__(max_steps=max_steps, batch_size=batch_size, device=device)
        self.seconds = seconds

    def _step(self, td):
        time.sleep(self.seconds)
        return super()._step(td)
