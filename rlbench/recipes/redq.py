"""REDQ (Chen et al. 2021, "Randomized Ensembled Double Q-Learning: Learning Fast Without a Model", arXiv:2101.05982).

The loop follows the paper's Algorithm 1: SAC with an ensemble of ``num_qvalue_nets`` critics
whose target takes the min over a random subset of ``sub_sample_len`` of them
(:class:`~rlbench.objectives.REDQLoss`; the whole ensemble is evaluated in one vmapped call), the
actor trained against the ensemble mean, and ``utd_ratio`` gradient steps per collected frame,
each followed by a Polyak update of the target critics. The paper's update-to-data ratio is 20;
on this library's CPU budget the defaults trade it for wall-clock (tuned for Pendulum-v1: mean
return >= -200 within 20k env steps; see ``benchmarks/learning.py``).

Config fields inherited from :class:`~rlbench.recipes.config.OffPolicyConfig`, with the defaults REDQ
runs with (REDQ's own fields follow in :class:`Config`)::

    env='Pendulum-v1'  frames=20000  seed=0  torch_threads=1  eval_episodes=20  eval_every=0
    target_return=None  out_dir=None  num_envs=1  frames_per_batch=50  init_random_frames=1000
    buffer_size=100000  batch_size=256  utd_ratio=1.0  gamma=0.99  tau=0.005  lr=0.001
    hidden_sizes=(64, 64)  max_grad_norm=None

Example:
    >>> from rlbench.recipes import redq
    >>> cfg = redq.Config(env="native:Pendulum", frames=200, init_random_frames=100, batch_size=32, eval_episodes=2)
    >>> results = redq.train(cfg, progress=False)
    >>> results.frames, results.eval_episodes
    (200, 2)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..buffers import LazyTensorStorage, TensorDictReplayBuffer
from ..collectors import Collector
from ..objectives import REDQLoss, SoftUpdate
from ..trainers import RunTracker, TrainResults
from .config import POSITIVE, OffPolicyConfig, check_fields, integer, number, optional
from .envs import evaluator, start_run
from .models import make_qvalue_network, make_stochastic_actor, observation_key, require_bounded_actions
from .replay import transitions, updates_due
from .video import video_recorder

__all__ = ["Config", "make_models", "train"]


@dataclass
class Config(OffPolicyConfig):
    """REDQ hyperparameters: the shared off-policy fields plus REDQ's own (``rlbench train redq --help`` lists them).

    Example:
        >>> Config(alpha_init=0.5).alpha_init
        0.5
    """

    num_qvalue_nets: int = 10
    """Ensemble size N (the paper's 10)."""
    sub_sample_len: int = 2
    """Critics M drawn at random for the min in each target (the paper's 2)."""
    alpha_init: float = 1.0
    """Initial entropy temperature alpha."""
    fixed_alpha: bool = False
    """Keep alpha at alpha_init instead of tuning it toward target_entropy."""
    target_entropy: float | None = None
    """Entropy the temperature aims for (None: -dim(action), the paper's choice)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {"num_qvalue_nets": integer(1), "alpha_init": POSITIVE,
                            "target_entropy": optional(number())})
        # the target's min is over a subset of the ensemble
        check_fields(self, {"sub_sample_len": integer(1, self.num_qvalue_nets, "num_qvalue_nets")})


def make_models(env, config: Config):
    """The TanhNormal policy (within the action bounds) and one critic Q(s, a) (the loss makes the ensemble).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=2)
        >>> actor, qvalue = make_models(env, Config(hidden_sizes=(16,)))
        >>> qvalue(actor(env.reset()))["state_action_value"].shape
        torch.Size([2, 1])
    """
    require_bounded_actions(env, "redq")
    actor = make_stochastic_actor(env, config.hidden_sizes, activation=torch.nn.ReLU)
    return actor, make_qvalue_network(env, config.hidden_sizes, "redq")


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train REDQ from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, Pendulum-v1 in 20k env steps).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, qvalue = make_models(env, config)

    loss_fn = REDQLoss(actor, qvalue, num_qvalue_nets=config.num_qvalue_nets, sub_sample_len=config.sub_sample_len,
                       alpha_init=config.alpha_init,
                       fixed_alpha=config.fixed_alpha,
                       target_entropy="auto" if config.target_entropy is None else config.target_entropy,
                       gamma=config.gamma)
    # fused Adam: one kernel per step instead of a loop over parameters (a sizeable share of small updates)
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.lr, fused=True)
    target_update = SoftUpdate(loss_fn, tau=config.tau)  # Polyak averaging of the target critics
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(config.buffer_size), batch_size=config.batch_size)
    replay.set_seed(config.seed)

    collector = Collector(env, actor, frames_per_batch=config.frames_per_batch, total_frames=config.frames,
                          init_random_frames=config.init_random_frames,
                          progress={"desc": "redq"} if progress else False)
    run = RunTracker("redq", config, logger, evaluate=evaluator(config),
                     episodes=collector.episodes, video=video_recorder(config))
    obs_key = observation_key(env)
    frames = updates = 0
    for batch in collector:
        frames += batch.numel()
        replay.extend(transitions(batch, obs_key))

        stats = {}
        for _ in range(updates_due(frames, config, updates)):
            out = loss_fn(replay.sample())
            loss = out["loss_qvalue"] + out["loss_actor"] + out.get("loss_alpha", 0.0)
            optimizer.zero_grad()
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), config.max_grad_norm)
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
