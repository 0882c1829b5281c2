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

from typing import Callable

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from . import functional as F
from .common import LossModule, parse_action_space
from .utils import distance_loss

__all__ = ["DQNLoss", "DistributionalDQNLoss", "project_distribution"]


_Q_KEYS = {
    "action_value": "action_value",
    "action": "action",
    "reward": "reward",
    "done": "done",
    "terminated": "terminated",
    "steps_to_next_obs": "steps_to_next_obs",
    "priority": "td_error",
    "priority_weight": "priority_weight",
}


def _check_q_network(network: nn.Module, owner: str) -> None:
    if not getattr(network, "in_keys", None):
        raise TypeError(f"{owner}: value_network must be a TensorDict module with in_keys (e.g. QValueActor or "
                        f"TensorDictModule(net, in_keys=['observation'], out_keys=['action_value'])), "
                        f"got {type(network).__name__}")


def _infer_action_space(network: nn.Module, action_space, owner: str) -> str | None:
    name, _ = parse_action_space(action_space, owner)
    if name is not None:
        return name
    for m in network.modules():  # a QValueActor knows its action space
        space = getattr(m, "action_space", None)
        if space in ("one_hot", "categorical"):
            return space
    return None  # decided from the data


def _action_index(action: torch.Tensor, n_actions: int, batch_shape, action_space: str | None,
                  what: Callable[[], str]) -> torch.Tensor:
    """Actions as ``[*B, 1]`` int64 indices, from one-hot or index actions (``action_space=None``: by their shape).

    Index actions must have an integer dtype (a float one would be truncated): ``what()`` names them in the error.
    """
    one_hot = action_space == "one_hot" or (
        action_space is None and action.shape == (*batch_shape, n_actions) and n_actions > 1
        and (action.dtype == torch.bool or ((action == 0) | (action == 1)).all())
    )
    if one_hot:
        if action.shape[-1] != n_actions:
            raise ValueError(f"{what()}: one-hot actions of shape {tuple(action.shape)} do not match "
                             f"{n_actions} action values")
        return action.to(torch.float32).argmax(-1, keepdim=True)
    if action.is_floating_point() or action.is_complex():
        F.check_index(action, what())
    return action.long().reshape(*batch_shape, 1)


class DQNLoss(LossModule):
    """The DQN loss, optionally Double-DQN, with a frozen target network.

    ``loss_value = E[w d(Q(s, a), y)]`` with ``y = r + gamma**m (1 - terminated) max_a' Q_target(s', a')``
    (Mnih et al. 2015); with ``double_dqn``, ``y = r + gamma**m (1 - terminated) Q_target(s', argmax_a'
    Q(s', a'))`` (van Hasselt et al. 2016). ``w`` is the batch's ``"priority_weight"`` (1 without it).

    Args:
        value_network: a :class:`~rlbench.modules.QValueActor` or any TensorDict module writing
            ``"action_value"`` ``[*B, n_actions]`` from its ``in_keys``.
        loss_function: ``"l2"`` (default), ``"l1"`` or ``"smooth_l1"`` (Huber, as in the Nature paper).
        delay_value: keep a target copy of the network (update it with
            :class:`~rlbench.objectives.utils.HardUpdate` / ``SoftUpdate``); ``False`` bootstraps
            from the online network (no gradient through the target either way).
        double_dqn: the online network chooses the next action, the target network scores it.
        gamma: discount (``make_value_estimator("td0", gamma=...)`` changes it too).
        action_space: ``"categorical"`` (actions are class indices, ``[*B]`` or ``[*B, 1]`` integers),
            ``"one_hot"``, or the env's action spec (``env.action_spec``: a ``Categorical`` or
            ``OneHot`` spec, as TorchRL's ``action_space=<spec>``); by default taken from the network
            (a QValueActor knows it) or from the actions' shape. Float index actions are refused
            (``TypeError``), never truncated. Unlike TorchRL, whose default discrete spec is one-hot,
            rlbench's envs give scalar ``Categorical`` actions by default; both work here.

    Returns (``forward``): ``loss_value`` and the diagnostics ``td_error`` (mean ``|target - Q|``)
    and ``q_value`` (mean predicted ``Q(s, a)``); per-sample ``|target - Q|`` goes into the input
    under ``"td_error"``. (TorchRL's DQNLoss names its term ``"loss"``; rlbench keeps ``loss_value``,
    deliberately: every term of every loss is a ``loss_*`` entry, which :func:`total_loss` sums.)

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

    default_keys = _Q_KEYS
    one_step_target = True

    def __init__(self, value_network: nn.Module, *, loss_function: str = "l2", delay_value: bool = True,
                 double_dqn: bool = False, gamma: float = 0.99, action_space=None):
        super().__init__()
        self.loss_function = self._check_loss_function(loss_function)
        self.double_dqn = double_dqn
        _check_q_network(value_network, "DQNLoss")
        self.delay_value = delay_value
        self.convert_to_functional(value_network, "value_network", create_target_params=delay_value)
        self.action_space = _infer_action_space(value_network, action_space, self._get_name())
        self.gamma = float(gamma)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        keys, bshape = self.tensor_keys, td.batch_size
        q_all = self._q(td)  # Q(s, .): [*B, n_actions]
        a = _action_index(self.stored_action(td), q_all.shape[-1], bshape, self.action_space, self._what_action)
        q = q_all.gather(-1, a)  # Q(s, a): [*B, 1]
        reward, terminated = self.reward_and_terminated(td)
        with torch.no_grad():
            next_td = self.next_of(td)
            q_next_all = self._q(next_td, target=True)
            if self.double_dqn:  # van Hasselt et al.: online argmax, target evaluation
                best = self._q(next_td).argmax(-1, keepdim=True)
                q_next = q_next_all.gather(-1, best)
            else:
                q_next = q_next_all.max(-1, keepdim=True).values
            # y = r + gamma^m (1 - terminated) Q_target(s', a'), m = steps to the bootstrap state (n-step)
            gamma = F.nstep_discount(self.gamma, td.get(keys.steps_to_next_obs, None), reward)
            target = F.td0_target(reward, terminated, q_next, gamma)
        per_sample = distance_loss(q, target, self.loss_function).squeeze(-1)
        td_error = (target - q).detach().abs().squeeze(-1)
        td.set(keys.priority, td_error)
        loss_value = F.weighted_mean(per_sample, td.get(keys.priority_weight, None))
        return TensorDict(loss_value=loss_value, td_error=td_error.mean(), q_value=q.detach().mean())

    def _what_action(self) -> str:
        return f"{self._get_name()}: {self.tensor_keys.action!r}"

    def _q(self, td: TensorDictBase, *, target: bool = False) -> torch.Tensor:
        """Action values ``[*B, n_actions]`` of the states in ``td`` (online, or the target's)."""
        return self.network_output("value_network", td, self.tensor_keys.action_value, target=target, strict=True)


class DistributionalDQNLoss(LossModule):
    """C51: cross-entropy between the predicted return distribution and the projected target.

    With atoms ``z`` and ``a' = argmax_a' E[Z_target(s', a')]`` (the online network's mean with
    ``double_dqn``): ``loss_value = -E[w sum_j m_j log p_j(s, a)]``, ``m`` being the target
    distribution ``p(s', a')`` moved onto ``r + gamma**m (1 - terminated) z`` and projected back onto
    the support (Bellemare et al. 2017, Algorithm 1; :func:`project_distribution`).

    Args:
        value_network: a :class:`~rlbench.modules.DistributionalQValueActor` (or a module writing
            logits / log-probabilities ``"action_value"`` ``[*B, n_atoms, n_actions]``).
        gamma: discount.
        delay_value: keep a target copy of the network.
        support: the atoms; taken from the network's ``support`` buffer when omitted.
        double_dqn: choose the next action with the online network.
        action_space: as in :class:`DQNLoss` (a string or an action spec).

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

    default_keys = _Q_KEYS
    one_step_target = True

    def __init__(self, value_network: nn.Module, gamma: float, *, delay_value: bool = True, support=None,
                 double_dqn: bool = False, action_space=None):
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
        _check_q_network(value_network, "DistributionalDQNLoss")
        self.delay_value = delay_value
        self.convert_to_functional(value_network, "value_network", create_target_params=delay_value)
        self.action_space = _infer_action_space(value_network, action_space, self._get_name())
        self.gamma = float(gamma)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        keys, bshape = self.tensor_keys, td.batch_size
        log_p = self._log_probs(td)  # log p_j(s, .): [*B, atoms, actions]
        a = _action_index(self.stored_action(td), log_p.shape[-1], bshape, self.action_space, self._what_action)
        n_atoms = self.support.numel()
        log_p_a = log_p.gather(-1, a.unsqueeze(-2).expand(*bshape, n_atoms, 1)).squeeze(-1)  # [*B, atoms]
        reward, terminated = self.reward_and_terminated(td)
        with torch.no_grad():
            next_td = self.next_of(td)
            p_next = self._log_probs(next_td, target=True).exp()
            z = self.support.to(p_next)
            chooser = self._log_probs(next_td).exp() if self.double_dqn else p_next
            best = (chooser * z[:, None]).sum(-2).argmax(-1, keepdim=True)  # a' = argmax E[Z(s', .)]: [*B, 1]
            p_best = p_next.gather(-1, best.unsqueeze(-2).expand(*bshape, n_atoms, 1)).squeeze(-1)
            # every atom's Bellman update T z = r + gamma^m (1 - terminated) z, projected onto the support
            gamma = F.nstep_discount(self.gamma, td.get(keys.steps_to_next_obs, None), reward)
            target = project_distribution(p_best, F.td0_target(reward, terminated, z, gamma), z)
        per_sample = -(target * log_p_a).sum(-1)
        td.set(keys.priority, per_sample.detach())
        q = (log_p_a.detach().exp() * self.support.to(log_p_a)).sum(-1)
        return TensorDict(loss_value=F.weighted_mean(per_sample, td.get(keys.priority_weight, None)),
                          td_error=per_sample.detach().mean(), q_value=q.mean())

    def _what_action(self) -> str:
        return f"{self._get_name()}: {self.tensor_keys.action!r}"

    def _log_probs(self, td: TensorDictBase, *, target: bool = False) -> torch.Tensor:
        x = self.network_output("value_network", td, self.tensor_keys.action_value, target=target, strict=True)
        n_atoms = self.support.numel()
        if x.ndim < 2 or x.shape[-2] != n_atoms:
            raise ValueError(f"DistributionalDQNLoss: expected action values [*B, n_atoms={n_atoms}, n_actions], "
                             f"got {tuple(x.shape)}")
        # log_softmax is the identity on log-probabilities, so logits and log-probs both work
        return torch.log_softmax(x, -2)


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
