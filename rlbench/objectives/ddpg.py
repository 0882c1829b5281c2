"""Deep Deterministic Policy Gradient loss.

Lillicrap et al., "Continuous control with deep reinforcement learning", 2015, arXiv:1509.02971, Algorithm 1.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from . import functional as F
from .common import LossModule
from .utils import distance_loss

__all__ = ["DDPGLoss"]


class DDPGLoss(LossModule):
    """DDPG: a deterministic actor ``mu`` trained through a critic ``Q``, both with target copies.

    Terms (Algorithm 1 of the paper):

    * ``loss_value = E[(Q(s, a) - y)^2]``, ``y = r + gamma (1 - terminated) Qbar(s', mubar(s'))``;
    * ``loss_actor = -E[Q(s, mu(s))]`` -- the critic's parameters get no gradient from this term,
      and the actor none from ``loss_value`` (its target is computed without gradient).

    Diagnostics: ``state_action_value`` (mean ``Q(s, a)``) and ``target_value`` (mean ``y``).

    Args:
        actor_network: a ``TensorDictModule`` from observation to ``"action"``.
        value_network: a ``TensorDictModule`` from observation and ``"action"`` to ``"state_action_value"``.
        delay_actor, delay_value: keep target copies (``target_actor_network_params``,
            ``target_value_network_params``, moved by ``SoftUpdate``); without one, the online
            network is used (detached) in the target.
        gamma: discount (``make_value_estimator("td0", gamma=...)`` also sets it).
        loss_function: ``"l2"`` (default), ``"l1"`` or ``"smooth_l1"``.

    Keys (``set_keys``): ``action``, ``state_action_value``, ``reward``, ``done``, ``terminated``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from torch import nn
        >>> actor = TensorDictModule(nn.Sequential(nn.Linear(3, 1), nn.Tanh()), ["observation"], ["action"])
        >>> class Q(nn.Module):
        ...     def __init__(self):
        ...         super().__init__(); self.lin = nn.Linear(4, 1)
        ...     def forward(self, obs, act):
        ...         return self.lin(torch.cat([obs, act], -1))
        >>> critic = TensorDictModule(Q(), ["observation", "action"], ["state_action_value"])
        >>> td = TensorDict(observation=torch.randn(8, 3), action=torch.rand(8, 1),
        ...     next=TensorDict(observation=torch.randn(8, 3), reward=torch.randn(8, 1),
        ...                     done=torch.zeros(8, 1, dtype=torch.bool),
        ...                     terminated=torch.zeros(8, 1, dtype=torch.bool),
        ...                     batch_size=[8]), batch_size=[8])
        >>> out = DDPGLoss(actor, critic)(td)
        >>> sorted(out.keys())
        ['loss_actor', 'loss_value', 'state_action_value', 'target_value']
    """

    default_keys = {"action": "action", "state_action_value": "state_action_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    one_step_target = True

    def __init__(self, actor_network, value_network, *, delay_actor: bool = True, delay_value: bool = True,
                 gamma: float = 0.99, loss_function: str = "l2"):
        super().__init__()
        self.convert_to_functional(actor_network, "actor_network", create_target_params=delay_actor)
        self.convert_to_functional(value_network, "value_network", create_target_params=delay_value)
        self.delay_actor, self.delay_value, self.gamma = delay_actor, delay_value, gamma
        self.loss_function = self._check_loss_function(loss_function)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        # critic: y = r + gamma (1 - d) Qbar(s', mubar(s'))
        with torch.no_grad():
            next_td = self.next_of(td)
            next_action = self.actor_action(next_td, target=True)
            next_q = self._q(next_td, next_action, target=True)
            reward, terminated = self.reward_and_terminated(td)
            y = F.td0_target(reward, terminated, next_q, self.gamma)
        q = self._q(td, self.stored_action(td))
        loss_value = distance_loss(q, y, self.loss_function).mean()

        # actor: maximise Q(s, mu(s)) through a critic whose parameters are held fixed
        loss_actor = -self._q(td, self.actor_action(td), frozen=True).mean()

        return TensorDict(loss_actor=loss_actor, loss_value=loss_value,
                          state_action_value=q.detach().mean(), target_value=y.mean())

    def _q(self, td: TensorDictBase, action: torch.Tensor, *, target: bool = False, frozen: bool = False):
        """Q(s, action); ``target``: the target critic (the online one, detached, without ``delay_value``)."""
        return self.network_output("value_network", td, self.tensor_keys.state_action_value, action=action,
                                   target=target, frozen=frozen)
