"""A2C (Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning", arXiv:1602.01783).

The synchronous variant: ``num_envs`` envs step together, each batch of ``num_envs x steps_per_env``
frames gives one gradient step on the policy gradient with a GAE baseline, entropy bonus and value loss.

Config fields inherited from :class:`~rlbench.recipes.config.OnPolicyConfig`, with the defaults A2C runs
with (A2C retunes some in :class:`Config`)::

    env='CartPole-v1'  frames=200000  seed=0  torch_threads=1  eval_episodes=20  eval_every=5000
    target_return=475.0  out_dir=None  num_envs=16  steps_per_env=8  lr=0.003  anneal_lr=True
    gamma=0.99  gae_lambda=0.95  entropy_coef=0.0  critic_coef=0.5  max_grad_norm=0.5
    normalize_advantage=True  hidden_sizes=(64, 64)  ortho_init=False

Example:
    >>> from rlbench.recipes import a2c
    >>> results = a2c.train(a2c.Config(env="native:CartPole", frames=512, eval_episodes=2), progress=False)
    >>> results.frames
    512
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..collectors import Collector
from ..objectives import A2CLoss
from ..trainers import RunTracker, TrainResults
from .config import OnPolicyConfig
from .envs import evaluator, start_run
from .models import make_actor_critic
from .video import video_recorder

__all__ = ["Config", "make_models", "train"]


@dataclass
class Config(OnPolicyConfig):
    """A2C hyperparameters (every field documented; ``rlbench train a2c --help`` lists them).

    Published defaults for Atari (``FAMILY_DEFAULTS["atari"]``, applied to ``ALE/...`` ids for every field
    not set; see :class:`~rlbench.recipes.config.RecipeConfig`): rl-baselines3-zoo's ``a2c.yml`` Atari entry
    with Stable-Baselines3's A2C defaults (after Mnih et al. 2016): 16 envs x 5 steps, lr 7e-4, entropy 0.01,
    value weight 0.25, GAE lambda 1 (n-step returns), no advantage normalisation, gradient norm 0.5,
    orthogonal initialisation, the shared Nature CNN with linear heads. (The zoo uses RMSprop; this loop Adam.)

    Example:
        >>> Config(num_envs=4).num_envs
        4
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "atari": dict(num_envs=16, steps_per_env=5, lr=7e-4, entropy_coef=0.01, critic_coef=0.25, gae_lambda=1.0,
                      normalize_advantage=False, max_grad_norm=0.5, hidden_sizes=(), ortho_init=True,
                      target_return=None, eval_every=0, eval_episodes=10),
    }

    frames: int = 200_000
    steps_per_env: int = 8
    """Steps per env in each collected batch: one gradient step per num_envs * steps_per_env frames."""
    gae_lambda: float = 0.95
    """GAE's lambda (1.0 gives n-step returns bootstrapped at the batch end)."""
    normalize_advantage: bool = True
    """Standardise advantages over each batch."""


def make_models(env, config: Config):
    """The policy (Categorical or TanhNormal, from the action spec) and the critic V(s).

    Example:
        >>> from rlbench.recipes import make_env
        >>> actor, critic = make_models(make_env("native:Pendulum"), Config())
        >>> type(actor).__name__, type(critic).__name__
        ('ProbabilisticActor', 'ValueOperator')
    """
    return make_actor_critic(env, config)


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train A2C from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, which solves CartPole-v1).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, critic = make_models(env, config)

    loss_fn = A2CLoss(actor, critic, entropy_coef=config.entropy_coef, critic_coef=config.critic_coef,
                      loss_critic_type="l2", normalize_advantage=config.normalize_advantage)
    loss_fn.make_value_estimator("gae", gamma=config.gamma, lmbda=config.gae_lambda)
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.lr, eps=1e-5)

    frames_per_batch = config.num_envs * config.steps_per_env
    collector = Collector(env, actor, frames_per_batch=frames_per_batch, total_frames=config.frames,
                          progress={"desc": "a2c"} if progress else False)
    # clock, logs, evaluations (and early stop at config.target_return), run files; training returns from the collector
    run = RunTracker("a2c", config, logger, evaluate=evaluator(config),
                     episodes=collector.episodes, video=video_recorder(config))
    frames = 0
    for batch in collector:
        frames += frames_per_batch
        with torch.no_grad():
            loss_fn.value_estimator(batch)  # "advantage" and "value_target" from the critic before the update

        out = loss_fn(batch)
        loss = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), config.max_grad_norm)
        optimizer.step()

        if config.anneal_lr:
            for group in optimizer.param_groups:
                group["lr"] = config.lr * max(0.0, 1.0 - frames / config.frames)
        stats = {"loss/objective": out["loss_objective"], "loss/critic": out["loss_critic"], "entropy": out["entropy"]}
        if run.step(frames, actor, stats):  # logs, evaluates when due; True once the target is reached
            break
    collector.shutdown()
    env.close()
    return run.finish(actor, frames, models={"actor": actor, "critic": critic}, optimizer=optimizer)
