"""Shared machinery of the torch-native classic-control envs.

Each env is *state-less*: the physical state travels in the TensorDict under ``"state"`` (with the
episode's ``"step_count"``), so ``env.step(td)`` works from any state a caller writes there (model-based
planning, replaying a trajectory, testing a corner case). The env object only holds constants, specs and
a random generator for resets.

A subclass provides:

- class constants ``STATE_SIZE`` and ``RESET_LOW``/``RESET_HIGH`` (reset states are uniform in that
  box, as gymnasium's ``np_random.uniform``), and gymnasium's registered time limit as the default of
  its ``max_episode_steps`` argument;
- ``_build_specs(b)``: sets ``action_spec`` and returns the observation's leaf spec;
- ``_observe(state)``: the observation of a state (a new tensor, never a view of ``state``);
- ``_dynamics(state, action)``: ``(next_state, next_observation, reward [*b, 1], terminated [*b, 1])``.

The base class adds the time limit (``truncated``), the done flags and the TensorDict plumbing with as
few tensor ops per step as it can: on a CPU each eager op costs microseconds of dispatch, which at a few
thousand envs is as much as the arithmetic itself. Constants are 0-d tensors (a Python float argument
costs an extra scalar-to-tensor conversion per op).
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from ...specs import Composite, Unbounded
from ..common import EnvBase
from ..rollout_writer import empty_buffer as _empty
from ..utils import step_mdp

__all__ = ["ClassicControlEnv"]

# The public constructor re-validates every entry (batch size, device); the TensorDicts built here are
# correct by construction, so use the unchecked constructor when this tensordict version has it.
_new_td = getattr(TensorDict, "_new_unsafe", TensorDict)


def _copy_rows(x: torch.Tensor, idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` ``[*b, d]`` with the flat batch rows ``idx`` replaced by ``rows`` ``[len(idx), d]``.

    A struct-of-arrays ``x`` (the ``[*b, d]`` view of a ``[d, *b]`` buffer, as the envs' states are)
    is copied in that layout: an out-of-place ``index_copy`` along dim 0 of the view would first make
    it contiguous, which costs several times more.
    """
    d = x.shape[-1]
    if x.dim() == 2 and x.stride(0) == 1 and x.stride(1) == x.shape[0]:  # the common case, with fewer view ops
        return x.t().index_copy(1, idx, rows.t()).t()
    if x.dim() > 1 and x.stride(-1) != 1 and x.movedim(-1, 0).is_contiguous():
        soa = x.movedim(-1, 0).reshape(d, -1).index_copy(1, idx, rows.movedim(-1, 0))
        return soa.view(d, *x.shape[:-1]).movedim(0, -1)
    return x.reshape(-1, d).index_copy(0, idx, rows).view(x.shape)


class ClassicControlEnv(EnvBase):
    """Base class of the batched, state-less torch-native classic-control envs.

    Args:
        batch_size: the env's batch dims (any shape: ``()``, ``[8]``, ``[2, 3]``).
        device: where every tensor lives (CPU or CUDA).
        dtype: floating dtype of the state, observation and reward (``torch.float32`` by default;
            ``torch.float64`` follows gymnasium's float64 state arithmetic to rounding error).
        max_episode_steps: the time limit: ``truncated`` becomes True when ``"step_count"`` reaches it
            (gymnasium's ``TimeLimit``); ``None`` disables it. Each env defaults to gymnasium's
            registered limit.
        seed: seed of the env's reset generator. ``None`` draws one from torch's global RNG, so
            ``torch.manual_seed`` makes an unseeded env reproducible too.
        validate_actions: check each action's values against ``action_spec`` in ``step``.
    """

    STATE_SIZE: int = 0
    # True when ``_observe`` is a copy of the state: a reset then copies the new state instead of
    # scattering the fresh rows into the observation too.
    _OBSERVATION_IS_STATE: bool = False
    RESET_LOW: float | list = 0.0
    RESET_HIGH: float | list = 0.0

    def __init__(
        self,
        batch_size=(),
        device=None,
        dtype: torch.dtype = torch.float32,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        validate_actions: bool = True,
    ):
        super().__init__(batch_size=batch_size, device=device, validate_actions=validate_actions)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__}: dtype must be a floating torch.dtype, got {dtype!r}")
        if max_episode_steps is not None and int(max_episode_steps) < 1:
            raise ValueError(
                f"{type(self).__name__}: max_episode_steps must be a positive int or None, got {max_episode_steps}"
            )
        self.dtype = dtype
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self._max_steps_t = torch.tensor(self.max_episode_steps or 0, dtype=torch.int64, device=self.device)
        self._one_i = torch.ones((), dtype=torch.int64, device=self.device)
        self.generator = torch.Generator(device=self.device)
        self._reset_low = self._const(self.RESET_LOW)
        self._reset_span = self._const(self.RESET_HIGH) - self._reset_low
        b, dev = self.batch_size, self.device
        state = Unbounded((*b, self.STATE_SIZE), dtype=dtype, device=dev)
        count = Unbounded((*b, 1), dtype=torch.int64, device=dev)
        obs = self._build_specs(b)
        self.observation_spec = Composite(observation=obs, state=state, step_count=count, shape=b, device=dev)
        self.state_spec = Composite(state=state.clone(), step_count=count.clone(), shape=b, device=dev)
        self.reward_spec = Unbounded((*b, 1), dtype=dtype, device=dev)
        self.set_seed(seed)

    # ------------------------------------------------------------ subclass hooks
    def _build_specs(self, b: torch.Size):  # pragma: no cover - abstract
        raise NotImplementedError

    def _observe(self, state: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dynamics(self, state: torch.Tensor, action: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _const(self, value) -> torch.Tensor:
        """A constant (0-d or small) tensor in the env's dtype and device."""
        return torch.as_tensor(value, dtype=self.dtype, device=self.device)

    def _sample_state(self, shape) -> torch.Tensor:
        """Fresh states of batch shape ``shape``, uniform in ``[RESET_LOW, RESET_HIGH]``."""
        # Drawn as [STATE_SIZE, *shape] (struct-of-arrays) and returned as its [*shape, STATE_SIZE] view:
        # ``state.unbind(-1)`` then yields contiguous rows, and elementwise ops on contiguous rows are
        # several times cheaper than on strided columns.
        u = torch.rand((self.STATE_SIZE, *shape), generator=self.generator, dtype=self.dtype, device=self.device)
        low, span = self._reset_low, self._reset_span
        if low.dim():  # per-component bounds [STATE_SIZE] broadcast along the leading dim
            low, span = low.view(-1, *(1,) * len(shape)), span.view(-1, *(1,) * len(shape))
        return torch.addcmul(low, u, span).movedim(0, -1)

    # Fresh states for the resets of done sub-envs are drawn ahead, this many at a time (one torch.rand
    # call costs microseconds of overhead; a step resets only a few percent of the sub-envs).
    _POOL_SIZE = 16384

    def _fresh_rows(self, k: int) -> torch.Tensor:
        """``k`` fresh states ``[k, STATE_SIZE]`` (uniform in the reset box, each drawn once and used once).

        They come from a pool of states drawn ahead from ``self.generator`` in one call; the pool is
        redrawn when it runs out (its unused rest is discarded) and cleared by :meth:`set_seed`.
        """
        pool, pos = self._pool, self._pool_pos
        if pool is None or pos + k > pool.shape[1]:
            pool = self._sample_state((max(self._POOL_SIZE, k),)).t()  # the [STATE_SIZE, M] buffer
            self._pool, pos = pool, 0
        self._pool_pos = pos + k
        return pool[:, pos:pos + k].t()

    # ----------------------------------------------------------------- EnvBase API
    def _set_seed(self, seed: int | None) -> None:
        if seed is None:
            seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        self.generator.manual_seed(int(seed))
        self._pool, self._pool_pos = None, 0

    def _reset(self, td: TensorDictBase | None) -> TensorDictBase:
        b = self.batch_size
        state = self._sample_state(b)
        count = torch.zeros((*b, 1), dtype=torch.int64, device=self.device)
        out = {"observation": self._observe(state), "state": state, "step_count": count}
        return _new_td(out, b, device=self.device)

    def reset(self, td: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        """Reset every sub-env, or with a ``"_reset"`` mask in ``td`` only the masked ones.

        Same semantics as :meth:`EnvBase.reset`: with a mask the result is ``td`` (without ``"_reset"``
        and ``"next"``) where the masked sub-envs get fresh ``"observation"``/``"state"``/
        ``"step_count"``, and every done flag is False. Only the masked sub-envs draw new states (a
        scatter of the few reset rows, instead of a full resample and one ``torch.where`` per key).
        """
        mask = None if td is None else td.get("_reset", None)
        if mask is None or kwargs or not self.batch_size or td.get("state", None) is None:
            return super().reset(td, **kwargs)
        out = td.exclude("_reset", "next")
        self._reset_rows(out, mask)
        return out

    def step_and_maybe_reset(self, td: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """Step, then return ``(td, next_root)`` where the done sub-envs of ``next_root`` are reset.

        Same semantics as :meth:`EnvBase.step_and_maybe_reset` (``td["next"]`` keeps the true final
        observation; ``next_root`` holds the fresh reset observation of the sub-envs that are done),
        with the reset applied straight to ``next_root``.
        """
        if not self.batch_size:
            return super().step_and_maybe_reset(td)
        td = self.step(td)
        root = step_mdp(td, action_key=self.action_key, reward_key=self.reward_key)
        done = root.get("done")
        idx = torch.nonzero(done.reshape(-1)).squeeze(-1)  # cheaper than done.any() and then nonzero
        if idx.shape[0]:
            self._reset_rows(root, done, idx)
        return td, root

    # The random-action rollout below (``_random_rollout``) is used when True; tests switch it off on an
    # instance to compare it with the generic loop.
    _FUSED_ROLLOUT: bool = True

    def rollout(self, max_steps: int, policy=None, break_when_any_done: bool = True, auto_reset: bool = True,
                tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """:meth:`EnvBase.rollout <rlbench.envs.EnvBase.rollout>`, with a fused loop for random actions.

        ``rollout(T, break_when_any_done=False)`` without a policy (random actions, a fresh reset, a
        batched env) runs as a plain loop over the state tensors: the ``T`` actions are drawn in one
        call (the same numbers ``T`` calls of :meth:`rand_action` draw), each step is ``_dynamics`` plus
        the time limit and the in-place reset of the done sub-envs (the same fresh states
        :meth:`step_and_maybe_reset` gives them), and each key is stacked once at the end instead of
        building two TensorDicts and copying every key at every step. The result is exactly the
        generic loop's, and the env's generators end in the same state. Any other call is the
        generic rollout.
        """
        if (policy is None and not break_when_any_done and auto_reset and tensordict is None
                and self.batch_size and int(max_steps) >= 1 and self._FUSED_ROLLOUT and self._fusable()):
            with torch.no_grad():
                return self._random_rollout(int(max_steps))
        return super().rollout(max_steps, policy=policy, break_when_any_done=break_when_any_done,
                               auto_reset=auto_reset, tensordict=tensordict)

    def _fusable(self) -> bool:
        """Whether this env's steps are the base class's (a subclass may have changed them)."""
        cls = type(self)
        return (
            cls.step is EnvBase.step and cls.rand_action is EnvBase.rand_action
            and cls._step is ClassicControlEnv._step and cls.reset is ClassicControlEnv.reset
            and cls.step_and_maybe_reset is ClassicControlEnv.step_and_maybe_reset
            and cls._reset_rows is ClassicControlEnv._reset_rows
            and self.action_key == "action" and self.reward_key == "reward" and self.batch_locked
        )

    def _random_rollout(self, n: int) -> TensorDictBase:
        """The fused random-action rollout of :meth:`rollout` (``break_when_any_done=False``, ``n`` steps)."""
        b, nb, dev = self.batch_size, len(self.batch_size), self.device
        root = self.reset()
        actions = self.action_spec.rand((n,), generator=self.action_generator)  # == n rand_action calls
        state, count = root.get("state"), root.get("step_count")
        # The "next" entries of each step are copied into [*b, n, ...] buffers as they come (stacking n
        # steps at the end along the time dim costs several times more: a strided gather per key). The
        # root entries are not copied per step: the root of step t + 1 is step t's "next" except in the
        # sub-envs reset in between, so they are filled at the end from the "next" buffers in one copy
        # per key, and the reset rows patched in.
        bufs: dict = {}

        def put(key, t, x):
            buf = bufs.get(key)
            if buf is None:
                buf = bufs[key] = _empty((*b, n, *x.shape[nb:]), x.dtype, dev)
            buf.select(nb, t).copy_(x)

        limit, one, same = self.max_episode_steps, self._one_i, self._OBSERVATION_IS_STATE
        resets = []  # (t + 1, flat batch indices, fresh states) of the sub-envs reset after step t
        for t in range(n):
            next_state, next_obs, reward, terminated = self._dynamics(state, actions[t])
            count = count + one
            if limit is None:
                truncated, done = torch.zeros_like(terminated), terminated
            else:
                truncated = count >= self._max_steps_t
                done = terminated | truncated
            put("state", t, next_state)
            if not same:
                put("observation", t, next_obs)
            put("step_count", t, count)
            put("reward", t, reward)
            put("terminated", t, terminated)
            put("truncated", t, truncated)
            put("done", t, done)
            if t == n - 1:  # the generic loop does not reset after the last step
                break
            # what step_and_maybe_reset + _reset_rows do, on the bare tensors
            idx = torch.nonzero(done.reshape(-1)).squeeze(-1)
            if idx.shape[0]:
                fresh = self._fresh_rows(idx.shape[0])
                state = _copy_rows(next_state, idx, fresh)
                count = count.masked_fill(done.reshape(*b, 1), 0)
                resets.append((t + 1, idx, fresh))
            else:
                state = next_state
        nxt = dict(bufs)
        if same:
            nxt["observation"] = _empty(nxt["state"].shape, self.dtype, dev).copy_(nxt["state"])
        m = b.numel()
        # root step_count: 0 after a done step, else the previous step's next step_count
        counts = _empty(nxt["step_count"].shape, torch.int64, dev)
        counts.select(nb, 0).copy_(root.get("step_count"))
        flat_next_count, flat_done = nxt["step_count"].view(m, n), nxt["done"].view(m, n)
        counts.view(m, n)[:, 1:].copy_(flat_next_count[:, :-1]).masked_fill_(flat_done[:, :-1], 0)
        action = _empty((*b, n, *actions.shape[nb + 1:]), actions.dtype, dev).copy_(actions.movedim(0, nb))
        out = {"step_count": counts, "action": action}
        keys = ("state",) if same else ("state", "observation")
        if resets:
            ts = torch.cat([torch.full_like(idx, t) for t, idx, _ in resets])
            rows = torch.cat([idx for _, idx, _ in resets])
            fresh = torch.cat([f for _, _, f in resets])
        for key in keys:
            x = _empty(nxt[key].shape, nxt[key].dtype, dev)
            x.select(nb, 0).copy_(root.get(key))
            flat = x.view(m, n, -1)
            flat[:, 1:].copy_(nxt[key].view(m, n, -1)[:, :-1])
            if resets:
                flat.index_put_((rows, ts), fresh if key == "state" else self._observe(fresh))
            out[key] = x
        if same:
            out["observation"] = _empty(out["state"].shape, self.dtype, dev).copy_(out["state"])
        flags = _empty((3, *b, n, 1), torch.bool, dev).fill_(False)  # root flags: False after every reset
        out.update(done=flags[0], terminated=flags[1], truncated=flags[2])
        shape = torch.Size((*b, n))
        out["next"] = _new_td(nxt, shape, device=dev)
        return _new_td(out, shape, device=dev)

    def _reset_rows(self, td: TensorDictBase, mask: torch.Tensor, idx: torch.Tensor | None = None) -> None:
        """Give the masked sub-envs of ``td`` fresh states, writing *new* tensors into ``td``.

        The tensors of ``td`` are never modified in place: after a step they are shared with
        ``td["next"]``, which must keep the final observations.
        """
        b = self.batch_size
        mask = mask.reshape(*b, 1)
        if idx is None:
            idx = torch.nonzero(mask.reshape(-1)).squeeze(-1)  # flat indices of the sub-envs to reset
        fresh = self._fresh_rows(idx.shape[0])
        state = _copy_rows(td.get("state"), idx, fresh)
        obs = td.get("observation", None)
        if obs is None or self._OBSERVATION_IS_STATE:
            obs = self._observe(state)
        else:
            obs = _copy_rows(obs, idx, self._observe(fresh))
        count = td.get("step_count", None)
        count = torch.zeros_like(mask, dtype=torch.int64) if count is None else count.masked_fill(mask, 0)
        done, terminated, truncated = torch.zeros((3, *mask.shape), dtype=torch.bool, device=mask.device).unbind(0)
        td.update({"observation": obs, "state": state, "step_count": count, "done": done,
                   "terminated": terminated, "truncated": truncated})

    def _step(self, td: TensorDictBase) -> TensorDictBase:
        state = td.get("state", None)
        if state is None:
            raise KeyError(
                f"{type(self).__name__}.step: the TensorDict has no 'state' entry. These envs are state-less: "
                f"start from env.reset(), or write td['state'] (shape {tuple(self.state_spec['state'].shape)}, "
                f"dtype {self.dtype}) yourself."
            )
        next_state, obs, reward, terminated = self._dynamics(state, td.get(self.action_key))
        count = td.get("step_count", None)
        if count is None:  # a caller-made state without a step count starts a fresh episode
            count = torch.ones(terminated.shape, dtype=torch.int64, device=self.device)
        else:
            count = count + self._one_i
        if self.max_episode_steps is None:
            truncated = torch.zeros_like(terminated)
            done = terminated.clone()
        else:
            truncated = count >= self._max_steps_t  # gymnasium's TimeLimit: elapsed_steps >= max_episode_steps
            done = terminated | truncated
        return _new_td(
            {
                "observation": obs,
                "state": next_state,
                "step_count": count,
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "done": done,
            },
            self.batch_size,
            device=self.device,
        )
