"""The vector-env half of :class:`~rlbench.envs.GymWrapper`: SAME_STEP steps, partial resets, and the
fused ``step_and_maybe_reset`` that a collector calls every step.

A gymnasium vector env in ``SAME_STEP`` autoreset mode resets a done sub-env inside the step that ended
it: ``obs`` already holds its fresh reset observation and ``info["final_obs"]`` its true final one. The
generic path (``step`` -> ``step_mdp`` -> ``reset`` with a ``"_reset"`` mask) therefore stashes ``obs``,
reports the final observations under ``"next"`` and hands the stash out at the partial reset, where
:meth:`EnvBase._merge_partial_reset` runs one ``torch.where`` per key. :func:`step_and_maybe_reset`
produces the same two TensorDicts from the step's NumPy outputs in one pass: the next root *is*
``obs`` (non-done rows of the stash equal their next observation, done rows are the reset ones) and its
done flags are all False, so nothing needs merging. :class:`FusedStepper` gives the same step as
plain NumPy arrays, for the collector's fused loop (no TensorDict at all).

Functions here take the wrapper as their first argument; they are its methods, kept in their own file
to keep ``gym.py`` small.
"""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

from .gym_spaces import leaf_array

# ``TensorDict._new_unsafe`` skips the per-entry shape/device checks; every entry built here has the
# batch shape by construction. Older tensordict releases lack it: fall back to the checked constructor.
_new_unsafe = getattr(TensorDict, "_new_unsafe", None)


def _build(env, data: dict) -> TensorDict:
    if env._unchecked_vector:
        return _new_unsafe(data, batch_size=env.batch_size, device=env.device)
    return TensorDict(data, batch_size=env.batch_size, device=env.device)


def reset_vector(env, td, seed, options) -> TensorDict:
    """``_reset`` of a vector env: a full reset, or the ``"_reset"``-masked sub-envs only."""
    mask = None if td is None else td.get("_reset", None)
    if mask is None:
        obs = env._gym_reset(seed, options)
        env._pending[:] = False
        env._stash = None
        return TensorDict(env._obs_dict(obs), batch_size=env.batch_size, device=env.device)
    mask = mask.reshape(-1).cpu().numpy().astype(bool)
    need = mask & ~env._pending  # sub-envs that SAME_STEP did not reset already
    if need.any():
        opts = dict(options or {})
        opts["reset_mask"] = need
        data = env._obs_dict(env._gym_reset(seed, opts))
    elif env._stash is not None:
        data = env._stash
    else:  # nothing to reset: EnvBase keeps every sub-env's current values
        return env.observation_spec.zero()
    env._pending &= ~mask
    if not env._pending.any():
        env._stash = None
    return TensorDict(data, batch_size=env.batch_size, device=env.device)


def _with_final_obs(env, data: dict, finished: np.ndarray, final) -> dict:
    """``data`` (the step's observations) with the rows of ``finished`` sub-envs replaced by their true
    final observations from ``info["final_obs"]``; ``data`` itself is left untouched.
    """
    rows = np.flatnonzero(finished)
    if env._simple is not None:  # one array leaf (CartPole & co): patch the rows in NumPy, one write
        key, dtype = env._simple
        arr = data[key].numpy().copy()
        arr[rows] = np.stack([np.asarray(final[i], dtype=dtype) for i in rows])
        out = dict(data)
        out[key] = torch.from_numpy(arr)
        return out
    if env._flat:
        out = dict(data)
        for leaf in env._leaves:
            # one stacked write per key instead of one per (sub-env, key): a per-row loop in Python
            # cost ~10 us per done sub-env
            value = np.stack([leaf_array(leaf, leaf.get(final[i])) for i in rows])
            out[leaf.key] = fresh = data[leaf.key].clone()
            fresh[torch.from_numpy(rows)] = torch.from_numpy(value)
        return out
    out = TensorDict(data, batch_size=env.batch_size).clone().to_dict()
    for i in rows:
        for leaf in env._leaves:
            d = out
            for k in leaf.key[:-1]:
                d = d[k]
            d[leaf.key[-1]][i] = torch.from_numpy(leaf_array(leaf, leaf.get(final[i])))
    return out


def _flags(env, reward, term, trunc):
    """The step's reward tensor and its done flags as ``[*batch, 1]`` bool arrays."""
    shape = env._zeros1
    term = np.asarray(term, dtype=bool).reshape(shape)
    trunc = np.asarray(trunc, dtype=bool).reshape(shape)
    reward = torch.from_numpy(np.asarray(reward, dtype=np.float32).reshape(shape))
    return reward, term, trunc, term | trunc


def vector_step_td(env, obs, reward, term, trunc, info) -> TensorDict:
    """``_step``'s result for a vector env: the final observation of done sub-envs, reset ones stashed."""
    reward, term, trunc, done = _flags(env, reward, term, trunc)
    data = env._obs_dict(obs)
    if done.any():
        # SAME_STEP: `obs` already holds the reset observation of done sub-envs. Keep it for the
        # coming partial reset and report the true final observation for this step.
        finished = done.reshape(-1)
        env._stash = data  # the final rows go into fresh tensors below: `data` stays the reset obs
        env._pending |= finished
        data = _with_final_obs(env, data, finished, info["final_obs"])
    data["reward"] = reward
    data["terminated"] = torch.from_numpy(term)
    data["truncated"] = torch.from_numpy(trunc)
    data["done"] = torch.from_numpy(done)
    return _build(env, data)


def can_fuse(env) -> bool:
    """Whether :func:`step_and_maybe_reset` gives exactly what the generic path gives for ``env``.

    Subclasses that override ``_step``/``_reset``/``step``/``reset`` get the generic path, as do nested
    (Dict) observations, whose ``step_mdp`` copies nested containers.
    """
    from .gym import GymWrapper

    cls = type(env)
    return (
        env.is_vector and env._flat
        and cls._step is GymWrapper._step and cls._reset is GymWrapper._reset
        and cls.step is GymWrapper.step and cls.reset is GymWrapper.reset
    )


def step_and_maybe_reset(env, td):
    """:meth:`EnvBase.step_and_maybe_reset` for a SAME_STEP vector env, in one pass (same output)."""
    env._check_action(td)
    obs, reward, term, trunc, info = env._gym_step(env._convert_action(td.get(env.action_key)))
    reward, term, trunc, done = _flags(env, reward, term, trunc)
    root = env._obs_dict(obs)  # done rows hold the reset observation: the next root's input
    term_t, trunc_t, done_t = torch.from_numpy(term), torch.from_numpy(trunc), torch.from_numpy(done)
    any_done = done.any()
    if any_done:
        finished = done.reshape(-1)
        nxt = _with_final_obs(env, root, finished, info["final_obs"])
        # the generic path stashes `obs`, marks the done rows pending and clears them again at the
        # partial reset: only rows that were pending before this step (a reset left out) stay so
        env._pending &= ~finished
        env._stash = {k: v.clone() for k, v in root.items()} if env._pending.any() else None
        # after the reset every done flag of the next root is False (np.zeros + from_numpy: ~3x
        # cheaper than torch.zeros for these few bytes)
        shape = env._zeros1
        flags = tuple(torch.from_numpy(np.zeros(shape, bool)) for _ in range(3))
    else:
        nxt = dict(root)
        flags = (done_t, term_t, trunc_t)  # no reset: the root shares them with "next", as step_mdp does
    nxt[env.reward_key] = reward
    nxt["done"], nxt["terminated"], nxt["truncated"] = done_t, term_t, trunc_t
    if type(td) is TensorDict and env._unchecked_vector and td.device in (None, env.device):
        # `nxt` was built here with the batch shape on td's device: skip set()'s checks (~2 us)
        td._set_str("next", _build(env, nxt), inplace=False, validated=True)
    else:
        td.set("next", _build(env, nxt))
    # the next root, laid out as step_mdp lays it out: observations and done flags, then the root's
    # other keys (a policy's hidden state, ...)
    root["done"], root["terminated"], root["truncated"] = flags
    skip = ("next", "_reset", env.action_key, env.reward_key)
    for key, value in td.items():
        if key not in skip and key not in root:
            root[key] = value
    return td, _build(env, root)


class FusedStepper:
    """One env step as NumPy arrays, for a collector that writes them straight into its batch buffers.

    The collector's fused loop (:mod:`rlbench.collectors._fused`) calls :meth:`step` instead of
    ``step_and_maybe_reset`` + ``_RolloutWriter.write``: no TensorDict is built and nothing is stacked per
    step. The arrays are exactly what the fused ``step_and_maybe_reset`` puts in its TensorDicts. Only
    made when no partial reset is pending (then the env's stash stays empty, as on that path).
    """

    def __init__(self, env):
        self.env = env
        self.key, self.dtype = env._simple
        self.shape = env._zeros1
        spec = env.action_spec
        self.action_shape, self.action_dtype = spec.shape, spec.dtype
        # when the converter range-checks the action, a matching shape and dtype is all step() checks
        self.cheap = env._cheap_checked or not env.validate_actions

    def accepts(self, action) -> bool:
        """Whether ``step`` would take ``action`` with no other check (else the caller takes the generic path)."""
        return (
            self.cheap and type(action) is torch.Tensor
            and action.shape == self.action_shape and action.dtype == self.action_dtype
        )

    def step(self, action):
        """``(next_obs, reward, terminated, truncated, done, root_obs)``; done rows of ``root_obs`` hold
        the reset observation (SAME_STEP), those of ``next_obs`` the true final one.
        """
        env, shape = self.env, self.shape
        obs, reward, term, trunc, info = env._gym_step(env._convert_action(action))
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

    def finish(self, root_obs) -> TensorDict:
        """The next root after the last fused step (observation and all-False done flags)."""
        flags = [torch.from_numpy(np.zeros(self.shape, bool)) for _ in range(3)]
        data = {self.key: torch.from_numpy(root_obs), "done": flags[0], "terminated": flags[1], "truncated": flags[2]}
        return _build(self.env, data)


def fused_stepper(env) -> FusedStepper | None:
    """A :class:`FusedStepper` for ``env`` when its fused ``step_and_maybe_reset`` applies unchanged."""
    from .gym import GymWrapper

    if (
        env._fuse_vector and env._simple is not None and env._unchecked_vector and not env.from_pixels
        and type(env).step_and_maybe_reset is GymWrapper.step_and_maybe_reset
        and type(env)._check_action is GymWrapper._check_action and not env._pending.any()
    ):
        env._stash = None  # what the fused path leaves when nothing is pending
        return FusedStepper(env)
    return None
