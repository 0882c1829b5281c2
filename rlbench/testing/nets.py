"""Small networks for tests of losses and modules: one linear layer each, so a test can write their outputs by hand.

All read ``"observation"`` and use the key vocabulary of the losses: a categorical or Gaussian
actor writing ``"action"`` (and, on request, ``"sample_log_prob"``), a deterministic actor writing
``"action"`` (DDPG, TD3), a state-value critic writing ``"state_value"``, a Q-critic of
``(observation, action)`` writing ``"state_action_value"``, and one of the observation alone writing
``"action_value"`` (one value per discrete action). Their layers are plain ``nn.Linear`` modules
at fixed places (``actor[0].module``, ``critic.module``, ``qnet.module.lin``), so a test can read or
set the weights and compute the expected output itself.
"""
from __future__ import annotations

import torch
from tensordict.nn import (
    InteractionType,
    NormalParamExtractor,
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
)
from torch import nn

__all__ = ["LinearQNet", "categorical_actor", "gaussian_actor", "deterministic_actor", "value_critic", "qvalue_critic",
           "action_value_critic"]


class LinearQNet(nn.Module):
    """``Q(s, a) = W [s; a] + b``: one linear layer (``self.lin``) on the concatenated observation and action.

    Args:
        obs_dim: observation size.
        action_dim: action size.

    Example:
        >>> q = LinearQNet(3, 2)
        >>> q(torch.zeros(5, 3), torch.zeros(5, 2)).shape
        torch.Size([5, 1])
    """

    def __init__(self, obs_dim: int, action_dim: int):
        super().__init__()
        self.lin = nn.Linear(obs_dim + action_dim, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([obs, action], -1))


def qvalue_critic(obs_dim: int, action_dim: int) -> TensorDictModule:
    """A :class:`LinearQNet` reading ``"observation"`` and ``"action"``, writing ``"state_action_value"``.

    Example:
        >>> from tensordict import TensorDict
        >>> critic = qvalue_critic(3, 1)
        >>> critic(TensorDict(observation=torch.zeros(4, 3), action=torch.zeros(4, 1), batch_size=[4]))[
        ...     "state_action_value"].shape
        torch.Size([4, 1])
    """
    return TensorDictModule(LinearQNet(obs_dim, action_dim), ["observation", "action"], ["state_action_value"])


def action_value_critic(obs_dim: int, n_actions: int) -> TensorDictModule:
    """``Q(s, .)`` for every action: a linear layer (``.module``) from ``"observation"`` to ``"action_value"``.

    Example:
        >>> from tensordict import TensorDict
        >>> action_value_critic(3, 4)(TensorDict(observation=torch.zeros(2, 3), batch_size=[2]))["action_value"].shape
        torch.Size([2, 4])
    """
    return TensorDictModule(nn.Linear(obs_dim, n_actions), ["observation"], ["action_value"])


def value_critic(obs_dim: int, *, constant: float | None = None) -> TensorDictModule:
    """``V(s)``: a linear layer (``.module``) from ``"observation"`` to ``"state_value"``.

    Args:
        obs_dim: observation size.
        constant: if given, the weights are zero and the bias is ``constant``: ``V(s) = constant``
            until the critic is trained.

    Example:
        >>> from tensordict import TensorDict
        >>> value_critic(3, constant=0.5)(TensorDict(observation=torch.randn(2, 3), batch_size=[2]))["state_value"]
        tensor([[0.5000],
                [0.5000]], grad_fn=<AddmmBackward0>)
    """
    return TensorDictModule(_linear(obs_dim, 1, constant), ["observation"], ["state_value"])


def deterministic_actor(obs_dim: int, action_dim: int, *, constant: float | None = None) -> TensorDictModule:
    """``mu(s)`` for DDPG and TD3: a linear layer (``.module``) from ``"observation"`` to ``"action"``.

    Args:
        obs_dim: observation size.
        action_dim: action size.
        constant: if given, the weights are zero and the bias is ``constant``: ``mu(s) = constant``.

    Example:
        >>> from tensordict import TensorDict
        >>> deterministic_actor(3, 1, constant=0.3)(TensorDict(observation=torch.randn(2, 3), batch_size=[2]))["action"]
        tensor([[0.3000],
                [0.3000]], grad_fn=<AddmmBackward0>)
    """
    return TensorDictModule(_linear(obs_dim, action_dim, constant), ["observation"], ["action"])


def _linear(n_in: int, n_out: int, constant: float | None) -> nn.Linear:
    lin = nn.Linear(n_in, n_out)
    if constant is not None:  # a constant function of the input, until trained
        with torch.no_grad():
            lin.weight.zero_()
            lin.bias.fill_(constant)
    return lin


def _log_prob_kwargs(return_log_prob: bool) -> dict:
    return {"return_log_prob": True, "log_prob_key": "sample_log_prob"} if return_log_prob else {}


def categorical_actor(obs_dim: int, n_actions: int, *, return_log_prob: bool = False,
                      distribution_class=torch.distributions.Categorical,
                      default_interaction_type=InteractionType.RANDOM) -> ProbabilisticTensorDictSequential:
    """A policy over ``n_actions`` actions: logits from one linear layer (``actor[0].module``).

    Args:
        obs_dim: observation size.
        n_actions: number of actions.
        return_log_prob: also write the action's log-probability under ``"sample_log_prob"``
            (what PPO reads as ``log pi_old``).
        distribution_class: ``Categorical`` (index actions) or e.g. ``OneHotCategorical``.
        default_interaction_type: how it acts outside ``set_exploration_type`` (sampling, by default).

    Example:
        >>> from tensordict import TensorDict
        >>> actor = categorical_actor(3, 4, return_log_prob=True)
        >>> td = actor(TensorDict(observation=torch.randn(5, 3), batch_size=[5]))
        >>> td["action"].shape, td["sample_log_prob"].shape
        (torch.Size([5]), torch.Size([5]))
    """
    return ProbabilisticTensorDictSequential(
        TensorDictModule(nn.Linear(obs_dim, n_actions), ["observation"], ["logits"]),
        ProbabilisticTensorDictModule(["logits"], ["action"], distribution_class=distribution_class,
                                      default_interaction_type=default_interaction_type,
                                      **_log_prob_kwargs(return_log_prob)))


def gaussian_actor(obs_dim: int, action_dim: int, *, return_log_prob: bool = False,
                   default_interaction_type=InteractionType.RANDOM) -> ProbabilisticTensorDictSequential:
    """A Gaussian policy: ``loc`` and ``scale`` from one linear layer (``actor[0].module[0]``).

    A ``NormalParamExtractor`` splits the layer's output and makes the scale positive.

    Args:
        obs_dim: observation size.
        action_dim: action size (the layer has ``2 * action_dim`` outputs).
        return_log_prob: also write ``"sample_log_prob"`` (``[*batch, action_dim]``: the ``Normal`` is
            not ``Independent``; losses sum it over the action dims).
        default_interaction_type: how it acts outside ``set_exploration_type`` (sampling, by default).

    Example:
        >>> from tensordict import TensorDict
        >>> actor = gaussian_actor(3, 2)
        >>> actor(TensorDict(observation=torch.randn(5, 3), batch_size=[5]))["action"].shape
        torch.Size([5, 2])
    """
    net = TensorDictModule(nn.Sequential(nn.Linear(obs_dim, 2 * action_dim), NormalParamExtractor()), ["observation"],
                           ["loc", "scale"])
    return ProbabilisticTensorDictSequential(
        net, ProbabilisticTensorDictModule(["loc", "scale"], ["action"], distribution_class=torch.distributions.Normal,
                                           default_interaction_type=default_interaction_type,
                                           **_log_prob_kwargs(return_log_prob)))
