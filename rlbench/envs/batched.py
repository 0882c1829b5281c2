"""``SerialEnv``: several copies of an env stepped one after the other, seen as one batched env.

Use it to batch envs that are not batched natively (most gymnasium envs) when the env itself is
cheap; for envs that are costly to step, run them in worker processes instead (``ParallelEnv``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from tensordict import TensorDict

from .common import EnvBase

__all__ = ["SerialEnv"]


def _stacked(spec, n: int, device):
    """The spec of ``n`` stacked copies of data described by ``spec`` (leaf or Composite)."""
    return spec.expand(n, *spec.shape).to(device)


class SerialEnv(EnvBase):
    """Batch ``num_envs`` envs made by ``make_env`` into one env with ``batch_size=[num_envs, ...]``.

    Args:
        num_envs: how many sub-envs to create.
        make_env: a callable returning an :class:`EnvBase`, or a list of ``num_envs`` callables.
        device: where the batched data lives (default: the sub-envs' device).

    Every sub-env must have the same specs. ``set_seed(s)`` seeds sub-env ``i`` with ``s + i``, so
    the sub-envs differ and the whole batch is reproducible. Done sub-envs reset on their own when
    the batch is stepped with ``step_and_maybe_reset`` or ``rollout(break_when_any_done=False)``.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> env = SerialEnv(3, lambda: CountingEnv(max_steps=4))
        >>> env.rollout(5, break_when_any_done=False).shape
        torch.Size([3, 5])
    """

    def __init__(self, num_envs: int, make_env: Callable[[], EnvBase] | Sequence[Callable[[], EnvBase]],
                 device=None):
        if isinstance(make_env, Sequence):
            if len(make_env) != num_envs:
                raise ValueError(f"SerialEnv: got {len(make_env)} make_env callables for num_envs={num_envs}")
            makers = list(make_env)
        else:
            makers = [make_env] * num_envs
        if num_envs < 1:
            raise ValueError(f"SerialEnv: num_envs must be >= 1, got {num_envs}")
        self.envs = [make() for make in makers]
        first = self.envs[0]
        for i, env in enumerate(self.envs[1:], 1):
            if env.observation_spec != first.observation_spec or env.action_spec != first.action_spec:
                raise ValueError(
                    f"SerialEnv: sub-env {i} has different specs from sub-env 0; every make_env must build "
                    f"the same kind of env.\nsub-env 0: {first!r}\nsub-env {i}: {env!r}"
                )
        super().__init__(batch_size=(num_envs, *first.batch_size), device=device or first.device)
        self.action_key, self.reward_key = first.action_key, first.reward_key
        self.observation_spec = _stacked(first.observation_spec, num_envs, self.device)
        self.state_spec = _stacked(first.state_spec, num_envs, self.device)
        self.done_spec = _stacked(first.done_spec, num_envs, self.device)
        self.action_spec = _stacked(first.action_spec, num_envs, self.device)
        self.reward_spec = _stacked(first.reward_spec, num_envs, self.device)

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    def _stack(self, tds: list) -> TensorDict:
        return torch.stack(tds, 0).to(self.device)

    def _root_keys(self) -> list:
        env = self.envs[0]
        keys = env.observation_spec.keys(True, True) + env.done_keys + env.state_spec.keys(True, True)
        return list(dict.fromkeys(keys))

    def _reset(self, td):
        mask = None if td is None else td.get("_reset", None)
        keys = self._root_keys()
        outs = []
        for i, env in enumerate(self.envs):
            if mask is None or bool(mask[i].any()):
                sub = None
                if mask is not None and env.batch_size:  # a batched sub-env resets only its masked part
                    sub = td[i].select(*[k for k in keys if k in td.keys(True, True)]).set("_reset", mask[i])
                outs.append(env.reset(sub).select(*keys, strict=False))
            else:
                # untouched sub-env: its current root is the last thing it returned
                outs.append(self._last[i])
        self._last = outs
        return self._stack(outs)

    def _step(self, td):
        keys = self._root_keys()
        outs = [env._complete_done(env._step(td[i])) for i, env in enumerate(self.envs)]
        self._last = [out.select(*keys, strict=False) for out in outs]
        return self._stack(outs)

    def _set_seed(self, seed):
        for i, env in enumerate(self.envs):
            env.set_seed(None if seed is None else seed + i)

    def close(self):
        for env in self.envs:
            env.close()
        super().close()
