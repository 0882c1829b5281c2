"""Twin Delayed DDPG loss.

Fujimoto et al., "Addressing Function Approximation Error in Actor-Critic Methods", 2018,
arXiv:1802.09477, Algorithm 1.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase

from . import functional as F
from .common import LossModule
from .utils import distance_loss

__all__ = ["TD3Loss"]


def _action_bounds(spec) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(low, high)`` of a bounded action spec, or None when no spec is given."""
    if spec is None:
        return None
    low, high = getattr(spec, "low", None), getattr(spec, "high", None)
    if low is None or high is None:
        raise TypeError(f"TD3Loss: action_spec must be a Bounded spec with low/high, got {type(spec).__name__}")
    return _per_env(torch.as_tensor(low)), _per_env(torch.as_tensor(high))


def _per_env(bound: torch.Tensor) -> torch.Tensor:
    """One row of a batched env's bounds when every env has the same.

    A batched env's spec repeats the bounds over its env dims (``[n_envs, n]``); a replay batch has
    other leading dims (``[256, n]``). One row broadcasts against any batch.
    """
    while bound.ndim > 1 and bool((bound == bound[:1]).all()):
        bound = bound[0]
    return bound


class TD3Loss(LossModule):
    """TD3: DDPG with twin critics, target policy smoothing and delayed actor updates.

    Terms (Algorithm 1 of the paper):

    * ``loss_qvalue = sum_i E[(Q_i(s, a) - y)^2]`` with ``y = r + gamma (1 - terminated) min_j Qbar_j(s', a~)``
      and the smoothed target action
      ``a~ = clip(mubar(s') + clip(N(0, policy_noise), -noise_clip, noise_clip), low, high)``;
    * ``loss_actor = -E[Q_1(s, mu(s))]`` (critic parameters frozen), returned only on every
      ``policy_delay``-th call.

    **Delayed updates.** The loss counts its calls. On the first call and every ``policy_delay``-th
    after it, the output holds ``loss_actor`` and ``loss.actor_update_due`` is True; on the others
    it has only ``loss_qvalue`` and ``actor_update_due`` is False. A loop that sums the ``loss_*``
    entries therefore delays the actor by itself; the paper also delays the target updates, which a
    loop does with ``if loss.actor_update_due: updater.step()``. The counter is a buffer (saved
    with ``state_dict``).

    Diagnostics: ``state_action_value`` (mean Q over critics and batch), ``target_value`` (mean y).

    Args:
        actor_network: a ``TensorDictModule`` from observation to ``"action"``.
        qvalue_network: a ``TensorDictModule`` from observation and ``"action"`` to
            ``"state_action_value"``; the loss keeps ``num_qvalue_nets`` independently initialised
            copies (stacked; evaluated in a loop, or one vmapped call for many tiny critics: ``ensemble_mode``).
        action_spec: a ``Bounded`` action spec whose ``low``/``high`` clip the smoothed target
            action; if None, the actor's ``spec`` is used when it has one, else no clipping.
        num_qvalue_nets: number of critics (2).
        policy_noise: standard deviation of the target smoothing noise (in action units).
        noise_clip: the noise is clipped to ``[-noise_clip, noise_clip]``.
        policy_delay: actor (and target) update period, in calls.
        delay_actor, delay_qvalue: keep target copies of the actor / critics.
        gamma: discount (``make_value_estimator("td0", gamma=...)`` also sets it).
        loss_function: ``"l2"`` (default), ``"l1"`` or ``"smooth_l1"``.

    Keys (``set_keys``): ``action``, ``state_action_value``, ``reward``, ``done``, ``terminated``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from torch import nn
        >>> from rlbench.specs import Bounded
        >>> actor = TensorDictModule(nn.Sequential(nn.Linear(3, 1), nn.Tanh()), ["observation"], ["action"])
        >>> class Q(nn.Module):
        ...     def __init__(self):
        ...         super().__init__(); self.lin = nn.Linear(4, 1)
        ...     def forward(self, obs, act):
        ...         return self.lin(torch.cat([obs, act], -1))
        >>> critic = TensorDictModule(Q(), ["observation", "action"], ["state_action_value"])
        >>> loss = TD3Loss(actor, critic, action_spec=Bounded(-1.0, 1.0, shape=(1,)), policy_delay=2)
        >>> td = TensorDict(observation=torch.randn(8, 3), action=torch.rand(8, 1),
        ...     next=TensorDict(observation=torch.randn(8, 3), reward=torch.randn(8, 1),
        ...                     done=torch.zeros(8, 1, dtype=torch.bool),
        ...                     terminated=torch.zeros(8, 1, dtype=torch.bool),
        ...                     batch_size=[8]), batch_size=[8])
        >>> [sorted(k for k in loss(td).keys() if k.startswith("loss_")) for _ in range(3)]
        [['loss_actor', 'loss_qvalue'], ['loss_qvalue'], ['loss_actor', 'loss_qvalue']]
    """

    default_keys = {"action": "action", "state_action_value": "state_action_value",
                    "reward": "reward", "done": "done", "terminated": "terminated"}
    one_step_target = True

    def __init__(self, actor_network, qvalue_network, *, action_spec=None, num_qvalue_nets: int = 2,
                 policy_noise: float = 0.2, noise_clip: float = 0.5, policy_delay: int = 2, delay_actor: bool = True,
                 delay_qvalue: bool = True, gamma: float = 0.99, loss_function: str = "l2"):
        super().__init__()
        if num_qvalue_nets < 1 or policy_delay < 1:
            raise ValueError(f"TD3Loss: num_qvalue_nets and policy_delay must be >= 1, "
                             f"got {num_qvalue_nets} and {policy_delay}")
        if policy_noise < 0 or noise_clip < 0:
            raise ValueError(f"TD3Loss: policy_noise and noise_clip must be >= 0, got {policy_noise} and {noise_clip}")
        if action_spec is None:
            action_spec = getattr(actor_network, "spec", None)
        bounds = _action_bounds(action_spec)
        if bounds is not None:
            self.register_buffer("action_low", bounds[0].to(torch.get_default_dtype()))
            self.register_buffer("action_high", bounds[1].to(torch.get_default_dtype()))
        self.convert_to_functional(actor_network, "actor_network", create_target_params=delay_actor)
        self.convert_to_functional(qvalue_network, "qvalue_network", expand_dim=num_qvalue_nets,
                                   create_target_params=delay_qvalue)
        self.num_qvalue_nets, self.policy_noise, self.noise_clip = num_qvalue_nets, policy_noise, noise_clip
        self.policy_delay, self.delay_actor, self.delay_qvalue = policy_delay, delay_actor, delay_qvalue
        self.gamma = gamma
        self.loss_function = self._check_loss_function(loss_function)
        self.register_buffer("num_calls", torch.zeros((), dtype=torch.long))
        self.actor_update_due = True

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        self.actor_update_due = bool(self.num_calls % self.policy_delay == 0)
        self.num_calls += 1

        # critic target with target policy smoothing (sec. 5.3) and the clipped double-Q min (sec. 4.2)
        with torch.no_grad():
            next_td = self.next_of(td)
            next_action = self._smoothed(self.actor_action(next_td, target=True))
            next_q = self._q(next_td, next_action, target=True).min(0).values
            reward, terminated = self.reward_and_terminated(td)
            y = F.td0_target(reward, terminated, next_q, self.gamma)
        q = self._q(td, self.stored_action(td))  # [num_qvalue_nets, *batch, 1]
        out = TensorDict(loss_qvalue=distance_loss(q, y.expand_as(q), self.loss_function).sum(0).mean())

        # delayed policy update: maximise Q_1(s, mu(s)) (sec. 5.2)
        if self.actor_update_due:
            q_pi = self._q1_frozen(td, self.actor_action(td))
            out.set("loss_actor", -q_pi.mean())
        out.update({"state_action_value": q.detach().mean(), "target_value": y.mean()})
        return out

    def _smoothed(self, action: torch.Tensor) -> torch.Tensor:
        """``clip(action + clip(eps, -c, c), low, high)`` with ``eps ~ N(0, policy_noise^2)``."""
        noise = (torch.randn_like(action) * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
        action = action + noise
        if hasattr(self, "action_low"):
            action = torch.maximum(torch.minimum(action, self.action_high), self.action_low)
        return action

    def _q(self, td: TensorDictBase, action: torch.Tensor, *, target: bool = False, frozen: bool = False):
        """Q(s, action) of every critic, ``[num_qvalue_nets, *batch, 1]``."""
        return self.network_output("qvalue_network", td, self.tensor_keys.state_action_value, action=action,
                                   target=target, frozen=frozen)

    def _q1_frozen(self, td: TensorDictBase, action: torch.Tensor) -> torch.Tensor:
        """Q_1(s, action) with the first critic's parameters detached: the actor term pays for one critic only."""
        data = self.network_inputs("qvalue_network", td, action)
        first = [t[0].detach() for t in self.network_params("qvalue_network").values(True, True)]
        return self._run_member("qvalue_network", first, data).get(self.tensor_keys.state_action_value)
