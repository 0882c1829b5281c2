"""Batched torch-native CartPole, matching gymnasium's ``CartPole-v1``.

Mirrors ``gymnasium/envs/classic_control/cartpole.py`` (Barto, Sutton & Anderson, 1983): same constants,
the same equations of motion (https://coneural.org/florian/papers/05_cart_pole.pdf), the explicit Euler
integrator, the ±2.4 position / ±12° angle termination, reward 1 per step, resets uniform in
``(-0.05, 0.05)^4`` and the 500-step time limit.
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase

from ...specs import Bounded, Categorical
from ._base import ClassicControlEnv

__all__ = ["CartPoleEnv"]


class CartPoleEnv(ClassicControlEnv):
    """Balance a pole on a cart by pushing the cart left (action 0) or right (action 1).

    A batch of ``batch_size`` independent cart-poles stepped with a handful of tensor ops. The
    observation is gymnasium's ``[x, x_dot, theta, theta_dot]``; the same four numbers travel as
    ``"state"`` (the env is state-less: ``step`` reads ``"state"`` and ``"step_count"`` from the
    input TensorDict).

    Args:
        batch_size: the env's batch dims. device: where tensors live.
        dtype: float dtype of state/observation/reward (float32 by default).
        max_episode_steps: time limit (gymnasium's 500 for ``CartPole-v1``); ``None`` for none.
        seed: seed of the reset generator (see :meth:`set_seed`).
        validate_actions: check each action's range in ``step``.

    :meth:`render` draws states as RGB frames (gymnasium's picture, no pygame needed).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> env = CartPoleEnv(batch_size=[4], seed=0)
        >>> td = env.rollout(100, break_when_any_done=False)
        >>> td["next", "observation"].shape, td["next", "reward"].shape
        (torch.Size([4, 100, 4]), torch.Size([4, 100, 1]))
        >>> bool(td["next", "done"].any())  # random pushes topple the pole within 100 steps
        True
        >>> env.render(td[0, -1]).shape  # one frame: uint8 [height, width, 3]
        torch.Size([400, 600, 3])
    """

    STATE_SIZE = 4
    _OBSERVATION_IS_STATE = True
    RESET_LOW, RESET_HIGH = -0.05, 0.05  # reset: np_random.uniform(low=-0.05, high=0.05, size=(4,))

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02  # seconds between state updates
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, batch_size=(), device=None, dtype: torch.dtype = torch.float32,
                 max_episode_steps: int | None = 500, seed: int | None = None, validate_actions: bool = True):
        super().__init__(batch_size=batch_size, device=device, dtype=dtype, max_episode_steps=max_episode_steps,
                         seed=seed, validate_actions=validate_actions)

    def _build_specs(self, b):
        dev, dt = self.device, self.dtype
        self.action_spec = Categorical(2, b, device=dev)
        # Same observation box as gymnasium: twice the termination thresholds, unbounded velocities.
        high = self._const([self.x_threshold * 2, math.inf, self.theta_threshold_radians * 2, math.inf])
        # 0-d constants of the fused update below (precomputed once: fewer, cheaper ops per step).
        m, g = self.total_mass, self.gravity
        c = self._const
        self._c_force0, self._c_force_slope = c(-self.force_mag / m), c(2 * self.force_mag / m)
        self._c_den0 = c(4.0 / 3.0 * self.length / g)
        self._c_x_thr, self._c_theta_thr = c(self.x_threshold), c(self.theta_threshold_radians)
        return Bounded(-high, high, (*b, 4), dtype=dt, device=dev)

    def _observe(self, state):
        return state.clone()

    def _dynamics(self, state, action):
        m, pml, g = self.total_mass, self.polemass_length, self.gravity
        _, x_dot, theta, theta_dot = state.unbind(-1)
        cos, sin = torch.cos(theta), torch.sin(theta)
        # gymnasium: force = force_mag if action == 1 else -force_mag;
        # temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        # (temporaries are updated in place where they are not needed any more: less memory traffic)
        temp = torch.addcmul(self._c_force0, action, self._c_force_slope)  # (2 action - 1) force_mag / total_mass
        temp.addcmul_(theta_dot * theta_dot, sin, value=pml / m)
        # thetaacc = (g sin - cos temp) / (length (4/3 - masspole cos^2 / total_mass)); numerator and
        # denominator are both divided by g here, which saves the g * sin op.
        den = torch.addcmul(self._c_den0, cos, cos, value=-self.length * self.masspole / (m * g))
        thetaacc = sin.addcmul_(cos, temp, value=-1.0 / g).div_(den)
        # xacc = temp - polemass_length * thetaacc * cos / total_mass
        xacc = temp.addcmul_(thetaacc, cos, value=-pml / m)
        # Explicit Euler (kinematics_integrator="euler"): all four use the *old* derivatives. The derivatives
        # are stacked along a new *leading* dim (struct-of-arrays: a [4, *b] buffer of contiguous rows, ~10x
        # cheaper than stacking along the last dim), and the state is returned as its [*b, 4] view.
        deriv = torch.stack((x_dot, xacc, theta_dot, thetaacc), 0)
        soa = torch.add(state.movedim(-1, 0), deriv, alpha=self.tau, out=deriv)
        next_state = soa.movedim(0, -1)
        # terminated: x < -2.4 or x > 2.4 or theta < -12deg or theta > 12deg (strict inequalities).
        terminated = (soa[0].abs() > self._c_x_thr).logical_or_(soa[2].abs() > self._c_theta_thr).unsqueeze(-1)
        # reward 1 on every step, the terminating one included
        reward = torch.ones(terminated.shape, dtype=self.dtype, device=self.device)
        return next_state, next_state.clone(), reward, terminated

    # ------------------------------------------------------------------ rendering
    screen_width = 600
    screen_height = 400

    @torch.no_grad()
    def render(self, state, chunk: int = 16) -> torch.Tensor:
        """RGB frames of CartPole states, as gymnasium's ``render_mode="rgb_array"`` draws them.

        The env holds no state, so pass what to draw: a TensorDict with a ``"state"`` entry (a step,
        or a whole rollout) or the state tensor itself, of shape ``[..., 4]``.

        Args:
            state: states ``[..., 4]`` or a TensorDict holding them under ``"state"``.
            chunk: frames drawn per batch of tensor ops (bounds the temporary memory).

        Returns:
            A ``torch.uint8`` tensor ``[..., 400, 600, 3]`` on the states' device: white background,
            black cart and track, the pole in (202, 152, 101) and its axle in (129, 132, 203).
        """
        if isinstance(state, TensorDictBase):
            state = state.get("state")
        state = torch.as_tensor(state)
        if state.shape[-1:] != (4,):
            raise ValueError(f"CartPoleEnv.render: expected states of shape [..., 4], got {tuple(state.shape)}")
        lead, flat = state.shape[:-1], state.reshape(-1, 4).to(torch.float32)
        h, w = self.screen_height, self.screen_width
        frames = torch.empty((flat.shape[0], h, w, 3), dtype=torch.uint8, device=flat.device)
        for i in range(0, flat.shape[0], chunk):
            frames[i:i + chunk] = self._draw(flat[i:i + chunk])
        return frames.reshape(*lead, h, w, 3)

    def _draw(self, s: torch.Tensor) -> torch.Tensor:
        # gymnasium's geometry (cartpole.py render): world width 2 * x_threshold over 600 px, cart 50x30 px
        # with its centre 100 px above the bottom, a 10 px wide pole of 2 * length (scaled) pivoting
        # cart_height / 4 above the cart's centre, rotated by -theta; y points up, then the picture is
        # flipped so row 0 is the top.
        h, w = self.screen_height, self.screen_width
        scale = w / (self.x_threshold * 2)
        pole_w, pole_len, cart_w, cart_h = 10.0, scale * 2 * self.length, 50.0, 30.0
        cart_y, axle_y = 100.0, 100.0 + cart_h / 4.0
        dev = s.device
        py = (h - 1 - torch.arange(h, device=dev, dtype=torch.float32)).view(1, h, 1) + 0.5  # pixel centres
        px = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w) + 0.5
        cart_x = (s[:, 0] * scale + w / 2.0).view(-1, 1, 1)
        cos, sin = torch.cos(s[:, 2]).view(-1, 1, 1), torch.sin(s[:, 2]).view(-1, 1, 1)
        dx, dy = px - cart_x, py - axle_y
        along, across = sin * dx + cos * dy, cos * dx - sin * dy  # pixel in the pole's own frame
        pole = (across.abs() <= pole_w / 2) & (along >= -pole_w / 2) & (along <= pole_len - pole_w / 2)
        cart = ((px - cart_x).abs() <= cart_w / 2) & ((py - cart_y).abs() <= cart_h / 2)
        axle = dx * dx + dy * dy <= (pole_w / 2) ** 2
        track = (py == cart_y + 0.5).expand_as(cart)  # gfxdraw.hline at y = 100: one pixel row
        img = torch.full((*cart.shape, 3), 255, dtype=torch.uint8, device=dev)
        for mask, rgb in ((cart, (0, 0, 0)), (pole, (202, 152, 101)), (axle, (129, 132, 203)), (track, (0, 0, 0))):
            img[mask] = torch.tensor(rgb, dtype=torch.uint8, device=dev)
        return img
