"""Exploration wrappers: put one after a policy (``TensorDictSequential(policy, EGreedyModule(...))``).

They explore only when the exploration type is ``RANDOM`` -- what collectors set by default -- or
unset (outside any ``set_exploration_type`` block, as TorchRL does). Under ``DETERMINISTIC``,
``MODE``, ``MEAN`` or ``MEDIAN`` they pass the policy's action through unchanged, so evaluating with
``set_exploration_type(ExplorationType.DETERMINISTIC)`` is greedy. Every action they change is
projected into the action spec.

Annealed quantities (epsilon, sigma) live in buffers (saved in ``state_dict``) and decay linearly
with ``.step(frames)``, which the training loop calls once per collected batch.
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase
from tensordict.nn import InteractionType, TensorDictModuleBase, interaction_type

from ..specs import Composite, OneHot, Spec
from .actors import _spec_on

__all__ = ["EGreedyModule", "AdditiveGaussianModule", "OrnsteinUhlenbeckProcessModule", "exploring"]


def exploring() -> bool:
    """True when exploration modules should add noise: the exploration type is RANDOM or unset.

    Example:
        >>> from rlbench.modules import ExplorationType, set_exploration_type
        >>> with set_exploration_type(ExplorationType.DETERMINISTIC):
        ...     exploring()
        False
    """
    kind = interaction_type()
    return kind is None or kind is InteractionType.RANDOM


def _leaf_spec(spec, key, owner: str) -> Spec:
    if isinstance(spec, Composite):
        if key not in spec:
            raise KeyError(f"{owner}: the Composite spec has no entry {key!r} (keys: {sorted(map(str, spec.keys()))})")
        spec = spec[key]
    if not isinstance(spec, Spec) or isinstance(spec, Composite):
        raise TypeError(f"{owner}: spec must be an rlbench Spec (e.g. env.action_spec), got {type(spec).__name__}")
    return spec


def _extra_dims(spec: Spec, action: torch.Tensor, owner: str) -> torch.Size:
    """Leading dims of ``action`` in front of the spec's shape (a replay batch has some, an env step none)."""
    n = action.ndim - spec.ndim
    if n < 0 or action.shape[n:] != spec.shape:
        raise ValueError(
            f"{owner}: action of shape {tuple(action.shape)} does not end with the spec's shape "
            f"{tuple(spec.shape)}; build the module with the action spec of the env that runs it"
        )
    return action.shape[:n]


class _Annealed(TensorDictModuleBase):
    """A linear schedule ``init -> end`` over ``annealing_num_steps`` frames, kept in a buffer."""

    def __init__(self, name: str, init: float, end: float, annealing_num_steps: int):
        super().__init__()
        if annealing_num_steps < 0:
            raise ValueError(f"{type(self).__name__}: annealing_num_steps must be >= 0, got {annealing_num_steps}")
        self._name = name
        self.register_buffer(f"{name}_init", torch.tensor(float(init)))
        self.register_buffer(f"{name}_end", torch.tensor(float(end)))
        self.register_buffer(name, torch.tensor(float(init)))
        self.annealing_num_steps = int(annealing_num_steps)

    def _spec(self, device: torch.device) -> Spec:
        cache = self.__dict__.setdefault("_spec_cache", {})
        return _spec_on(self.spec, device, cache)

    def step(self, frames: int = 1) -> None:
        """Advance the schedule by ``frames`` frames (linear decay, stops at the end value)."""
        init, end = getattr(self, f"{self._name}_init"), getattr(self, f"{self._name}_end")
        cur = getattr(self, self._name)
        if self.annealing_num_steps == 0:
            cur.copy_(end)
            return
        delta = (init - end) / self.annealing_num_steps * frames
        new = cur - delta
        # clamp toward end from either side (a schedule may also increase)
        cur.copy_(torch.maximum(new, end) if bool(init >= end) else torch.minimum(new, end))


class EGreedyModule(_Annealed):
    """Epsilon-greedy: with probability ``eps`` replace the action by a random one from ``spec``.

    ``eps`` starts at ``eps_init`` and decreases linearly to ``eps_end`` over ``annealing_num_steps``
    frames of ``.step(frames)``. One coin is tossed per element of the TensorDict's batch (a whole
    action vector is replaced at once). With ``action_mask_key`` (bool ``[*B, n]``), random actions
    are drawn among the allowed ones only (categorical and one-hot specs).

    Args:
        spec: the action spec (or a ``Composite`` holding ``action_key``).
        eps_init, eps_end, annealing_num_steps: the schedule.
        action_key: the action to perturb.
        action_mask_key: optional mask of allowed actions.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.specs import Categorical
        >>> explore = EGreedyModule(Categorical(4), eps_init=1.0, eps_end=0.0, annealing_num_steps=10)
        >>> td = explore(TensorDict(action=torch.zeros(1000, dtype=torch.long), batch_size=[1000]))
        >>> bool((td["action"] != 0).float().mean() > 0.6)  # ~3/4 of random draws differ from 0
        True
        >>> explore.step(5); float(explore.eps)
        0.5
    """

    def __init__(self, spec, eps_init: float = 1.0, eps_end: float = 0.1, annealing_num_steps: int = 1000, *,
                 action_key="action", action_mask_key=None):
        super().__init__("eps", eps_init, eps_end, annealing_num_steps)
        for name, v in (("eps_init", eps_init), ("eps_end", eps_end)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"EGreedyModule: {name} must be in [0, 1], got {v}")
        self.spec = _leaf_spec(spec, action_key, "EGreedyModule")
        self.action_key = action_key
        self.action_mask_key = action_mask_key
        self.in_keys = [action_key] + ([action_mask_key] if action_mask_key is not None else [])
        self.out_keys = [action_key]

    def _random_actions(self, td: TensorDictBase, action: torch.Tensor) -> torch.Tensor:
        if self.action_mask_key is None:
            spec = self._spec(action.device)
            return spec.rand(_extra_dims(spec, action, "EGreedyModule"))
        mask = td.get(self.action_mask_key).bool()
        n = mask.shape[-1]
        idx = torch.multinomial(mask.reshape(-1, n).float(), 1).reshape(mask.shape[:-1])
        if isinstance(self.spec, OneHot):
            return torch.nn.functional.one_hot(idx, n).to(action.dtype)
        return idx.to(action.dtype)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not exploring():
            return tensordict
        action = tensordict.get(self.action_key)
        coin = torch.rand(tensordict.batch_size, device=action.device) < self.eps.to(action.device)
        coin = coin.reshape(tuple(coin.shape) + (1,) * (action.ndim - coin.ndim))  # () for an unbatched env
        tensordict.set(self.action_key, torch.where(coin, self._random_actions(tensordict, action), action))
        return tensordict


class AdditiveGaussianModule(_Annealed):
    """Adds Gaussian noise ``sigma * N(mean, std)`` to a continuous action, then projects into ``spec``.

    ``sigma`` decays linearly from ``sigma_init`` to ``sigma_end`` over ``annealing_num_steps``
    frames of ``.step(frames)`` (TD3's exploration: a constant ``sigma`` is ``sigma_init == sigma_end``).

    Args:
        spec: the action spec (``Bounded`` for clipping; ``Unbounded`` works too).
        sigma_init, sigma_end, annealing_num_steps: the noise scale schedule.
        mean, std: the noise distribution before scaling.
        action_key: the action to perturb.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.specs import Bounded
        >>> noise = AdditiveGaussianModule(Bounded(-1.0, 1.0, shape=(2,)), sigma_init=5.0, sigma_end=5.0)
        >>> a = noise(TensorDict(action=torch.zeros(100, 2), batch_size=[100]))["action"]
        >>> bool(a.abs().max() <= 1) and bool(a.std() > 0.5)
        True
    """

    def __init__(self, spec, sigma_init: float = 1.0, sigma_end: float = 0.1, annealing_num_steps: int = 1000,
                 mean: float = 0.0, std: float = 1.0, *, action_key="action"):
        super().__init__("sigma", sigma_init, sigma_end, annealing_num_steps)
        self.spec = _leaf_spec(spec, action_key, "AdditiveGaussianModule")
        if not self.spec.dtype.is_floating_point:
            raise TypeError(f"AdditiveGaussianModule needs a continuous (float) action spec, got {self.spec!r}")
        self.mean, self.std = float(mean), float(std)
        self.action_key = action_key
        self.in_keys = [action_key]
        self.out_keys = [action_key]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not exploring():
            return tensordict
        action = tensordict.get(self.action_key)
        noise = torch.randn_like(action) * self.std + self.mean
        tensordict.set(self.action_key, self._spec(action.device).project(action + self.sigma.to(action) * noise))
        return tensordict


class OrnsteinUhlenbeckProcessModule(_Annealed):
    """Temporally correlated noise for continuous control (DDPG, Lillicrap et al. 2016).

    ``n_{t+1} = n_t + theta (mu - n_t) dt + sigma sqrt(dt) N(0, 1)`` and the action becomes
    ``project(action + eps * n_{t+1})``; ``eps`` decays from ``eps_init`` to ``eps_end`` with
    ``.step(frames)``. The noise state travels in the TensorDict under ``noise_key`` (root keys
    survive ``step_mdp``), so batched envs keep one process per sub-env. It restarts from ``x0``
    wherever ``is_init_key`` is True (add an ``InitTracker`` transform to the env) or when the
    TensorDict has no noise state yet.

    Args:
        spec: the (float) action spec.
        eps_init, eps_end, annealing_num_steps: the schedule of the noise scale.
        theta, mu, sigma, dt: the process parameters.
        x0: the starting noise (default 0).
        action_key, is_init_key, noise_key: the keys.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.specs import Bounded
        >>> ou = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, shape=(1,)))
        >>> td = ou(TensorDict(action=torch.zeros(4, 1), batch_size=[4]))
        >>> td["_ou_prev_noise"].shape, bool(td["action"].abs().max() <= 1)
        (torch.Size([4, 1]), True)
    """

    def __init__(self, spec, eps_init: float = 1.0, eps_end: float = 0.1, annealing_num_steps: int = 1000,
                 theta: float = 0.15, mu: float = 0.0, sigma: float = 0.2, dt: float = 1e-2, x0: float = 0.0, *,
                 action_key="action", is_init_key="is_init", noise_key="_ou_prev_noise"):
        super().__init__("eps", eps_init, eps_end, annealing_num_steps)
        self.spec = _leaf_spec(spec, action_key, "OrnsteinUhlenbeckProcessModule")
        if not self.spec.dtype.is_floating_point:
            raise TypeError(f"OrnsteinUhlenbeckProcessModule needs a continuous (float) action spec, got {self.spec!r}")
        if theta < 0 or sigma < 0 or dt <= 0:
            raise ValueError(f"OrnsteinUhlenbeckProcessModule: need theta >= 0, sigma >= 0, dt > 0; got "
                             f"theta={theta}, sigma={sigma}, dt={dt}")
        self.theta, self.mu, self.sigma, self.dt, self.x0 = float(theta), float(mu), float(sigma), float(dt), float(x0)
        self.action_key, self.is_init_key, self.noise_key = action_key, is_init_key, noise_key
        self.in_keys = [action_key, is_init_key, noise_key]
        self.out_keys = [action_key, noise_key]

    def _next_noise(self, prev: torch.Tensor) -> torch.Tensor:
        drift = self.theta * (self.mu - prev) * self.dt
        return prev + drift + self.sigma * math.sqrt(self.dt) * torch.randn_like(prev)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if not exploring():
            return tensordict
        action = tensordict.get(self.action_key)
        prev = tensordict.get(self.noise_key, None)
        if prev is None or prev.shape != action.shape:
            prev = torch.full_like(action, self.x0)
        else:
            is_init = tensordict.get(self.is_init_key, None)
            if is_init is not None:
                start = is_init.reshape(*is_init.shape[: tensordict.batch_dims], -1).any(-1)
                start = start.reshape(tuple(start.shape) + (1,) * (action.ndim - start.ndim))
                prev = torch.where(start, torch.full_like(prev, self.x0), prev)
        noise = self._next_noise(prev)
        tensordict.set(self.noise_key, noise)
        tensordict.set(self.action_key, self._spec(action.device).project(action + self.eps.to(action) * noise))
        return tensordict
