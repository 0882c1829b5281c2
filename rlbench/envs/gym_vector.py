"""The vector-env half of :class:`~rlbench.envs.GymWrapper`: SAME_STEP steps, partial resets, fused steps.

The fused ``step_and_maybe_reset`` is what a collector calls every step.

A gymnasium vector env in ``SAME_STEP`` autoreset mode resets a done sub-env inside the step that ended
it: ``obs`` already holds its fresh reset observation and ``info["final_obs"]`` its true final one. The
generic path (``step`` -> ``step_mdp`` -> ``reset`` with a ``"_reset"`` mask) therefore stashes ``obs``,
reports the final observations under ``"next"`` and hands the stash out at the partial reset, where
:meth:`EnvBase._merge_partial_reset` runs one ``torch.where`` per key. :meth:`SameStepVector.step_and_reset`
produces the same two TensorDicts from the step's NumPy outputs in one pass: the next root *is* ``obs``
(non-done rows of the stash equal their next observation, done rows are the reset ones) and its done
flags are all False, so nothing needs merging. :class:`VectorFusedStepper` gives the same step as plain
NumPy arrays, for the collector's fused loop (no TensorDict at all).

:class:`SameStepVector` holds that bookkeeping; a vector ``GymWrapper`` holds one and feeds it what the
gym env returned. It knows the wrapper only through what it was given: an
:class:`~rlbench.envs.gym_spaces.ObservationReader`, the batch size and device, and the gym env's reset.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tensordict import TensorDict

from .fused import FusedStepper
from .gym_spaces import ObservationReader, leaf_array

__all__ = ["SameStepVector", "VectorFusedStepper"]

# ``TensorDict._new_unsafe`` skips the per-entry shape/device checks; every entry built here has the
# batch shape by construction. Older tensordict releases lack it: fall back to the checked constructor.
_new_unsafe = getattr(TensorDict, "_new_unsafe", None)


class SameStepVector:
    """The SAME_STEP bookkeeping of a gymnasium vector env, and the TensorDicts of its steps and resets.

    Args:
        reader: reads the vector env's batched observations (built from its single observation space).
        batch_size: ``(num_envs,)``.
        device: the device of the TensorDicts built here.
        gym_reset: ``gym_reset(seed, options) -> obs``, the vector env's reset (all sub-envs, or those
            of ``options["reset_mask"]``).

    Attributes:
        pending: bool ``[num_envs]``, the sub-envs SAME_STEP has reset whose partial reset the caller has
            not asked for yet.
        stash: the observations of the last step that had done sub-envs (their reset observations in
            those rows), handed out at the partial reset; None when nothing is pending.
        unchecked: whether TensorDicts are built without per-entry checks (CPU, tensordict has
            ``_new_unsafe``).

    Example:
        >>> import gymnasium
        >>> from gymnasium.vector import AutoresetMode, SyncVectorEnv
        >>> vec = SyncVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
        >>> def gym_reset(seed, options):
        ...     return vec.reset(seed=seed, options=options)[0]
        >>> reader = ObservationReader(vec.single_observation_space)
        >>> same_step = SameStepVector(reader, torch.Size([2]), torch.device("cpu"), gym_reset)
        >>> same_step.reset(None, 0, None)["observation"].shape
        torch.Size([2, 4])
        >>> out = same_step.step_td(*vec.step(np.zeros(2, dtype=np.int64)))
        >>> out["reward"].shape, out["done"].dtype
        (torch.Size([2, 1]), torch.bool)
        >>> vec.close()
    """

    def __init__(self, reader: ObservationReader, batch_size: torch.Size, device: torch.device,
                 gym_reset: Callable):
        self.reader = reader
        self.batch_size, self.device = batch_size, device
        self.gym_reset = gym_reset
        self.flag_shape = (*batch_size, 1)
        self.pending = np.zeros(batch_size.numel(), dtype=bool)
        self.stash = None
        self.unchecked = device.type == "cpu" and _new_unsafe is not None

    def _build(self, data: dict) -> TensorDict:
        if self.unchecked:
            return _new_unsafe(data, batch_size=self.batch_size, device=self.device)
        return TensorDict(data, batch_size=self.batch_size, device=self.device)

    def reset(self, td, seed, options) -> TensorDict | None:
        """A full reset, or the ``"_reset"``-masked sub-envs only.

        Returns None when nothing needs resetting (then the caller keeps every sub-env's current values).
        """
        mask = None if td is None else td.get("_reset", None)
        if mask is None:
            obs = self.gym_reset(seed, options)
            self.pending[:] = False
            self.stash = None
            return TensorDict(self.reader.read(obs), batch_size=self.batch_size, device=self.device)
        mask = mask.reshape(-1).cpu().numpy().astype(bool)
        need = mask & ~self.pending  # sub-envs that SAME_STEP did not reset already
        if need.any():
            opts = dict(options or {})
            opts["reset_mask"] = need
            data = self.reader.read(self.gym_reset(seed, opts))
        elif self.stash is not None:
            data = self.stash
        else:
            return None
        self.pending &= ~mask
        if not self.pending.any():
            self.stash = None
        return TensorDict(data, batch_size=self.batch_size, device=self.device)

    def with_final_obs(self, data: dict, finished: np.ndarray, final) -> dict:
        """``data`` (the step's observations) with the true final observations of ``finished`` sub-envs.

        Those rows come from ``info["final_obs"]``; ``data`` itself is left untouched.
        """
        rows = np.flatnonzero(finished)
        reader = self.reader
        if reader.simple is not None:  # one array leaf (CartPole & co): patch the rows in NumPy, one write
            key, dtype = reader.simple
            arr = data[key].numpy().copy()
            arr[rows] = np.stack([np.asarray(final[i], dtype=dtype) for i in rows])
            out = dict(data)
            out[key] = torch.from_numpy(arr)
            return out
        if reader.flat:
            out = dict(data)
            for leaf in reader.leaves:
                # one stacked write per key instead of one per (sub-env, key): a per-row loop in Python
                # cost ~10 us per done sub-env
                value = np.stack([leaf_array(leaf, leaf.get(final[i])) for i in rows])
                out[leaf.key] = fresh = data[leaf.key].clone()
                fresh[torch.from_numpy(rows)] = torch.from_numpy(value)
            return out
        out = TensorDict(data, batch_size=self.batch_size).clone().to_dict()
        for i in rows:
            for leaf in reader.leaves:
                d = out
                for k in leaf.key[:-1]:
                    d = d[k]
                d[leaf.key[-1]][i] = torch.from_numpy(leaf_array(leaf, leaf.get(final[i])))
        return out

    def _flags(self, reward, term, trunc):
        """The step's reward tensor and its done flags as ``[*batch, 1]`` bool arrays."""
        shape = self.flag_shape
        term = np.asarray(term, dtype=bool).reshape(shape)
        trunc = np.asarray(trunc, dtype=bool).reshape(shape)
        reward = torch.from_numpy(np.asarray(reward, dtype=np.float32).reshape(shape))
        return reward, term, trunc, term | trunc

    def step_td(self, obs, reward, term, trunc, info) -> TensorDict:
        """``_step``'s result for one gym step: the final observation of done sub-envs, reset ones stashed."""
        reward, term, trunc, done = self._flags(reward, term, trunc)
        data = self.reader.read(obs)
        if done.any():
            # SAME_STEP: `obs` already holds the reset observation of done sub-envs. Keep it for the
            # coming partial reset and report the true final observation for this step.
            finished = done.reshape(-1)
            self.stash = data  # the final rows go into fresh tensors below: `data` stays the reset obs
            self.pending |= finished
            data = self.with_final_obs(data, finished, info["final_obs"])
        data["reward"] = reward
        data["terminated"] = torch.from_numpy(term)
        data["truncated"] = torch.from_numpy(trunc)
        data["done"] = torch.from_numpy(done)
        return self._build(data)

    def step_and_reset(self, td, gym_out: tuple, action_key: str, reward_key: str):
        """``step_and_maybe_reset`` in one pass, from the gym step's outputs ``(obs, reward, term, trunc, info)``.

        Returns ``(td, next_root)`` exactly as the generic path (step, ``step_mdp``, partial reset) does.
        """
        obs, reward, term, trunc, info = gym_out
        reward, term, trunc, done = self._flags(reward, term, trunc)
        root = self.reader.read(obs)  # done rows hold the reset observation: the next root's input
        term_t, trunc_t, done_t = torch.from_numpy(term), torch.from_numpy(trunc), torch.from_numpy(done)
        if done.any():
            finished = done.reshape(-1)
            nxt = self.with_final_obs(root, finished, info["final_obs"])
            # the generic path stashes `obs`, marks the done rows pending and clears them again at the
            # partial reset: only rows that were pending before this step (a reset left out) stay so
            self.pending &= ~finished
            self.stash = {k: v.clone() for k, v in root.items()} if self.pending.any() else None
            # after the reset every done flag of the next root is False (np.zeros + from_numpy: ~3x
            # cheaper than torch.zeros for these few bytes)
            shape = self.flag_shape
            flags = tuple(torch.from_numpy(np.zeros(shape, bool)) for _ in range(3))
        else:
            nxt = dict(root)
            flags = (done_t, term_t, trunc_t)  # no reset: the root shares them with "next", as step_mdp does
        nxt[reward_key] = reward
        nxt["done"], nxt["terminated"], nxt["truncated"] = done_t, term_t, trunc_t
        if type(td) is TensorDict and self.unchecked and td.device in (None, self.device):
            # `nxt` was built here with the batch shape on td's device: skip set()'s checks (~2 us)
            td._set_str("next", self._build(nxt), inplace=False, validated=True)
        else:
            td.set("next", self._build(nxt))
        # the next root, laid out as step_mdp lays it out: observations and done flags, then the root's
        # other keys (a policy's hidden state, ...)
        root["done"], root["terminated"], root["truncated"] = flags
        skip = ("next", "_reset", action_key, reward_key)
        for key, value in td.items():
            if key not in skip and key not in root:
                root[key] = value
        return td, self._build(root)

    def fused_stepper(self, gym_step: Callable, action_spec, cheap: bool, generator=None):
        """A :class:`VectorFusedStepper`, or None.

        None when the observation is not one array, the TensorDicts are built with checks (not on the
        CPU), or a partial reset is pending.

        ``gym_step(action tensor) -> (obs, reward, term, trunc, info)`` steps the gym env.
        """
        if self.reader.simple is None or not self.unchecked or self.pending.any():
            return None
        self.stash = None  # what the fused path leaves when nothing is pending
        return VectorFusedStepper(self, gym_step, action_spec, cheap, generator)


class VectorFusedStepper(FusedStepper):
    """The :class:`~rlbench.envs.fused.FusedStepper` of a SAME_STEP vector env with one observation array.

    Its arrays are exactly what :meth:`SameStepVector.step_and_reset` puts in its TensorDicts. Made only
    when no partial reset is pending (then the stash stays empty, as on that path).

    Args:
        vector: the env's :class:`SameStepVector`.
        gym_step: ``gym_step(action tensor) -> (obs, reward, term, trunc, info)``.
        action_spec, cheap, generator: see :class:`~rlbench.envs.fused.FusedStepper`.

    Example:
        >>> from rlbench.envs import GymEnv
        >>> env = GymEnv("CartPole-v1", num_envs=3)
        >>> _ = env.reset()
        >>> type(env.fused_stepper()).__name__
        'VectorFusedStepper'
        >>> env.close()
    """

    def __init__(self, vector: SameStepVector, gym_step: Callable, action_spec, cheap: bool, generator=None):
        key, self.dtype = vector.reader.simple
        super().__init__(key, vector.flag_shape, action_spec, cheap, generator)
        self.vector = vector
        self.gym_step = gym_step

    def step(self, action):
        shape = self.shape
        obs, reward, term, trunc, info = self.gym_step(action)
        root = np.array(obs, dtype=self.dtype)  # copy: envs may reuse buffers
        reward = np.asarray(reward, dtype=np.float32).reshape(shape)
        term = np.asarray(term, dtype=bool).reshape(shape)
        trunc = np.asarray(trunc, dtype=bool).reshape(shape)
        done = term | trunc
        nxt = root
        if done.any():
            final, dtype = info["final_obs"], self.dtype
            rows = np.flatnonzero(done.reshape(-1))
            nxt = root.copy()
            nxt[rows] = np.stack([np.asarray(final[i], dtype=dtype) for i in rows])
        return nxt, reward, term, trunc, done, root

    def finish(self, root_obs):
        flags = [torch.from_numpy(np.zeros(self.shape, bool)) for _ in range(3)]
        data = {self.key: torch.from_numpy(root_obs), "done": flags[0], "terminated": flags[1], "truncated": flags[2]}
        return self.vector._build(data)
