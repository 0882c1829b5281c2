"""Batched torch-native Acrobot, matching gymnasium's ``Acrobot-v1``.

Mirrors ``gymnasium/envs/classic_control/acrobot.py`` (Sutton 1996; Sutton & Barto 2018): the "book"
equations of motion, one RK4 step of ``dt = 0.2`` on the state augmented with the torque, angles wrapped
to ``[-pi, pi]`` and velocities bounded to ``4 pi`` / ``9 pi``, termination when the free end rises
above the bar (``-cos(s0) - cos(s1 + s0) > 1``), reward -1 per step (0 at the terminating step), resets
uniform in ``[-0.1, 0.1]^4`` and the 500-step time limit. gymnasium's ``torque_noise_max`` is 0 and is
not modelled.
"""
from __future__ import annotations

import math

import torch

from ...specs import Bounded, Categorical
from ._base import ClassicControlEnv

__all__ = ["AcrobotEnv"]

_PI = math.pi


class AcrobotEnv(ClassicControlEnv):
    """Swing the tip of a two-link pendulum above a bar by torquing the middle joint.

    Actions: torque -1 (0), 0 (1) or +1 (2). The state is ``[theta1, theta2, dtheta1, dtheta2]``;
    the observation is gymnasium's ``[cos(theta1), sin(theta1), cos(theta2), sin(theta2), dtheta1,
    dtheta2]``.

    Args:
        batch_size: the env's batch dims. device: where tensors live.
        dtype: float dtype of state/observation/reward (float32 by default).
        max_episode_steps: time limit (gymnasium's 500 for ``Acrobot-v1``); ``None`` for none.
        seed: seed of the reset generator (see :meth:`set_seed`).
        validate_actions: check each action's range in ``step``.

    Example:
        >>> env = AcrobotEnv(batch_size=[2], seed=0)
        >>> td = env.rollout(5)
        >>> td["next", "observation"].shape
        torch.Size([2, 5, 6])
        >>> td["next", "reward"].unique().tolist()  # -1 per step until the tip swings up
        [-1.0]
    """

    STATE_SIZE = 4
    RESET_LOW, RESET_HIGH = -0.1, 0.1  # reset: np_random.uniform(low=-0.1, high=0.1, size=(4,))

    dt = 0.2
    LINK_LENGTH_1 = 1.0
    LINK_MASS_1 = 1.0
    LINK_MASS_2 = 1.0
    LINK_COM_POS_1 = 0.5
    LINK_COM_POS_2 = 0.5
    LINK_MOI = 1.0
    MAX_VEL_1 = 4 * _PI
    MAX_VEL_2 = 9 * _PI
    GRAVITY = 9.8

    def __init__(self, batch_size=(), device=None, dtype: torch.dtype = torch.float32,
                 max_episode_steps: int | None = 500, seed: int | None = None, validate_actions: bool = True):
        super().__init__(batch_size=batch_size, device=device, dtype=dtype, max_episode_steps=max_episode_steps,
                         seed=seed, validate_actions=validate_actions)

    def _build_specs(self, b):
        c = self._const
        self.action_spec = Categorical(3, b, device=self.device)
        m1, m2, l1 = self.LINK_MASS_1, self.LINK_MASS_2, self.LINK_LENGTH_1
        lc1, lc2, i1, i2, g = self.LINK_COM_POS_1, self.LINK_COM_POS_2, self.LINK_MOI, self.LINK_MOI, self.GRAVITY
        # gymnasium's _dsdt, with the constant parts of its expressions folded:
        #   d1 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos t2) + I1 + I2 = k_d1 + 2 k_b cos t2
        #   d2 = m2 (lc2^2 + l1 lc2 cos t2) + I2 = k_d2 + k_b cos t2
        self._k_b = m2 * l1 * lc2
        self._c_d1, self._c_d2 = c(m1 * lc1**2 + m2 * (l1**2 + lc2**2) + i1 + i2), c(m2 * lc2**2 + i2)
        self._k_phi2 = m2 * lc2 * g  # phi2 = m2 lc2 g cos(t1 + t2 - pi/2)
        self._k_phi1 = (m1 * lc1 + m2 * l1) * g  # (m1 lc1 + m2 l1) g cos(t1 - pi/2)
        self._c_den2 = c(m2 * lc2**2 + i2)  # ddtheta2 denominator: m2 lc2^2 + I2 - d2^2 / d1
        self._c_half_pi, self._c_pi, self._c_two_pi = c(_PI / 2.0), c(_PI), c(2 * _PI)
        self._c_vel_max = c([self.MAX_VEL_1, self.MAX_VEL_2])
        self._c_one, self._c_zero = c(1.0), c(0.0)
        high = c([1.0, 1.0, 1.0, 1.0, self.MAX_VEL_1, self.MAX_VEL_2])
        return Bounded(-high, high, (*b, 6), dtype=self.dtype, device=self.device)

    def _dsdt(self, s, torque):
        """Gymnasium's ``_dsdt`` ("book" dynamics): d/dt of ``[t1, t2, dt1, dt2]``."""
        t1, t2, dt1, dt2 = s.unbind(-1)
        kb = self._k_b
        cos2, sin2 = torch.cos(t2), torch.sin(t2)
        d1 = torch.add(self._c_d1, cos2, alpha=2 * kb)
        d2 = torch.add(self._c_d2, cos2, alpha=kb)
        phi2 = torch.cos(t1 + t2 - self._c_half_pi).mul_(self._k_phi2)
        # phi1 = -m2 l1 lc2 dt2^2 sin t2 - 2 m2 l1 lc2 dt2 dt1 sin t2 + (m1 lc1 + m2 l1) g cos(t1 - pi/2) + phi2
        phi1 = (dt2 * dt2).mul_(sin2).mul_(-kb)
        phi1.addcmul_(dt2 * dt1, sin2, value=-2 * kb)
        phi1.add_(torch.cos(t1 - self._c_half_pi), alpha=self._k_phi1).add_(phi2)
        # ddtheta2 = (a + d2 / d1 phi1 - m2 l1 lc2 dt1^2 sin t2 - phi2) / (m2 lc2^2 + I2 - d2^2 / d1)
        num = torch.addcmul(torque, d2 / d1, phi1).addcmul_(dt1 * dt1, sin2, value=-kb).sub_(phi2)
        ddt2 = num.div_(torch.sub(self._c_den2, d2 * d2 / d1))
        # ddtheta1 = -(d2 ddtheta2 + phi1) / d1
        ddt1 = torch.addcmul(phi1, d2, ddt2).div_(d1).neg_()
        return torch.stack((dt1, dt2, ddt1, ddt2), -1)

    def _observe(self, state):
        angles = state[..., :2]
        trig = torch.stack((torch.cos(angles), torch.sin(angles)), -1).flatten(-2)  # c1, s1, c2, s2
        return torch.cat((trig, state[..., 2:]), -1)

    def _dynamics(self, state, action):
        torque = torch.sub(action, 1).to(self.dtype)  # AVAIL_TORQUE = [-1.0, 0.0, +1]
        # rk4(self._dsdt, s_augmented, [0, dt]): one classic Runge-Kutta step (torque held constant)
        h, h2 = self.dt, self.dt / 2.0
        k1 = self._dsdt(state, torque)
        k2 = self._dsdt(torch.add(state, k1, alpha=h2), torque)
        k3 = self._dsdt(torch.add(state, k2, alpha=h2), torque)
        k4 = self._dsdt(torch.add(state, k3, alpha=h), torque)
        incr = k2.add_(k3).mul_(2.0).add_(k1).add_(k4)
        ns = torch.add(state, incr, alpha=h / 6.0)
        # wrap(ns[0..1], -pi, pi): gymnasium subtracts/adds 2 pi until inside; in closed form the number
        # of turns is ceil((x - pi) / 2pi) above and ceil((-pi - x) / 2pi) below (0 when inside, so
        # in-range angles pass through unchanged)
        angles = ns[..., :2]
        above = torch.div(angles - self._c_pi, self._c_two_pi).ceil_().clamp_min_(self._c_zero)
        below = torch.div(-self._c_pi - angles, self._c_two_pi).ceil_().clamp_min_(self._c_zero)
        angles = torch.addcmul(angles, below.sub_(above), self._c_two_pi)
        # bound(ns[2], -MAX_VEL_1, MAX_VEL_1), bound(ns[3], -MAX_VEL_2, MAX_VEL_2)
        vel = torch.clamp(ns[..., 2:], -self._c_vel_max, self._c_vel_max)
        next_state = torch.cat((angles, vel), -1)
        cos, sin = torch.cos(angles), torch.sin(angles)
        obs = torch.cat((torch.stack((cos, sin), -1).flatten(-2), vel), -1)
        # terminal: -cos(s[0]) - cos(s[1] + s[0]) > 1.0; reward -1 if not terminal else 0
        height = torch.neg(cos[..., :1]).sub_(torch.cos(angles[..., 1:] + angles[..., :1]))
        terminated = height > self._c_one
        reward = terminated.to(self.dtype).sub_(self._c_one)
        return next_state, obs, reward, terminated
