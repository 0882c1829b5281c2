"""Model-based environments: an :class:`~rlbench.envs.EnvBase` whose step is a learned model.

:class:`ModelBasedEnvBase` steps a ``TensorDictModule`` (the world model) instead of a simulator.
All state lives in the TensorDict (the env object holds none), so the env is unlocked
(``batch_locked = False``): it runs whatever batch it is given, e.g. every posterior state of a
``[B, T]`` replay batch at once. With gradients enabled and a policy (or start state) that requires
them, :meth:`~rlbench.envs.EnvBase.rollout` keeps every step in the autograd graph, so an imagined
trajectory's rewards backpropagate into the policy and the model (Dreamer's actor learns this way);
under ``torch.no_grad()`` it takes the preallocated fast path.

:class:`WorldModelEnv` is the common case: a transition model and a separate reward model.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase

from ..specs import Composite, Spec
from .common import EnvBase

__all__ = ["ModelBasedEnvBase", "WorldModelEnv", "ModelOutputError"]


class ModelOutputError(ValueError):
    """A world model wrote an entry that does not match the env's specs (key, expected and found shape)."""


def _check_model(module, name: str, owner: str) -> None:
    if not isinstance(module, TensorDictModuleBase):
        raise TypeError(f"{owner}: {name} must be a tensordict module (e.g. TensorDictModule(net, in_keys=[...], "
                        f"out_keys=[...])) reading and writing TensorDict entries, got {type(module).__name__}")


class ModelBasedEnvBase(EnvBase):
    """An env whose ``_step`` runs a learned ``world_model`` (and optionally a ``reward_model``).

    Args:
        world_model: a tensordict module that reads the current observation keys (those of
            ``observation_spec``) and ``"action"``, and writes the next observation keys, either at the
            root of its output (overwriting the current ones, as TorchRL's Dreamer prior does) or under
            ``"next"``. It may also write ``"reward"`` and ``"terminated"``/``"done"`` flags.
        reward_model: a tensordict module that reads the *next* observation keys and writes
            ``"reward"`` (``[*batch, 1]``); None when the world model writes the reward itself.
        batch_size: the batch the specs describe (usually ``[]``: one element; the env is unlocked, so
            each call runs the batch of its input TensorDict).
        observation_spec: a Composite of the model's observation keys (with ``batch_size`` leading).
        action_spec: the action's spec.
        reward_spec: the reward's spec (default: unbounded ``[*batch_size, 1]``).
        device: the env's device.
        validate_actions: check action values against ``action_spec`` on every step (shape and dtype
            are always checked). Off by default: imagined actions come from the policy being trained.

    ``reset(td)`` returns the observation keys of ``td`` when it holds them (start states, e.g.
    posterior states of a replay batch), zeros of the observation spec otherwise. Every step checks
    the model's outputs against the specs (a handful of shape comparisons): a mismatch raises a
    :class:`ModelOutputError` naming the key, the expected and the found shape. No episode ends
    unless the model writes ``"terminated"``.

    Specs can also be taken from a real env: :meth:`from_env`.

    Example:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.specs import Bounded, Composite, Unbounded
        >>> model = TensorDictModule(lambda obs, a: (obs + a, -(obs + a).abs().sum(-1, keepdim=True)),
        ...                          in_keys=["observation", "action"], out_keys=["observation", "reward"])
        >>> env = ModelBasedEnvBase(model, observation_spec=Composite(observation=Unbounded((1,))),
        ...                         action_spec=Bounded(-1.0, 1.0, (1,)))
        >>> start = TensorDict(observation=torch.zeros(4, 1), batch_size=[4])
        >>> td = env.rollout(3, lambda td: td.set("action", torch.ones(4, 1)), tensordict=start, auto_reset=False)
        >>> td.shape, td["next", "observation"][0, :, 0].tolist(), td["next", "reward"][0, -1].item()
        (torch.Size([4, 3]), [1.0, 2.0, 3.0], -3.0)
    """

    batch_locked = False

    def __init__(self, world_model: TensorDictModuleBase, reward_model: TensorDictModuleBase | None = None, *,
                 batch_size=(), observation_spec: Composite | None = None, action_spec: Spec | None = None,
                 reward_spec: Spec | None = None, device=None, validate_actions: bool = False):
        super().__init__(batch_size=batch_size, device=device, validate_actions=validate_actions)
        owner = type(self).__name__
        _check_model(world_model, "world_model", owner)
        if reward_model is not None:
            _check_model(reward_model, "reward_model", owner)
        if observation_spec is None or action_spec is None:
            raise ValueError(f"{owner}: pass observation_spec= and action_spec= (the model's observation keys and "
                             f"its action), or take them from a real env with {owner}.from_env(..., env)")
        self.world_model = world_model
        self.reward_model = reward_model
        self.observation_spec = observation_spec
        self.action_spec = action_spec
        if reward_spec is not None:
            self.reward_spec = reward_spec
        # what each step checks: (key, event shape, dtype) of every observation, read once here
        nb = len(self.batch_size)
        self._obs = [(k, tuple(s.shape[nb:]), s.dtype) for k, s in self.observation_spec.items(True, True)]
        self._reward_event = tuple(self.reward_spec.shape[nb:])
        self._in_keys = [k for k, _, _ in self._obs] + [self.action_key] + list(self.state_spec.keys(True, True))

    @classmethod
    def from_env(cls, world_model, reward_model=None, *, env: EnvBase, observation_spec: Composite | None = None,
                 device=None, **kwargs):
        """The model env with a real env's action (and reward, and unless given, observation) specs.

        The real env's batch dims are dropped (the model env is unlocked): the specs describe one
        element. Pass ``observation_spec`` when the model's observations are not the env's (Dreamer's
        latent ``"state"``/``"belief"`` instead of pixels).

        Example:
            >>> from tensordict.nn import TensorDictModule
            >>> from rlbench.envs import PendulumEnv
            >>> model = TensorDictModule(lambda o, a: (o, o[..., :1]), ["observation", "action"],
            ...                          ["observation", "reward"])
            >>> env = ModelBasedEnvBase.from_env(model, env=PendulumEnv(batch_size=[8]))
            >>> env.action_spec.shape, env.observation_spec["observation"].shape
            (torch.Size([1]), torch.Size([3]))
        """
        if not isinstance(env, EnvBase):
            raise TypeError(f"{cls.__name__}.from_env: env must be an rlbench EnvBase, got {type(env).__name__}")
        obs = env.observation_spec_unbatched if observation_spec is None else observation_spec
        return cls(world_model, reward_model, batch_size=(), observation_spec=obs,
                   action_spec=env.action_spec_unbatched, reward_spec=env.reward_spec_unbatched,
                   device=env.device if device is None else device, **kwargs)

    # ------------------------------------------------------------------ the EnvBase hooks
    def _reset(self, td: TensorDictBase | None) -> TensorDictBase:
        batch = self.batch_size if td is None else td.batch_size
        keys = [k for k, _, _ in self._obs]
        if td is not None and all(k in td.keys(True, True) for k in keys):
            out = td.select(*keys)
        else:
            out = TensorDict({}, batch_size=batch, device=self.device)
            for k, shape, dtype in self._obs:
                out.set(k, torch.zeros((*batch, *shape), dtype=dtype, device=self.device))
        self._check_outputs(out, "reset", reward=False)
        return out

    def _step(self, td: TensorDictBase) -> TensorDictBase:
        out = self.world_model(td.select(*self._in_keys, strict=False))
        nested = out.get("next", None)
        src = nested if isinstance(nested, TensorDictBase) and all(
            k in nested.keys(True, True) for k, _, _ in self._obs) else out
        nxt = src.select(*(k for k, _, _ in self._obs))
        for flag in ("terminated", "truncated", "done"):
            value = src.get(flag, None)
            if value is not None:
                nxt.set(flag, value)
        if self.reward_model is not None:
            reward = self.reward_model(nxt.copy()).get(self.reward_key, None)
            where = "reward_model"
        else:
            reward = src.get(self.reward_key, None)
            reward = out.get(self.reward_key, None) if reward is None else reward
            where = "world_model"
        if reward is None:
            raise KeyError(f"{type(self).__name__}: the {where} wrote no {self.reward_key!r} entry (its outputs: "
                           f"{sorted(map(str, out.keys(True, True)))}); make it write the reward"
                           + ("" if self.reward_model is not None else " or pass a reward_model"))
        nxt.set(self.reward_key, reward)
        self._check_outputs(nxt, "world_model", reward=True)
        return nxt

    def _set_seed(self, seed: int | None) -> None:
        # the models sample with torch's global generator (reparameterised noise, as in training)
        if seed is not None:
            torch.manual_seed(seed)

    def _check_outputs(self, out: TensorDictBase, where: str, *, reward: bool) -> None:
        """Each observation (and the reward) has the spec's event shape and dtype, or a ``ModelOutputError``."""
        nb = out.batch_dims
        batch = tuple(out.batch_size)
        for key, shape, dtype in self._obs:
            value = out.get(key, None)
            if value is None:
                raise ModelOutputError(f"{type(self).__name__}: the {where} wrote no {key!r} entry, which the "
                                       f"observation_spec declares (expected shape {(*batch, *shape)}); found "
                                       f"{sorted(map(str, out.keys(True, True)))}")
            if tuple(value.shape[nb:]) != shape or tuple(value.shape[:nb]) != batch or value.dtype != dtype:
                self._mismatch(key, (*batch, *shape), dtype, value, where)
        if reward:
            value = out.get(self.reward_key)
            if tuple(value.shape) != (*batch, *self._reward_event):
                self._mismatch(self.reward_key, (*batch, *self._reward_event), self.reward_spec.dtype, value, where)

    def _mismatch(self, key, shape, dtype, value, where: str) -> None:
        raise ModelOutputError(
            f"{type(self).__name__}: the {where} output {key!r} does not match the env's specs: expected shape "
            f"{tuple(shape)} dtype {dtype}, found shape {tuple(value.shape)} dtype {value.dtype}. Fix the model's "
            f"output layer, or declare the spec the model produces (observation_spec=Composite({key}=...))")


class WorldModelEnv(ModelBasedEnvBase):
    """A model env from a transition model and a reward model (the usual split; Dreamer's imagination).

    Args:
        world_model: reads the current observation keys and ``"action"``, writes the next observation
            keys (at the root of its output, or under ``"next"``).
        reward_model: reads the next observation keys, writes ``"reward"`` ``[*batch, 1]``.
        batch_size: the batch the specs describe (``[]`` usually: the env runs its input's batch).
        observation_spec: a Composite of the observation keys.
        action_spec: the action's spec.
        device: the env's device.
        **kwargs: ``reward_spec``, ``validate_actions``, as :class:`ModelBasedEnvBase`.

    ``rollout(max_steps, policy, tensordict=start, auto_reset=False)`` imagines from the start
    states in ``start``. Everything else is :class:`ModelBasedEnvBase`'s.

    Example:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.specs import Bounded, Composite, Unbounded
        >>> step = TensorDictModule(lambda z, a: torch.tanh(z + a), in_keys=["latent", "action"], out_keys=["latent"])
        >>> reward = TensorDictModule(torch.nn.Linear(2, 1), in_keys=["latent"], out_keys=["reward"])
        >>> env = WorldModelEnv(step, reward, batch_size=[], observation_spec=Composite(latent=Unbounded((2,))),
        ...                     action_spec=Bounded(-1.0, 1.0, (1,)))
        >>> start = TensorDict(latent=torch.randn(5, 2), batch_size=[5])
        >>> dream = env.rollout(4, None, tensordict=start, auto_reset=False)  # random actions
        >>> dream.shape, dream["next", "reward"].requires_grad  # the reward model's parameters carry gradients
        (torch.Size([5, 4]), True)
    """

    def __init__(self, world_model: TensorDictModuleBase, reward_model: TensorDictModuleBase, *, batch_size,
                 observation_spec: Composite, action_spec: Spec, device=None, **kwargs):
        super().__init__(world_model, reward_model, batch_size=batch_size, observation_spec=observation_spec,
                         action_spec=action_spec, device=device, **kwargs)
