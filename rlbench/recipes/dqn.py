"""DQN (Mnih et al. 2015) with the Rainbow add-ons (Hessel et al. 2018, arXiv:1710.02298) as options.

Each add-on is one Config switch, and ``Config.rainbow()`` turns them all on:

* ``double``: Double DQN targets (van Hasselt et al. 2016): the online net picks ``a'``, the target net scores it.
* ``dueling``: ``Q = V + A - mean(A)`` heads (Wang et al. 2016).
* ``n_step``: n-step returns, computed on each collected batch before it enters the buffer.
* ``prioritized``: prioritized replay (Schaul et al. 2016), importance-weight exponent annealed to 1.
* ``noisy``: NoisyNet linear layers (Fortunato et al. 2018) replace epsilon-greedy exploration.
* ``distributional``: C51 return distributions over ``n_atoms`` atoms in ``[v_min, v_max]`` (Bellemare et al. 2017).

The loop: collect ``num_envs x steps_per_env`` frames with the exploring policy, store them, then
take ``gradient_steps`` minibatch steps on the TD loss, updating the target network as configured.
Defaults (Double DQN with 3-step returns) are tuned for wall-clock speed on CartPole-v1 (see
``benchmarks/learning.py``). The target network is refreshed every 128 updates (every second batch):
copying it every few updates made the Q-values diverge on CartPole (they grew past 1e8, far above
the largest possible return 1 / (1 - gamma) = 100).

Config fields inherited from :class:`~rlbench.recipes.config.RecipeConfig`, with the defaults DQN runs
with (DQN's own fields and switches follow in :class:`Config`)::

    env='CartPole-v1'  frames=50000  seed=0  torch_threads=1  eval_episodes=20  eval_every=0
    target_return=None  out_dir=None

Example:
    >>> from rlbench.recipes import dqn
    >>> config = dqn.Config(env="native:CartPole", frames=256, learning_starts=64, eval_episodes=2)
    >>> results = dqn.train(config, progress=False)
    >>> results.frames, results.eval_episodes
    (256, 2)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn

from ..buffers import LazyTensorStorage, PrioritizedReplayBuffer, TensorDictReplayBuffer
from ..collectors import Collector
from ..modules import (
    MLP,
    DistributionalDuelingHead,
    DistributionalQValueActor,
    DuelingHead,
    EGreedyModule,
    NoisyLinear,
    QValueActor,
    reset_noise,
)
from ..objectives import DistributionalDQNLoss, DQNLoss, HardUpdate, SoftUpdate, nstep_return
from ..specs import Categorical, OneHot
from ..trainers import RunTracker, TrainResults
from .config import (
    NON_EMPTY_WIDTHS,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    RecipeConfig,
    Rule,
    check_fields,
    integer,
    number,
    one_of,
    optional,
)
from .envs import evaluator, start_run
from .models import make_trunk, observation_key
from .replay import pixels_as_uint8
from .video import video_recorder

__all__ = ["Config", "RainbowConfig", "make_models", "train"]


@dataclass
class Config(RecipeConfig):
    """DQN hyperparameters and Rainbow switches (every field documented; ``rlbench train dqn --help`` lists them).

    Published defaults for Atari (``FAMILY_DEFAULTS["atari"]``, applied to ``ALE/...`` ids for every field
    not set; see :class:`~rlbench.recipes.config.RecipeConfig`): rl-baselines3-zoo's ``dqn.yml`` Atari entry
    (the Nature DQN of Mnih et al. 2015 as Stable-Baselines3 runs it): one env, one gradient step per 4 frames,
    batch 32, lr 1e-4, a 100k-transition buffer (stored as uint8: 5.6 GB), 100k random frames first, the
    target copied every 1000 frames (250 gradient steps), epsilon 1 -> 0.01 over the first 10% of the budget,
    Huber loss, gradient norm 10, one-step targets without Double DQN, and the Nature CNN with its 512-unit
    layer (``hidden_sizes=(512,)``). The zoo trains for 1e7 frames.

    Example:
        >>> Config().double, Config.rainbow().distributional
        (True, True)
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "atari": dict(num_envs=1, steps_per_env=4, gradient_steps=1, batch_size=32, buffer_size=100_000,
                      learning_starts=100_000, lr=1e-4, gamma=0.99, loss_function="smooth_l1", max_grad_norm=10.0,
                      target_update_interval=250, tau=None, eps_init=1.0, eps_end=0.01, eps_fraction=0.1,
                      hidden_sizes=(512,), double=False, n_step=1, eval_episodes=10),
    }

    env: str = "CartPole-v1"
    """Environment with discrete actions: a gymnasium id or a torch-native env such as native:CartPole."""
    num_envs: int = 4
    """Envs stepped side by side (a gymnasium vector env or a native batch)."""
    steps_per_env: int = 32
    """Steps per env in each collected batch (the batch has num_envs * steps_per_env frames)."""
    gradient_steps: int = 64
    """Minibatch gradient steps after each collected batch."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 50_000
    """Replay buffer capacity (transitions)."""
    learning_starts: int = 1_000
    """Frames of uniformly random actions collected before learning starts."""
    lr: float = 2.5e-3
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    loss_function: str = "smooth_l1"
    """TD loss of non-distributional DQN: l2, l1 or smooth_l1 (Huber)."""
    max_grad_norm: float = 10.0
    """Clip the global gradient norm to this value."""
    target_update_interval: int = 128
    """Copy the online network into the target every this many gradient steps (when tau is None)."""
    tau: float | None = None
    """Polyak weight of soft target updates after every gradient step (None: hard copies instead)."""
    eps_init: float = 1.0
    """Initial epsilon of epsilon-greedy exploration (unused with noisy)."""
    eps_end: float = 0.04
    """Final epsilon."""
    eps_fraction: float = 0.2
    """Fraction of the budget over which epsilon decays linearly from eps_init to eps_end."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer widths of the Q-network (the last ones form the dueling streams when dueling)."""
    double: bool = True
    """Double DQN targets: the online network picks the next action, the target network scores it."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = 3
    """Steps of the n-step return (1: one-step TD targets)."""
    prioritized: bool = False
    """Prioritized replay: sample transitions in proportion to |TD error| ** alpha."""
    alpha: float = 0.6
    """Priority exponent of prioritized replay (0: uniform)."""
    beta: float = 0.4
    """Initial importance-weight exponent of prioritized replay; annealed linearly to 1 over the budget."""
    noisy: bool = False
    """NoisyNet layers in the Q head explore instead of epsilon-greedy (evaluation uses the mean weights)."""
    noisy_std: float = 0.5
    """sigma_0 of the noisy layers (initial noise scale is sigma_0 / sqrt(fan_in))."""
    distributional: bool = False
    """C51: learn return distributions over n_atoms fixed atoms instead of expected returns."""
    n_atoms: int = 51
    """Atoms of the C51 support."""
    v_min: float = 0.0
    """Lowest atom of the C51 support (set to the env's lowest discounted return)."""
    v_max: float = 100.0
    """Highest atom of the C51 support (set to the env's highest discounted return)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {
            "num_envs": integer(1), "steps_per_env": integer(1), "gradient_steps": integer(0), "batch_size": integer(1),
            "buffer_size": integer(1), "learning_starts": integer(0), "lr": POSITIVE, "gamma": PROBABILITY,
            "loss_function": one_of("l2", "l1", "smooth_l1"), "max_grad_norm": POSITIVE,
            "target_update_interval": integer(1), "tau": optional(number(0, 1, low_open=True)),
            "eps_init": PROBABILITY, "eps_end": PROBABILITY, "eps_fraction": PROBABILITY,
            "hidden_sizes": NON_EMPTY_WIDTHS, "n_step": integer(1), "alpha": NON_NEGATIVE, "beta": PROBABILITY,
            "noisy_std": NON_NEGATIVE})
        if self.distributional:  # the support is read only by C51
            check_fields(self, {"n_atoms": integer(2), "v_min": number(),
                                "v_max": Rule(f"a number with v_min < v_max (v_min={self.v_min})",
                                              lambda v: number().test(v) and v > self.v_min)})

    @classmethod
    def rainbow(cls, **overrides) -> "Config":
        """Rainbow: every add-on on (double, dueling, 3-step, prioritized, noisy, C51), then ``overrides``.

        Example:
            >>> c = Config.rainbow(n_step=5)
            >>> (c.double, c.dueling, c.n_step, c.prioritized, c.noisy, c.distributional)
            (True, True, 5, True, True, True)
        """
        return RainbowConfig(**overrides)


@dataclass
class RainbowConfig(Config):
    """:class:`Config` with every Rainbow add-on on by default (what ``Config.rainbow()`` returns).

    Published defaults for Atari (``FAMILY_DEFAULTS["atari"]``): Hessel et al. 2018 (Table 1): lr 6.25e-5,
    batch 32, 3-step returns, 80k random frames, the target copied every 32k frames (8000 gradient steps at
    one per 4 frames), priority exponent 0.5 and importance exponent 0.4 -> 1, C51 support [-10, 10], noisy
    nets (sigma_0 0.5), the Nature CNN with a 512-unit layer; a 100k buffer instead of the paper's 1M
    (5.6 GB of uint8 frames instead of 56 GB).

    Example:
        >>> c = RainbowConfig()
        >>> (c.double, c.dueling, c.n_step, c.prioritized, c.noisy, c.distributional)
        (True, True, 3, True, True, True)
    """

    FAMILY_DEFAULTS: ClassVar[dict] = {
        "atari": dict(num_envs=1, steps_per_env=4, gradient_steps=1, batch_size=32, buffer_size=100_000,
                      learning_starts=80_000, lr=6.25e-5, gamma=0.99, max_grad_norm=10.0, target_update_interval=8000,
                      tau=None, n_step=3, alpha=0.5, beta=0.4, noisy_std=0.5, v_min=-10.0, v_max=10.0,
                      hidden_sizes=(512,), eval_episodes=10),
    }

    double: bool = True
    """Double DQN targets (on in Rainbow)."""
    dueling: bool = True
    """Dueling head: Q = V + A - mean(A) (on in Rainbow)."""
    n_step: int = 3
    """Steps of the n-step return (3 in Rainbow)."""
    prioritized: bool = True
    """Prioritized replay: sample transitions in proportion to |TD error| ** alpha (on in Rainbow)."""
    noisy: bool = True
    """NoisyNet layers in the Q head explore instead of epsilon-greedy (on in Rainbow)."""
    distributional: bool = True
    """C51: learn return distributions over n_atoms fixed atoms (on in Rainbow)."""


# ---------------------------------------------------------------------------------------- models
def make_models(env, config: Config):
    """The Q-network actor for the env's discrete action spec, as the Config's switches shape it.

    Returns a :class:`~rlbench.modules.QValueActor` (or a ``DistributionalQValueActor`` when
    ``config.distributional``) reading the observation (``"observation"`` or ``"pixels"``) and
    writing ``"action_value"`` and the greedy ``"action"``. The trunk is an MLP layer (vectors) or
    a ConvNet (pixels); the head is an MLP or a dueling head, with NoisyLinear layers when
    ``config.noisy``. Exploration (epsilon-greedy) is added by :func:`train`, not here.

    Raises:
        TypeError: the env's actions are not discrete (``Categorical`` or ``OneHot``).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:CartPole", num_envs=3)
        >>> actor = make_models(env, Config.rainbow(hidden_sizes=(16, 16), n_atoms=11))
        >>> td = actor(env.reset())
        >>> td["action_value"].shape, bool(env.action_spec.is_in(td["action"]))
        (torch.Size([3, 11, 2]), True)
    """
    spec = env.action_spec
    if not isinstance(spec, (Categorical, OneHot)):
        raise TypeError(f"dqn needs discrete actions (a Categorical or OneHot action spec), but {config.env!r} has "
                        f"{type(spec).__name__} actions of shape {tuple(spec.shape)}; use a continuous-control "
                        f"recipe (sac, td3, ddpg) or discretise the actions")
    hidden = [int(h) for h in config.hidden_sizes]
    if not hidden:
        raise ValueError("dqn: hidden_sizes needs at least one width, e.g. (128, 128)")
    n_actions = spec.n
    obs_key = observation_key(env)
    trunk, n_features = make_trunk(env, hidden[0])  # one ReLU layer for vectors, the Nature-DQN ConvNet for pixels
    head_cells = hidden[1:]
    layer = functools.partial(NoisyLinear, std_init=config.noisy_std) if config.noisy else nn.Linear
    if config.distributional:
        if config.n_atoms < 2 or not config.v_min < config.v_max:
            raise ValueError(f"dqn: C51 needs n_atoms >= 2 and v_min < v_max, got n_atoms={config.n_atoms}, "
                             f"v_min={config.v_min}, v_max={config.v_max}")
        out_shape = (config.n_atoms, n_actions)  # atoms before actions: the library's C51 layout
        if config.dueling:
            head = DistributionalDuelingHead(n_actions, config.n_atoms, in_features=n_features, num_cells=head_cells,
                                             layer_class=layer)
        else:
            head = MLP(in_features=n_features, out_features=out_shape, num_cells=head_cells,
                       activation_class=nn.ReLU, layer_class=layer)
    elif config.dueling:
        head = DuelingHead(n_actions, in_features=n_features, num_cells=head_cells, layer_class=layer)
    else:
        head = MLP(in_features=n_features, out_features=n_actions, num_cells=head_cells, activation_class=nn.ReLU,
                   layer_class=layer)
    net = TensorDictModule(nn.Sequential(trunk, head), in_keys=[obs_key], out_keys=["action_value"])
    if config.distributional:
        support = torch.linspace(config.v_min, config.v_max, config.n_atoms)
        return DistributionalQValueActor(net, support, in_keys=[obs_key], spec=spec)
    return QValueActor(net, in_keys=[obs_key], spec=spec)


def _transition_keys(obs_key: str) -> list:
    """What the loss reads from a stored transition (the rest of a collected batch is not stored)."""
    return [obs_key, "action", "steps_to_next_obs", ("next", obs_key), ("next", "reward"), ("next", "done"),
            ("next", "terminated")]


# ---------------------------------------------------------------------------------------- training
def _name(config: Config) -> str:
    """The run's name in logs and files: a RainbowConfig runs as "rainbow"."""
    return "rainbow" if isinstance(config, RainbowConfig) else "dqn"


def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train DQN (with the add-ons ``config`` switches on); returns the final evaluation and the run's files.

    Args:
        config: hyperparameters (default: ``Config()``, Double DQN with 3-step returns, which solves CartPole-v1).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    env = start_run(config)
    actor = make_models(env, config)
    obs_key = observation_key(env)

    # exploration: noisy weights, or epsilon-greedy on top of the greedy actor
    if config.noisy:
        policy, egreedy = actor, None
    else:
        egreedy = EGreedyModule(env.action_spec, config.eps_init, config.eps_end,
                                annealing_num_steps=int(config.eps_fraction * config.frames))
        policy = TensorDictSequential(actor, egreedy)

    # the losses read only "action_value": give them the Q-network without the greedy-action head
    # (it would run, unused, three times per update)
    q_network = actor.module[0]
    if config.distributional:
        loss_fn = DistributionalDQNLoss(q_network, config.gamma, support=actor.support, double_dqn=config.double,
                                        action_space=actor.action_space)
    else:
        loss_fn = DQNLoss(q_network, loss_function=config.loss_function, double_dqn=config.double,
                          gamma=config.gamma, action_space=actor.action_space)
    target_updater = (SoftUpdate(loss_fn, tau=config.tau) if config.tau is not None
                      else HardUpdate(loss_fn, config.target_update_interval))
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.lr, fused=True)  # fused: one kernel, not per tensor

    storage = LazyTensorStorage(config.buffer_size)
    if config.prioritized:
        buffer = PrioritizedReplayBuffer(alpha=config.alpha, beta=config.beta, storage=storage,
                                         batch_size=config.batch_size)
    else:
        buffer = TensorDictReplayBuffer(storage=storage, batch_size=config.batch_size)

    frames_per_batch = config.num_envs * config.steps_per_env
    collector = Collector(env, policy, frames_per_batch=frames_per_batch, total_frames=config.frames,
                          init_random_frames=config.learning_starts,
                          progress={"desc": _name(config)} if progress else False)
    run = RunTracker(_name(config), config, logger, evaluate=evaluator(config),
                     episodes=collector.episodes, video=video_recorder(config))
    frames, out = 0, None
    for batch in collector:
        frames += frames_per_batch
        # n-step targets are computed on whole trajectories, before they are cut into transitions
        nstep_return(batch, config.n_step, config.gamma)
        buffer.extend(pixels_as_uint8(batch.select(*_transition_keys(obs_key)).reshape(-1), obs_key))  # frames as bytes
        if egreedy is not None:
            egreedy.step(frames_per_batch)
        if config.prioritized:  # Schaul et al.: full importance correction by the end of training
            buffer.sampler.anneal_beta(frames / config.frames)

        if frames >= config.learning_starts:
            for _ in range(config.gradient_steps):
                sample = buffer.sample()
                if config.noisy:
                    reset_noise(actor)  # fresh noise for each update (Fortunato et al.)
                out = loss_fn(sample)
                optimizer.zero_grad()
                out["loss_value"].backward()
                nn.utils.clip_grad_norm_(loss_fn.parameters(), config.max_grad_norm, foreach=True)
                optimizer.step()
                target_updater.step()
                if config.prioritized:
                    buffer.update_tensordict_priority(sample)  # the loss wrote "td_error" into it
            if config.noisy:
                reset_noise(actor)  # the next batch explores with a new draw

        stats = {}
        if out is not None:
            stats = {"loss/value": out["loss_value"], "td_error": out["td_error"], "q_value": out["q_value"]}
        if egreedy is not None:
            stats["epsilon"] = egreedy.eps
        actor.eval()  # evaluation without weight noise (noisy nets use their mean weights)
        stop = run.step(frames, actor, stats)
        actor.train()
        if stop:
            break
    collector.shutdown()
    env.close()
    actor.eval()
    results = run.finish(actor, frames, models={"actor": actor}, optimizer=optimizer)
    actor.train()
    return results
