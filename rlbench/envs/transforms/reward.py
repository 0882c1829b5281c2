"""Reward transforms: affine scaling, clipping, sign and the running episode return."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ...specs import Bounded, Unbounded
from .base import EnvSpecs, Transform, TransformKeyError, episode_starts, gather_time, time_dim

__all__ = ["RewardScaling", "RewardClipping", "RewardSum", "SignTransform"]


class RewardScaling(Transform):
    """Affine reward transform: ``reward * scale + loc``, or ``(reward - loc) / scale`` when ``standard_normal``.

    Args:
        loc: the shift.
        scale: the scale.
        in_keys: reward keys (default ``["reward"]``).
        standard_normal: use ``(reward - loc) / scale``.

    Example:
        >>> import torch
        >>> RewardScaling(loc=1.0, scale=0.5)._apply_transform(torch.tensor([2.0]))
        tensor([2.])
    """

    def __init__(self, loc=0.0, scale=1.0, in_keys=None, standard_normal: bool = False):
        super().__init__(["reward"] if in_keys is None else in_keys)
        self.register_buffer("loc", torch.as_tensor(loc, dtype=torch.get_default_dtype()))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.get_default_dtype()))
        self.standard_normal = standard_normal

    def _apply_transform(self, x):
        if self.standard_normal:
            return ((x - self.loc) / self.scale).to(x.dtype)
        return (x * self.scale + self.loc).to(x.dtype)

    def _transform_spec(self, spec):
        if isinstance(spec, Bounded):
            a, b = self._apply_transform(spec.low.to(spec.dtype)), self._apply_transform(spec.high.to(spec.dtype))
            return Bounded(torch.minimum(a, b), torch.maximum(a, b), spec.shape, spec.dtype, spec.device)
        return Unbounded(spec.shape, spec.dtype, spec.device)

    def extra_repr(self):
        return f"loc={self.loc.tolist()}, scale={self.scale.tolist()}, standard_normal={self.standard_normal}"


class RewardClipping(Transform):
    """Clip rewards to ``[clamp_min, clamp_max]`` (either side may be ``None``: no bound).

    Example:
        >>> import torch
        >>> RewardClipping(-1.0, 1.0)._apply_transform(torch.tensor([-3.0, 0.5, 7.0]))
        tensor([-1.0000,  0.5000,  1.0000])
    """

    def __init__(self, clamp_min: float | None = None, clamp_max: float | None = None, in_keys=None):
        super().__init__(["reward"] if in_keys is None else in_keys)
        if clamp_min is not None and clamp_max is not None and clamp_min > clamp_max:
            raise ValueError(f"RewardClipping: clamp_min {clamp_min} > clamp_max {clamp_max}")
        self.clamp_min, self.clamp_max = clamp_min, clamp_max

    def _apply_transform(self, x):
        return x.clamp(self.clamp_min, self.clamp_max)

    def _transform_spec(self, spec):
        if self.clamp_min is None and self.clamp_max is None:
            return spec
        low = -float("inf") if self.clamp_min is None else self.clamp_min
        high = float("inf") if self.clamp_max is None else self.clamp_max
        if isinstance(spec, Bounded):
            low, high = spec.low.clamp(min=low, max=high), spec.high.clamp(min=low, max=high)
        return Bounded(low, high, spec.shape, spec.dtype, spec.device)

    def extra_repr(self):
        return f"clamp_min={self.clamp_min}, clamp_max={self.clamp_max}, in_keys={self.in_keys}"


class RewardSum(Transform):
    """Running return of the current episode, written as an observation ``"episode_reward"``.

    It is 0 after a reset and ``previous + reward`` after each step, so ``("next", "episode_reward")``
    at a done step is the episode's return. In a batched env a partial reset restarts only the
    reset sub-envs' sums. On a batch outside an env (a ``[B, T]`` trajectory sample), the sums are
    rebuilt per episode along time (see :func:`~rlbench.envs.transforms.base.time_dim`); without a
    time dim each transition counts as the first step of an episode.

    Args:
        in_keys: reward keys (default ``["reward"]``).
        out_keys: where to write the sums (default ``["episode_reward"]``).

    Example:
        >>> from rlbench.envs.transforms import TransformedEnv
        >>> from rlbench.testing import CountingEnv
        >>> env = TransformedEnv(CountingEnv(max_steps=2), RewardSum())
        >>> env.rollout(4, break_when_any_done=False)["next", "episode_reward"].squeeze(-1).tolist()
        [1.0, 2.0, 1.0, 2.0]
    """

    def __init__(self, in_keys=None, out_keys=None):
        in_keys = ["reward"] if in_keys is None else in_keys
        if out_keys is None:
            out_keys = ["episode_reward"] if len(in_keys) == 1 else [f"episode_{k}" for k in in_keys]
        super().__init__(in_keys, out_keys)
        self._specs: dict = {}

    def transform_specs(self, specs: EnvSpecs) -> EnvSpecs:
        self._check_keys(specs)
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            if out_key in specs.observation:
                raise TransformKeyError(
                    f"RewardSum: the env already has an observation {out_key!r}; pass out_keys=[...] with a "
                    f"new name"
                )
            src = specs.reward if in_key == specs.reward_key else specs.observation.get(in_key)
            if src is None:
                raise TransformKeyError(f"RewardSum: {in_key!r} is a done flag, not a reward")
            spec = Unbounded(src.shape, src.dtype, src.device)
            specs.observation[out_key] = spec
            self._specs[out_key] = spec
        return specs

    def _reset(self, td, td_reset):
        for out_key in self.out_keys:
            spec = self._specs.get(out_key)
            if spec is not None:
                td_reset.set(out_key, spec.zero())
        return td_reset

    def _step(self, td, next_td):
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            reward = next_td.get(in_key)
            prev = td.get(out_key, None)
            next_td.set(out_key, reward.clone() if prev is None else prev + reward)
        return next_td

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        nxt = td.get("next", None)
        if nxt is None:
            return td
        tdim = time_dim(td)
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            reward = nxt.get(in_key, None)
            if reward is None:
                continue
            if tdim is None:
                total = reward.clone()
            else:
                cum = reward.cumsum(tdim)
                before = gather_time(cum - reward, episode_starts(td, tdim), tdim)
                total = cum - before
            nxt.set(out_key, total)
            td.set(out_key, total - reward)
        return td


class SignTransform(Transform):
    """Replace each value by its sign, in ``{-1, 0, 1}`` (the Atari reward clipping of Mnih et al. 2015).

    The output keeps the input's dtype; a reward spec becomes ``Bounded(-1, 1)``.

    Args:
        in_keys: keys to transform (default ``["reward"]``).
        out_keys: where to write the results (default: in place).

    Example:
        >>> import torch
        >>> SignTransform()._apply_transform(torch.tensor([-3.5, 0.0, 0.2, 7.0]))
        tensor([-1.,  0.,  1.,  1.])
    """

    def __init__(self, in_keys=None, out_keys=None):
        super().__init__(["reward"] if in_keys is None else in_keys, out_keys)

    def _apply_transform(self, x):
        return torch.sign(x)

    def _transform_spec(self, spec):
        return Bounded(-1, 1, spec.shape, spec.dtype, spec.device)

    def transform_reward_spec(self, spec):
        return self._transform_spec(spec) if "reward" in self.in_keys else spec
