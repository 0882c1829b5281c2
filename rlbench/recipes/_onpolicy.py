"""What the on-policy recipes (PPO, A2C) share: their common Config fields and their actor-critic models.

The loops themselves stay in the recipe files so each reads top to bottom.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._common import RecipeConfig
from ._models import make_stochastic_actor, make_value_network

__all__ = ["OnPolicyConfig", "make_actor_critic"]


@dataclass
class OnPolicyConfig(RecipeConfig):
    """Fields shared by the PPO and A2C recipes (each recipe's ``Config`` extends it and retunes defaults).

    Example:
        >>> OnPolicyConfig().num_envs, OnPolicyConfig().target_return
        (16, 475.0)
    """

    num_envs: int = 16
    """Envs stepped side by side (a gymnasium vector env or a native batch)."""
    steps_per_env: int = 16
    """Steps per env in each collected batch (the batch has num_envs * steps_per_env frames)."""
    lr: float = 3e-3
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to zero over the budget."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda (bias/variance trade-off of the advantage)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus."""
    critic_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this value."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and the critic."""
    ortho_init: bool = False
    """Orthogonal initialisation (policy output gain 0.01, value output gain 1, hidden sqrt(2))."""
    eval_every: int = 5_000
    target_return: float | None = 475.0
    """Stop once a periodic evaluation reaches this mean return (None: whole budget; 475 solves CartPole-v1)."""


def make_actor_critic(env, config: OnPolicyConfig):
    """The policy (Categorical or TanhNormal, from the action spec) and the critic V(s).

    Example:
        >>> from rlbench.recipes._common import make_env
        >>> actor, critic = make_actor_critic(make_env("native:Pendulum"), OnPolicyConfig())
        >>> type(actor).__name__, type(critic).__name__
        ('ProbabilisticActor', 'ValueOperator')
    """
    return (make_stochastic_actor(env, config.hidden_sizes, ortho_init=config.ortho_init),
            make_value_network(env, config.hidden_sizes, ortho_init=config.ortho_init))
