"""DQN (Mnih et al., 2015), Double DQN (van Hasselt et al., 2016) and C51 (Bellemare et al., 2017).

``DQNLoss(value_network)`` regresses ``Q(s, a)`` onto ``r + gamma**m (1 - terminated) max_a' Q_target(s', a')``
(``m`` = ``"steps_to_next_obs"`` when the batch went through
:func:`~rlbench.objectives.multistep.nstep_return`, else 1). With ``double_dqn=True`` the online
network picks ``a'`` and the target network scores it. ``DistributionalDQNLoss`` does the same
with return distributions over a fixed support: the target distribution is the projection of
``r + gamma**m z`` onto the support, and the loss its cross-entropy with the predicted one.

Both write the per-sample TD error into the input TensorDict (``"td_error"``), which
``TensorDictReplayBuffer.update_tensordict_priority`` reads for prioritized replay, and weight the
per-sample loss by ``"priority_weight"`` (importance weights) when the batch carries it.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from .common import LossModule, ValueEstimators
from .utils import distance_loss

__all__ = ["DQNLoss", "DistributionalDQNLoss", "project_distribution"]


def _next_td(td: TensorDictBase, owner: str) -> TensorDictBase:
    nxt = td.get("next", None)
    if not isinstance(nxt, TensorDictBase):
        raise KeyError(f"{owner}: expected transitions with a 'next' sub-TensorDict (next observation, reward, "
                       f"done, terminated); got keys {sorted(map(str, td.keys()))}")
    return nxt


def _in_keys(network: nn.Module, owner: str) -> list:
    keys = getattr(network, "in_keys", None)
    if not keys:
        raise TypeError(f"{owner}: value_network must be a TensorDict module with in_keys (e.g. QValueActor or "
                        f"TensorDictModule(net, in_keys=['observation'], out_keys=['action_value'])), "
                        f"got {type(network).__name__}")
    return list(keys)


def _infer_action_space(network: nn.Module, action_space: str | None) -> str | None:
    if action_space is not None:
        if action_space not in ("one_hot", "categorical"):
            raise ValueError(f"action_space must be 'one_hot' or 'categorical', got {action_space!r}")
        return action_space
    for m in network.modules():  # a QValueActor knows its action space
        space = getattr(m, "action_space", None)
        if space in ("one_hot", "categorical"):
            return space
    return None  # decided from the data


class _QLossBase(LossModule):
    default_keys = {
        "action_value": "action_value",
        "action": "action",
        "reward": "reward",
        "done": "done",
        "terminated": "terminated",
        "steps_to_next_obs": "steps_to_next_obs",
        "priority": "td_error",
        "priority_weight": "priority_weight",
    }

    def _setup(self, value_network, delay_value, gamma, action_space):
        self._in_keys = _in_keys(value_network, type(self).__name__)
        self.delay_value = delay_value
        self.convert_to_functional(value_network, "value_network", create_target_params=delay_value)
        self.action_space = _infer_action_space(value_network, action_space)
        self.gamma = float(gamma)

    def make_value_estimator(self, value_type=None, **hyperparams):
        """Only ``"td0"`` (the one-step/n-step target); ``gamma`` may be set. Returns ``self``."""
        kind = ValueEstimators.parse(value_type if value_type is not None else ValueEstimators.TD0)
        if kind is not ValueEstimators.TD0:
            raise ValueError(f"{type(self).__name__}.make_value_estimator: only 'td0' is supported (use nstep_return "
                             f"for multi-step targets), got {kind.value!r}")
        extra = sorted(set(hyperparams) - {"gamma"})
        if extra:
            raise TypeError(f"{type(self).__name__}.make_value_estimator: unexpected hyperparameter(s) {extra}")
        self.gamma = float(hyperparams.get("gamma", self.gamma))
        return self

    # -- data helpers
    def _q(self, td: TensorDictBase, *, target: bool) -> torch.Tensor:
        """Action values of the states in ``td`` (online or target)."""
        src = td.select(*self._in_keys, strict=False)
        missing = [k for k in self._in_keys if k not in src.keys(True, True)]
        if missing:
            raise KeyError(f"{type(self).__name__}: the value network reads {missing}, absent from the batch")
        out = self.call_network("value_network", src, target=target)
        return out.get(self.tensor_keys.action_value)

    def _action_index(self, action: torch.Tensor, n_actions: int, batch_shape) -> torch.Tensor:
        """Actions as ``[*B, 1]`` int64 indices, from one-hot or index actions."""
        one_hot = self.action_space == "one_hot" or (
            self.action_space is None and action.shape == (*batch_shape, n_actions) and n_actions > 1
            and (action.dtype == torch.bool or ((action == 0) | (action == 1)).all())
        )
        if one_hot:
            if action.shape[-1] != n_actions:
                raise ValueError(f"{type(self).__name__}: one-hot actions of shape {tuple(action.shape)} do not match "
                                 f"{n_actions} action values")
            return action.to(torch.float32).argmax(-1, keepdim=True)
        idx = action.long().reshape(*batch_shape, 1)
        return idx

    def _discount(self, td: TensorDictBase, like: torch.Tensor) -> torch.Tensor | float:
        steps = td.get(self.tensor_keys.steps_to_next_obs, None)
        if steps is None:
            return self.gamma
        return self.gamma ** steps.reshape(like.shape).to(like.dtype)

    def _reward_term(self, td: TensorDictBase, batch_shape):
        nxt = _next_td(td, type(self).__name__)
        reward = nxt.get(self.tensor_keys.reward, None)
        if reward is None:
            raise KeyError(f"{type(self).__name__}: no ('next', {self.tensor_keys.reward!r}) in the batch; "
                           f"rename with set_keys(reward=...)")
        term = nxt.get(self.tensor_keys.terminated, None)
        if term is None:
            term = nxt.get(self.tensor_keys.done, None)
        if term is None:
            raise KeyError(f"{type(self).__name__}: the batch has neither ('next', {self.tensor_keys.terminated!r}) "
                           f"nor ('next', {self.tensor_keys.done!r})")
        return reward.reshape(*batch_shape, 1), term.reshape(*batch_shape, 1).to(reward.dtype)

    def _reduce(self, td: TensorDictBase, per_sample: torch.Tensor) -> torch.Tensor:
        weight = td.get(self.tensor_keys.priority_weight, None)
        if weight is None:
            return per_sample.mean()
        return (per_sample * weight.reshape(per_sample.shape).to(per_sample.dtype)).mean()


class DQNLoss(_QLossBase):
    """The DQN loss, optionally Double-DQN, with a frozen target network.

    Args:
        value_network: a :class:`~rlbench.modules.QValueActor` or any TensorDict module writing
            ``"action_value"`` ``[*B, n_actions]`` from its ``in_keys``.
        loss_function: ``"l2"`` (default), ``"l1"`` or ``"smooth_l1"`` (Huber, as in the Nature paper).
        delay_value: keep a target copy of the network (update it with
            :class:`~rlbench.objectives.utils.HardUpdate` / ``SoftUpdate``); ``False`` bootstraps
            from the online network (no gradient through the target either way).
        double_dqn: the online network chooses the next action, the target network scores it.
        gamma: discount (``make_value_estimator("td0", gamma=...)`` changes it too).
        action_space: ``"one_hot"`` or ``"categorical"``; by default taken from the network
            (a QValueActor knows it) or from the actions' shape.

    Returns (``forward``): ``loss_value`` and the diagnostics ``td_error`` (mean ``|target - Q|``)
    and ``q_value`` (mean predicted ``Q(s, a)``); per-sample ``|target - Q|`` goes into the input
    under ``"td_error"``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> net = TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["action_value"])
        >>> loss = DQNLoss(net, action_space="categorical", gamma=0.9)
        >>> td = TensorDict({"observation": torch.randn(8, 4), "action": torch.randint(2, (8,)),
        ...     "next": {"observation": torch.randn(8, 4), "reward": torch.ones(8, 1),
        ...              "done": torch.zeros(8, 1, dtype=torch.bool),
        ...              "terminated": torch.zeros(8, 1, dtype=torch.bool)}}, batch_size=[8])
        >>> out = loss(td)
        >>> sorted(out.keys()), td["td_error"].shape
        (['loss_value', 'q_value', 'td_error'], torch.Size([8]))
    """

    def __init__(self, value_network: nn.Module, *, loss_function: str = "l2", delay_value: bool = True,
                 double_dqn: bool = False, gamma: float = 0.99, action_space: str | None = None):
        super().__init__()
        distance_loss(torch.zeros(1), torch.zeros(1), loss_function)  # fail early on a bad name
        self.loss_function = loss_function
        self.double_dqn = double_dqn
        self._setup(value_network, delay_value, gamma, action_space)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        bshape = td.batch_size
        q_all = self._q(td, target=False)  # [*B, n_actions]
        action = td.get(self.tensor_keys.action)
        a = self._action_index(action, q_all.shape[-1], bshape)
        q = q_all.gather(-1, a)  # Q(s, a): [*B, 1]
        reward, term = self._reward_term(td, bshape)
        with torch.no_grad():
            nxt = td.get("next")
            q_next_all = self._q(nxt, target=self.delay_value)
            if self.double_dqn:  # van Hasselt et al.: online argmax, target evaluation
                best = self._q(nxt, target=False).argmax(-1, keepdim=True)
                q_next = q_next_all.gather(-1, best)
            else:
                q_next = q_next_all.max(-1, keepdim=True).values
            target = reward + self._discount(td, reward) * (1.0 - term) * q_next
        per_sample = distance_loss(q, target, self.loss_function).squeeze(-1)
        td_error = (target - q).detach().abs().squeeze(-1)
        td.set(self.tensor_keys.priority, td_error)
        return TensorDict(loss_value=self._reduce(td, per_sample), td_error=td_error.mean(),
                          q_value=q.detach().mean())


class DistributionalDQNLoss(_QLossBase):
    """C51: cross-entropy between the predicted return distribution and the projected target.

    Args:
        value_network: a :class:`~rlbench.modules.DistributionalQValueActor` (or a module writing
            logits / log-probabilities ``"action_value"`` ``[*B, n_atoms, n_actions]``).
        gamma: discount.
        delay_value: keep a target copy of the network.
        support: the atoms; taken from the network's ``support`` buffer when omitted.
        double_dqn: choose the next action with the online network.
        action_space: as in :class:`DQNLoss`.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> net = TensorDictModule(torch.nn.Sequential(torch.nn.Linear(4, 3 * 5), torch.nn.Unflatten(-1, (5, 3))),
        ...                        ["observation"], ["action_value"])
        >>> loss = DistributionalDQNLoss(net, gamma=0.9, support=torch.linspace(-2, 2, 5), action_space="categorical")
        >>> td = TensorDict({"observation": torch.randn(6, 4), "action": torch.randint(3, (6,)),
        ...     "next": {"observation": torch.randn(6, 4), "reward": torch.ones(6, 1),
        ...              "terminated": torch.zeros(6, 1, dtype=torch.bool)}}, batch_size=[6])
        >>> loss(td)["loss_value"].item() > 0
        True
    """

    def __init__(self, value_network: nn.Module, gamma: float, *, delay_value: bool = True, support=None,
                 double_dqn: bool = False, action_space: str | None = None):
        super().__init__()
        if support is None:
            support = next((m.support for m in value_network.modules() if isinstance(getattr(m, "support", None),
                                                                                     torch.Tensor)), None)
        if support is None:
            raise ValueError("DistributionalDQNLoss: pass support= (the return atoms) or a value network that has a "
                             "'support' buffer (DistributionalQValueActor)")
        support = torch.as_tensor(support, dtype=torch.get_default_dtype()).detach().clone()
        if support.ndim != 1 or support.numel() < 2 or not bool((support[1:] > support[:-1]).all()):
            raise ValueError(f"DistributionalDQNLoss: support must be a strictly increasing 1-d tensor of >= 2 atoms, "
                             f"got {support}")
        gaps = support[1:] - support[:-1]
        if not torch.allclose(gaps, gaps[0].expand_as(gaps), rtol=1e-4, atol=1e-6):
            raise ValueError("DistributionalDQNLoss: support atoms must be evenly spaced "
                             "(torch.linspace(v_min, v_max, n_atoms)); the C51 projection assumes it")
        self.register_buffer("support", support)
        self.double_dqn = double_dqn
        self._setup(value_network, delay_value, gamma, action_space)

    def _log_probs(self, td: TensorDictBase, *, target: bool) -> torch.Tensor:
        x = self._q(td, target=target)
        n_atoms = self.support.numel()
        if x.ndim < 2 or x.shape[-2] != n_atoms:
            raise ValueError(f"DistributionalDQNLoss: expected action values [*B, n_atoms={n_atoms}, n_actions], "
                             f"got {tuple(x.shape)}")
        # log_softmax is the identity on log-probabilities, so logits and log-probs both work
        return torch.log_softmax(x, -2)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        bshape = td.batch_size
        log_p = self._log_probs(td, target=False)  # [*B, atoms, actions]
        action = td.get(self.tensor_keys.action)
        a = self._action_index(action, log_p.shape[-1], bshape)
        n_atoms = self.support.numel()
        log_p_a = log_p.gather(-1, a.unsqueeze(-2).expand(*bshape, n_atoms, 1)).squeeze(-1)  # [*B, atoms]
        reward, term = self._reward_term(td, bshape)
        with torch.no_grad():
            nxt = td.get("next")
            p_next = self._log_probs(nxt, target=self.delay_value).exp()
            z = self.support.to(p_next)
            chooser = self._log_probs(nxt, target=False).exp() if self.double_dqn else p_next
            best = (chooser * z[:, None]).sum(-2).argmax(-1, keepdim=True)  # [*B, 1]
            p_best = p_next.gather(-1, best.unsqueeze(-2).expand(*bshape, n_atoms, 1)).squeeze(-1)
            tz = reward + self._discount(td, reward) * (1.0 - term) * z  # [*B, atoms]
            target = project_distribution(p_best, tz, z)
        per_sample = -(target * log_p_a).sum(-1)
        td.set(self.tensor_keys.priority, per_sample.detach())
        q = (log_p_a.detach().exp() * self.support.to(log_p_a)).sum(-1)
        return TensorDict(loss_value=self._reduce(td, per_sample), td_error=per_sample.detach().mean(),
                          q_value=q.mean())


def project_distribution(probs: torch.Tensor, values: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Projects the distribution ``P(value = values[..., i]) = probs[..., i]`` onto ``support``.

    Each mass moves to the two nearest atoms in proportion to closeness (values outside the
    support are clamped to its ends): ``m_j = sum_i probs_i * max(0, 1 - |b_i - j|)`` with
    ``b_i = (clamp(values_i) - v_min) / dz`` -- the C51 projection, written as one
    ``[*B, atoms, atoms]`` hat-function product (exact when ``b_i`` is an integer, no special case).

    Example:
        >>> project_distribution(torch.tensor([1.0]), torch.tensor([0.25]), torch.tensor([0.0, 1.0]))
        tensor([0.7500, 0.2500])
    """
    v_min, v_max = support[0], support[-1]
    dz = (v_max - v_min) / (support.numel() - 1)
    b = (values.clamp(v_min, v_max) - v_min) / dz  # fractional atom positions [*B, n_in]
    j = torch.arange(support.numel(), device=support.device, dtype=probs.dtype)
    weights = (1.0 - (b.unsqueeze(-1) - j).abs()).clamp_min(0.0)  # [*B, n_in, atoms]
    return (probs.unsqueeze(-1) * weights).sum(-2)
