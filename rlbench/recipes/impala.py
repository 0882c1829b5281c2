"""IMPALA (Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with ...", arXiv:1802.01561).

The paper's full title: "IMPALA: Scalable Distributed Deep-RL with Importance Weighted Actor-Learner
Architectures". Actors and one learner, decoupled: ``num_workers`` actor processes each run ``num_envs`` envs with their
own copy of the policy and send unrolls of ``unroll_length`` steps as soon as they have them; the
learner takes whichever unrolls arrive first, makes one gradient step on them and sends its new weights
back. An actor's policy may lag the learner's by a few updates: V-trace
(:class:`~rlbench.objectives.value.VTrace`) corrects the value targets and the policy gradient for it,
with importance weights truncated at ``rho_thresh`` and ``c_thresh``.

``backend="local"`` runs the actors as local processes (:class:`~rlbench.collectors.MultiAsyncCollector`);
``backend="ray"`` as Ray actors (:class:`~rlbench.collectors.RayCollector`; the ``ray`` extra), on this
machine or on the cluster Ray is connected to. Asynchronous collection is not reproducible run to run:
which actor's unroll arrives first depends on timing.

Defaults, and where they come from: the paper's (Atari experiments, its appendix) discount 0.99,
``rho_bar = 1``, baseline cost 0.5, entropy cost 0.01 and unrolls of 20 steps, with its learner batch of
32 unrolls scaled to ``num_envs = 16`` unrolls per gradient step from each of 2 actors on a 2-core
machine. ``c_bar = 0.95`` instead of the paper's 1: near on-policy ``c_t = min(c_bar, pi/mu) ~ c_bar``
acts as GAE's lambda = 0.95 (rl-zoo's CartPole value for A2C/PPO); with ``c_bar = 1`` the CartPole runs
tried here reached 475 less reliably, then fell back. The optimiser is Adam (learning rate 3e-3,
annealed linearly) with the global gradient norm clipped at 0.5, as in the A2C and PPO recipes, instead
of the paper's RMSProp with clipping at 40: the losses here are means over the batch, not the paper's
sums, so the paper's ``epsilon = 0.01`` and clipping norm do not carry over. On CartPole-v1 these
defaults reached a mean evaluation return of 475 within 40k-130k frames (5 of 5 seeds; a few seconds of
training on 2 cores; ``benchmarks/learning.py`` measures it).
Atari (``"ALE/..."``) gets the standard preprocessing of :func:`~rlbench.recipes.make_env` (84x84 gray
frames, 4 stacked, sign-clipped rewards) and the Nature-DQN ConvNet in both networks; the defaults above
are CartPole's, not tuned for Atari (the paper trains for 200M frames with a learning rate around 6e-4:
``--config lr=6e-4 hidden_sizes=256`` and a far larger ``--frames`` are where to start).

Config fields inherited from :class:`~rlbench.recipes.config.RecipeConfig`, with the defaults IMPALA runs
with (IMPALA's own fields follow in :class:`Config`)::

    env='CartPole-v1'  frames=500000  seed=0  torch_threads=1  eval_episodes=20  eval_every=10000
    target_return=475.0  out_dir=None

Example:
    >>> from rlbench.recipes import impala
    >>> config = impala.Config(env="CartPole-v1", frames=640, num_workers=1, num_envs=2, unroll_length=16,
    ...                        eval_episodes=2)
    >>> results = impala.train(config, progress=False)
    >>> results.frames
    640
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import torch

from ..collectors import EpisodeReturns, MultiAsyncCollector
from ..collectors.ray import ACTOR_STAT_FIELDS
from ..objectives import IMPALALoss, total_loss
from ..trainers import ProgressBar, RunTracker, TrainResults
from .config import (
    NAME,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    WIDTHS,
    RecipeConfig,
    check_fields,
    integer,
    one_of,
    optional,
)
from .envs import evaluate, make_env, start_run
from .models import make_stochastic_actor, make_value_network
from .video import video_recorder

__all__ = ["Config", "make_models", "make_collector", "train", "actor_logs"]

logger = logging.getLogger(__name__)

BACKENDS = ("local", "ray")


@dataclass
class Config(RecipeConfig):
    """IMPALA hyperparameters (every field documented; ``rlbench train impala --help`` lists them).

    Example:
        >>> Config(backend="ray").backend
        'ray'
    """

    frames: int = 500_000
    eval_every: int = 10_000
    target_return: float | None = 475.0
    """Stop once a periodic evaluation reaches this mean return (None: whole budget; 475 solves CartPole-v1)."""
    backend: str = "local"
    """Where the actors run: 'local' (worker processes, MultiAsyncCollector) or 'ray' (Ray actors, RayCollector)."""
    ray_address: str | None = None
    """backend='ray': the cluster to join ('auto': the one `ray start --head` runs here; None: a local instance)."""
    num_workers: int = 2
    """Actors collecting in parallel (processes or Ray actors), each with its own copy of the policy."""
    num_envs: int = 16
    """Envs per actor: each actor batch holds num_envs unrolls, and each gradient step takes one batch."""
    unroll_length: int = 20
    """Steps per unroll (the paper's n = 20)."""
    lr: float = 3e-3
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to zero over the budget."""
    gamma: float = 0.99
    """Discount factor."""
    rho_thresh: float = 1.0
    """V-trace's rho_bar: truncation of the importance weights in the targets and the policy gradient."""
    c_thresh: float = 0.95
    """V-trace's c_bar: truncation of the trace coefficients (near on-policy it acts as GAE's lambda)."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    critic_coef: float = 0.5
    """Weight of the value loss (the paper's baseline cost)."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this value."""
    normalize_advantage: bool = True
    """Standardise the V-trace advantages over each batch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and the critic (after the ConvNet for pixels)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {
            "backend": one_of(*BACKENDS), "ray_address": optional(NAME), "num_workers": integer(1),
            "num_envs": integer(1), "unroll_length": integer(1), "lr": POSITIVE, "gamma": PROBABILITY,
            "rho_thresh": POSITIVE, "c_thresh": POSITIVE, "entropy_coef": NON_NEGATIVE, "critic_coef": NON_NEGATIVE,
            "max_grad_norm": POSITIVE, "hidden_sizes": WIDTHS})

    @property
    def frames_per_batch(self) -> int:
        """Frames in one actor batch: ``num_envs * unroll_length``."""
        return self.num_envs * self.unroll_length


def make_models(env, config: Config):
    """The policy (Categorical or TanhNormal, from the action spec) and the critic V(s), ReLU MLPs (ConvNet for pixels).

    Example:
        >>> from rlbench.recipes import make_env
        >>> actor, critic = make_models(make_env("native:CartPole"), Config())
        >>> type(actor).__name__, type(critic).__name__
        ('ProbabilisticActor', 'ValueOperator')
    """
    return (make_stochastic_actor(env, config.hidden_sizes, torch.nn.ReLU),
            make_value_network(env, config.hidden_sizes, torch.nn.ReLU))


def make_collector(config: Config, actor):
    """The actors: ``config.num_workers`` asynchronous collectors of ``config.frames_per_batch`` frames each.

    ``backend="local"``: a :class:`~rlbench.collectors.MultiAsyncCollector` (one process per actor);
    ``"ray"``: a :class:`~rlbench.collectors.RayCollector` with ``sync=False`` (one Ray actor each, on the
    cluster at ``config.ray_address``, or a local Ray instance it starts and stops).
    Each actor builds ``make_env(config.env, config.num_envs)``; actor ``i``'s envs are seeded from
    ``config.seed`` on.
    """
    maker = partial(make_env, config.env, config.num_envs)
    if config.backend == "ray":
        from ..collectors import RayCollector  # the ray extra: imported only when asked for

        ray_init = None if config.ray_address is None else {"address": config.ray_address}
        return RayCollector([maker] * config.num_workers, actor, num_collectors=config.num_workers,
                            frames_per_batch=config.frames_per_batch, total_frames=config.frames, sync=False,
                            collector_kwargs={"seed": config.seed}, ray_init_config=ray_init)
    return MultiAsyncCollector([maker] * config.num_workers, actor, frames_per_batch=config.frames_per_batch,
                               total_frames=config.frames, seed=config.seed)


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train IMPALA from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, which solves CartPole-v1).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``, or a
            ``ClusterMonitor`` (backend="ray" logs ``actor/<i>/fps``, ``.../policy_lag_mean``... of each actor).
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor, critic = make_models(env, config)
    env.close()  # the actors build their own envs; this one only gave the specs

    loss_fn = IMPALALoss(actor, critic, gamma=config.gamma, rho_thresh=config.rho_thresh, c_thresh=config.c_thresh,
                         entropy_coef=config.entropy_coef, critic_coef=config.critic_coef,
                         normalize_advantage=config.normalize_advantage)
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.lr, eps=1e-5)

    collector = make_collector(config, actor)
    episodes = EpisodeReturns()  # training returns, followed across the actors' batches
    # clock, logs, evaluations (and early stop at config.target_return), run files
    run = RunTracker("impala", config, logger, evaluate=partial(evaluate, config.env),
                     episodes=episodes, video=video_recorder(config))
    bar = ProgressBar(total=config.frames, desc="impala", disable=not progress)
    frames = updates = 0
    try:
        for batch in collector:  # [num_envs, unroll_length] unrolls from whichever actor is ready first
            frames += batch.numel()
            episodes.update(batch)

            # V-trace targets from the learner's current pi and V on the actor's (lagging) mu, then one step
            out = loss_fn(batch)
            optimizer.zero_grad()
            total_loss(out).backward()
            torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), config.max_grad_norm)
            optimizer.step()
            collector.update_policy_weights_()  # every actor loads them before its next unroll
            updates += 1

            if config.anneal_lr:
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * max(0.0, 1.0 - frames / config.frames)
            stats = {"loss/objective": out["loss_objective"], "loss/critic": out["loss_critic"],
                     "entropy": out["entropy"], "updates": updates}
            lag = _policy_lag(batch, updates)
            if lag is not None:
                stats["policy_lag"] = lag
            stats.update(actor_logs(collector))  # per-actor frames/s and lag (a ClusterMonitor shows them)
            bar.update(batch.numel(), episode_return=episodes.mean())
            if run.step(frames, actor, stats):  # logs, evaluates when due; True once the target is reached
                break
    finally:
        collector.shutdown()
        bar.close()
    return run.finish(actor, frames, models={"actor": actor, "critic": critic}, optimizer=optimizer)


def actor_logs(collector) -> dict:
    """``{"actor/<i>/<field>": value}`` from a collector's per-actor stats (``{}`` if it keeps none).

    The fields are ``ACTOR_STAT_FIELDS`` of :meth:`RayCollector.actor_stats
    <rlbench.collectors.RayCollector.actor_stats>`; a :class:`~rlbench.widgets.ClusterMonitor` passed as
    the logger turns them back into its per-actor table (a TrainingMonitor plots them as any scalar).

    Example:
        >>> class Two:
        ...     def actor_stats(self):
        ...         return [{"actor": i, "fps": 10.0 * (i + 1), "batches": 3, "policy_lag_mean": 0.5,
        ...                  "policy_lag_max": 1, "restarts": 0} for i in range(2)]
        >>> actor_logs(Two())["actor/1/fps"]
        20.0
        >>> actor_logs(object())
        {}
    """
    stats = getattr(collector, "actor_stats", None)
    if stats is None:
        return {}
    return {f"actor/{s['actor']}/{field}": float(s[field]) for s in stats() for field in ACTOR_STAT_FIELDS}


def _policy_lag(batch, updates: int) -> float | None:
    """Learner updates between the weights an unroll was collected with and now (Ray's batches say which)."""
    version = batch.get(("collector", "policy_version"), None)
    if version is None:
        return None
    return float(updates - 1 - version.float().mean())
