"""SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905).

The loop follows the paper's Algorithm 1: act with the stochastic policy, store transitions in a
replay buffer, and after every ``frames_per_batch`` frames take ``utd_ratio`` gradient steps per
frame on the twin-critic, actor and temperature losses (:class:`~rlbench.objectives.SACLoss`), each
followed by a Polyak update of the target critics. Discrete action spaces (``Categorical`` or
``OneHot``) get discrete SAC (Christodoulou 2019, :class:`~rlbench.objectives.DiscreteSACLoss`):
a categorical policy and critics ``Q(s, .)`` over all actions. Defaults are tuned for Pendulum-v1 (mean
return >= -200 well within 20k env steps; see ``benchmarks/learning.py``): one env, small ReLU
networks, batch 256, one update per frame.

Config fields inherited from :class:`~rlbench.recipes.config.OffPolicyConfig`, with the defaults SAC
runs with (SAC's own fields follow in :class:`Config`)::

    env='Pendulum-v1'  frames=20000  seed=0  torch_threads=1  eval_episodes=20  eval_every=0
    target_return=None  out_dir=None  num_envs=1  frames_per_batch=50  init_random_frames=1000
    buffer_size=100000  batch_size=256  utd_ratio=1.0  gamma=0.99  tau=0.005  lr=0.001
    hidden_sizes=(64, 64)  max_grad_norm=None

Example:
    >>> from rlbench.recipes import sac
    >>> cfg = sac.Config(env="native:Pendulum", frames=200, init_random_frames=100, batch_size=32, eval_episodes=2)
    >>> results = sac.train(cfg, progress=False)
    >>> results.frames, results.eval_episodes
    (200, 2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..buffers import LazyTensorStorage, TensorDictReplayBuffer
from ..collectors import Collector
from ..modules import ValueOperator
from ..objectives import DiscreteSACLoss, SACLoss, SoftUpdate
from ..specs import Categorical, OneHot
from ..trainers import RunTracker, TrainResults
from .config import POSITIVE, OffPolicyConfig, check_fields, integer, number, optional
from .envs import evaluator, start_run
from .models import (
    backward_through_encoder,
    encode_sample,
    make_encoder,
    make_pixel_encoder,
    make_qvalue_network,
    make_stochastic_actor,
    observation_key,
    require_bounded_actions,
    split_encoder,
    with_encoder,
)
from .replay import transitions, updates_due
from .video import video_recorder

__all__ = ["Config", "make_models", "make_loss", "train"]


@dataclass
class Config(OffPolicyConfig):
    """SAC hyperparameters: the shared off-policy fields plus SAC's own (``rlbench train sac --help`` lists them).

    Published defaults per env family (``FAMILY_DEFAULTS``, applied for every field not set; see
    :class:`~rlbench.recipes.config.RecipeConfig`):

    * ``"mujoco"`` (gymnasium's MuJoCo ids): Haarnoja et al. 2018 (arXiv:1812.05905, Table 1) as
      rl-baselines3-zoo's ``sac.yml`` runs HalfCheetah: two 256-unit layers, lr 3e-4, batch 256, a 1M
      buffer, tau 0.005, 10k random frames first, learned temperature from 1.
    * ``"dmc"`` (``dmc:`` tasks from states): pytorch_sac (Yarats & Kostrikov 2020), the state-SAC baseline of
      SAC-AE and DrQ: two 1024-unit layers, lr 1e-4, batch 1024, a 1M buffer, initial temperature 0.1, 5k
      random frames.
    * ``"dmc_pixels"`` (``dmc:`` with ``pixels=True``): DrQ (Kostrikov et al. 2021, arXiv:2004.13649,
      Table 3): the shared :class:`~rlbench.modules.DMCEncoder`, two 1024-unit layers, lr 1e-3, batch 512,
      a 100k buffer (uint8 frames: 12.7 GB at 84x84), initial temperature 0.1, tau 0.01, 1k random frames.
      (DrQ's image augmentation, random shifts, is not part of this recipe.)

    Example:
        >>> Config(alpha_init=0.5).alpha_init
        0.5
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "mujoco": dict(hidden_sizes=(256, 256), lr=3e-4, batch_size=256, buffer_size=1_000_000, tau=0.005,
                       init_random_frames=10_000, alpha_init=1.0, eval_episodes=10),
        "dmc": dict(hidden_sizes=(1024, 1024), lr=1e-4, batch_size=1024, buffer_size=1_000_000, tau=0.005,
                    init_random_frames=5_000, alpha_init=0.1, eval_episodes=10),
        "dmc_pixels": dict(hidden_sizes=(1024, 1024), lr=1e-3, batch_size=512, buffer_size=100_000, tau=0.01,
                           init_random_frames=1_000, alpha_init=0.1, eval_episodes=10),
    }

    num_qvalue_nets: int = 2
    """Number of critics; the target takes the min over them (clipped double Q)."""
    alpha_init: float = 1.0
    """Initial entropy temperature alpha."""
    fixed_alpha: bool = False
    """Keep alpha at alpha_init instead of tuning it toward target_entropy."""
    target_entropy: float | None = None
    """Entropy the temperature aims for (None: -dim(action); discrete actions: 0.98 log(n), as the papers do)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {"num_qvalue_nets": integer(1), "alpha_init": POSITIVE,
                            "target_entropy": optional(number())})


def make_models(env, config: Config):
    """The policy and one critic (the loss makes the copies), from the env's action spec.

    Continuous (bounded) actions: a TanhNormal policy within the bounds and ``Q(s, a)``.
    Discrete actions: a categorical policy and ``Q(s, .)`` writing ``"action_value"`` for every action.
    Continuous actions from pixels: one :class:`~rlbench.modules.DMCEncoder` (SAC-AE/DrQ) shared by the policy,
    which is ``encoder`` then head (:func:`~rlbench.recipes.models.with_encoder`), and the critic, which reads
    the ``"embedding"`` the policy wrote (in training, the features of each replay sample; only the critic's
    gradient trains the encoder). Discrete actions from pixels: a NatureCNN in each network.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=2)
        >>> actor, qvalue = make_models(env, Config(hidden_sizes=(16,)))
        >>> qvalue(actor(env.reset()))["state_action_value"].shape
        torch.Size([2, 1])
        >>> env = make_env("native:CartPole", num_envs=2)
        >>> actor, qvalue = make_models(env, Config(hidden_sizes=(16,)))
        >>> qvalue(actor(env.reset()))["action_value"].shape
        torch.Size([2, 2])
    """
    encoder = None
    if isinstance(env.action_spec, (Categorical, OneHot)):
        net = make_encoder(env, config.hidden_sizes, env.action_spec.n, activation=torch.nn.ReLU)
        qvalue = ValueOperator(net, in_keys=[observation_key(env)], out_keys=["action_value"])
    else:
        require_bounded_actions(env, "sac")
        encoder = make_pixel_encoder(env)  # None for vector observations
        qvalue = make_qvalue_network(env, config.hidden_sizes, "sac", encoder=encoder)
    actor = make_stochastic_actor(env, config.hidden_sizes, activation=torch.nn.ReLU, encoder=encoder)
    return with_encoder(encoder, actor), qvalue


def make_loss(env, actor, qvalue, config: Config):
    """``SACLoss`` for continuous actions, ``DiscreteSACLoss`` for ``Categorical``/``OneHot`` ones.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:CartPole")
        >>> type(make_loss(env, *make_models(env, Config()), Config())).__name__
        'DiscreteSACLoss'
    """
    spec = env.action_spec
    target_entropy = "auto" if config.target_entropy is None else config.target_entropy
    common = dict(num_qvalue_nets=config.num_qvalue_nets, alpha_init=config.alpha_init,
                  fixed_alpha=config.fixed_alpha, target_entropy=target_entropy, gamma=config.gamma)
    if isinstance(spec, (Categorical, OneHot)):
        space = "one_hot" if isinstance(spec, OneHot) else "categorical"
        return DiscreteSACLoss(actor, qvalue, action_space=space, num_actions=spec.n, **common)
    return SACLoss(actor, qvalue, **common)


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train SAC from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, Pendulum-v1 in 20k env steps).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, qvalue = make_models(env, config)
    encoder, head = split_encoder(actor)  # from pixels: the shared encoder and the policy on its features

    loss_fn = make_loss(env, head, qvalue, config)  # twin critics, learned temperature
    params = [*loss_fn.parameters(), *(encoder.parameters() if encoder is not None else ())]
    # fused Adam: one kernel per step instead of a loop over parameters (a sizeable share of small updates)
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
    target_update = SoftUpdate(loss_fn, tau=config.tau)  # Polyak averaging of the target critics
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(config.buffer_size), batch_size=config.batch_size)
    replay.set_seed(config.seed)

    collector = Collector(env, actor, frames_per_batch=config.frames_per_batch, total_frames=config.frames,
                          init_random_frames=config.init_random_frames, progress={"desc": "sac"} if progress else False)
    run = RunTracker("sac", config, logger, evaluate=evaluator(config),
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
            loss = out["loss_qvalue"] + out["loss_actor"] + out.get("loss_alpha", 0.0)
            optimizer.zero_grad()
            backward_through_encoder(loss, out["loss_qvalue"], features, sample)  # the encoder learns from Q only
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            target_update.step()  # Polyak-average the target critics after every gradient step
            updates += 1
            stats = {"loss/qvalue": out["loss_qvalue"], "loss/actor": out["loss_actor"], "alpha": out["alpha"],
                     "entropy": out["entropy"]}

        if run.step(frames, actor, stats):
            break
    collector.shutdown()
    env.close()
    return run.finish(actor, frames, models={"actor": actor, "loss": loss_fn}, optimizer=optimizer)
