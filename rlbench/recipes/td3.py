"""TD3 (Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods", arXiv:1802.09477).

The loop follows the paper's Algorithm 1: act with the deterministic policy plus Gaussian noise,
store transitions in a replay buffer, and after every ``frames_per_batch`` frames take
``utd_ratio`` gradient steps per frame on :class:`~rlbench.objectives.TD3Loss` (twin critics,
target policy smoothing). The loss returns the actor term only every ``policy_delay``-th call
(``loss_fn.actor_update_due``); the targets move only on those calls too, as in the paper.
Defaults are tuned for Pendulum-v1 (mean return >= -200 within 20k env steps; see
``benchmarks/learning.py``).

Config fields inherited from :class:`~rlbench.recipes.config.OffPolicyConfig`, with the defaults TD3
runs with (TD3's own fields follow in :class:`Config`)::

    env='Pendulum-v1'  frames=20000  seed=0  torch_threads=1  eval_episodes=20  eval_every=0
    target_return=None  out_dir=None  num_envs=1  frames_per_batch=50  init_random_frames=1000
    buffer_size=100000  batch_size=256  utd_ratio=1.0  gamma=0.99  tau=0.005  lr=0.001
    hidden_sizes=(64, 64)  max_grad_norm=None

Example:
    >>> from rlbench.recipes import td3
    >>> cfg = td3.Config(env="native:Pendulum", frames=200, init_random_frames=100, batch_size=32, eval_episodes=2)
    >>> results = td3.train(cfg, progress=False)
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
from ..objectives import SoftUpdate, TD3Loss
from ..trainers import RunTracker, TrainResults
from .config import NON_NEGATIVE, OffPolicyConfig, check_fields, integer
from .envs import evaluator, start_run
from .models import (
    action_box,
    action_half_range,
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
    """TD3 hyperparameters: the shared off-policy fields plus TD3's own (``rlbench train td3 --help`` lists them).

    Published defaults per env family (``FAMILY_DEFAULTS``, applied for every field not set; see
    :class:`~rlbench.recipes.config.RecipeConfig`): for ``"mujoco"`` rl-baselines3-zoo's ``td3.yml``
    HalfCheetah entry with the paper's TD3 settings (Fujimoto et al. 2018): layers of 400 and 300 units, lr
    1e-3, batch 256, a 1M buffer, tau 0.005, 10k random frames, exploration noise 0.1, target smoothing 0.2
    clipped at 0.5, policy delay 2. The papers give no TD3 values for DeepMind Control: ``"dmc"`` uses the same,
    ``"dmc_pixels"`` too with DrQ's 100k buffer and 1k random frames (the shared DMCEncoder reads the pixels).

    Example:
        >>> Config(policy_delay=3).policy_delay
        3
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "mujoco": dict(hidden_sizes=(400, 300), lr=1e-3, batch_size=256, buffer_size=1_000_000, tau=0.005,
                       init_random_frames=10_000, exploration_sigma=0.1, policy_delay=2, policy_noise=0.2,
                       noise_clip=0.5, eval_episodes=10),
    }
    FAMILY_DEFAULTS["dmc"] = dict(FAMILY_DEFAULTS["mujoco"])
    FAMILY_DEFAULTS["dmc_pixels"] = FAMILY_DEFAULTS["mujoco"] | dict(buffer_size=100_000, init_random_frames=1_000)

    num_qvalue_nets: int = 2
    """Number of critics; the target takes the min over them (clipped double Q)."""
    policy_delay: int = 2
    """Actor and target-network updates happen every this many critic updates."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise, as a fraction of the action half-range."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to +-noise_clip (fraction of the action half-range)."""
    exploration_sigma: float = 0.1
    """Std of the Gaussian exploration noise, as a fraction of the action half-range."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {"num_qvalue_nets": integer(1), "policy_delay": integer(1), "policy_noise": NON_NEGATIVE,
                            "noise_clip": NON_NEGATIVE, "exploration_sigma": NON_NEGATIVE})


def make_models(env, config: Config):
    """The deterministic policy mu(s) (tanh-squashed into the action bounds) and one critic Q(s, a).

    The loss makes ``num_qvalue_nets`` independently initialised copies of the critic.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=2)
        >>> actor, qvalue = make_models(env, Config(hidden_sizes=(16,)))
        >>> qvalue(actor(env.reset()))["state_action_value"].shape
        torch.Size([2, 1])
    """
    encoder = make_pixel_encoder(env)  # pixels: one DMCEncoder shared by the policy and the critic (None: states)
    actor = make_deterministic_actor(env, config.hidden_sizes, "td3", encoder=encoder)
    return with_encoder(encoder, actor), make_qvalue_network(env, config.hidden_sizes, "td3", encoder=encoder)


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train TD3 from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, Pendulum-v1 in 20k env steps).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, qvalue = make_models(env, config)
    encoder, head = split_encoder(actor)  # from pixels: the shared encoder and the policy on its features
    noise = make_exploration(env, "gaussian", config.exploration_sigma, algo="td3")

    box = action_box(env, "td3")  # the smoothed target actions are clipped to it
    half_range = action_half_range(box)
    loss_fn = TD3Loss(head, qvalue, action_spec=box, num_qvalue_nets=config.num_qvalue_nets,
                      policy_noise=config.policy_noise * half_range, noise_clip=config.noise_clip * half_range,
                      policy_delay=config.policy_delay, gamma=config.gamma)
    # fused Adam: one kernel per step instead of a loop over parameters (a sizeable share of small updates)
    params = [*loss_fn.parameters(), *(encoder.parameters() if encoder is not None else ())]
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
    target_update = SoftUpdate(loss_fn, tau=config.tau)  # Polyak averaging of the target actor and critics
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(config.buffer_size), batch_size=config.batch_size)
    replay.set_seed(config.seed)

    # the collector acts with mu(s) + noise; evaluation uses mu(s) alone
    collector = Collector(env, TensorDictSequential(actor, noise), frames_per_batch=config.frames_per_batch,
                          total_frames=config.frames, init_random_frames=config.init_random_frames,
                          progress={"desc": "td3"} if progress else False)
    run = RunTracker("td3", config, logger, evaluate=evaluator(config),
                     episodes=collector.episodes, video=video_recorder(config))
    obs_key = observation_key(env)
    frames = updates = 0
    for batch in collector:
        frames += batch.numel()
        replay.extend(transitions(batch, obs_key))

        stats = {}
        for _ in range(updates_due(frames, config, updates)):
            sample = replay.sample()
            features = encode_sample(encoder, sample)  # pixels: the shared encoder's features (None from states)
            out = loss_fn(sample)
            # loss_actor is present only on every policy_delay-th call (delayed policy updates)
            loss = out["loss_qvalue"] + out.get("loss_actor", 0.0)
            optimizer.zero_grad()
            backward_through_encoder(loss, out["loss_qvalue"], features, sample)  # the encoder learns from Q only
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            if loss_fn.actor_update_due:
                target_update.step()  # targets move with the actor, every policy_delay steps
                stats["loss/actor"] = out["loss_actor"]
            updates += 1
            stats.update({"loss/qvalue": out["loss_qvalue"], "state_action_value": out["state_action_value"]})

        if run.step(frames, actor, stats):
            break
    collector.shutdown()
    env.close()
    return run.finish(actor, frames, models={"actor": actor, "loss": loss_fn}, optimizer=optimizer)
