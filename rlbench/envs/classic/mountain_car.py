"""Batched torch-native MountainCar, matching gymnasium's ``MountainCar-v0`` and ``MountainCarContinuous-v0``.

Two classes, as gymnasium has two env ids with different constants and rewards:

- :class:`MountainCarEnv` mirrors ``gymnasium/envs/classic_control/mountain_car.py`` (3 discrete
  actions, force 0.001, goal 0.5, reward -1 per step, 200-step limit);
- :class:`MountainCarContinuousEnv` mirrors ``continuous_mountain_car.py`` (a force in ``[-1, 1]``,
  power 0.0015, goal 0.45, reward ``100 * reached - 0.1 * action**2``, 999-step limit).

Both clip the velocity to ``+-0.07`` and the position to ``[-1.2, 0.6]``, stop the car at the left wall
(``position == min_position and velocity < 0`` zeroes the velocity) and reset the position uniformly in
``[-0.6, -0.4]`` with zero velocity.
"""
from __future__ import annotations

import torch

from ...specs import Bounded, Categorical
from ._base import ClassicControlEnv

__all__ = ["MountainCarEnv", "MountainCarContinuousEnv"]


class _MountainCarBase(ClassicControlEnv):
    STATE_SIZE = 2
    # reset: position = np_random.uniform(low=-0.6, high=-0.4), velocity = 0
    RESET_LOW, RESET_HIGH = [-0.6, 0.0], [-0.4, 0.0]

    min_position = -1.2
    max_position = 0.6
    max_speed = 0.07
    gravity = 0.0025
    goal_position = 0.5

    def __init__(self, batch_size=(), device=None, dtype: torch.dtype = torch.float32,
                 max_episode_steps: int | None = None, seed: int | None = None, goal_velocity: float = 0.0,
                 validate_actions: bool = True):
        self.goal_velocity = float(goal_velocity)
        super().__init__(batch_size=batch_size, device=device, dtype=dtype, max_episode_steps=max_episode_steps,
                         seed=seed, validate_actions=validate_actions)

    def _build_specs(self, b):
        c = self._const
        self._c_min_pos, self._c_max_pos, self._c_speed = c(self.min_position), c(self.max_position), c(self.max_speed)
        self._c_neg_gravity, self._c_three = c(-self.gravity), c(3.0)
        self._c_goal_pos, self._c_goal_vel, self._c_zero = c(self.goal_position), c(self.goal_velocity), c(0.0)
        high = c([self.max_position, self.max_speed])
        low = c([self.min_position, -self.max_speed])
        return Bounded(low, high, (*b, 2), dtype=self.dtype, device=self.device)

    def _observe(self, state):
        return state.clone()

    def _physics(self, position, velocity, push):
        """The shared update; ``push`` is the action's velocity change (``force * power`` or ``(a - 1) * force``)."""
        # velocity += push + cos(3 * position) * (-gravity); velocity = clip(velocity, -max_speed, max_speed)
        velocity = torch.addcmul(push, torch.cos(position * self._c_three), self._c_neg_gravity).add_(velocity)
        velocity = velocity.clamp_(-self._c_speed, self._c_speed)
        # position += velocity; position = clip(position, min_position, max_position)
        position = torch.add(position, velocity).clamp_(self._c_min_pos, self._c_max_pos)
        # left wall: if position == min_position and velocity < 0: velocity = 0
        velocity = torch.where(position == self._c_min_pos, velocity.clamp_min(self._c_zero), velocity)
        # terminated = position >= goal_position and velocity >= goal_velocity
        terminated = (position >= self._c_goal_pos).logical_and_(velocity >= self._c_goal_vel)
        next_state = torch.stack((position, velocity), -1)
        return next_state, terminated.unsqueeze(-1)


class MountainCarEnv(_MountainCarBase):
    """Drive an under-powered car up a hill: push left (0), do nothing (1) or push right (2).

    Observation and state are gymnasium's ``[position, velocity]``; reward -1 per step until the car
    reaches ``position >= 0.5`` (terminated) or 200 steps pass (truncated). For the continuous-action
    version (gymnasium's ``MountainCarContinuous-v0``) use :class:`MountainCarContinuousEnv`.

    Args:
        batch_size: the env's batch dims. device: where tensors live.
        dtype: float dtype of state/observation/reward (float32 by default).
        max_episode_steps: time limit (gymnasium's 200 for ``MountainCar-v0``); ``None`` for none.
        seed: seed of the reset generator (see :meth:`set_seed`).
        goal_velocity: the velocity the car needs at the goal (gymnasium's argument, 0).
        validate_actions: check each action's range in ``step``.

    Example:
        >>> env = MountainCarEnv(batch_size=[2], seed=0)
        >>> td = env.rollout(200, break_when_any_done=False)
        >>> td["next", "reward"].sum().item()  # random pushes never reach the goal: -1 per step
        -400.0
        >>> td["next", "truncated"][:, -1].squeeze(-1).tolist()
        [True, True]
    """

    force = 0.001

    def __init__(self, batch_size=(), device=None, dtype: torch.dtype = torch.float32,
                 max_episode_steps: int | None = 200, seed: int | None = None, goal_velocity: float = 0.0,
                 validate_actions: bool = True):
        super().__init__(batch_size=batch_size, device=device, dtype=dtype, max_episode_steps=max_episode_steps,
                         seed=seed, goal_velocity=goal_velocity, validate_actions=validate_actions)

    def _build_specs(self, b):
        self.action_spec = Categorical(3, b, device=self.device)
        self._c_force, self._c_neg_force = self._const(self.force), self._const(-self.force)
        return super()._build_specs(b)

    def _dynamics(self, state, action):
        position, velocity = state.unbind(-1)
        push = torch.addcmul(self._c_neg_force, action, self._c_force)  # (action - 1) * force
        next_state, terminated = self._physics(position, velocity, push)
        reward = torch.full(terminated.shape, -1.0, dtype=self.dtype, device=self.device)
        return next_state, next_state.clone(), reward, terminated


class MountainCarContinuousEnv(_MountainCarBase):
    """MountainCar with a continuous force in ``[-1, 1]`` (gymnasium's ``MountainCarContinuous-v0``).

    The reward is ``-0.1 * action**2`` per step (on the action as given, before clipping, as
    gymnasium computes it), plus 100 at the step that reaches ``position >= 0.45``.

    Args:
        batch_size: the env's batch dims. device: where tensors live.
        dtype: float dtype of state/observation/reward/action (float32 by default).
        max_episode_steps: time limit (gymnasium's 999); ``None`` for none.
        seed: seed of the reset generator (see :meth:`set_seed`).
        goal_velocity: the velocity the car needs at the goal (gymnasium's argument, 0).
        validate_actions: check each action's range in ``step`` (out-of-range forces are
            otherwise clipped, as in gymnasium).

    Example:
        >>> env = MountainCarContinuousEnv(batch_size=[2], seed=0)
        >>> td = env.rollout(10)
        >>> td["action"].shape, td["next", "observation"].shape
        (torch.Size([2, 10, 1]), torch.Size([2, 10, 2]))
        >>> bool((td["next", "reward"] <= 0).all())
        True
    """

    goal_position = 0.45  # 0.5 in MountainCar-v0
    power = 0.0015
    min_action = -1.0
    max_action = 1.0

    def __init__(self, batch_size=(), device=None, dtype: torch.dtype = torch.float32,
                 max_episode_steps: int | None = 999, seed: int | None = None, goal_velocity: float = 0.0,
                 validate_actions: bool = True):
        super().__init__(batch_size=batch_size, device=device, dtype=dtype, max_episode_steps=max_episode_steps,
                         seed=seed, goal_velocity=goal_velocity, validate_actions=validate_actions)

    def _build_specs(self, b):
        self.action_spec = Bounded(self.min_action, self.max_action, (*b, 1), dtype=self.dtype, device=self.device)
        self._c_min_action, self._c_max_action = self._const(self.min_action), self._const(self.max_action)
        self._c_power = self._const(self.power)
        return super()._build_specs(b)

    def _dynamics(self, state, action):
        position, velocity = state.unbind(-1)
        a = action.squeeze(-1)
        # force = min(max(action[0], min_action), max_action); velocity += force * power - 0.0025 cos(3 position)
        push = a.clamp(self._c_min_action, self._c_max_action).mul_(self._c_power)
        next_state, terminated = self._physics(position, velocity, push)
        # reward = 100 if terminated else 0; reward -= action[0]**2 * 0.1 (the unclipped action)
        reward = torch.addcmul(terminated.to(self.dtype).mul_(100.0), action, action, value=-0.1)
        return next_state, next_state.clone(), reward, terminated
