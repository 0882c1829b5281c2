"""Dreamer (Hafner et al. 2020, "Dream to Control: Learning Behaviors by Latent Imagination", arXiv:1912.01603).

The loop follows the paper's Algorithm 1. Collect ``seed_episodes`` episodes of random actions; then
alternate an *update block* of ``collect_interval`` gradient updates with the collection of
``train_every`` more frames by the policy. One update, on ``batch_size`` sequences of ``batch_length``
consecutive steps drawn from the replay of every step so far (:class:`~rlbench.buffers.SliceSampler`):

1. the world model (encoder, RSSM, decoder, reward head) on the real sequences: KL with free nats,
   reconstruction and reward (:class:`~rlbench.objectives.DreamerModelLoss`), Adam at ``model_lr``;
2. the actor, by backpropagating the lambda-returns of ``horizon``-step trajectories it imagines from
   every posterior state of the batch (:class:`~rlbench.objectives.DreamerActorLoss`), Adam at
   ``actor_lr``;
3. the value, regressed on those lambda-returns (:class:`~rlbench.objectives.DreamerValueLoss`), Adam at
   ``value_lr``; each of the three gradients clipped to norm ``grad_clip``.

Acting (:class:`DreamerPolicy`) filters the RSSM state through the episode: each step it advances the
belief with the previous action, corrects the state with the new frame's embedding, and samples the
actor's action plus Gaussian exploration noise (``expl_noise``). The filter state travels in the
TensorDict between steps (``"state"``, ``"belief"``, ``"prev_action"``) and is zeroed where the env's
``"is_init"`` flag marks an episode start (:class:`~rlbench.envs.transforms.InitTracker`, which
:func:`make_dreamer_env` adds), so it works in any batched env and in :func:`rlbench.trainers.evaluate_policy`.

Observations are 64x64 RGB frames in ``[0, 1]``, one per step (no stacking), each action repeated
``action_repeat`` times (:func:`make_dreamer_env`). The replay stores each frame once, as ``uint8``
(``("next", "pixels")``, 12 KB a step): a million steps fit in 12 GB.

**Short budgets.** The paper's cadence (5 seed episodes, then 100 updates of 50 x 50 sequences per
1000 env steps) costs hours of CPU per thousand frames. A budget of ``frames`` scales it (see
:func:`schedule`): the random prefill is ``min(seed_episodes episodes, frames / 4)``, blocks come at least
``min_update_blocks`` times, and below ``full_cadence_frames`` frames each block makes proportionally fewer
updates (at least one). ``rlbench train dreamer --env dmc:cartpole-swingup --frames 3000`` thus makes 5
blocks of 3 updates after a 1000-frame prefill.

Config fields inherited from :class:`~rlbench.recipes.config.RecipeConfig`, with the defaults Dreamer runs
with (Dreamer's own fields follow in :class:`Config`)::

    env='dmc:cartpole-swingup'  frames=250000  seed=0  torch_threads=1  eval_episodes=5  eval_every=0
    target_return=None  out_dir=None

(and the env-suite fields ``pixels=True``, ``pixel_size=64``, ``frame_stack=1``, ``action_repeat=2``).

Example:
    >>> from rlbench.recipes import dreamer
    >>> cfg = dreamer.Config(frames=60, batch_size=2, batch_length=8, cnn_depth=4, belief_dim=16, state_dim=4,
    ...                      rssm_hidden=16, mlp_units=16, horizon=3, eval_episodes=1, eval_max_steps=3)
    >>> results = dreamer.train(cfg, progress=False)
    >>> results.frames, results.eval_episodes
    (60, 1)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torch import nn

from ..buffers import LazyTensorStorage, SliceSampler, TensorDictReplayBuffer
from ..collectors import Collector
from ..envs import (
    Compose,
    DMControlEnv,
    EnvBase,
    GymEnv,
    InitTracker,
    Resize,
    SerialEnv,
    ToTensorImage,
    TransformedEnv,
)
from ..modules import (
    ObsDecoder,
    ObsEncoder,
    RSSMPosterior,
    RSSMPrior,
    RSSMRollout,
    dreamer_actor,
    dreamer_imagination_env,
    dreamer_mlp,
    dreamer_world_model,
)
from ..modules.exploration import exploring
from ..objectives import DreamerActorLoss, DreamerModelLoss, DreamerValueLoss
from ..specs import Unbounded
from ..trainers import RunTracker, TrainResults, evaluate_policy
from .config import (
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    RecipeConfig,
    Rule,
    check_fields,
    integer,
    number,
    optional,
)
from .envs import DMC_PREFIX, dmc_action_repeat, max_episode_steps, seed_everything
from .models import require_bounded_actions
from .replay import pixels_as_uint8

__all__ = ["Config", "DreamerModels", "DreamerPolicy", "make_dreamer_env", "make_models", "schedule", "evaluate",
           "train"]

_CARRIED = ("state", "belief", "prev_action")
"""The filter state the policy leaves in the TensorDict for its next call."""


@dataclass
class Config(RecipeConfig):
    """Dreamer hyperparameters: the defaults of Hafner et al. 2020 (appendix A) for DeepMind Control from pixels.

    Dreamer v1 throughout, with two choices of its official implementation (danijar/dreamer) that the paper
    does not spell out: the actor and value losses weight imagined step ``t`` by ``gamma^t``
    (``discount_loss``), and acting adds Gaussian noise to the *sampled* action. One DreamerV2 refinement
    (Hafner et al. 2021, arXiv:2010.02193) is available and off by default: KL balancing (``kl_balance=0.8``).
    DreamerV2's discrete latents and DreamerV3's symlog/two-hot heads are not used.

    Example:
        >>> Config().batch_size, Config().batch_length, Config().horizon, Config().model_lr
        (50, 50, 15, 0.0006)
        >>> Config(pixels=False)
        Traceback (most recent call last):
        ...
        ValueError: dreamer.Config: pixels=False is invalid; expected True (Dreamer's world model reconstructs ...)
    """

    env: str = "dmc:cartpole-swingup"
    """Environment with bounded continuous actions that renders: dmc:DOMAIN-TASK or a gymnasium id (e.g.
    Pendulum-v1, which needs pygame)."""
    frames: int = 250_000
    """Total agent steps to collect (each repeats its action action_repeat times: 250k frames are the 500k env
    steps at which Dreamer's cartpole-swingup curve reaches about 750-800)."""
    eval_episodes: int = 5
    """Deterministic episodes in each evaluation (a DMC episode is 500 agent steps of rendered frames)."""
    pixels: bool = True
    """Dreamer learns from rendered frames only (pixels=false is refused)."""
    pixel_size: int = 64
    """Height and width of the frames: Dreamer's conv stacks read 64x64 (another size is refused, by name)."""
    frame_stack: int = 1
    """Frames per observation: 1 (the RSSM carries the history; stacking is refused)."""
    action_repeat: int = 2
    """Repeat each action this many env steps (2 for every DMC task in Hafner et al. 2020; 0: the per-domain
    value of SAC-AE/DrQ)."""

    batch_size: int = 50
    """Sequences per gradient update."""
    batch_length: int = 50
    """Consecutive steps per sequence (each from one episode)."""
    horizon: int = 15
    """Imagination horizon H of the actor and value losses."""
    gamma: float = 0.99
    """Discount of the imagined returns."""
    lmbda: float = 0.95
    """Lambda of the imagined lambda-returns."""
    discount_loss: bool = True
    """Weight imagined step t by gamma^t in the actor and value losses (danijar/dreamer v1 does)."""
    free_nats: float = 3.0
    """The KL term is clamped below at this many nats (averaged over batch and time first)."""
    kl_scale: float = 1.0
    """Weight of the KL term."""
    kl_balance: float | None = None
    """None: Dreamer v1's KL; a weight in (0, 1) (0.8 in DreamerV2): KL balancing of prior and posterior."""
    model_lr: float = 6e-4
    """Adam learning rate of the world model (encoder, RSSM, decoder, reward head)."""
    actor_lr: float = 8e-5
    """Adam learning rate of the actor."""
    value_lr: float = 8e-5
    """Adam learning rate of the value network."""
    grad_clip: float = 100.0
    """Each of the three gradients is clipped to this global norm."""
    seed_episodes: int = 5
    """Episodes of random actions before training (at most frames / 4, rounded up to whole collection
    batches)."""
    train_every: int = 500
    """Frames collected between update blocks (1000 env steps at action_repeat=2; fewer when the budget is
    short, see min_update_blocks)."""
    collect_interval: int = 100
    """Gradient updates per update block at the full cadence."""
    full_cadence_frames: int = 100_000
    """Budgets below this many frames make proportionally fewer updates per block (at least 1), so that a short
    run stays short; 0: always the full cadence."""
    min_update_blocks: int = 4
    """At least this many update blocks: a short budget collects (frames - prefill) / min_update_blocks frames
    between blocks instead of train_every."""
    expl_noise: float = 0.3
    """Std of the Gaussian noise added to the actor's sampled action while collecting (in units of half the
    action range), clipped to the bounds."""
    buffer_size: int = 0
    """Replay capacity in steps (0: the whole budget; Dreamer keeps every step)."""
    cnn_depth: int = 32
    """Depth of the first conv layer of the encoder and the last of the decoder (doubling per layer)."""
    belief_dim: int = 200
    """Size of the RSSM's deterministic state (the GRU's)."""
    state_dim: int = 30
    """Size of the RSSM's stochastic state."""
    rssm_hidden: int = 200
    """Width of the RSSM's hidden layers."""
    mlp_units: int = 400
    """Width of the reward (2 layers), value (3) and actor (4) ELU networks."""
    eval_max_steps: int = 0
    """Cap each evaluation episode at this many agent steps (0: the env's time limit over the action repeat; 500
    for DMC)."""

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, {
            "pixels": Rule("True (Dreamer's world model reconstructs frames)", lambda v: v is True),
            "frame_stack": Rule("1 (Dreamer's encoder reads one RGB frame; the RSSM carries the history)",
                                lambda v: v == 1),
            "batch_size": integer(1), "batch_length": integer(2), "horizon": integer(1), "gamma": PROBABILITY,
            "lmbda": PROBABILITY, "free_nats": NON_NEGATIVE, "kl_scale": NON_NEGATIVE,
            "kl_balance": optional(number(0, 1, low_open=True)), "model_lr": POSITIVE, "actor_lr": POSITIVE,
            "value_lr": POSITIVE, "grad_clip": POSITIVE, "seed_episodes": integer(0), "train_every": integer(1),
            "collect_interval": integer(1), "full_cadence_frames": integer(0), "min_update_blocks": integer(1),
            "expl_noise": NON_NEGATIVE, "buffer_size": integer(0), "cnn_depth": integer(1),
            "belief_dim": integer(1), "state_dim": integer(1), "rssm_hidden": integer(1), "mlp_units": integer(1),
            "eval_max_steps": integer(0)})


# ---------------------------------------------------------------------------------------- env
def _repeat(name: str, config) -> int:
    if config.action_repeat:
        return int(config.action_repeat)
    return dmc_action_repeat(name[len(DMC_PREFIX):].partition("-")[0]) if name.startswith(DMC_PREFIX) else 1


def make_dreamer_env(name: str, config: Config | None = None, num_envs: int = 1, *, seed: int | None = None,
                     device=None) -> EnvBase:
    """Dreamer's env: ``"pixels"`` float ``[3, pixel_size, pixel_size]`` in ``[0, 1]``, actions repeated, ``"is_init"``.

    ``dmc:DOMAIN-TASK`` tasks are rendered at ``config.pixel_size`` (64) by
    :class:`~rlbench.envs.DMControlEnv` with ``frame_skip=action_repeat``; gymnasium ids render their
    ``rgb_array`` frames, resized to it. :class:`~rlbench.envs.transforms.ToTensorImage` makes the frames
    channels-first floats; :class:`~rlbench.envs.transforms.InitTracker` flags episode starts for
    :class:`DreamerPolicy`. ``num_envs > 1`` gives a :class:`~rlbench.envs.SerialEnv` under the transforms.

    Example:
        >>> env = make_dreamer_env("dmc:cartpole-swingup", Config(), seed=0)
        >>> td = env.reset()
        >>> td["pixels"].shape, td["pixels"].dtype, bool(td["is_init"])
        (torch.Size([3, 64, 64]), torch.float32, True)
    """
    config = config or Config()
    size, repeat = int(config.pixel_size), _repeat(name, config)
    if name.startswith(DMC_PREFIX):
        domain, _, task = name[len(DMC_PREFIX):].partition("-")

        def one() -> EnvBase:
            return DMControlEnv(domain, task, from_pixels=True, pixels_only=True, height=size, width=size,
                                frame_skip=repeat, device=device)
        steps = [ToTensorImage(in_keys=["pixels"])]
    else:
        def one() -> EnvBase:
            return GymEnv(name, from_pixels=True, pixels_only=True, frame_skip=repeat, device=device)
        steps = [ToTensorImage(in_keys=["pixels"]), Resize(size, size, in_keys=["pixels"])]
    if num_envs == 1:
        env = one()
    else:
        envs = [one() for _ in range(int(num_envs))]  # built here, so that a failure surfaces now
        env = SerialEnv(int(num_envs), [lambda e=e: e for e in envs])
    env = TransformedEnv(env, Compose(*steps, InitTracker()))
    if seed is not None:
        env.set_seed(int(seed))
    return env


def episode_steps(config) -> int:
    """Agent steps of one episode of ``config.env``: its time limit (1000 for DMC) over the action repeat.

    Example:
        >>> episode_steps(Config()), episode_steps(Config(env="Pendulum-v1"))
        (500, 100)
    """
    return math.ceil(max_episode_steps(config.env) / _repeat(config.env, config))


def schedule(config) -> dict:
    """How a budget of ``config.frames`` is spent: prefill, frames per collection, updates per block.

    * ``prefill``: random frames first, ``min(seed_episodes * episode_steps, frames // 4)`` rounded up to whole
      collection batches;
    * ``frames_per_batch``: frames between update blocks, ``min(train_every, (frames - prefill) //
      min_update_blocks)`` (at least 1), lowered to a divisor of ``frames`` if one lies within half of it
      (otherwise the Collector rounds the budget up to whole batches);
    * ``updates_per_block``: ``collect_interval * frames_per_batch / train_every`` (the paper's updates per
      frame), times ``frames / full_cadence_frames`` when that is below 1, rounded, at least 1.

    A block follows every collected batch from the end of the prefill on.

    Example:
        >>> schedule(Config(frames=3000))
        {'prefill': 1000, 'frames_per_batch': 500, 'updates_per_block': 3}
        >>> schedule(Config())  # the paper's cadence: 5 seed episodes, 100 updates per 1000 env steps
        {'prefill': 2500, 'frames_per_batch': 500, 'updates_per_block': 100}
    """
    seed_frames = min(config.seed_episodes * episode_steps(config), config.frames // 4)
    batch = max(1, min(config.train_every, (config.frames - seed_frames) // config.min_update_blocks))
    # a divisor of the budget down to half that size, if there is one: the run then ends exactly at frames
    batch = next((d for d in range(batch, (batch - 1) // 2, -1) if config.frames % d == 0), batch)
    prefill = math.ceil(seed_frames / batch) * batch
    scale = min(1.0, config.frames / config.full_cadence_frames) if config.full_cadence_frames else 1.0
    updates = max(1, round(config.collect_interval * batch / config.train_every * scale))
    return {"prefill": prefill, "frames_per_batch": batch, "updates_per_block": updates}


# ---------------------------------------------------------------------------------------- models
class DreamerPolicy(TensorDictModuleBase):
    """Acts with Dreamer's RSSM filter: reads the frame and the carried latent, writes the action and the new latent.

    Each call: zero the carried ``"state"``, ``"belief"``, ``"prev_action"`` where ``"is_init"`` is True (or
    where they are absent: the first call); ``belief = prior(state, belief, prev_action)``; ``state =
    posterior(belief, encoder(pixels))`` (a sample while exploring, the mean otherwise); ``action =
    actor(state, belief)``, plus ``N(0, expl_noise)`` noise (scaled to half the action range, clipped to the
    bounds) while exploring. It writes ``"action"`` and the carried keys, which the env hands back at the
    next step (a step keeps the root entries it does not write). Runs without gradients. ``uint8`` frames
    are scaled by 1/255.

    Args:
        encoder, prior, posterior: the world model's :class:`~rlbench.modules.ObsEncoder`,
            :class:`~rlbench.modules.RSSMPrior`, :class:`~rlbench.modules.RSSMPosterior`.
        actor: the latent policy (:func:`~rlbench.modules.dreamer_actor`).
        low, high: the action bounds.
        expl_noise: std of the exploration noise in half-ranges.
        pixels_key, is_init_key: the keys read.

    Example:
        >>> env = make_dreamer_env("dmc:cartpole-swingup", seed=0)
        >>> models = make_models(env, Config(cnn_depth=4, belief_dim=8, state_dim=4, rssm_hidden=8, mlp_units=8))
        >>> td = models.policy(env.reset())
        >>> td["action"].shape, td["belief"].shape
        (torch.Size([1]), torch.Size([8]))
        >>> env.step_and_maybe_reset(td)[1]["belief"].shape  # handed back for the next call
        torch.Size([8])
    """

    def __init__(self, encoder: nn.Module, prior: RSSMPrior, posterior: RSSMPosterior, actor: nn.Module, *,
                 low=-1.0, high=1.0, expl_noise: float = 0.0, pixels_key="pixels", is_init_key="is_init"):
        super().__init__()
        self.encoder, self.prior, self.posterior, self.actor = encoder, prior, posterior, actor
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.expl_noise = float(expl_noise)
        self.pixels_key, self.is_init_key = pixels_key, is_init_key
        self.in_keys = [pixels_key, is_init_key, *_CARRIED]
        self.out_keys = ["action", *_CARRIED]

    def _carried(self, td: TensorDictBase, key: str, size: int, like: torch.Tensor, start) -> torch.Tensor:
        value = td.get(key, None)
        if value is None:
            return like.new_zeros(*td.batch_size, size)
        return value if start is None else value.masked_fill(start, 0.0)

    @torch.no_grad()
    def forward(self, td: TensorDictBase) -> TensorDictBase:
        pixels = td.get(self.pixels_key)
        if not pixels.is_floating_point():
            pixels = pixels.float().div_(255.0)
        is_init = td.get(self.is_init_key, None)
        start = None if is_init is None else is_init.reshape(*td.batch_size, -1).any(-1, keepdim=True)
        state = self._carried(td, "state", self.prior.state_dim, pixels, start)
        belief = self._carried(td, "belief", self.prior.belief_dim, pixels, start)
        prev_action = self._carried(td, "prev_action", self.prior.action_dim, pixels, start)
        _, _, _, belief = self.prior(state, belief, prev_action)
        mean, _, sample = self.posterior(belief, self.encoder(pixels))
        explore = exploring()
        state = sample if explore else mean
        latent = TensorDict(state=state, belief=belief, batch_size=td.batch_size, device=td.device)
        action = self.actor(latent).get("action")
        if explore and self.expl_noise > 0:
            half = (self.high - self.low) / 2
            action = torch.maximum(torch.minimum(action + self.expl_noise * half * torch.randn_like(action),
                                                 self.high), self.low)
        td.set("action", action)
        td.set("state", state)
        td.set("belief", belief)
        td.set("prev_action", action)
        return td


class DreamerModels(NamedTuple):
    """What :func:`make_models` builds: the world model, the latent actor and value, the acting policy."""

    world_model: nn.Module
    """Encoder, RSSM scan, decoder and reward head (:func:`~rlbench.modules.dreamer_world_model`)."""
    actor: nn.Module
    """The Tanh-Normal latent policy ``("state", "belief") -> "action"``."""
    value: nn.Module
    """``("state", "belief") -> "state_value"``."""
    policy: DreamerPolicy
    """Acts in the real env from frames (shares the world model's and the actor's parameters)."""
    imagination_env: EnvBase
    """The RSSM prior as an env: the actor's imagination."""


def check_frames(env: EnvBase, encoder: ObsEncoder) -> None:
    """Refuse, by key, shape and fix, an env whose ``"pixels"`` the encoder cannot read (``uint8`` is fine).

    Example:
        >>> check_frames(make_dreamer_env("dmc:cartpole-swingup", Config(pixel_size=32)), ObsEncoder())
        Traceback (most recent call last):
        ...
        ValueError: ObsEncoder: 'pixels' must hold ... found shape (3, 32, 32)... Resize(64, 64) ... pixel_size=64 ...
    """
    if "pixels" not in env.observation_spec.keys():
        raise ValueError(f"dreamer needs a 'pixels' observation (frames), but the env observes "
                         f"{sorted(map(str, env.observation_spec.keys()))}: build it with make_dreamer_env or "
                         f"rlbench.recipes.make_env(..., pixels=True, pixel_size=64, frame_stack=1)")
    spec = env.observation_spec["pixels"]
    if not spec.dtype.is_floating_point:  # uint8 frames: the policy and the replay scale them by 1/255
        spec = Unbounded(spec.shape)
    try:
        encoder.check_spec(spec)
    except ValueError as err:
        raise ValueError(f"{err} (the dreamer recipe: keep pixel_size=64 and frame_stack=1)") from None


def make_models(env: EnvBase, config: Config) -> DreamerModels:
    """The world model, actor, value and acting policy of Hafner et al. 2020, sized by ``config``, for ``env``.

    The env must observe ``"pixels"`` frames of ``[3, 64, 64]`` (float, or uint8 as
    :func:`rlbench.recipes.make_env` renders DMC tasks) and act in a bounded continuous box.

    Example:
        >>> env = make_dreamer_env("dmc:cartpole-swingup")
        >>> models = make_models(env, Config())
        >>> sum(p.numel() for p in models.world_model.parameters()) > 3_000_000  # Dreamer's sizes
        True
    """
    spec = require_bounded_actions(env, "dreamer")
    encoder = ObsEncoder(channels=config.cnn_depth)
    check_frames(env, encoder)
    action_dim = spec.shape[-1]
    latent = config.state_dim + config.belief_dim
    prior = RSSMPrior(action_dim, hidden_dim=config.rssm_hidden, belief_dim=config.belief_dim,
                      state_dim=config.state_dim)
    posterior = RSSMPosterior(hidden_dim=config.rssm_hidden, belief_dim=config.belief_dim,
                              embed_dim=encoder.out_features, state_dim=config.state_dim)
    decoder = ObsDecoder(state_dim=config.state_dim, belief_dim=config.belief_dim, channels=config.cnn_depth)
    reward = dreamer_mlp(latent, 1, num_cells=config.mlp_units, depth=2)
    world_model = dreamer_world_model(encoder, RSSMRollout(prior, posterior), decoder, reward)
    box = env.action_spec_unbatched
    low, high = box.low.float(), box.high.float()
    actor = dreamer_actor(action_dim, latent, num_cells=config.mlp_units, depth=4, low=low, high=high)
    value = TensorDictModule(dreamer_mlp(latent, 1, num_cells=config.mlp_units, depth=3),
                             in_keys=["state", "belief"], out_keys=["state_value"])
    policy = DreamerPolicy(encoder, prior, posterior, actor, low=low, high=high, expl_noise=config.expl_noise)
    imagination = dreamer_imagination_env(prior, reward, box)
    return DreamerModels(world_model, actor, value, policy, imagination)


# ---------------------------------------------------------------------------------------- evaluation
def evaluate(config: Config, policy, num_episodes: int = 5, *, seed: int = 0) -> tuple[float, float]:
    """Mean and std of the return of ``num_episodes`` deterministic episodes, side by side in a fresh Dreamer env.

    :func:`make_dreamer_env` with one sub-env per episode, seeded with ``seed``; the episodes run through
    :func:`rlbench.trainers.evaluate_policy` (no gradients, the posterior mean and the actor's mode), for at
    most ``config.eval_max_steps`` steps (default: a whole episode).
    """
    env = make_dreamer_env(config.env, config, int(num_episodes), seed=seed)
    try:
        max_steps = config.eval_max_steps or episode_steps(config)
        returns = evaluate_policy(env, policy, int(num_episodes), max_steps=max_steps, include_unfinished=True)
    finally:
        env.close()
    returns = torch.tensor(returns, dtype=torch.float64)
    std = returns.std(unbiased=False) if returns.numel() > 1 else returns.new_zeros(())
    return float(returns.mean()), float(std)


def _stored(batch: TensorDictBase) -> TensorDictBase:
    """What the replay keeps of a collected batch: the action, the frame it led to (uint8), reward and flags."""
    keys = ["action", ("next", "pixels"), ("next", "reward"), ("next", "done"), ("next", "terminated")]
    return pixels_as_uint8(batch.reshape(-1).select(*keys))


def _as_float_frames(sample: TensorDictBase) -> TensorDictBase:
    sample.set(("next", "pixels"), sample.get(("next", "pixels")).float().div_(255.0))
    return sample


# ---------------------------------------------------------------------------------------- training
def train(config: Config | None = None, logger=None, progress: bool = True) -> TrainResults:
    """Train Dreamer from ``config``; returns the final evaluation and where the run's files are.

    Args:
        config: hyperparameters (default: ``Config()``, dmc:cartpole-swingup from pixels).
        logger: anything with ``log_scalar(name, value, step)``, e.g. a ``TrainingMonitor``.
        progress: show a progress bar.
    """
    config = config or Config()
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    env = make_dreamer_env(config.env, config, seed=config.seed)
    models = make_models(env, config)
    world_model, actor, value, policy = models.world_model, models.actor, models.value, models.policy
    plan = schedule(config)

    model_loss = DreamerModelLoss(world_model, free_nats=config.free_nats, lambda_kl=config.kl_scale,
                                  kl_balance=config.kl_balance)
    actor_loss = DreamerActorLoss(actor, value, models.imagination_env, imagination_horizon=config.horizon,
                                  gamma=config.gamma, lmbda=config.lmbda, discount_loss=config.discount_loss)
    value_loss = DreamerValueLoss(value, gamma=config.gamma, discount_loss=config.discount_loss)
    model_params, actor_params, value_params = (list(m.parameters()) for m in (world_model, actor, value))
    model_opt = torch.optim.Adam(model_params, lr=config.model_lr)
    actor_opt = torch.optim.Adam(actor_params, lr=config.actor_lr)
    value_opt = torch.optim.Adam(value_params, lr=config.value_lr)

    # every step so far, as [batch_size * batch_length] slices of consecutive steps inside one episode
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(config.buffer_size or config.frames),
                                    sampler=SliceSampler(slice_len=config.batch_length),
                                    batch_size=config.batch_size * config.batch_length)
    replay.set_seed(config.seed)

    collector = Collector(env, policy, frames_per_batch=plan["frames_per_batch"], total_frames=config.frames,
                          init_random_frames=plan["prefill"], progress={"desc": "dreamer"} if progress else False)
    run = RunTracker("dreamer", config, logger, evaluate=functools.partial(evaluate, config),
                     episodes=collector.episodes)
    frames = 0
    for batch in collector:
        frames += batch.numel()
        replay.extend(_stored(batch))

        stats = {}
        if frames >= plan["prefill"]:
            sums: dict[str, float] = {}
            for _ in range(plan["updates_per_block"]):
                sample = _as_float_frames(replay.sample().reshape(config.batch_size, config.batch_length))

                model_out, posterior = model_loss(sample, return_data=True)
                loss = model_out["loss_model_kl"] + model_out["loss_model_reco"] + model_out["loss_model_reward"]
                model_opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model_params, config.grad_clip)
                model_opt.step()

                actor_out, dream = actor_loss(posterior, return_imagination=True)  # imagine from every state
                actor_opt.zero_grad()
                actor_out["loss_actor"].backward()
                torch.nn.utils.clip_grad_norm_(actor_params, config.grad_clip)
                actor_opt.step()

                value_out = value_loss(dream)  # V regressed on the imagined lambda-returns
                value_opt.zero_grad()
                value_out["loss_value"].backward()
                torch.nn.utils.clip_grad_norm_(value_params, config.grad_clip)
                value_opt.step()

                for out in (model_out, actor_out, value_out):
                    for key, val in out.items():
                        sums[key] = sums.get(key, 0.0) + float(val.detach())
            stats = {key: total / plan["updates_per_block"] for key, total in sums.items()}

        if run.step(frames, policy, stats):
            break
    collector.shutdown()
    env.close()
    return run.finish(policy, frames, models={
        "world_model": world_model, "actor": actor, "value": value, "model_optimizer": model_opt,
        "actor_optimizer": actor_opt, "value_optimizer": value_opt})
