"""Batched torch-native Pendulum, matching gymnasium's ``Pendulum-v1``.

Mirrors ``gymnasium/envs/classic_control/pendulum.py``: torque clipped to ``[-2, 2]``, the semi-implicit
Euler update with the angular velocity clipped to ``[-8, 8]``, the cost
``angle_normalize(th)**2 + 0.1 * thdot**2 + 0.001 * u**2`` computed on the state *before* the update,
never terminating, resets uniform in ``[-pi, pi] x [-1, 1]`` and the 200-step time limit.
"""
from __future__ import annotations

import math

import torch

from ...specs import Bounded
from ._base import ClassicControlEnv

__all__ = ["PendulumEnv"]


class PendulumEnv(ClassicControlEnv):
    """Swing a pendulum up and keep it upright with a bounded torque.

    The observation is gymnasium's ``[cos(theta), sin(theta), theta_dot]``; the state
    ``[theta, theta_dot]`` travels separately under ``"state"``. The action is a torque in
    ``[-2, 2]`` of shape ``[*batch_size, 1]``; the reward is minus the cost (at most 0). Episodes
    never terminate, they are truncated after ``max_episode_steps`` (200).

    Args:
        batch_size: the env's batch dims. device: where tensors live.
        dtype: float dtype of state/observation/reward/action (float32 by default).
        max_episode_steps: time limit (gymnasium's 200 for ``Pendulum-v1``); ``None`` for none.
        seed: seed of the reset generator (see :meth:`set_seed`).
        g: gravity (gymnasium's ``g`` argument, 10.0).
        validate_actions: check each action's range in ``step`` (out-of-range torques are
            otherwise clipped, as in gymnasium).

    Example:
        >>> env = PendulumEnv(batch_size=[3], seed=0)
        >>> td = env.rollout(200, break_when_any_done=False)
        >>> td["observation"].shape, td["state"].shape
        (torch.Size([3, 200, 3]), torch.Size([3, 200, 2]))
        >>> bool(td["next", "truncated"][:, -1].all()), bool(td["next", "terminated"].any())
        (True, False)
    """

    STATE_SIZE = 2
    # reset: np_random.uniform(low=-high, high=high) with high = [DEFAULT_X, DEFAULT_Y] = [pi, 1]
    RESET_LOW, RESET_HIGH = [-math.pi, -1.0], [math.pi, 1.0]

    max_speed = 8.0
    max_torque = 2.0
    dt = 0.05
    m = 1.0
    l = 1.0  # noqa: E741 - gymnasium's name

    def __init__(self, batch_size=(), device=None, dtype: torch.dtype = torch.float32,
                 max_episode_steps: int | None = 200, seed: int | None = None, g: float = 10.0,
                 validate_actions: bool = True):
        self.g = float(g)
        super().__init__(batch_size=batch_size, device=device, dtype=dtype, max_episode_steps=max_episode_steps,
                         seed=seed, validate_actions=validate_actions)

    def _build_specs(self, b):
        dev, dt, c = self.device, self.dtype, self._const
        self.action_spec = Bounded(-self.max_torque, self.max_torque, (*b, 1), dtype=dt, device=dev)
        self._c_pi, self._c_two_pi = c(math.pi), c(2 * math.pi)
        self._c_torque, self._c_speed = c(self.max_torque), c(self.max_speed)
        self._c_sin_coef = c(3 * self.g / (2 * self.l))  # d(thdot)/dt = 3g/(2l) sin(th) + 3/(m l^2) u
        high = c([1.0, 1.0, self.max_speed])
        return Bounded(-high, high, (*b, 3), dtype=dt, device=dev)

    def _observe(self, state):
        th, thdot = state[..., :1], state[..., 1:]
        return torch.cat((torch.cos(th), torch.sin(th), thdot), -1)

    def _dynamics(self, state, action):
        # [..., :1] slices keep a trailing dim of 1, so the reward comes out [*b, 1] with no reshape
        th, thdot = state[..., :1], state[..., 1:]
        u = action.clamp(-self._c_torque, self._c_torque)  # np.clip(u, -max_torque, max_torque)
        # costs = angle_normalize(th)**2 + .1 * thdot**2 + .001 * u**2, angle_normalize(x) = ((x + pi) % (2 pi)) - pi
        # (torch.remainder, like numpy's %, takes the sign of the divisor)
        norm = torch.remainder(th + self._c_pi, self._c_two_pi).sub_(self._c_pi)
        costs = torch.mul(norm, norm).addcmul_(thdot, thdot, value=0.1).addcmul_(u, u, value=0.001)
        # newthdot = clip(thdot + (3g/(2l) sin(th) + 3/(m l^2) u) dt, -max_speed, max_speed); newth = th + newthdot dt
        acc = torch.addcmul(u * (3.0 / (self.m * self.l**2)), torch.sin(th), self._c_sin_coef)
        newthdot = torch.add(thdot, acc, alpha=self.dt).clamp_(-self._c_speed, self._c_speed)
        newth = torch.add(th, newthdot, alpha=self.dt)
        obs = torch.cat((torch.cos(newth), torch.sin(newth), newthdot), -1)
        terminated = torch.zeros(costs.shape, dtype=torch.bool, device=self.device)  # never terminates
        return torch.cat((newth, newthdot), -1), obs, costs.neg_(), terminated
