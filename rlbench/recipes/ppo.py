"""PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347).

The loop follows the paper's Algorithm 1: collect ``num_envs x steps_per_env`` frames with the
current policy, compute GAE advantages once, then optimise the clipped surrogate for ``epochs``
passes over shuffled minibatches. The defaults are tuned for wall-clock speed on CartPole-v1:
16 envs x 16 steps per batch and 4 full-batch epochs with a high learning rate (3e-3, annealed),
i.e. few, cheap updates per frame (``benchmarks/learning.py`` measures them; wider batches of
32-64 envs solved fewer seeds within the budget).

Config fields inherited from :class:`~rlbench.recipes.config.OnPolicyConfig`, with the defaults PPO runs
with (PPO's own fields follow in :class:`Config`)::

    env='CartPole-v1'  frames=100000  seed=0  torch_threads=1  eval_episodes=20  eval_every=5000
    target_return=475.0  out_dir=None  num_envs=16  steps_per_env=16  lr=0.003  anneal_lr=True
    gamma=0.99  gae_lambda=0.95  entropy_coef=0.0  critic_coef=0.5  max_grad_norm=0.5
    normalize_advantage=True  hidden_sizes=(64, 64)  ortho_init=False

Example:
    >>> from rlbench.recipes import ppo
    >>> results = ppo.train(ppo.Config(env="native:CartPole", frames=512, eval_episodes=2), progress=False)
    >>> results.frames, results.eval_episodes
    (512, 2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..collectors import Collector
from ..objectives import ClipPPOLoss
from ..trainers import RunTracker, TrainResults
from .config import POSITIVE, OnPolicyConfig, check_fields, integer
from .envs import evaluator, start_run
from .models import make_actor_critic
from .video import video_recorder

__all__ = ["Config", "make_models", "train"]


@dataclass
class Config(OnPolicyConfig):
    """PPO hyperparameters (every field documented; ``rlbench train ppo --help`` lists them).

    Published defaults for Atari (``FAMILY_DEFAULTS["atari"]``, applied to ``ALE/...`` ids for every field
    not set; see :class:`~rlbench.recipes.config.RecipeConfig`): rl-baselines3-zoo's ``ppo.yml`` Atari entry
    (Raffin et al., after Schulman et al. 2017's Table 5): 8 envs x 128 steps, 4 epochs of minibatches of 256,
    lr 2.5e-4 annealed linearly, clip 0.1 (the zoo also anneals it; here it stays 0.1), entropy 0.01, value
    weight 0.5, GAE 0.95, gradient norm 0.5, orthogonal initialisation, and the Nature CNN shared by the policy
    and the value with linear heads (``hidden_sizes=()``). The zoo trains for 1e7 frames.

    Example:
        >>> Config(lr=1e-3).lr
        0.001
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "atari": dict(num_envs=8, steps_per_env=128, epochs=4, minibatch_size=256, lr=2.5e-4, anneal_lr=True,
                      clip_epsilon=0.1, entropy_coef=0.01, critic_coef=0.5, gamma=0.99, gae_lambda=0.95,
                      max_grad_norm=0.5, normalize_advantage=True, hidden_sizes=(), ortho_init=True,
                      target_return=None, eval_every=0, eval_episodes=10),
    }

    frames: int = 100_000
    epochs: int = 4
    """Optimisation passes over each batch."""
    minibatch_size: int = 256
    """Frames per gradient step."""
    clip_epsilon: float = 0.2
    """Clipping range of the probability ratio."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {"epochs": integer(1), "minibatch_size": integer(1), "clip_epsilon": POSITIVE})


def make_models(env, config: Config):
    """The policy (Categorical or TanhNormal, from the action spec) and the critic V(s).

    Example:
        >>> from rlbench.recipes import make_env
        >>> actor, critic = make_models(make_env("native:CartPole", num_envs=2), Config())
        >>> sorted(critic(actor(make_env("native:CartPole", num_envs=2).reset())).keys())[:3]
        ['action', 'done', 'logits']
    """
    return make_actor_critic(env, config)


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train PPO from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, which solves CartPole-v1).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, critic = make_models(env, config)

    loss_fn = ClipPPOLoss(actor, critic, clip_epsilon=config.clip_epsilon, entropy_coef=config.entropy_coef,
                          critic_coef=config.critic_coef, loss_critic_type="l2",
                          normalize_advantage=config.normalize_advantage)
    loss_fn.make_value_estimator("gae", gamma=config.gamma, lmbda=config.gae_lambda)
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.lr, eps=1e-5)

    frames_per_batch = config.num_envs * config.steps_per_env
    collector = Collector(env, actor, frames_per_batch=frames_per_batch, total_frames=config.frames,
                          progress={"desc": "ppo"} if progress else False)
    # clock, logs, evaluations (and early stop at config.target_return), run files; training returns from the collector
    run = RunTracker("ppo", config, logger, evaluate=evaluator(config),
                     episodes=collector.episodes, video=video_recorder(config))
    frames = 0
    for batch in collector:
        frames += frames_per_batch
        with torch.no_grad():
            loss_fn.value_estimator(batch)  # writes "advantage" and "value_target" (GAE, computed once)
        data = batch.reshape(-1)

        for _ in range(config.epochs):
            for idx in torch.randperm(frames_per_batch).split(config.minibatch_size):
                out = loss_fn(data[idx])
                loss = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), config.max_grad_norm)
                optimizer.step()

        if config.anneal_lr:
            for group in optimizer.param_groups:
                group["lr"] = config.lr * max(0.0, 1.0 - frames / config.frames)
        stats = {"loss/objective": out["loss_objective"], "loss/critic": out["loss_critic"],
                 "kl_approx": out["kl_approx"], "clip_fraction": out["clip_fraction"]}
        if run.step(frames, actor, stats):  # logs, evaluates when due; True once the target is reached
            break
    collector.shutdown()
    env.close()
    return run.finish(actor, frames, models={"actor": actor, "critic": critic}, optimizer=optimizer)
