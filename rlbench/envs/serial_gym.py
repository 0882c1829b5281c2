"""A NumPy stepping kernel for a :class:`~rlbench.envs.SerialEnv` whose sub-envs are all single gym envs.

Stepping each sub-env through its own ``GymWrapper._step`` costs ~15 us of TensorDict plumbing per
sub-env per step (a TensorDict in, five small tensors and a TensorDict out, then a stack), several
times the gym step itself for CartPole-like envs. This kernel does what gymnasium's ``SyncVectorEnv``
does instead: convert the batch of actions once, step the raw gym envs into preallocated NumPy arrays,
and make the batch's tensors once. The data is exactly what the generic path produces (same keys,
dtypes, values, and per-sub-env RNG use); :class:`SerialEnv` falls back to the generic path for
anything else.
"""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict

from .gym_spaces import make_action_converter, space_kind


def gym_kernel(serial) -> "_GymKernel | None":
    """The kernel for ``serial``'s sub-envs, or None when one of them is not a plain single gym env."""
    from .gym import GymWrapper

    envs = serial.envs
    for env in envs:
        cls = type(env)
        if not (
            isinstance(env, GymWrapper) and not env.is_vector and not env.from_pixels and env._simple is not None
            and cls._step is GymWrapper._step and cls._reset is GymWrapper._reset
            and cls.step is GymWrapper.step and cls.reset is GymWrapper.reset
            and env.device.type == "cpu" and env.action_key == envs[0].action_key
        ):
            return None
    if serial.device.type != "cpu" or not hasattr(TensorDict, "_new_unsafe") or len(serial.batch_size) != 1:
        return None
    return _GymKernel(serial)


class _GymKernel:
    def __init__(self, serial):
        first = serial.envs[0]
        self.serial, self.envs = serial, serial.envs
        self.key, self.dtype = first._simple
        self.shape = tuple(serial.observation_spec[self.key].shape)
        self.flag_shape = (len(self.envs), 1)
        # one converter for the whole batch: one range check per step instead of one per sub-env
        self.convert = make_action_converter(first._act_space, serial.action_spec, self._action_error)
        self.as_list = space_kind(first._act_space) == "Discrete"  # python ints, as GymWrapper passes them
        self.cheap_checked = first._cheap_checked

    def _action_error(self, action):
        serial = self.serial
        why = serial.action_spec.mismatch(action) or "values out of range"
        raise ValueError(
            f"{type(serial).__name__}.step: action under key {serial.action_key!r} does not match action_spec: "
            f"{why}. The spec is {serial.action_spec!r}."
        )

    def _new(self, data: dict) -> TensorDict:
        # every entry is made here with the batch shape, on the CPU
        return TensorDict._new_unsafe(data, batch_size=self.serial.batch_size, device=self.serial.device)

    def arrays(self, action, reset: bool):
        """Step every sub-env with ``action`` (a tensor); ``(obs, reward, term, trunc, done, root_obs)``.

        With ``reset``, sub-envs that are done are reset right away and ``root_obs`` is the next root's
        observation array (``obs`` itself when nobody is done, a copy with reset rows otherwise); else it
        is None.
        """
        actions = self.convert(action)
        actions = actions.tolist() if self.as_list else list(actions)
        obs = np.empty(self.shape, self.dtype)
        reward = np.empty(self.flag_shape, np.float32)
        term = np.empty(self.flag_shape, bool)
        trunc = np.empty(self.flag_shape, bool)
        done_rows = []
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            o, r, te, tr, _ = env._gym_step(action)
            obs[i] = o
            reward[i] = r
            term[i] = te
            trunc[i] = tr
            if te or tr:
                done_rows.append(i)
        root_obs = obs if reset else None
        if reset and done_rows:
            root_obs = obs.copy()
            for i in done_rows:
                root_obs[i] = self.envs[i]._gym_reset(None, None)
        return obs, reward, term, trunc, term | trunc, root_obs

    def step(self, td, reset: bool):
        """Step every sub-env; returns ``(next_data, root_obs or None)``.

        With ``reset``, sub-envs that are done are reset right away and ``root_obs`` is the next root's
        observation array (the next observation, with reset observations in the done rows); it is None
        when nobody is done.
        """
        obs, reward, term, trunc, done, root_obs = self.arrays(td.get(self.serial.action_key), reset)
        data = {self.key: torch.from_numpy(obs), "reward": torch.from_numpy(reward),
                "terminated": torch.from_numpy(term), "truncated": torch.from_numpy(trunc),
                "done": torch.from_numpy(done)}
        return data, (None if root_obs is obs else root_obs)

    def step_and_maybe_reset(self, td):
        serial = self.serial
        serial._check_action(td)
        data, root_obs = self.step(td, reset=True)
        nxt = self._new(data)
        td.set("next", nxt)
        if root_obs is None:  # nobody is done: the root shares the step's tensors, as step_mdp does
            root = {k: v for k, v in data.items() if k != "reward"}
            serial._last = nxt
        else:
            false = [torch.from_numpy(np.zeros(self.flag_shape, bool)) for _ in range(3)]
            root = {self.key: torch.from_numpy(root_obs), "done": false[0], "terminated": false[1],
                    "truncated": false[2]}
        skip = ("next", "_reset", serial.action_key, serial.reward_key)
        for key, value in td.items():  # the root's other keys (a policy's hidden state, ...), kept
            if key not in skip and key not in root:
                root[key] = value
        root = self._new(root)
        if root_obs is not None:
            serial._last = root
        return td, root


class FusedStepper:
    """The kernel's step as NumPy arrays, for a collector that writes them straight into its batch buffers
    (see :class:`rlbench.envs.gym_vector.FusedStepper`, the same protocol).
    """

    def __init__(self, kernel):
        self.kernel, self.serial = kernel, kernel.serial
        self.key, self.shape = kernel.key, kernel.flag_shape
        spec = self.serial.action_spec
        self.action_shape, self.action_dtype = spec.shape, spec.dtype
        self.cheap = kernel.cheap_checked or not self.serial.validate_actions
        self._last = None  # the last step's arrays, for finish()

    def accepts(self, action) -> bool:
        return (
            self.cheap and type(action) is torch.Tensor
            and action.shape == self.action_shape and action.dtype == self.action_dtype
        )

    def step(self, action):
        out = self._last = self.kernel.arrays(action, reset=True)
        return out

    def finish(self, root_obs) -> TensorDict:
        """The next root after the last fused step, laid out as the kernel's ``step_and_maybe_reset`` lays it
        out; also sets ``SerialEnv._last`` as it does (the step's data when nobody was done, else the root).
        """
        kernel, last = self.kernel, self._last
        if last is not None and last[-1] is last[0]:  # nobody done: the root shares the step's tensors
            obs, reward, term, trunc, done, _ = last
            data = {self.key: torch.from_numpy(obs), "reward": torch.from_numpy(reward),
                    "terminated": torch.from_numpy(term), "truncated": torch.from_numpy(trunc),
                    "done": torch.from_numpy(done)}
            self.serial._last = kernel._new(data)
            return kernel._new({k: v for k, v in data.items() if k != "reward"})
        false = [torch.from_numpy(np.zeros(self.shape, bool)) for _ in range(3)]
        root = self.serial._last = kernel._new({self.key: torch.from_numpy(root_obs), "done": false[0],
                                                "terminated": false[1], "truncated": false[2]})
        return root
