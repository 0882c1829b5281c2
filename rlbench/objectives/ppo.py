"""Proximal Policy Optimization: one loss, :class:`PPOLoss`, with the three surrogates of the paper.

Schulman et al., "Proximal Policy Optimization Algorithms", 2017, arXiv:1707.06347. The
``surrogate`` argument picks the importance-weighted one (``"plain"``, eq. 6), the clipped one
(``"clip"``, eq. 7) or the adaptive-KL-penalty one (``"kl"``, eq. 8).

``ClipPPOLoss(...)`` and ``KLPENPPOLoss(...)`` build a ``PPOLoss`` with ``surrogate="clip"`` /
``"kl"`` (the names TorchRL users know, with the same arguments).

The rest is shared: the advantage comes from the data or from the loss's value estimator (GAE by
default), the policy ratio ``r = pi(a|s) / pi_old(a|s)`` from the log-probability stored at
collection time (``"sample_log_prob"``), plus an optional entropy bonus and a critic regression.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from . import functional as F
from ._keys import keys_list
from .common import LossModule, ValueEstimators, torchrl_alias

__all__ = ["PPOLoss", "ClipPPOLoss", "KLPENPPOLoss"]

#: the name each surrogate's loss shows in its repr and its errors (the name it was built under)
_NAMES = {"plain": "PPOLoss", "clip": "ClipPPOLoss", "kl": "KLPENPPOLoss"}
#: the hyperparameters of each surrogate, with the paper's defaults
_SURROGATE_ARGS = {"plain": {}, "clip": {"clip_epsilon": 0.2},
                   "kl": {"dtarg": 0.01, "beta": 1.0, "increment": 2.0, "decrement": 0.5}}


class PPOLoss(LossModule):
    """The PPO loss; ``surrogate`` picks the policy objective of Schulman et al. 2017.

    Terms returned (the total loss is their sum):

    * ``loss_objective``: minus the surrogate, one of

      - ``"plain"`` (default): ``L^CPI = E[r A]`` (eq. 6);
      - ``"clip"``: ``L^CLIP = E[min(r A, clip(r, 1 - eps, 1 + eps) A)]`` (eq. 7), with the
        ``clip_fraction`` diagnostic (share of samples whose ratio lies outside ``[1 - eps, 1 + eps]``);
      - ``"kl"``: ``L^KLPEN = E[r A] - beta KL(pi_old || pi)`` (eq. 8), the KL estimated on the
        stored actions as ``E[log pi_old(a|s) - log pi(a|s)]``. After each call ``beta`` adapts: if
        the KL exceeded ``1.5 * dtarg`` it is multiplied by ``increment``; if it fell below
        ``dtarg / 1.5``, by ``decrement``. ``beta`` is a buffer (saved with ``state_dict``); the
        ``beta`` and ``kl`` diagnostics report the value used in the call and the estimated KL;

    * ``loss_entropy = -entropy_coef * E[H(pi(.|s))]`` (if ``entropy_bonus``);
    * ``loss_critic = critic_coef * E[d(V(s), value_target)]`` (if a critic is given).

    Diagnostics: ``entropy``, ``kl_approx`` (``E[(r - 1) - log r]``, an unbiased, non-negative
    estimate of ``KL(pi_old || pi)``), ``ESS`` (effective sample size of the importance weights, as a
    fraction of the batch), and the surrogate's own (above).

    Args:
        actor_network: a probabilistic actor (``get_dist(td)``) reading the observation keys.
        critic_network: a ``TensorDictModule`` writing ``"state_value"``; optional when the data
            already carries ``advantage`` and no critic loss is wanted.
        surrogate: ``"plain"``, ``"clip"`` or ``"kl"``.
        clip_epsilon: ``eps`` of the clipped surrogate (0.2, as in the paper); ``"clip"`` only.
        dtarg: target KL per update (0.01); ``"kl"`` only.
        beta: initial KL coefficient (1.0); ``"kl"`` only.
        increment: factor applied to beta when the KL is too large (2.0, >= 1); ``"kl"`` only.
        decrement: factor applied when it is too small (0.5, in (0, 1]); ``"kl"`` only.
        entropy_bonus: add ``loss_entropy``.
        entropy_coef: its weight (0.01).
        critic_coef: weight of ``loss_critic`` (1.0).
        loss_critic_type: ``"smooth_l1"`` (default), ``"l2"`` or ``"l1"``.
        normalize_advantage: standardise the advantage over the batch before use.
        clip_value: if set, PPO's clipped value loss around the stored ``"state_value"``.
        entropy_coeff, critic_coeff: TorchRL's spellings of ``entropy_coef`` / ``critic_coef``
            (either spelling; both at once is a ``TypeError``).

    If the input has no ``"advantage"``, the loss's value estimator (``GAE(gamma=0.99,
    lmbda=0.95)`` over ``critic_network`` unless changed with ``make_value_estimator``) writes
    ``"advantage"`` and ``"value_target"`` into it first.

    Keys (``set_keys``): ``action``, ``sample_log_prob``, ``advantage``, ``value_target``,
    ``value`` (the critic's output, ``"state_value"``), ``reward``, ``done``, ``terminated``.

    Where rlbench deliberately differs from TorchRL: the collection-time log-probability is read
    under ``"sample_log_prob"`` (the key rlbench's actors write with ``return_log_prob=True``; recent
    TorchRL writes ``"action_log_prob"``: ``set_keys(sample_log_prob="action_log_prob")`` reads that),
    summed over action dims when it comes per dim; and actions of a ``Categorical`` policy are
    scalar integer indices by default (rlbench's envs give ``Categorical`` specs, TorchRL's one-hot ones).

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import (TensorDictModule, ProbabilisticTensorDictModule,
        ...     ProbabilisticTensorDictSequential, NormalParamExtractor)
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Sequential(nn.Linear(3, 4), NormalParamExtractor()), ["observation"],
        ...                      ["loc", "scale"]),
        ...     ProbabilisticTensorDictModule(["loc", "scale"], ["action"],
        ...                                   distribution_class=torch.distributions.Normal,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> critic = TensorDictModule(nn.Linear(3, 1), ["observation"], ["state_value"])
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"], td["value_target"] = torch.randn(8, 1), torch.randn(8, 1)
        >>> out = PPOLoss(actor, critic)(td)
        >>> float(out["kl_approx"]), float(out["ESS"])  # same parameters as at collection: ratio 1
        (0.0, 1.0)
        >>> PPOLoss(actor, critic, surrogate="clip", clip_epsilon=0.1)(td)["clip_fraction"]
        tensor(0.)
    """

    default_keys = {"action": "action", "sample_log_prob": "sample_log_prob", "advantage": "advantage",
                    "value_target": "value_target", "value": "state_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    default_value_estimator = ValueEstimators.GAE

    def __init__(self, actor_network, critic_network=None, *, surrogate: str = "plain",
                 clip_epsilon: float | None = None, dtarg: float | None = None, beta: float | None = None,
                 increment: float | None = None, decrement: float | None = None, entropy_bonus: bool = True,
                 entropy_coef: float | None = None, critic_coef: float | None = None,
                 loss_critic_type: str = "smooth_l1", normalize_advantage: bool = False,
                 clip_value: float | None = None, entropy_coeff: float | None = None,
                 critic_coeff: float | None = None):
        super().__init__()
        entropy_coef = torchrl_alias(_NAMES.get(surrogate, "PPOLoss"), "entropy_coef", entropy_coef, "entropy_coeff",
                                     entropy_coeff, 0.01)
        critic_coef = torchrl_alias(_NAMES.get(surrogate, "PPOLoss"), "critic_coef", critic_coef, "critic_coeff",
                                    critic_coeff, 1.0)
        if surrogate not in _NAMES:
            raise ValueError(f"PPOLoss: surrogate must be 'plain', 'clip' or 'kl', got {surrogate!r}")
        self.surrogate = surrogate
        hyper = self._surrogate_args(clip_epsilon=clip_epsilon, dtarg=dtarg, beta=beta, increment=increment,
                                     decrement=decrement)
        self._require_probabilistic(actor_network)
        self.convert_to_functional(actor_network, "actor_network")
        self.has_critic = critic_network is not None
        if self.has_critic:
            self.convert_to_functional(critic_network, "critic_network")
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"{self._get_name()}: clip_value must be > 0 or None, got {clip_value}")
        self.entropy_bonus, self.entropy_coef, self.critic_coef = entropy_bonus, entropy_coef, critic_coef
        self.loss_critic_type = self._check_loss_function(loss_critic_type, "loss_critic_type")
        self.normalize_advantage, self.clip_value = normalize_advantage, clip_value
        if surrogate == "clip":
            self.clip_epsilon = hyper["clip_epsilon"]
        elif surrogate == "kl":
            self.dtarg, self.increment, self.decrement = hyper["dtarg"], hyper["increment"], hyper["decrement"]
            self.register_buffer("beta", torch.tensor(float(hyper["beta"])))

    # -------------------------------------------------------------- the paper's equations
    def forward(self, td: TensorDictBase) -> TensorDictBase:
        nb = td.batch_dims
        advantage = self.advantage(td)
        if self.normalize_advantage:
            advantage = F.normalize(advantage)

        # r(theta) = pi_theta(a|s) / pi_old(a|s), in log space for stability
        dist = self.action_dist(td)
        action = self.stored_action(td, index=F.takes_indices(dist))
        log_ratio = F.log_prob(dist, action, nb) - self._old_log_prob(td)
        ratio = log_ratio.exp()
        advantage = advantage.to(ratio.dtype)

        if self.surrogate == "clip":
            # L^CLIP = E[min(r A, clip(r, 1 - eps, 1 + eps) A)]   (eq. 7)
            eps = self.clip_epsilon
            objective = torch.minimum(ratio * advantage, ratio.clamp(1 - eps, 1 + eps) * advantage).mean()
            clip_fraction = ((ratio - 1).abs() > eps).to(ratio.dtype).mean()
            out = TensorDict(loss_objective=-objective, clip_fraction=clip_fraction.detach())
        elif self.surrogate == "kl":
            # L^KLPEN = E[r A] - beta KL(pi_old || pi)   (eq. 8), with KL(pi_old || pi) = E_{a ~ pi_old}[-log r]
            kl = (-log_ratio).mean()
            beta = self.beta.clone()
            objective = (ratio * advantage).mean() - beta * kl
            with torch.no_grad():  # beta adapts for the next call (sec. 4)
                self.beta.copy_(F.kl_beta_update(self.beta, kl.detach(), self.dtarg, self.increment, self.decrement))
            out = TensorDict(loss_objective=-objective, kl=kl.detach(), beta=beta)
        else:
            # L^CPI = E[r A]   (Kakade & Langford 2002; eq. 6)
            out = TensorDict(loss_objective=-(ratio * advantage).mean())

        entropy = F.entropy(dist, nb)
        if self.entropy_bonus:
            out.set("loss_entropy", -self.entropy_coef * entropy.mean())
        if self.has_critic:
            # E[d(V(s), value_target)], clipped around the collection-time V_old when clip_value is set
            target = self.value_target(td)
            old_value = None if self.clip_value is None else self.column(
                td, "value", "clip_value needs the value at collection time, which the value estimator writes")
            loss_critic = F.critic_loss(self.state_value(td), target, self.loss_critic_type, old_value=old_value,
                                        clip_value=self.clip_value)
            out.set("loss_critic", self.critic_coef * loss_critic)
        with torch.no_grad():
            out.update({"entropy": entropy.mean(), "kl_approx": ((ratio - 1) - log_ratio).mean(),
                        "ESS": ratio.sum().pow(2) / ratio.pow(2).sum() / ratio.numel()})
        return out

    # -------------------------------------------------------------- plumbing
    def _old_log_prob(self, td: TensorDictBase) -> torch.Tensor:
        key = self.tensor_keys.sample_log_prob
        old = td.get(key, None)
        if old is None:
            raise KeyError(f"{self._get_name()}: expected the collection-time log-probability under {key!r} "
                           f"(build the actor with return_log_prob=True, or set_keys(sample_log_prob=...)); "
                           f"got keys {keys_list(td)}")
        return F.per_sample(old, td.batch_dims).detach()

    def _surrogate_args(self, **given) -> dict:
        """The chosen surrogate's hyperparameters (the paper's defaults where not given), validated."""
        name, defaults = self._get_name(), _SURROGATE_ARGS[self.surrogate]
        foreign = sorted(k for k, v in given.items() if v is not None and k not in defaults)
        if foreign:
            raise TypeError(f"{name}: {foreign} do not apply to surrogate={self.surrogate!r}")
        hyper = {k: defaults[k] if given[k] is None else given[k] for k in defaults}
        if self.surrogate == "clip" and not 0 < hyper["clip_epsilon"] < 1:
            raise ValueError(f"{name}: clip_epsilon must be in (0, 1), got {hyper['clip_epsilon']}")
        if self.surrogate == "kl":
            if hyper["dtarg"] <= 0 or hyper["beta"] < 0:
                raise ValueError(f"{name}: dtarg must be > 0 and beta >= 0, got dtarg={hyper['dtarg']}, "
                                 f"beta={hyper['beta']}")
            if hyper["increment"] < 1 or not 0 < hyper["decrement"] <= 1:
                raise ValueError(f"{name}: expected increment >= 1 and 0 < decrement <= 1, "
                                 f"got increment={hyper['increment']}, decrement={hyper['decrement']}")
        return hyper

    def _get_name(self) -> str:
        # nn.Module's display name (repr, and the errors of every rlbench loss): the name it was built under
        return _NAMES[self.__dict__.get("surrogate", "plain")]

    def _estimator_network(self):
        return self.critic_network if self.has_critic else None


def ClipPPOLoss(actor_network, critic_network=None, *, clip_epsilon: float = 0.2, **kwargs) -> PPOLoss:
    """PPO with the clipped surrogate (Schulman et al. 2017, eq. 7): ``PPOLoss(..., surrogate="clip")``.

    ``loss_objective = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)]``; the ``clip_fraction``
    diagnostic is the share of samples whose ratio lies outside ``[1 - eps, 1 + eps]``.
    Other arguments, terms and keys as in :class:`PPOLoss` (TorchRL's ``entropy_coeff=`` /
    ``critic_coeff=`` are accepted for ``entropy_coef`` / ``critic_coef``).

    Args:
        actor_network: a probabilistic actor.
        critic_network: the critic (optional).
        clip_epsilon: ``eps`` (0.2 in the paper).
        **kwargs: the other arguments of :class:`PPOLoss`.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 2), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"],
        ...                                   distribution_class=torch.distributions.Categorical,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"] = torch.randn(8, 1)
        >>> loss = ClipPPOLoss(actor, clip_epsilon=0.2)
        >>> loss.surrogate, isinstance(loss, PPOLoss)
        ('clip', True)
        >>> out = loss(td)
        >>> sorted(out.keys())
        ['ESS', 'clip_fraction', 'entropy', 'kl_approx', 'loss_entropy', 'loss_objective']
        >>> bool(out["loss_objective"] == -td["advantage"].mean())  # ratio is 1 on the first epoch
        True
    """
    return PPOLoss(actor_network, critic_network, surrogate="clip", clip_epsilon=clip_epsilon, **kwargs)


def KLPENPPOLoss(actor_network, critic_network=None, *, dtarg: float = 0.01, beta: float = 1.0,
                 increment: float = 2.0, decrement: float = 0.5, **kwargs) -> PPOLoss:
    """PPO with an adaptive KL penalty (Schulman et al. 2017, sec. 4, eq. 8): ``PPOLoss(..., surrogate="kl")``.

    ``loss_objective = -E[r A - beta KL(pi_old || pi)]``; ``beta`` adapts after each call (see
    :class:`PPOLoss`). Other arguments, terms and keys as in :class:`PPOLoss`.

    Args:
        actor_network: a probabilistic actor.
        critic_network: the critic (optional).
        dtarg: target KL per update.
        beta: initial penalty coefficient.
        increment: factor applied to beta when the KL is too large (> 1).
        decrement: factor applied when it is too small (< 1).
        **kwargs: the other arguments of :class:`PPOLoss`.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 2), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"],
        ...                                   distribution_class=torch.distributions.Categorical,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"] = torch.randn(8, 1)
        >>> loss = KLPENPPOLoss(actor, dtarg=0.01, beta=1.0)
        >>> _ = loss(td)
        >>> float(loss.beta)  # KL is 0 < dtarg / 1.5 on the first epoch: beta halves
        0.5
    """
    return PPOLoss(actor_network, critic_network, surrogate="kl", dtarg=dtarg, beta=beta, increment=increment,
                   decrement=decrement, **kwargs)
