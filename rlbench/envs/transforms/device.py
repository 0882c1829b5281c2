"""``DeviceCastTransform``: the env's data on another device (e.g. a CPU env feeding a GPU policy)."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from .base import EnvSpecs, Transform

__all__ = ["DeviceCastTransform"]


class DeviceCastTransform(Transform):
    """Move what the env produces to ``device``, and what it consumes back to ``orig_device``.

    Forward, the reset output and the ``"next"`` content of each step go to ``device``; inverse, the
    step's input (the action, state keys) goes to ``orig_device``, where the env below reads it. The
    transformed env's specs (observation, reward, done, action, state) are declared on ``device``.

    Args:
        device: where the transformed env's data live.
        orig_device: the device of the env below; by default the env's own device (read when the
            transform joins an env; a free transform without it leaves inputs where they are).

    Example:
        >>> import torch
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(), DeviceCastTransform("cpu"))
        >>> env.observation_spec["observation"].device, env.rollout(2)["next", "observation"].device
        (device(type='cpu'), device(type='cpu'))
    """

    def __init__(self, device, orig_device=None):
        super().__init__()
        self.device = torch.device(device)
        self.orig_device = None if orig_device is None else torch.device(orig_device)
        self.__dict__["_env_device"] = None

    @property
    def _target_inv(self) -> torch.device | None:
        return self.orig_device if self.orig_device is not None else self._env_device

    # forward: whole TensorDicts move at once (every key, root and "next")
    def _call(self, td: TensorDictBase) -> TensorDictBase:
        return td.to(self.device)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        """Move ``td`` (all its keys, ``"next"`` included) to ``device``; returns the moved TensorDict."""
        return td.to(self.device)

    # inverse
    @property
    def has_inverse(self) -> bool:
        return True

    def _inv_call(self, td: TensorDictBase) -> TensorDictBase:
        target = self._target_inv
        return td if target is None else td.to(target)

    # specs
    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        self.__dict__["_env_device"] = specs.device
        specs.observation = specs.observation.to(self.device)
        specs.reward = specs.reward.to(self.device)
        specs.done = specs.done.to(self.device)
        specs.action = specs.action.to(self.device)
        specs.state = specs.state.to(self.device)
        specs.device = self.device
        return specs

    def extra_repr(self) -> str:
        orig = "" if self.orig_device is None else f", orig_device={self.orig_device}"
        return f"device={self.device}{orig}"
