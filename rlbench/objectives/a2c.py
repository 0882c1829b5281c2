"""Advantage Actor-Critic loss, the synchronous variant (A2C) of A3C.

Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning", 2016, arXiv:1602.01783.
"""
from __future__ import annotations

from tensordict import TensorDict, TensorDictBase

from . import functional as F
from .common import LossModule, ValueEstimators, torchrl_alias

__all__ = ["A2CLoss"]


class A2CLoss(LossModule):
    """A2C: policy gradient with a learned baseline, an entropy bonus and a critic regression.

    Terms (Mnih et al. 2016, sec. 4 and the A3C algorithm box):

    * ``loss_objective = -E[log pi(a|s) A]`` (the advantage is a constant: no gradient into the critic);
    * ``loss_entropy = -entropy_coef * E[H(pi(.|s))]`` (if ``entropy_bonus``);
    * ``loss_critic = critic_coef * E[d(V(s), value_target)]``.

    Diagnostics: ``entropy``.

    Args:
        actor_network: a probabilistic actor (``get_dist(td)``) reading the observation keys.
        critic_network: a ``TensorDictModule`` writing ``"state_value"`` (optional when the data
            carries ``advantage`` and no critic loss is wanted).
        entropy_bonus: add ``loss_entropy``.
        entropy_coef: its weight (0.01).
        critic_coef: weight of ``loss_critic`` (0.5).
        loss_critic_type: ``"smooth_l1"`` (default), ``"l2"`` or ``"l1"``.
        normalize_advantage: standardise the advantage over the batch first.
        entropy_coeff, critic_coeff: TorchRL's spellings of ``entropy_coef`` / ``critic_coef``
            (either spelling; both at once is a ``TypeError``).

    Without ``"advantage"`` in the input, the loss's value estimator (GAE(0.99, 0.95) over the
    critic unless changed with ``make_value_estimator``) writes ``"advantage"`` and
    ``"value_target"`` into it first.

    Keys (``set_keys``): ``action``, ``advantage``, ``value_target``, ``value`` (the critic's output,
    ``"state_value"``), ``reward``, ``done``, ``terminated``.

    Example:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 2), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"],
        ...                                   distribution_class=torch.distributions.Categorical))
        >>> critic = TensorDictModule(nn.Linear(3, 1), ["observation"], ["state_value"])
        >>> td = actor(TensorDict(observation=torch.randn(8, 3), batch_size=[8]))
        >>> td["advantage"], td["value_target"] = torch.randn(8, 1), torch.randn(8, 1)
        >>> out = A2CLoss(actor, critic, entropy_coef=0.01)(td)
        >>> sorted(out.keys())
        ['entropy', 'loss_critic', 'loss_entropy', 'loss_objective']
    """

    default_keys = {"action": "action", "advantage": "advantage", "value_target": "value_target",
                    "value": "state_value", "reward": "reward", "done": "done", "terminated": "terminated"}
    default_value_estimator = ValueEstimators.GAE

    def __init__(self, actor_network, critic_network=None, *, entropy_bonus: bool = True,
                 entropy_coef: float | None = None, critic_coef: float | None = None,
                 loss_critic_type: str = "smooth_l1", normalize_advantage: bool = False,
                 entropy_coeff: float | None = None, critic_coeff: float | None = None):
        super().__init__()
        owner = type(self).__name__  # a subclass's errors name it (IMPALALoss)
        entropy_coef = torchrl_alias(owner, "entropy_coef", entropy_coef, "entropy_coeff", entropy_coeff, 0.01)
        critic_coef = torchrl_alias(owner, "critic_coef", critic_coef, "critic_coeff", critic_coeff, 0.5)
        self._require_probabilistic(actor_network)
        self.convert_to_functional(actor_network, "actor_network")
        self.has_critic = critic_network is not None
        if self.has_critic:
            self.convert_to_functional(critic_network, "critic_network")
        self.entropy_bonus, self.entropy_coef, self.critic_coef = entropy_bonus, entropy_coef, critic_coef
        self.loss_critic_type = self._check_loss_function(loss_critic_type, "loss_critic_type")
        self.normalize_advantage = normalize_advantage

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        nb = td.batch_dims
        advantage = self.advantage(td).detach()
        if self.normalize_advantage:
            advantage = F.normalize(advantage)

        dist = self.action_dist(td)
        action = self.stored_action(td, index=F.takes_indices(dist))
        log_prob = F.log_prob(dist, action, nb)
        # grad J = E[grad log pi(a|s) A(s, a)]   (policy-gradient theorem with a baseline)
        out = TensorDict(loss_objective=-(log_prob * advantage.to(log_prob.dtype)).mean())

        entropy = F.entropy(dist, nb)
        if self.entropy_bonus:
            out.set("loss_entropy", -self.entropy_coef * entropy.mean())
        if self.has_critic:
            # E[d(V(s), value_target)]
            target = self.value_target(td)
            loss_critic = F.critic_loss(self.state_value(td), target, self.loss_critic_type)
            out.set("loss_critic", self.critic_coef * loss_critic)
        out.set("entropy", entropy.detach().mean())
        return out

    def _estimator_network(self):
        return self.critic_network if self.has_critic else None
