"""``FusedStepper``: how an env hands a collector its steps as plain NumPy arrays.

A collector's generic loop builds two TensorDicts per step (``step_and_maybe_reset``) and stacks them
into its batch buffers. Envs whose step is naturally a handful of arrays -- a ``GymWrapper`` over a
SAME_STEP vector env with one observation array, a ``SerialEnv`` of such gym envs -- can skip all of
that: :meth:`EnvBase.fused_stepper <rlbench.envs.EnvBase.fused_stepper>` returns a :class:`FusedStepper`
and the collector's fused loop (:mod:`rlbench.collectors._fused`) writes the arrays it returns straight
into NumPy views of its buffers.

The contract is exactness: the arrays of :meth:`FusedStepper.step` are exactly what the env's
``step_and_maybe_reset`` would have put in its two TensorDicts, and :meth:`FusedStepper.finish` leaves
the env in the state that path leaves it in, so a collector may switch between the two paths at any
step. An env that cannot promise that for some configuration returns None from ``fused_stepper``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from tensordict import TensorDictBase

__all__ = ["FusedStepper"]


class FusedStepper(ABC):
    """One env step as NumPy arrays, for a collector that writes them straight into its batch buffers.

    Made by the env's :meth:`~rlbench.envs.EnvBase.fused_stepper`, used for the steps of one batch, then
    dropped. Implementations: :class:`rlbench.envs.gym_vector.VectorFusedStepper` and
    :class:`rlbench.envs.serial_gym.SerialFusedStepper`.

    Args:
        key: the env's observation key (a fused env has exactly one observation array).
        shape: the shape of the reward and done flags, ``(*batch_size, 1)``.
        action_spec: the env's action spec; :meth:`accepts` compares shape and dtype with it.
        cheap: whether :meth:`step` range-checks actions itself (integer actions through the action
            converter) or the env does not validate actions: then a matching shape and dtype is all
            the check an action needs.
        generator: the env's ``action_generator``, from which :meth:`rand_action` draws.

    A subclass implements :meth:`step` and :meth:`finish`.

    Example:
        >>> from rlbench.envs import GymEnv
        >>> env = GymEnv("CartPole-v1", num_envs=2)
        >>> _ = env.set_seed(0)
        >>> _ = env.reset()
        >>> stepper = env.fused_stepper()
        >>> isinstance(stepper, FusedStepper), stepper.key, stepper.shape
        (True, 'observation', (2, 1))
        >>> action = stepper.rand_action()
        >>> stepper.accepts(action), stepper.accepts(action.float())  # a float action: the generic path
        (True, False)
        >>> next_obs, reward, terminated, truncated, done, root_obs = stepper.step(action)
        >>> next_obs.shape, reward.dtype, done.shape
        ((2, 4), dtype('float32'), (2, 1))
        >>> stepper.finish(root_obs)["observation"].shape
        torch.Size([2, 4])
        >>> env.close()
    """

    def __init__(self, key: str, shape: tuple, action_spec, cheap: bool, generator: torch.Generator | None = None):
        self.key, self.shape = key, tuple(shape)
        self.action_spec = action_spec
        self.action_shape, self.action_dtype = action_spec.shape, action_spec.dtype
        self.cheap = cheap
        self.generator = generator

    def accepts(self, action) -> bool:
        """Whether :meth:`step` takes ``action`` with no other check (else the caller takes the generic path)."""
        return (
            self.cheap and type(action) is torch.Tensor
            and action.shape == self.action_shape and action.dtype == self.action_dtype
        )

    def rand_action(self) -> torch.Tensor:
        """A random action, drawn exactly as the env's ``rand_action`` draws it."""
        return self.action_spec.rand(generator=self.generator)

    @abstractmethod
    def step(self, action: torch.Tensor) -> tuple[np.ndarray, ...]:
        """Step the env with ``action`` (one that :meth:`accepts` took).

        Returns:
            ``(next_obs, reward, terminated, truncated, done, root_obs)``: ``next_obs`` is the
            observation under ``"next"`` (the true final one for sub-envs that are done), ``reward`` and
            the flags are shaped :attr:`shape` (float32 / bool), and ``root_obs`` is the next step's input
            observation (done sub-envs already reset). ``root_obs`` may be ``next_obs`` itself when no
            sub-env is done. The arrays are the caller's: the stepper does not write into them again.
        """

    @abstractmethod
    def finish(self, root_obs: np.ndarray) -> TensorDictBase:
        """The next root after the last fused step, as ``step_and_maybe_reset`` would have returned it.

        ``root_obs`` is the last :meth:`step`'s ``root_obs``. The result holds the observation and the
        done flags (all False after a step: done sub-envs were reset); the env's own bookkeeping is
        brought to where the generic path leaves it.
        """
