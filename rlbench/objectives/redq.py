"""Randomized Ensembled Double Q-learning loss.

Chen et al., "Randomized Ensembled Double Q-Learning: Learning Fast Without a Model", ICLR 2021,
arXiv:2101.05982, Algorithm 1.
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDict, TensorDictBase

from . import functional as F
from .common import LossModule
from .utils import distance_loss

__all__ = ["REDQLoss"]


class REDQLoss(LossModule):
    """REDQ: SAC with an ensemble of ``N`` critics and a min over a random subset of ``M`` in the target.

    Terms (Algorithm 1 of the paper), with ``a' ~ pi(.|s')``, ``a~ ~ pi(.|s)`` reparameterised and a
    fresh random subset ``S`` of ``M`` critic indices drawn at every call:

    * ``loss_qvalue = sum_i E[(Q_i(s, a) - y)^2]``,
      ``y = r + gamma (1 - terminated) (min_{j in S} Qbar_j(s', a') - alpha log pi(a'|s'))``
      -- every one of the ``N`` critics regresses to the same target;
    * ``loss_actor = E[alpha log pi(a~|s) - (1/N) sum_i Q_i(s, a~)]`` (the ensemble *mean*; critics frozen);
    * ``loss_alpha = -E[log alpha (log pi(a~|s) + H_target)]`` (absent when ``fixed_alpha``).

    The paper's high update-to-data ratio is the training loop's business (several optimiser
    steps per collected frame); this loss is one such step. The subset is drawn with
    ``torch.randperm(N, generator=generator)``; ``loss.last_subset`` holds the indices used by the
    latest call.

    Diagnostics: ``alpha``, ``entropy``, ``state_action_value``.

    Args:
        actor_network: a probabilistic actor (``get_dist(td)``) reading the observation keys.
        qvalue_network: a ``TensorDictModule`` from observation and ``"action"`` to ``"state_action_value"``.
        num_qvalue_nets: ensemble size ``N`` (10 in the paper).
        sub_sample_len: subset size ``M`` (2 in the paper).
        alpha_init, fixed_alpha, target_entropy, delay_qvalue, gamma, loss_function: as in
            :class:`~rlbench.objectives.sac.SACLoss`.
        generator: a ``torch.Generator`` for the subset draw (default: the global RNG).

    Keys (``set_keys``): ``action``, ``state_action_value``, ``reward``, ``done``, ``terminated``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import (TensorDictModule, ProbabilisticTensorDictModule,
        ...     ProbabilisticTensorDictSequential, NormalParamExtractor)
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Sequential(nn.Linear(3, 2), NormalParamExtractor()), ["observation"],
        ...                      ["loc", "scale"]),
        ...     ProbabilisticTensorDictModule(["loc", "scale"], ["action"],
        ...                                   distribution_class=torch.distributions.Normal))
        >>> class Q(nn.Module):
        ...     def __init__(self):
        ...         super().__init__(); self.lin = nn.Linear(4, 1)
        ...     def forward(self, obs, act):
        ...         return self.lin(torch.cat([obs, act], -1))
        >>> loss = REDQLoss(actor, TensorDictModule(Q(), ["observation", "action"], ["state_action_value"]),
        ...                 num_qvalue_nets=5, sub_sample_len=2)
        >>> td = TensorDict(observation=torch.randn(8, 3), action=torch.randn(8, 1),
        ...     next=TensorDict(observation=torch.randn(8, 3), reward=torch.randn(8, 1),
        ...                     done=torch.zeros(8, 1, dtype=torch.bool),
        ...                     terminated=torch.zeros(8, 1, dtype=torch.bool),
        ...                     batch_size=[8]), batch_size=[8])
        >>> out = loss(td)
        >>> loss.qvalue_network_params["module", "lin", "weight"].shape, loss.last_subset.numel()
        (torch.Size([5, 1, 4]), 2)
    """

    default_keys = {"action": "action", "state_action_value": "state_action_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    one_step_target = True

    def __init__(self, actor_network, qvalue_network, *, num_qvalue_nets: int = 10, sub_sample_len: int = 2,
                 alpha_init: float = 1.0, fixed_alpha: bool = False, target_entropy: float | str = "auto",
                 delay_qvalue: bool = True, gamma: float = 0.99, loss_function: str = "l2",
                 generator: torch.Generator | None = None):
        super().__init__()
        if not 1 <= sub_sample_len <= num_qvalue_nets:
            raise ValueError(f"REDQLoss: expected 1 <= sub_sample_len <= num_qvalue_nets, "
                             f"got sub_sample_len={sub_sample_len}, num_qvalue_nets={num_qvalue_nets}")
        if alpha_init <= 0:
            raise ValueError(f"REDQLoss: alpha_init must be > 0, got {alpha_init}")
        self._require_probabilistic(actor_network)
        self.convert_to_functional(actor_network, "actor_network")
        self.convert_to_functional(qvalue_network, "qvalue_network", expand_dim=num_qvalue_nets,
                                   create_target_params=delay_qvalue)
        self.num_qvalue_nets, self.sub_sample_len = num_qvalue_nets, sub_sample_len
        self.delay_qvalue, self.gamma, self.generator = delay_qvalue, gamma, generator
        self.loss_function = self._check_loss_function(loss_function)
        self.fixed_alpha = fixed_alpha
        self.register_coefficient("log_alpha", math.log(alpha_init), trainable=not fixed_alpha)
        self.register_buffer("target_entropy", F.target_entropy_tensor(target_entropy, "REDQLoss"))
        self.last_subset: torch.Tensor | None = None

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        nb = td.batch_dims
        alpha = self.log_alpha.exp().detach()

        # target: min over a random subset S of M critics (Algorithm 1, lines 8-9)
        subset = torch.randperm(self.num_qvalue_nets, generator=self.generator)[: self.sub_sample_len]
        self.last_subset = subset
        with torch.no_grad():
            next_td = self.next_of(td)
            next_action, next_log_prob = F.rsample_with_log_prob(self.action_dist(next_td), nb)
            next_q = self._q(next_td, next_action, target=True, subset=subset).min(0).values
            reward, terminated = self.reward_and_terminated(td)
            y = F.td0_target(reward, terminated, next_q - alpha * next_log_prob, self.gamma)
        q = self._q(td, self.stored_action(td))  # all N critics: [N, *batch, 1]
        loss_qvalue = distance_loss(q, y.expand_as(q), self.loss_function).sum(0).mean()

        # actor against the ensemble mean (Algorithm 1, line 12)
        action, log_prob = F.rsample_with_log_prob(self.action_dist(td), nb)
        q_pi = self._q(td, action, frozen=True).mean(0)
        loss_actor = (alpha * log_prob - q_pi).mean()

        out = TensorDict(loss_qvalue=loss_qvalue, loss_actor=loss_actor)
        if not self.fixed_alpha:
            target_entropy = F.resolve_target_entropy(self.target_entropy, action, nb)
            out.set("loss_alpha", F.alpha_loss(self.log_alpha, log_prob, target_entropy))
        out.update({"alpha": alpha, "entropy": -log_prob.detach().mean(), "state_action_value": q.detach().mean()})
        return out

    # -------------------------------------------------------------- plumbing
    def _q(self, td, action, *, target: bool = False, frozen: bool = False, subset: torch.Tensor | None = None):
        """Q(s, action) of the critics (or of ``subset`` of them only): ``[num, *batch, 1]``."""
        params = self.network_params("qvalue_network", target=target and self.delay_qvalue)
        if subset is not None:
            params = params[subset.to(params.device)]  # only the M drawn critics are evaluated
        return self.network_output("qvalue_network", td, self.tensor_keys.state_action_value, action=action,
                                   params=params, target=target, frozen=frozen)
