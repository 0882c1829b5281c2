"""``SerialEnv``: several copies of an env stepped one after the other, seen as one batched env.

Use it to batch envs that are not batched natively (most gymnasium envs) when the env itself is
cheap; for envs that are costly to step, run them in worker processes instead (``ParallelEnv``).

Sub-envs that are all plain single gym envs (``GymEnv``/``GymWrapper`` without pixels, one array
observation) are stepped by a NumPy kernel (:mod:`rlbench.envs.serial_gym`) that gives the same data
as stepping each sub-env's TensorDict interface, at a fraction of the cost.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from tensordict import TensorDict

from .common import EnvBase
from .fused import FusedStepper
from .makers import resolve_makers
from .serial_gym import SerialFusedStepper, gym_kernel

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
        validate_actions: check each action's values against ``action_spec`` in ``step``; None (the
            default) follows sub-env 0 (so ``GymEnv(..., validate_actions=False)`` sub-envs let
            out-of-range actions through).
        create_env_fn: TorchRL's name for ``make_env`` (give one of the two).
        create_env_kwargs: keyword arguments for every maker, or a list of ``num_envs`` dicts (one per
            sub-env), as TorchRL's ``SerialEnv`` takes them.

    Every sub-env must have the same specs. ``set_seed(s)`` seeds sub-env ``i`` with ``s + i``, so
    the sub-envs differ and the whole batch is reproducible. Done sub-envs reset on their own when
    the batch is stepped with ``step_and_maybe_reset`` or ``rollout(break_when_any_done=False)``.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> env = SerialEnv(3, lambda: CountingEnv(max_steps=4))
        >>> env.rollout(5, break_when_any_done=False).shape
        torch.Size([3, 5])
        >>> SerialEnv(2, create_env_fn=CountingEnv, create_env_kwargs={"max_steps": 2}).rollout(5).shape
        torch.Size([2, 2])
    """

    def __init__(self, num_envs: int,
                 make_env: Callable[[], EnvBase] | Sequence[Callable[[], EnvBase]] | None = None,
                 device=None, validate_actions: bool | None = None, *, create_env_fn=None, create_env_kwargs=None):
        num_envs = int(num_envs)
        if num_envs < 1:
            raise ValueError(f"SerialEnv: num_envs must be >= 1, got {num_envs}")
        makers = resolve_makers("SerialEnv", num_envs, make_env, create_env_fn=create_env_fn,
                                create_env_kwargs=create_env_kwargs)
        self.envs = [make() for make in makers]
        first = self.envs[0]
        for i, env in enumerate(self.envs[1:], 1):
            if env.observation_spec != first.observation_spec or env.action_spec != first.action_spec:
                raise ValueError(
                    f"SerialEnv: sub-env {i} has different specs from sub-env 0; every make_env must build "
                    f"the same kind of env.\nsub-env 0: {first!r}\nsub-env {i}: {env!r}"
                )
        if validate_actions is None:
            validate_actions = first.validate_actions
        super().__init__(batch_size=(num_envs, *first.batch_size), device=device or first.device,
                         validate_actions=validate_actions)
        self.action_key, self.reward_key = first.action_key, first.reward_key
        self.observation_spec = _stacked(first.observation_spec, num_envs, self.device)
        self.state_spec = _stacked(first.state_spec, num_envs, self.device)
        self.done_spec = _stacked(first.done_spec, num_envs, self.device)
        self.action_spec = _stacked(first.action_spec, num_envs, self.device)
        self.reward_spec = _stacked(first.reward_spec, num_envs, self.device)
        # sub-envs that are all plain single gym envs are stepped through NumPy, as SyncVectorEnv does
        self._kernel = gym_kernel(self)

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    def _stack(self, tds: list) -> TensorDict:
        """Stack the sub-envs' TensorDicts into one of the batch's shape.

        Flat TensorDicts with the same tensor keys (the common case) take one ``torch.stack`` per key:
        ``torch.stack`` of TensorDicts costs several times more (it re-checks and rebuilds each one).
        Anything else (nested or non-tensor entries, differing keys) goes through tensordict's stack.
        """
        cols = [dict(td.items()) if type(td) is TensorDict else None for td in tds]
        first = cols[0]
        if first is not None and all(type(v) is torch.Tensor for v in first.values()):
            keys = first.keys()
            if all(c is not None and c.keys() == keys for c in cols):
                data = {k: torch.stack([c[k] for c in cols]) for k in keys}
                return TensorDict(data, batch_size=self.batch_size, device=self.device)
        return torch.stack(tds, 0).to(self.device)

    def _split(self, td) -> list:
        """``[td[0], td[1], ...]`` without ``"next"`` (which ``_step`` does not read).

        Built from one ``unbind`` per key rather than one TensorDict indexing per sub-env (~25 us each).
        """
        n = len(self.envs)
        if type(td) is not TensorDict or td.batch_size != self.batch_size:
            return [td[i] for i in range(n)]
        cols = {}
        for key, value in td.items():
            if key == "next":
                continue
            if not isinstance(value, (torch.Tensor, TensorDict)):  # non-tensor data: let tensordict index
                return [td[i] for i in range(n)]
            cols[key] = value.unbind(0)
        sub_batch, device = self.batch_size[1:], td.device
        return [TensorDict._new_unsafe({k: c[i] for k, c in cols.items()}, batch_size=sub_batch, device=device)
                for i in range(n)]

    def _root_keys(self) -> list:
        env = self.envs[0]
        keys = env.observation_spec.keys(True, True) + env.done_keys + env.state_spec.keys(True, True)
        return list(dict.fromkeys(keys))

    def _reset(self, td):
        mask = None if td is None else td.get("_reset", None)
        keys = self._root_keys()
        if mask is None:
            out = self._stack([env.reset().select(*keys, strict=False) for env in self.envs])
            self._last = out
            return out
        todo = [i for i in range(len(self.envs)) if bool(mask[i].any())]
        subs = {}
        for i in todo:
            env, sub = self.envs[i], None
            if env.batch_size:  # a batched sub-env resets only its masked part
                sub = td[i].select(*[k for k in keys if k in td.keys(True, True)]).set("_reset", mask[i])
            subs[i] = env.reset(sub).select(*keys, strict=False)
        # untouched sub-envs: their current root is the last thing they returned (the rows of the last
        # step or reset); EnvBase then keeps ``td``'s values for them anyway, where ``td`` has the key
        last = self._last.select(*keys, strict=False)
        if len(todo) < len(self.envs) and self._rows_fit(last, subs.values()):
            out = last.clone()  # the last step's tensors are in the caller's hands: write into copies
            for i, sub in subs.items():
                for key, value in sub.items():
                    out.get(key)[i] = value
        else:
            out = self._stack([subs[i] if i in subs else last[i] for i in range(len(self.envs))])
        self._last = out
        return out

    @staticmethod
    def _rows_fit(last, subs) -> bool:
        """Whether each reset sub-env's TensorDict can be written row-wise into ``last`` (same flat keys)."""
        if type(last) is not TensorDict or not all(type(v) is torch.Tensor for v in last.values()):
            return False
        keys = set(last.keys())
        return all(type(sub) is TensorDict and set(sub.keys()) == keys for sub in subs)

    def _check_action(self, td) -> None:
        kernel = self._kernel
        if kernel is not None and kernel.cheap_checked:
            # the kernel's converter range-checks integer actions (one vectorised comparison), so only
            # the cheap attribute checks stay here; anything off gets EnvBase's check and its message
            action = td.get(self.action_key, None)
            spec = self._action_spec
            if not (action is None or action.shape != spec.shape or action.dtype != spec.dtype):
                return
        super()._check_action(td)

    def step_and_maybe_reset(self, td):
        """Like :meth:`EnvBase.step_and_maybe_reset`, with the same output.

        Sub-envs that are single gym envs are stepped, and reset when done, in one NumPy pass (see
        :mod:`rlbench.envs.serial_gym`).
        """
        if self._kernel is not None and td.batch_size == self.batch_size:
            self._check_action(td)
            td, root, self._last = self._kernel.step_and_maybe_reset(td)
            return td, root
        return super().step_and_maybe_reset(td)

    def fused_stepper(self, random: bool = False) -> FusedStepper | None:
        """A :class:`~rlbench.envs.serial_gym.SerialFusedStepper`, or None (see :meth:`EnvBase.fused_stepper`).

        Only when the sub-envs are stepped by the NumPy kernel and no subclass changes the step, the
        action check or (for ``random``) the random actions.
        """
        cls = type(self)
        if self._kernel is None or cls.step_and_maybe_reset is not SerialEnv.step_and_maybe_reset or (
            cls._check_action is not SerialEnv._check_action
        ) or (random and cls.rand_action is not SerialEnv.rand_action):
            return None
        return SerialFusedStepper(self._kernel, self._record_last)

    def _record_last(self, td: TensorDict) -> None:
        """Keep ``td`` as the sub-envs' latest values (what a partial reset returns for the others)."""
        self._last = td

    def _step(self, td):
        if self._kernel is not None:
            out = self._last = self._kernel.new_td(self._kernel.step(td, reset=False)[0])
            return out
        outs = [env._complete_done(env._step(sub)) for env, sub in zip(self.envs, self._split(td))]
        out = self._last = self._stack(outs)
        return out

    def _seeds_used(self) -> int:
        return len(self.envs) - 1 + max(env._seeds_used() for env in self.envs)

    def _set_seed(self, seed):
        for i, env in enumerate(self.envs):
            env.set_seed(None if seed is None else seed + i)

    def close(self):
        for env in self.envs:
            env.close()
        super().close()
