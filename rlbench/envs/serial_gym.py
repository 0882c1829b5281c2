"""A NumPy stepping kernel for a :class:`~rlbench.envs.SerialEnv` whose sub-envs are all single gym envs.

Stepping each sub-env through its own ``GymWrapper._step`` costs ~15 us of TensorDict plumbing per
sub-env per step (a TensorDict in, five small tensors and a TensorDict out, then a stack), several
times the gym step itself for CartPole-like envs. This kernel does what gymnasium's ``SyncVectorEnv``
does instead: convert the batch of actions once, step the raw gym envs into preallocated NumPy arrays,
and make the batch's tensors once. The data is exactly what the generic path produces (same keys,
dtypes, values, and per-sub-env RNG use); :class:`SerialEnv` falls back to the generic path for
anything else. Each sub-env is stepped through what its :meth:`GymWrapper.numpy_access
<rlbench.envs.GymWrapper.numpy_access>` hands out, which is also how the wrapper says that the kernel's
data are exactly its own.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tensordict import TensorDict

from .fused import FusedStepper
from .gym import GymWrapper
from .gym_spaces import make_action_converter, space_kind

__all__ = ["gym_kernel", "GymKernel", "SerialFusedStepper"]


def gym_kernel(serial) -> "GymKernel | None":
    """The kernel for ``serial``'s sub-envs, or None when one of them is not a plain single gym env.

    Example:
        >>> from rlbench.envs import GymEnv, SerialEnv
        >>> from rlbench.testing import CountingEnv
        >>> type(gym_kernel(SerialEnv(2, lambda: GymEnv("CartPole-v1")))).__name__
        'GymKernel'
        >>> gym_kernel(SerialEnv(2, CountingEnv)) is None
        True
    """
    envs = serial.envs
    accesses = []
    for env in envs:
        access = env.numpy_access() if isinstance(env, GymWrapper) else None
        if access is None or env.action_key != envs[0].action_key:
            return None
        accesses.append(access)
    if serial.device.type != "cpu" or not hasattr(TensorDict, "_new_unsafe") or len(serial.batch_size) != 1:
        return None
    return GymKernel(serial, accesses)


class GymKernel:
    """Steps every sub-env of a :class:`~rlbench.envs.SerialEnv` of single gym envs into NumPy arrays.

    Args:
        serial: the ``SerialEnv``.
        accesses: each sub-env's :class:`~rlbench.envs.gym.NumpyAccess`, in order.
    """

    def __init__(self, serial, accesses: list):
        first = accesses[0]
        self.serial, self.envs = serial, serial.envs
        self.steps = [a.step for a in accesses]
        self.resets = [a.reset for a in accesses]
        self.key, self.dtype = first.key, first.dtype
        self.shape = tuple(serial.observation_spec[self.key].shape)
        self.flag_shape = (len(self.envs), 1)
        # one converter for the whole batch: one range check per step instead of one per sub-env
        self.convert = make_action_converter(first.action_space, serial.action_spec, self._action_error)
        self.as_list = space_kind(first.action_space) == "Discrete"  # python ints, as GymWrapper passes them
        self.cheap_checked = first.cheap_checked

    def _action_error(self, action):
        serial = self.serial
        why = serial.action_spec.mismatch(action) or "values out of range"
        raise ValueError(
            f"{type(serial).__name__}.step: action under key {serial.action_key!r} does not match action_spec: "
            f"{why}. The spec is {serial.action_spec!r}."
        )

    def new_td(self, data: dict) -> TensorDict:
        """A TensorDict of the batch's size from ``data``, unchecked.

        Every entry is made here with the batch shape, on the CPU.
        """
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
        for i, (step, action) in enumerate(zip(self.steps, actions)):
            o, r, te, tr, _ = step(action)
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
                root_obs[i] = self.resets[i](None, None)
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
        """``SerialEnv.step_and_maybe_reset`` in one NumPy pass, for an action already checked.

        Returns ``(td, next_root, last)``: the generic path's output, and what the ``SerialEnv`` records
        as its sub-envs' latest values (the step's ``"next"`` when nobody was done, else the next root).
        """
        serial = self.serial
        data, root_obs = self.step(td, reset=True)
        nxt = last = self.new_td(data)
        td.set("next", nxt)
        if root_obs is None:  # nobody is done: the root shares the step's tensors, as step_mdp does
            root = {k: v for k, v in data.items() if k != "reward"}
        else:
            false = [torch.from_numpy(np.zeros(self.flag_shape, bool)) for _ in range(3)]
            root = {self.key: torch.from_numpy(root_obs), "done": false[0], "terminated": false[1],
                    "truncated": false[2]}
        skip = ("next", "_reset", serial.action_key, serial.reward_key)
        for key, value in td.items():  # the root's other keys (a policy's hidden state, ...), kept
            if key not in skip and key not in root:
                root[key] = value
        root = self.new_td(root)
        if root_obs is not None:
            last = root
        return td, root, last


class SerialFusedStepper(FusedStepper):
    """The kernel's step as NumPy arrays: the ``FusedStepper`` of a ``SerialEnv`` of single gym envs.

    See :class:`~rlbench.envs.fused.FusedStepper` for the protocol.

    Args:
        kernel: the env's :class:`GymKernel`.
        record_last: called by :meth:`finish` with what the ``SerialEnv`` records as its sub-envs' latest
            values, as its ``step_and_maybe_reset`` records them.

    Example:
        >>> from rlbench.envs import GymEnv, SerialEnv
        >>> env = SerialEnv(2, lambda: GymEnv("CartPole-v1"))
        >>> _ = env.reset()
        >>> stepper = env.fused_stepper()
        >>> type(stepper).__name__, stepper.shape
        ('SerialFusedStepper', (2, 1))
        >>> stepper.step(stepper.rand_action())[0].shape
        (2, 4)
        >>> env.close()
    """

    def __init__(self, kernel: GymKernel, record_last: Callable[[TensorDict], None]):
        serial = kernel.serial
        super().__init__(kernel.key, kernel.flag_shape, serial.action_spec,
                         cheap=kernel.cheap_checked or not serial.validate_actions, generator=serial.action_generator)
        self.kernel, self.record_last = kernel, record_last
        self._last = None  # the last step's arrays, for finish()

    def step(self, action):
        out = self._last = self.kernel.arrays(action, reset=True)
        return out

    def finish(self, root_obs) -> TensorDict:
        """The next root after the last fused step, laid out as the kernel's ``step_and_maybe_reset`` does.

        Also hands ``record_last`` what that path records (the step's data when nobody was done, else
        the root).
        """
        kernel, last = self.kernel, self._last
        if last is not None and last[-1] is last[0]:  # nobody done: the root shares the step's tensors
            obs, reward, term, trunc, done, _ = last
            data = {self.key: torch.from_numpy(obs), "reward": torch.from_numpy(reward),
                    "terminated": torch.from_numpy(term), "truncated": torch.from_numpy(trunc),
                    "done": torch.from_numpy(done)}
            self.record_last(kernel.new_td(data))
            return kernel.new_td({k: v for k, v in data.items() if k != "reward"})
        false = [torch.from_numpy(np.zeros(self.shape, bool)) for _ in range(3)]
        root = kernel.new_td({self.key: torch.from_numpy(root_obs), "done": false[0], "terminated": false[1],
                              "truncated": false[2]})
        self.record_last(root)
        return root
