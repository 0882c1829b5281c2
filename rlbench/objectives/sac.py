"""Soft Actor-Critic: continuous (``SACLoss``) and discrete (``DiscreteSACLoss``) actions.

Continuous SAC follows Haarnoja et al., "Soft Actor-Critic Algorithms and Applications" (2018,
arXiv:1812.05905): twin critics with a min in the target, a reparameterised actor, and a learned
temperature alpha. Discrete SAC follows Christodoulou, "Soft Actor-Critic for Discrete Action
Settings" (2019, arXiv:1910.07207): the same objectives with expectations over actions taken in
closed form from the policy's probabilities instead of sampled.
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDict, TensorDictBase

from . import functional as F
from .common import LossModule, parse_action_space
from .utils import distance_loss

__all__ = ["SACLoss", "DiscreteSACLoss"]


class SACLoss(LossModule):
    """Soft Actor-Critic loss for continuous actions, with automatic entropy tuning.

    The three terms (Haarnoja et al. 2018b, eqs. 5, 7, 18), with ``a' ~ pi(.|s')`` and
    ``a~ ~ pi(.|s)`` reparameterised:

    * ``loss_qvalue = sum_i E[(Q_i(s, a) - y)^2]``,
      ``y = r + gamma (1 - terminated) (min_j Qbar_j(s', a') - alpha log pi(a'|s'))``
    * ``loss_actor = E[alpha log pi(a~|s) - min_i Q_i(s, a~)]`` (critics frozen for this term)
    * ``loss_alpha = -E[log alpha (log pi(a~|s) + H_target)]`` (absent when ``fixed_alpha``)

    Diagnostics: ``alpha``, ``entropy`` (``-E[log pi(a~|s)]``) and ``state_action_value`` (mean Q).

    Args:
        actor_network: a probabilistic actor (``get_dist(td)``; e.g. ``ProbabilisticActor`` with a
            ``TanhNormal``) that reads the observation keys.
        qvalue_network: a ``TensorDictModule`` reading observation and ``"action"`` and writing
            ``"state_action_value"``. The loss keeps ``num_qvalue_nets`` independently initialised
            copies of its parameters (``loss.qvalue_network_params``, stacked on dim 0) and
            evaluates them together (a loop, or one vmapped call for many tiny critics: ``ensemble_mode``).
        num_qvalue_nets: number of critics (2 in the paper).
        alpha_init: initial temperature.
        fixed_alpha: keep alpha constant (no ``loss_alpha``).
        target_entropy: ``"auto"`` (``-dim(action)``, read from the first batch) or a number.
        delay_qvalue: bootstrap from target critics (``target_qvalue_network_params``, moved by
            ``SoftUpdate``); if False the online critics are used (detached).
        gamma: discount of the one-step target (``make_value_estimator("td0", gamma=...)`` also sets it).
        loss_function: ``"l2"`` (squared error, the paper), ``"l1"`` or ``"smooth_l1"``.

    Keys (``set_keys``): ``action``, ``state_action_value``, ``reward``, ``done``, ``terminated``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import (TensorDictModule, ProbabilisticTensorDictModule,
        ...     ProbabilisticTensorDictSequential, NormalParamExtractor)
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Sequential(nn.Linear(3, 4), NormalParamExtractor()), ["observation"],
        ...                      ["loc", "scale"]),
        ...     ProbabilisticTensorDictModule(["loc", "scale"], ["action"],
        ...                                   distribution_class=torch.distributions.Normal))
        >>> class Q(nn.Module):
        ...     def __init__(self):
        ...         super().__init__(); self.lin = nn.Linear(5, 1)
        ...     def forward(self, obs, act):
        ...         return self.lin(torch.cat([obs, act], -1))
        >>> qnet = TensorDictModule(Q(), ["observation", "action"], ["state_action_value"])
        >>> loss = SACLoss(actor, qnet)
        >>> td = TensorDict(observation=torch.randn(8, 3), action=torch.randn(8, 2),
        ...     next=TensorDict(observation=torch.randn(8, 3), reward=torch.randn(8, 1),
        ...                     done=torch.zeros(8, 1, dtype=torch.bool),
        ...                     terminated=torch.zeros(8, 1, dtype=torch.bool),
        ...                     batch_size=[8]), batch_size=[8])
        >>> out = loss(td)
        >>> sorted(out.keys())
        ['alpha', 'entropy', 'loss_actor', 'loss_alpha', 'loss_qvalue', 'state_action_value']
        >>> sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    """

    default_keys = {"action": "action", "state_action_value": "state_action_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    one_step_target = True

    def __init__(self, actor_network, qvalue_network, *, num_qvalue_nets: int = 2, alpha_init: float = 1.0,
                 fixed_alpha: bool = False, target_entropy: float | str = "auto", delay_qvalue: bool = True,
                 gamma: float = 0.99, loss_function: str = "l2"):
        super().__init__()
        if num_qvalue_nets < 1:
            raise ValueError(f"SACLoss: num_qvalue_nets must be >= 1, got {num_qvalue_nets}")
        if alpha_init <= 0:
            raise ValueError(f"SACLoss: alpha_init must be > 0, got {alpha_init}")
        self._require_probabilistic(actor_network)
        self.convert_to_functional(actor_network, "actor_network")
        self.convert_to_functional(qvalue_network, "qvalue_network", expand_dim=num_qvalue_nets,
                                   create_target_params=delay_qvalue)
        self.num_qvalue_nets, self.delay_qvalue, self.gamma = num_qvalue_nets, delay_qvalue, gamma
        self.loss_function = self._check_loss_function(loss_function)
        self.fixed_alpha = fixed_alpha
        # alpha is learnt in log space: it stays positive and its gradient is scale-free
        self.register_coefficient("log_alpha", math.log(alpha_init), trainable=not fixed_alpha)
        self.register_buffer("target_entropy", F.target_entropy_tensor(target_entropy, "SACLoss"))

    # -------------------------------------------------------------- the paper's equations
    def forward(self, td: TensorDictBase) -> TensorDictBase:
        nb = td.batch_dims
        alpha = self.log_alpha.exp().detach()

        # critic target y = r + gamma (1 - d) (min_j Qbar_j(s', a') - alpha log pi(a'|s'))   (eq. 3, 5)
        with torch.no_grad():
            next_td = self.next_of(td)
            next_action, next_log_prob = F.rsample_with_log_prob(self.action_dist(next_td), nb)
            next_q = self._q(next_td, next_action, target=True).min(0).values
            reward, terminated = self.reward_and_terminated(td)
            y = F.td0_target(reward, terminated, next_q - alpha * next_log_prob, self.gamma)
        q = self._q(td, self.stored_action(td))  # [num_qvalue_nets, *batch, 1]
        loss_qvalue = distance_loss(q, y.expand_as(q), self.loss_function).sum(0).mean()

        # actor: E[alpha log pi(a~|s) - min_i Q_i(s, a~)], a~ reparameterised   (eq. 7)
        action, log_prob = F.rsample_with_log_prob(self.action_dist(td), nb)
        q_pi = self._q(td, action, frozen=True).min(0).values
        loss_actor = (alpha * log_prob - q_pi).mean()

        out = TensorDict(loss_qvalue=loss_qvalue, loss_actor=loss_actor)
        if not self.fixed_alpha:
            # J(alpha) = E[-log alpha (log pi(a~|s) + H_target)]   (eq. 18)
            target_entropy = F.resolve_target_entropy(self.target_entropy, action, nb)
            out.set("loss_alpha", F.alpha_loss(self.log_alpha, log_prob, target_entropy))
        out.update({"alpha": alpha, "entropy": -log_prob.detach().mean(), "state_action_value": q.detach().mean()})
        return out

    # -------------------------------------------------------------- plumbing
    def _q(self, td: TensorDictBase, action: torch.Tensor, *, target: bool = False, frozen: bool = False):
        """Every critic's Q(s, action), ``[num_qvalue_nets, *batch, 1]``.

        ``target``: the target critics (or, without ``delay_qvalue``, the online ones detached);
        ``frozen``: online critics with no gradient into their parameters (actor loss).
        """
        return self.network_output("qvalue_network", td, self.tensor_keys.state_action_value, action=action,
                                   target=target, frozen=frozen)


class DiscreteSACLoss(LossModule):
    """Soft Actor-Critic for discrete actions (Christodoulou 2019).

    The critic outputs Q(s, .) for every action, so every expectation over the policy is a sum over
    actions weighted by ``pi(.|s)`` (eqs. 10-12 of the paper):

    * ``loss_qvalue = sum_i E[(Q_i(s, a) - y)^2]``,
      ``y = r + gamma (1 - terminated) sum_a' pi(a'|s') (min_j Qbar_j(s', a') - alpha log pi(a'|s'))``
    * ``loss_actor = E[sum_a pi(a|s) (alpha log pi(a|s) - min_i Q_i(s, a))]`` (critics frozen)
    * ``loss_alpha = -E[log alpha (sum_a pi(a|s) log pi(a|s) + H_target)]``

    Args:
        actor_network: a probabilistic actor whose distribution has ``probs``/``logits`` over
            ``num_actions`` classes (``Categorical``, ``OneHotCategorical``, a masked categorical).
        qvalue_network: a ``TensorDictModule`` writing ``"action_value"`` ``[*batch, num_actions]``.
        action_space: ``"one_hot"`` (stored actions are one-hot vectors), ``"categorical"`` (integer
            indices; float ones are refused), or the env's ``OneHot`` / ``Categorical`` action spec.
        num_actions: number of actions; read from the spec when ``action_space`` is one.
        target_entropy: ``"auto"`` (``0.98 log(num_actions)``, as in the paper) or a number.
        Others as in :class:`SACLoss`.

    Keys (``set_keys``): ``action``, ``action_value``, ``reward``, ``done``, ``terminated``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 4), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"],
        ...                                   distribution_class=torch.distributions.Categorical))
        >>> qnet = TensorDictModule(nn.Linear(3, 4), ["observation"], ["action_value"])
        >>> loss = DiscreteSACLoss(actor, qnet, action_space="categorical", num_actions=4)
        >>> td = TensorDict(observation=torch.randn(8, 3), action=torch.randint(4, (8,)),
        ...     next=TensorDict(observation=torch.randn(8, 3), reward=torch.randn(8, 1),
        ...                     done=torch.zeros(8, 1, dtype=torch.bool),
        ...                     terminated=torch.zeros(8, 1, dtype=torch.bool),
        ...                     batch_size=[8]), batch_size=[8])
        >>> sorted(k for k in loss(td).keys() if k.startswith("loss_"))
        ['loss_actor', 'loss_alpha', 'loss_qvalue']
    """

    default_keys = {"action": "action", "action_value": "action_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    one_step_target = True

    def __init__(self, actor_network, qvalue_network, action_space, num_actions: int | None = None, *,
                 num_qvalue_nets: int = 2, alpha_init: float = 1.0, fixed_alpha: bool = False,
                 target_entropy: float | str = "auto", delay_qvalue: bool = True, gamma: float = 0.99,
                 loss_function: str = "l2"):
        super().__init__()
        action_space, spec_n = parse_action_space(action_space, "DiscreteSACLoss")
        if action_space is None:
            raise ValueError("DiscreteSACLoss: action_space is required: 'one_hot', 'categorical' or the env's "
                             "action spec")
        if num_actions is None:
            if spec_n is None:
                raise ValueError("DiscreteSACLoss: pass num_actions=, or an action spec as action_space (which "
                                 "gives it)")
            num_actions = spec_n
        elif spec_n is not None and int(num_actions) != spec_n:
            raise ValueError(f"DiscreteSACLoss: num_actions={num_actions} but the action spec has {spec_n} actions")
        if num_actions < 2:
            raise ValueError(f"DiscreteSACLoss: num_actions must be >= 2, got {num_actions}")
        if num_qvalue_nets < 1:
            raise ValueError(f"DiscreteSACLoss: num_qvalue_nets must be >= 1, got {num_qvalue_nets}")
        if alpha_init <= 0:
            raise ValueError(f"DiscreteSACLoss: alpha_init must be > 0, got {alpha_init}")
        self._require_probabilistic(actor_network)
        self.convert_to_functional(actor_network, "actor_network")
        self.convert_to_functional(qvalue_network, "qvalue_network", expand_dim=num_qvalue_nets,
                                   create_target_params=delay_qvalue)
        self.action_space, self.num_actions = action_space, num_actions
        self.num_qvalue_nets, self.delay_qvalue, self.gamma = num_qvalue_nets, delay_qvalue, gamma
        self.loss_function = self._check_loss_function(loss_function)
        self.fixed_alpha = fixed_alpha
        self.register_coefficient("log_alpha", math.log(alpha_init), trainable=not fixed_alpha)
        if target_entropy == "auto":
            target_entropy = 0.98 * math.log(num_actions)  # Christodoulou 2019, sec. 5
        self.register_buffer("target_entropy", F.target_entropy_tensor(target_entropy, "DiscreteSACLoss"))

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        alpha = self.log_alpha.exp().detach()

        # y = r + gamma (1 - d) sum_a' pi(a'|s') [min_j Qbar_j(s', a') - alpha log pi(a'|s')]   (eq. 10)
        with torch.no_grad():
            next_td = self.next_of(td)
            next_probs, next_log_probs = self._policy(next_td)
            next_q = self._q(next_td, target=True).min(0).values
            next_v = (next_probs * (next_q - alpha * next_log_probs)).sum(-1, keepdim=True)
            reward, terminated = self.reward_and_terminated(td)
            y = F.td0_target(reward, terminated, next_v, self.gamma)
        action = self.stored_action(td, index=self.action_space == "categorical")
        q = self._gather(self._q(td), action)  # Q_i(s, a): [n_q, *batch, 1]
        loss_qvalue = distance_loss(q, y.expand_as(q), self.loss_function).sum(0).mean()

        # actor: E_s[sum_a pi(a|s) (alpha log pi(a|s) - min_i Q_i(s, a))]   (eq. 12)
        probs, log_probs = self._policy(td)
        q_all = self._q(td, frozen=True).min(0).values
        loss_actor = (probs * (alpha * log_probs - q_all)).sum(-1).mean()

        # the expected log-prob sum_a pi log pi = -H is exact here; no sample needed   (eq. 11)
        expected_log_prob = (probs * log_probs).sum(-1, keepdim=True)
        out = TensorDict(loss_qvalue=loss_qvalue, loss_actor=loss_actor)
        if not self.fixed_alpha:
            out.set("loss_alpha", F.alpha_loss(self.log_alpha, expected_log_prob, self.target_entropy))
        out.update({"alpha": alpha, "entropy": -expected_log_prob.detach().mean(),
                    "state_action_value": q.detach().mean()})
        return out

    # -------------------------------------------------------------- plumbing
    def _policy(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pi(.|s), log pi(.|s))`` over the ``num_actions`` classes; masked classes give ``0 * log 0 = 0``."""
        dist = self.action_dist(td)
        probs = dist.probs
        if probs.shape[-1] != self.num_actions:
            raise ValueError(f"DiscreteSACLoss: the actor's distribution has {probs.shape[-1]} classes, "
                             f"expected num_actions={self.num_actions}")
        log_probs = torch.log_softmax(dist.logits, -1)
        # masked-out actions have probability 0 and log-probability -inf: their terms must be 0, not nan
        return probs, torch.where(probs > 0, log_probs, torch.zeros_like(log_probs))

    def _q(self, td: TensorDictBase, *, target: bool = False, frozen: bool = False) -> torch.Tensor:
        """Every critic's Q(s, .), ``[n_q, *batch, num_actions]``; ``target`` / ``frozen`` as in :class:`SACLoss`."""
        return self.network_output("qvalue_network", td, self.tensor_keys.action_value, target=target, frozen=frozen)

    def _gather(self, q: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q(s, a)`` of the stored actions from ``Q(s, .)``: ``[n_q, *batch, 1]``."""
        if self.action_space == "one_hot":
            return (q * action.to(q.dtype)).sum(-1, keepdim=True)
        index = action.long()
        if index.dim() == q.dim() - 2:  # indices stored as [*batch] rather than [*batch, 1]
            index = index.unsqueeze(-1)
        return q.gather(-1, index.expand(*q.shape[:-1], 1))
