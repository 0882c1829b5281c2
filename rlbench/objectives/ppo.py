"""Proximal Policy Optimization losses (Schulman et al., "Proximal Policy Optimization Algorithms", 2017,
arXiv:1707.06347): the importance-weighted surrogate (``PPOLoss``), its clipped form
(``ClipPPOLoss``, eq. 7) and its adaptive-KL-penalty form (``KLPENPPOLoss``, eq. 8).

All three share the same plumbing: the advantage comes from the data or from the loss's value
estimator (GAE by default), the policy ratio ``r = pi(a|s) / pi_old(a|s)`` from the log-probability
stored at collection time (``"sample_log_prob"``), an optional entropy bonus and a critic
regression. Only the surrogate differs, in ``_surrogate``.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from . import _actor_critic as ac
from .common import LossModule, ValueEstimators

__all__ = ["PPOLoss", "ClipPPOLoss", "KLPENPPOLoss"]


class PPOLoss(LossModule):
    """The PPO family's shared loss; on its own, the unclipped surrogate ``-E[r A]`` (Schulman et al. 2017, eq. 6).

    Terms returned (the total loss is their sum):

    * ``loss_objective``: the surrogate (subclasses: clipped, or KL-penalised);
    * ``loss_entropy = -entropy_coef * E[H(pi(.|s))]`` (if ``entropy_bonus``);
    * ``loss_critic = critic_coef * E[d(V(s), value_target)]`` (if a critic is given).

    Diagnostics: ``entropy``, ``kl_approx`` (``E[(r - 1) - log r]``, an unbiased, non-negative
    estimate of ``KL(pi_old || pi)``), ``ESS`` (effective sample size of the importance weights, as a
    fraction of the batch), ``clip_fraction`` (ClipPPO).

    Args:
        actor_network: a probabilistic actor (``get_dist(td)``) reading the observation keys.
        critic_network: a ``TensorDictModule`` writing ``"state_value"``; optional when the data
            already carries ``advantage`` and no critic loss is wanted.
        entropy_bonus: add ``loss_entropy``.
        entropy_coef: its weight.
        critic_coef: weight of ``loss_critic``.
        loss_critic_type: ``"smooth_l1"`` (default), ``"l2"`` or ``"l1"``.
        normalize_advantage: standardise the advantage over the batch before use.
        clip_value: if set, PPO's clipped value loss around the stored ``"state_value"``.

    If the input has no ``"advantage"``, the loss's value estimator (``GAE(gamma=0.99,
    lmbda=0.95)`` over ``critic_network`` unless changed with ``make_value_estimator``) writes
    ``"advantage"`` and ``"value_target"`` into it first.

    Keys (``set_keys``): ``action``, ``sample_log_prob``, ``advantage``, ``value_target``,
    ``value`` (the critic's output, ``"state_value"``), ``reward``, ``done``, ``terminated``.

    Example:
        >>> from tensordict.nn import (TensorDictModule, ProbabilisticTensorDictModule,
        ...     ProbabilisticTensorDictSequential, NormalParamExtractor)
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Sequential(nn.Linear(3, 4), NormalParamExtractor()), ["observation"], ["loc", "scale"]),
        ...     ProbabilisticTensorDictModule(["loc", "scale"], ["action"], distribution_class=torch.distributions.Normal,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> critic = TensorDictModule(nn.Linear(3, 1), ["observation"], ["state_value"])
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"], td["value_target"] = torch.randn(8, 1), torch.randn(8, 1)
        >>> out = PPOLoss(actor, critic)(td)
        >>> float(out["kl_approx"]), float(out["ESS"])  # same parameters as at collection: ratio 1
        (0.0, 1.0)
    """

    default_keys = {"action": "action", "sample_log_prob": "sample_log_prob", "advantage": "advantage",
                    "value_target": "value_target", "value": "state_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    default_value_estimator = ValueEstimators.GAE

    def __init__(self, actor_network, critic_network=None, *, entropy_bonus: bool = True, entropy_coef: float = 0.01,
                 critic_coef: float = 1.0, loss_critic_type: str = "smooth_l1", normalize_advantage: bool = False,
                 clip_value: float | None = None):
        super().__init__()
        ac.require_probabilistic(type(self).__name__, actor_network)
        self.convert_to_functional(actor_network, "actor_network")
        self.has_critic = critic_network is not None
        if self.has_critic:
            self.convert_to_functional(critic_network, "critic_network")
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"{type(self).__name__}: clip_value must be > 0 or None, got {clip_value}")
        self.entropy_bonus, self.entropy_coef, self.critic_coef = entropy_bonus, entropy_coef, critic_coef
        self.loss_critic_type = ac.check_distance(loss_critic_type, type(self).__name__)
        self.normalize_advantage, self.clip_value = normalize_advantage, clip_value

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        keys, nb = self.tensor_keys, td.batch_dims
        advantage = ac.ensure_advantage(self, td)
        if self.normalize_advantage:
            advantage = ac.normalize(advantage)

        # r(theta) = pi_theta(a|s) / pi_old(a|s), in log space for stability
        dist = self._policy(td)
        log_prob = ac.log_prob(dist, td.get(keys.action), nb)
        log_ratio = log_prob - self._old_log_prob(td)
        ratio = log_ratio.exp()

        out = self._surrogate(ratio, log_ratio, advantage.to(ratio.dtype))
        entropy = ac.entropy(dist, nb)
        if self.entropy_bonus:
            out.set("loss_entropy", -self.entropy_coef * entropy.mean())
        if self.has_critic:
            out.set("loss_critic", self.critic_coef * ac.critic_loss(self, td, "critic_network", self.clip_value))
        with torch.no_grad():
            out.update({"entropy": entropy.mean(), "kl_approx": ((ratio - 1) - log_ratio).mean(),
                        "ESS": ratio.sum().pow(2) / ratio.pow(2).sum() / ratio.numel()})
        return out

    def _surrogate(self, ratio: torch.Tensor, log_ratio: torch.Tensor, advantage: torch.Tensor) -> TensorDictBase:
        # L^{CPI} = E[r A] (Kakade & Langford 2002; PPO paper eq. 6), maximised -> minimise its negative
        return TensorDict(loss_objective=-(ratio * advantage).mean())

    # -------------------------------------------------------------- plumbing
    def _policy(self, td: TensorDictBase):
        return ac.get_dist(self.actor_network, td.select(*self.actor_network.in_keys, strict=False))

    def _old_log_prob(self, td: TensorDictBase) -> torch.Tensor:
        key = self.tensor_keys.sample_log_prob
        old = td.get(key, None)
        if old is None:
            raise KeyError(f"{type(self).__name__}: expected the collection-time log-probability under {key!r} "
                           f"(build the actor with return_log_prob=True, or set_keys(sample_log_prob=...)); "
                           f"got keys {sorted(map(str, td.keys()))}")
        return ac.per_sample(old, td.batch_dims).detach()

    def _estimator_network(self):
        return self.critic_network if self.has_critic else None


class ClipPPOLoss(PPOLoss):
    """PPO with the clipped surrogate (Schulman et al. 2017, eq. 7).

    ``loss_objective = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)]``; the ``clip_fraction``
    diagnostic is the share of samples whose ratio lies outside ``[1 - eps, 1 + eps]``.
    Other arguments, terms and keys as in :class:`PPOLoss`.

    Args:
        clip_epsilon: ``eps`` (0.2 in the paper).

    Example:
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 2), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"], distribution_class=torch.distributions.Categorical,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"] = torch.randn(8, 1)
        >>> out = ClipPPOLoss(actor, clip_epsilon=0.2)(td)
        >>> sorted(out.keys())
        ['ESS', 'clip_fraction', 'entropy', 'kl_approx', 'loss_entropy', 'loss_objective']
        >>> bool(out["loss_objective"] == -td["advantage"].mean())  # ratio is 1 on the first epoch
        True
    """

    def __init__(self, actor_network, critic_network=None, *, clip_epsilon: float = 0.2, **kwargs):
        super().__init__(actor_network, critic_network, **kwargs)
        if not 0 < clip_epsilon < 1:
            raise ValueError(f"ClipPPOLoss: clip_epsilon must be in (0, 1), got {clip_epsilon}")
        self.clip_epsilon = clip_epsilon

    def _surrogate(self, ratio, log_ratio, advantage):
        # L^{CLIP} = E[min(r A, clip(r, 1 - eps, 1 + eps) A)]   (eq. 7)
        eps = self.clip_epsilon
        clipped = ratio.clamp(1 - eps, 1 + eps)
        objective = torch.minimum(ratio * advantage, clipped * advantage)
        clip_fraction = ((ratio - 1).abs() > eps).to(ratio.dtype).mean()
        return TensorDict(loss_objective=-objective.mean(), clip_fraction=clip_fraction.detach())


class KLPENPPOLoss(PPOLoss):
    """PPO with an adaptive KL penalty (Schulman et al. 2017, sec. 4, eq. 8).

    ``loss_objective = -E[r A - beta KL(pi_old || pi)]``, with the KL estimated on the stored
    actions as ``E[log pi_old(a|s) - log pi(a|s)]``. After each call ``beta`` adapts: if the KL
    exceeded ``1.5 * dtarg`` it is multiplied by ``increment``; if it fell below ``dtarg / 1.5``,
    by ``decrement``. ``beta`` is a buffer (saved with ``state_dict``); the ``beta`` and ``kl``
    diagnostics report the value used in the call and the estimated KL.
    Other arguments, terms and keys as in :class:`PPOLoss`.

    Args:
        dtarg: target KL per update.
        beta: initial penalty coefficient.
        increment: factor applied to beta when the KL is too large (> 1).
        decrement: factor applied when it is too small (< 1).

    Example:
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 2), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"], distribution_class=torch.distributions.Categorical,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"] = torch.randn(8, 1)
        >>> loss = KLPENPPOLoss(actor, dtarg=0.01, beta=1.0)
        >>> _ = loss(td)
        >>> float(loss.beta)  # KL is 0 < dtarg / 1.5 on the first epoch: beta halves
        0.5
    """

    def __init__(self, actor_network, critic_network=None, *, dtarg: float = 0.01, beta: float = 1.0,
                 increment: float = 2.0, decrement: float = 0.5, **kwargs):
        super().__init__(actor_network, critic_network, **kwargs)
        if dtarg <= 0 or beta < 0:
            raise ValueError(f"KLPENPPOLoss: dtarg must be > 0 and beta >= 0, got dtarg={dtarg}, beta={beta}")
        if increment < 1 or not 0 < decrement <= 1:
            raise ValueError(f"KLPENPPOLoss: expected increment >= 1 and 0 < decrement <= 1, "
                             f"got increment={increment}, decrement={decrement}")
        self.dtarg, self.increment, self.decrement = dtarg, increment, decrement
        self.register_buffer("beta", torch.tensor(float(beta)))

    def _surrogate(self, ratio, log_ratio, advantage):
        # L^{KLPEN} = E[r A - beta KL(pi_old, pi)]   (eq. 8); KL(pi_old || pi) = E_{a ~ pi_old}[-log r]
        kl = (-log_ratio).mean()
        beta = self.beta.clone()
        objective = (ratio * advantage).mean() - beta * kl
        self._adapt_beta(kl.detach())
        return TensorDict(loss_objective=-objective, kl=kl.detach(), beta=beta)

    @torch.no_grad()
    def _adapt_beta(self, kl: torch.Tensor) -> None:
        # the paper's heuristic: keep the measured KL within a factor 1.5 of its target
        if kl > 1.5 * self.dtarg:
            self.beta.mul_(self.increment)
        elif kl < self.dtarg / 1.5:
            self.beta.mul_(self.decrement)
