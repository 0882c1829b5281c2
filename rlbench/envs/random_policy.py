"""``RandomPolicy``: a policy that writes random actions drawn from an action spec (TorchRL's name)."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ..specs import Composite, Spec

__all__ = ["RandomPolicy"]


class RandomPolicy:
    """A callable policy ``td -> td`` that writes ``action_spec.rand()`` into the TensorDict.

    Use it wherever a policy is expected (``env.rollout(n, RandomPolicy(env.action_spec))``, a
    collector's random phase). Passing ``policy=None`` to ``env.rollout`` does the same with the env's
    own seeded ``action_generator``.

    Args:
        action_spec: the spec to draw from: a leaf spec (written under ``action_key``) or a
            :class:`~rlbench.specs.Composite` (every entry written under its own key, as TorchRL's
            ``full_action_spec``).
        action_key: where a leaf spec's action goes.
        generator: a ``torch.Generator`` to draw from (torch's global RNG when None).

    The actions have the spec's shape (its batch dims included): the spec of a batched env gives one
    action per sub-env.

    Example:
        >>> from rlbench.envs import PendulumEnv
        >>> env = PendulumEnv(batch_size=[2])
        >>> td = env.rollout(5, RandomPolicy(env.action_spec))
        >>> td["action"].shape, env.action_spec.is_in(td["action"])
        (torch.Size([2, 5, 1]), True)
    """

    def __init__(self, action_spec: Spec, action_key="action", generator: torch.Generator | None = None):
        if not isinstance(action_spec, Spec):
            raise TypeError(
                f"RandomPolicy takes an action spec (e.g. env.action_spec), got {type(action_spec).__name__}"
            )
        self.action_spec = action_spec
        self.action_key = action_key
        self.generator = generator

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        sample = self.action_spec.rand(generator=self.generator)
        if isinstance(self.action_spec, Composite):
            return td.update(sample)
        return td.set(self.action_key, sample)

    def __repr__(self) -> str:
        return f"RandomPolicy(action_spec={self.action_spec!r}, action_key={self.action_key!r})"
