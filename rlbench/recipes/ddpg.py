"""DDPG (Lillicrap et al. 2016, "Continuous control with deep reinforcement learning", arXiv:1509.02971).

The loop follows the paper's Algorithm 1: act with the deterministic policy plus exploration
noise, store transitions in a replay buffer, and after every ``frames_per_batch`` frames take
``utd_ratio`` gradient steps per frame on the critic and actor losses
(:class:`~rlbench.objectives.DDPGLoss`), each followed by a Polyak update of the target actor and
critic. Defaults are tuned for Pendulum-v1 (mean return >= -200 within 20k env steps; see
``benchmarks/learning.py``): small ReLU networks, batch 256, one update per frame, Gaussian noise.

Config fields inherited from :class:`~rlbench.recipes.config.OffPolicyConfig`, with the defaults DDPG
runs with (DDPG's own fields follow in :class:`Config`)::

    env='Pendulum-v1'  frames=20000  seed=0  torch_threads=1  eval_episodes=20  eval_every=0
    target_return=None  out_dir=None  num_envs=1  frames_per_batch=50  init_random_frames=1000
    buffer_size=100000  batch_size=256  utd_ratio=1.0  gamma=0.99  tau=0.005  lr=0.001
    hidden_sizes=(64, 64)  max_grad_norm=None

Example:
    >>> from rlbench.recipes import ddpg
    >>> cfg = ddpg.Config(env="native:Pendulum", frames=200, init_random_frames=100, batch_size=32, eval_episodes=2)
    >>> results = ddpg.train(cfg, progress=False)
    >>> results.frames, results.eval_episodes
    (200, 2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from tensordict.nn import TensorDictSequential

from ..buffers import LazyTensorStorage, TensorDictReplayBuffer
from ..collectors import Collector
from ..objectives import DDPGLoss, SoftUpdate
from ..trainers import RunTracker, TrainResults
from .config import NON_NEGATIVE, OffPolicyConfig, check_fields, integer, one_of
from .envs import evaluator, start_run
from .models import (
    backward_through_encoder,
    encode_sample,
    make_deterministic_actor,
    make_exploration,
    make_pixel_encoder,
    make_qvalue_network,
    observation_key,
    split_encoder,
    with_encoder,
)
from .replay import transitions, updates_due
from .video import video_recorder

__all__ = ["Config", "make_models", "train"]


@dataclass
class Config(OffPolicyConfig):
    """DDPG hyperparameters: the shared off-policy fields plus DDPG's own (``rlbench train ddpg --help`` lists them).

    Published defaults per env family (``FAMILY_DEFAULTS``, applied for every field not set; see
    :class:`~rlbench.recipes.config.RecipeConfig`): ``"mujoco"`` and ``"dmc"``: rl-baselines3-zoo's
    ``ddpg.yml`` HalfCheetah entry (layers of 400 and 300 units, lr 1e-3, batch 256, a 1M buffer, tau 0.005,
    10k random frames, Gaussian noise 0.1). ``"dmc_pixels"``: DrQ-v2 (Yarats et al. 2022, arXiv:2107.09645),
    which is DDPG on DMC pixels: two 1024-unit layers, lr 1e-4, batch 256, tau 0.01, 4k random frames,
    Gaussian noise decayed from 1 to 0.1 over 500k frames, with a 100k buffer (DrQ-v2 keeps 1M frames, not
    transitions; its n-step returns and augmentation are not part of this recipe).

    Example:
        >>> Config(exploration="ou").exploration
        'ou'
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "mujoco": dict(hidden_sizes=(400, 300), lr=1e-3, batch_size=256, buffer_size=1_000_000, tau=0.005,
                       init_random_frames=10_000, exploration="gaussian", exploration_sigma=0.1,
                       exploration_sigma_end=0.1, eval_episodes=10),
        "dmc_pixels": dict(hidden_sizes=(1024, 1024), lr=1e-4, batch_size=256, buffer_size=100_000, tau=0.01,
                           init_random_frames=4_000, exploration="gaussian", exploration_sigma=1.0,
                           exploration_sigma_end=0.1, exploration_annealing_frames=500_000, eval_episodes=10),
    }
    FAMILY_DEFAULTS["dmc"] = dict(FAMILY_DEFAULTS["mujoco"])

    exploration: str = "gaussian"
    """Exploration noise: gaussian (independent each step) or ou (Ornstein-Uhlenbeck, the paper's)."""
    exploration_sigma: float = 0.1
    """Initial noise scale, as a fraction of the action half-range."""
    exploration_sigma_end: float = 0.1
    """Final noise scale (reached linearly after exploration_annealing_frames)."""
    exploration_annealing_frames: int = 20_000
    """Frames over which the noise scale decays from exploration_sigma to exploration_sigma_end."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {"exploration": one_of("gaussian", "ou"), "exploration_sigma": NON_NEGATIVE,
                            "exploration_sigma_end": NON_NEGATIVE, "exploration_annealing_frames": integer(0)})


def make_models(env, config: Config):
    """The deterministic policy mu(s) (tanh-squashed into the action bounds) and the critic Q(s, a).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=2)
        >>> actor, critic = make_models(env, Config(hidden_sizes=(16,)))
        >>> critic(actor(env.reset()))["state_action_value"].shape
        torch.Size([2, 1])
    """
    encoder = make_pixel_encoder(env)  # pixels: one DMCEncoder shared by the policy and the critic (None: states)
    actor = make_deterministic_actor(env, config.hidden_sizes, "ddpg", encoder=encoder)
    return with_encoder(encoder, actor), make_qvalue_network(env, config.hidden_sizes, "ddpg", encoder=encoder)


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train DDPG from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, Pendulum-v1 in 20k env steps).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, critic = make_models(env, config)
    encoder, head = split_encoder(actor)  # from pixels: the shared encoder and the policy on its features
    noise = make_exploration(env, config.exploration, config.exploration_sigma, config.exploration_sigma_end,
                             config.exploration_annealing_frames, "ddpg")

    loss_fn = DDPGLoss(head, critic, gamma=config.gamma)
    # fused Adam: one kernel per step instead of a loop over parameters (a sizeable share of small updates)
    params = [*loss_fn.parameters(), *(encoder.parameters() if encoder is not None else ())]
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
    target_update = SoftUpdate(loss_fn, tau=config.tau)  # Polyak averaging of the target actor and critic
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(config.buffer_size), batch_size=config.batch_size)
    replay.set_seed(config.seed)

    # the collector acts with mu(s) + noise; evaluation uses mu(s) alone
    collector = Collector(env, TensorDictSequential(actor, noise), frames_per_batch=config.frames_per_batch,
                          total_frames=config.frames, init_random_frames=config.init_random_frames,
                          progress={"desc": "ddpg"} if progress else False)
    run = RunTracker("ddpg", config, logger, evaluate=evaluator(config),
                     episodes=collector.episodes, video=video_recorder(config))
    obs_key = observation_key(env)
    frames = updates = 0
    for batch in collector:
        frames += batch.numel()
        replay.extend(transitions(batch, obs_key))
        noise.step(batch.numel())

        stats = {}
        for _ in range(updates_due(frames, config, updates)):
            sample = replay.sample()
            features = encode_sample(encoder, sample)  # pixels: the shared encoder's features (None from states)
            out = loss_fn(sample)
            loss = out["loss_value"] + out["loss_actor"]
            optimizer.zero_grad()
            backward_through_encoder(loss, out["loss_value"], features, sample)  # the encoder learns from Q only
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            target_update.step()  # Polyak-average the target actor and critic after every gradient step
            updates += 1
            stats = {"loss/value": out["loss_value"], "loss/actor": out["loss_actor"],
                     "state_action_value": out["state_action_value"]}

        if run.step(frames, actor, stats):
            break
    collector.shutdown()
    env.close()
    return run.finish(actor, frames, models={"actor": actor, "loss": loss_fn}, optimizer=optimizer)
