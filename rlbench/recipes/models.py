"""Networks built from an env's specs: what the recipes' ``make_models`` are made of.

* Encoders: :func:`make_encoder` (an MLP for vector observations, the Nature-DQN CNN + MLP for
  pixels), :func:`make_trunk` (a Q-network's features), :func:`orthogonal_init`.
* Pixels for the off-policy recipes (SAC, TD3, DDPG): :func:`make_pixel_encoder` (the SAC-AE/DrQ
  :class:`~rlbench.modules.DMCEncoder` writing ``"embedding"``), shared by the actor and the critics as in
  DrQ: the actor reads the encoder's features (:func:`with_encoder`, :func:`split_encoder`) and only the
  critic's loss trains the encoder (:func:`encode_sample`, :func:`backward_through_encoder`).
* On-policy (PPO, A2C): :func:`make_stochastic_actor` (Categorical or TanhNormal from the action spec),
  :func:`make_value_network` (``V(s)``), :func:`make_actor_critic` (both).
* Off-policy (DDPG, TD3, SAC, REDQ): :func:`make_deterministic_actor` (``mu(s)`` squashed into the
  action box by :class:`~rlbench.modules.ScaleToBounds`), :func:`make_qvalue_network` (``Q(s, a)``),
  :func:`make_exploration` (Gaussian or Ornstein-Uhlenbeck noise), and the spec checks
  :func:`require_bounded_actions`, :func:`action_box`, :func:`action_half_range`.
"""
from __future__ import annotations

import math

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential

from ..envs import EnvBase
from ..modules import (
    MLP,
    Actor,
    AdditiveGaussianModule,
    DMCEncoder,
    NatureCNN,
    NormalParamExtractor,
    OneHotCategorical,
    OrnsteinUhlenbeckProcessModule,
    ProbabilisticActor,
    ScaleToBounds,
    TanhNormal,
    ValueOperator,
)
from ..specs import Bounded, Categorical, OneHot

__all__ = ["observation_key", "is_pixels", "make_encoder", "make_trunk", "orthogonal_init", "make_stochastic_actor",
           "make_value_network", "make_actor_critic", "require_bounded_actions", "action_box", "action_half_range",
           "make_deterministic_actor", "make_qvalue_network", "make_exploration", "EMBEDDING_KEY",
           "make_pixel_encoder", "with_encoder", "split_encoder", "encode_sample", "backward_through_encoder"]

EMBEDDING_KEY = "embedding"
"""Where :func:`make_pixel_encoder`'s module writes the features of ``"pixels"`` (the heads read it)."""


# ---------------------------------------------------------------------------------------- encoders
def observation_key(env: EnvBase) -> str:
    """The observation entry networks read: ``"observation"``, else ``"pixels"``.

    Example:
        >>> from rlbench.recipes import make_env
        >>> observation_key(make_env("native:CartPole"))
        'observation'
    """
    keys = list(env.observation_spec.keys())
    for key in ("observation", "pixels"):
        if key in keys:
            return key
    raise ValueError(f"the env's observation spec has neither 'observation' nor 'pixels' (keys: {keys}); rename "
                     f"the entry to read with rlbench.envs.transforms.RenameTransform")


def _observation_shape(env: EnvBase, key: str) -> torch.Size:
    """One observation's shape (the env's batch dims dropped), checked: ``[n]`` vectors or ``[C, H, W]`` pixels."""
    shape = env.observation_spec[key].shape[len(env.batch_size):]
    if key == "pixels" or len(shape) == 3:
        if len(shape) != 3:
            raise ValueError(f"pixel observations must be [C, H, W] (uint8 or float), got shape {tuple(shape)} (apply "
                             f"rlbench.envs.transforms.ToTensorImage or PermuteTransform to [H, W, C] frames)")
    elif len(shape) != 1:
        raise ValueError(f"vector observations must be 1-d, got shape {tuple(shape)} for {key!r}; flatten them "
                         f"with rlbench.envs.transforms.FlattenObservation")
    return shape


def is_pixels(env: EnvBase) -> bool:
    """Whether the env's observation (:func:`observation_key`) is a ``[C, H, W]`` image.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("dmc:cartpole-swingup", pixels=True, pixel_size=32)
        >>> is_pixels(make_env("native:CartPole")), is_pixels(env)
        (False, True)
        >>> env.close()
    """
    return len(_observation_shape(env, observation_key(env))) == 3


def _input(env: EnvBase, encoder=None) -> tuple[str, torch.Size]:
    """The key and shape a head reads: the encoder's features when there is one, else the observation."""
    if encoder is not None:
        return EMBEDDING_KEY, torch.Size([_encoder_module(encoder).out_features])
    key = observation_key(env)
    return key, _observation_shape(env, key)


def _encoder_module(encoder) -> torch.nn.Module:
    return encoder.module if isinstance(encoder, TensorDictModule) else encoder


def make_encoder(env: EnvBase, hidden_sizes, out_features: int, activation=torch.nn.Tanh, *,
                 activate_last_layer: bool = False, trunk: torch.nn.Module | None = None,
                 encoder=None) -> torch.nn.Module:
    """A network from the env's observation to ``out_features``: an MLP for vectors, NatureCNN + MLP for pixels.

    Pixel observations are ``[C, H, W]`` frames, uint8 or float in ``[0, 1]``, read by a
    :class:`~rlbench.modules.NatureCNN` (Mnih et al. 2015; its 512 features then go through an MLP with ReLU).
    ``activate_last_layer``: the output goes through the activation too (a trunk whose features feed another
    head). ``trunk``: a feature module with an ``out_features`` attribute to use first instead (the recipes share
    one between a policy and its critic); ``encoder``: the network reads :data:`EMBEDDING_KEY` features of
    that encoder (:func:`make_pixel_encoder`) instead of the observation.

    Example:
        >>> from rlbench.recipes import make_env
        >>> net = make_encoder(make_env("native:CartPole"), (16,), 2)
        >>> net(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """
    _, shape = _input(env, encoder)
    if trunk is None and len(shape) == 3:
        trunk = NatureCNN(shape)
    if trunk is not None:
        return torch.nn.Sequential(trunk, MLP(in_features=trunk.out_features, out_features=out_features,
                                              num_cells=list(hidden_sizes), activation_class=torch.nn.ReLU,
                                              activate_last_layer=activate_last_layer))
    return MLP(in_features=shape[0], out_features=out_features, num_cells=list(hidden_sizes),
               activation_class=activation, activate_last_layer=activate_last_layer)


def make_trunk(env: EnvBase, width: int) -> tuple[torch.nn.Module, int]:
    """A Q-network's observation features and their count: NatureCNN (to ``width``) for pixels, one ReLU layer else.

    The DQN recipe puts its head (MLP, dueling, C51) on top.

    Example:
        >>> from rlbench.recipes import make_env
        >>> trunk, n_features = make_trunk(make_env("native:CartPole"), 32)
        >>> trunk(torch.zeros(5, 4)).shape, n_features
        (torch.Size([5, 32]), 32)
    """
    shape = _observation_shape(env, observation_key(env))
    if len(shape) == 3:  # the Nature DQN: three convolutions, then one ReLU layer (512 in the paper)
        return NatureCNN(shape, int(width)), int(width)
    return make_encoder(env, (), width, torch.nn.ReLU, activate_last_layer=True), int(width)


def orthogonal_init(net: torch.nn.Module, last_gain: float) -> torch.nn.Module:
    """Orthogonal weights and zero biases: gain sqrt(2) for hidden layers, ``last_gain`` for the output.

    The small output gain of a policy (0.01) starts it near uniform over actions, which keeps early
    PPO/A2C updates from locking onto one action (Engstrom et al. 2020, "Implementation Matters in
    Deep Policy Gradients"; Stable-Baselines3's ``ortho_init``). Returns ``net``.

    Example:
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> net = orthogonal_init(mlp, 0.01)
        >>> float(net[2].weight.detach().norm()) < 0.05
        True
    """
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for i, layer in enumerate(layers):
        torch.nn.init.orthogonal_(layer.weight, gain=last_gain if i == len(layers) - 1 else math.sqrt(2))
        torch.nn.init.zeros_(layer.bias)
    return net


def make_stochastic_actor(env: EnvBase, hidden_sizes, activation=torch.nn.Tanh, ortho_init: bool = False, *,
                          trunk: torch.nn.Module | None = None, encoder=None):
    """A sampling policy for the env's action spec: Categorical logits, or a TanhNormal within bounds.

    Writes ``"action"`` and ``"sample_log_prob"``; deterministic mode gives the most likely action
    (discrete) or the squashed mean (continuous). ``ortho_init``: :func:`orthogonal_init` with an
    output gain of 0.01. ``trunk``, ``encoder``: as for :func:`make_encoder`.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=3)
        >>> td = make_stochastic_actor(env, (16,))(env.reset())
        >>> td["action"].shape, bool(env.action_spec.is_in(td["action"]))
        (torch.Size([3, 1]), True)
    """
    spec = env.action_spec
    key, _ = _input(env, encoder)

    def network(out_features):
        net = make_encoder(env, hidden_sizes, out_features, activation, trunk=trunk, encoder=encoder)
        return orthogonal_init(net, 0.01) if ortho_init else net

    if isinstance(spec, Categorical):
        net = network(spec.n)
        # argument validation costs more than the log-prob itself for small batches; the spec
        # already guarantees valid actions
        return ProbabilisticActor(TensorDictModule(net, [key], ["logits"]), in_keys=["logits"],
                                  distribution_class=torch.distributions.Categorical,
                                  distribution_kwargs={"validate_args": False}, spec=spec, return_log_prob=True)
    if isinstance(spec, OneHot):
        net = network(spec.n)
        return ProbabilisticActor(TensorDictModule(net, [key], ["logits"]), in_keys=["logits"],
                                  distribution_class=OneHotCategorical, spec=spec, return_log_prob=True)
    if isinstance(spec, Bounded):
        n = spec.shape[-1]
        net = torch.nn.Sequential(network(2 * n), NormalParamExtractor())
        low, high = spec.low.reshape(-1, n)[0], spec.high.reshape(-1, n)[0]
        return ProbabilisticActor(TensorDictModule(net, [key], ["loc", "scale"]), in_keys=["loc", "scale"],
                                  distribution_class=TanhNormal, distribution_kwargs={"low": low, "high": high},
                                  spec=spec, return_log_prob=True)
    raise TypeError(f"no stochastic actor for action spec {type(spec).__name__}: expected Categorical, OneHot or "
                    f"Bounded (wrap an unbounded action space so that it has bounds)")


def make_value_network(env: EnvBase, hidden_sizes, activation=torch.nn.Tanh, ortho_init: bool = False, *,
                       trunk: torch.nn.Module | None = None):
    """A critic ``V(s)`` writing ``"state_value"`` from the env's observation (``ortho_init``: output gain 1).

    ``trunk``: a feature module to read the observation with first (see :func:`make_encoder`).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:CartPole", num_envs=3)
        >>> make_value_network(env, (16,))(env.reset())["state_value"].shape
        torch.Size([3, 1])
    """
    net = make_encoder(env, hidden_sizes, 1, activation, trunk=trunk)
    return ValueOperator(orthogonal_init(net, 1.0) if ortho_init else net, in_keys=[observation_key(env)])


def make_actor_critic(env: EnvBase, config):
    """The policy (Categorical or TanhNormal, from the action spec) and the critic V(s) of PPO and A2C.

    Reads ``config.hidden_sizes`` and ``config.ortho_init`` (an :class:`~rlbench.recipes.config.OnPolicyConfig`).
    On pixels both read the frames through one shared :class:`~rlbench.modules.NatureCNN` (as
    Stable-Baselines3's Atari ``CnnPolicy`` does for PPO and A2C), then each has its own MLP head
    (``hidden_sizes``; the rl-zoo Atari settings use none: linear heads on the 512 features).

    Example:
        >>> from rlbench.recipes import OnPolicyConfig, make_env
        >>> actor, critic = make_actor_critic(make_env("native:Pendulum"), OnPolicyConfig())
        >>> type(actor).__name__, type(critic).__name__
        ('ProbabilisticActor', 'ValueOperator')
    """
    trunk = NatureCNN(_observation_shape(env, observation_key(env))) if is_pixels(env) else None
    return (make_stochastic_actor(env, config.hidden_sizes, ortho_init=config.ortho_init, trunk=trunk),
            make_value_network(env, config.hidden_sizes, ortho_init=config.ortho_init, trunk=trunk))


# ---------------------------------------------------------------------------------------- off-policy
def require_bounded_actions(env: EnvBase, algo: str) -> Bounded:
    """The env's action spec if it is a bounded continuous box, else a ``TypeError`` that says what to do.

    Example:
        >>> from rlbench.recipes import make_env
        >>> require_bounded_actions(make_env("Pendulum-v1"), "ddpg").shape
        torch.Size([1])
        >>> require_bounded_actions(make_env("native:CartPole"), "ddpg")
        Traceback (most recent call last):
        ...
        TypeError: ddpg needs a bounded continuous action space (a Bounded float spec), but ... Categorical; ...
    """
    spec = env.action_spec
    if not isinstance(spec, Bounded) or not spec.dtype.is_floating_point:
        hint = "use the dqn, sac (discrete), ppo or a2c recipe"
        raise TypeError(f"{algo} needs a bounded continuous action space (a Bounded float spec), but the env's "
                        f"action spec is {type(spec).__name__}; for discrete actions {hint}")
    return spec


def action_box(env: EnvBase, algo: str) -> Bounded:
    """The bounds of one sub-env's action (the env's batch dims dropped), e.g. for clipping sampled actions.

    A batched env's action spec has its batch shape in front (``[num_envs, n]``); a loss that clips
    replay batches of any size needs the ``[n]`` box.

    Example:
        >>> from rlbench.recipes import make_env
        >>> action_box(make_env("native:Pendulum", num_envs=4), "td3")
        Bounded(shape=(1,), low=-2, high=2, dtype=float32, device=cpu)
    """
    spec = require_bounded_actions(env, algo)
    n = spec.shape[-1]
    low, high = spec.low.reshape(-1, n)[0], spec.high.reshape(-1, n)[0]
    return Bounded(low, high, shape=(n,), dtype=spec.dtype, device=spec.device)


def _vector_size(env: EnvBase, algo: str, encoder=None) -> tuple[str, int]:
    if encoder is not None:
        return EMBEDDING_KEY, int(_encoder_module(encoder).out_features)
    key = observation_key(env)
    shape = env.observation_spec[key].shape[len(env.batch_size):]
    if len(shape) != 1:
        hint = ("pass encoder=make_pixel_encoder(env) to read pixels through a shared encoder" if len(shape) == 3
                else "flatten them with rlbench.envs.transforms.FlattenObservation")
        raise ValueError(f"{algo}: the critics Q(s, a) read 1-d vector observations, got shape {tuple(shape)} for "
                         f"{key!r}; {hint}")
    return key, int(shape[0])


def make_deterministic_actor(env: EnvBase, hidden_sizes, algo: str = "ddpg",
                             activation=torch.nn.ReLU, *, encoder=None) -> Actor:
    """A deterministic policy ``mu(s)`` inside the env's action box (DDPG, TD3): MLP, then tanh scaled to the bounds.

    ``encoder``: read that encoder's :data:`EMBEDDING_KEY` features instead of the observation.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=4)
        >>> td = make_deterministic_actor(env, (16,))(env.reset())
        >>> td["action"].shape, bool(env.action_spec.is_in(td["action"]))
        (torch.Size([4, 1]), True)
    """
    box = action_box(env, algo)
    key, n_obs = _vector_size(env, algo, encoder)
    net = torch.nn.Sequential(MLP(in_features=n_obs, out_features=box.shape[-1], num_cells=list(hidden_sizes),
                                  activation_class=activation), ScaleToBounds(box.low, box.high))
    return Actor(net, in_keys=[key], spec=env.action_spec)


def make_qvalue_network(env: EnvBase, hidden_sizes, algo: str = "sac", activation=torch.nn.ReLU, *,
                        encoder=None) -> ValueOperator:
    """A critic ``Q(s, a)`` writing ``"state_action_value"`` (an MLP over the concatenated observation and action).

    ``encoder``: read that encoder's :data:`EMBEDDING_KEY` features instead of the observation.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=4)
        >>> td = env.reset().set("action", env.action_spec.rand())
        >>> make_qvalue_network(env, (16,))(td)["state_action_value"].shape
        torch.Size([4, 1])
    """
    spec = require_bounded_actions(env, algo)
    key, n_obs = _vector_size(env, algo, encoder)
    mlp = MLP(in_features=n_obs + spec.shape[-1], out_features=1, num_cells=list(hidden_sizes),
              activation_class=activation)
    return ValueOperator(mlp, in_keys=[key, "action"])


def action_half_range(spec: Bounded) -> float:
    """Half the width of the action box, averaged over action dims: the unit of noise scales in the configs.

    Noise given as a fraction of it means the same on Pendulum's ``[-2, 2]`` as on a ``[-1, 1]`` box.

    Example:
        >>> action_half_range(Bounded(-2.0, 2.0, shape=(1,)))
        2.0
    """
    return float(((spec.high - spec.low) / 2).mean())


def make_exploration(env: EnvBase, kind: str, sigma: float, sigma_end: float | None = None,
                     annealing_frames: int = 0, algo: str = "ddpg"):
    """Exploration noise added to a deterministic actor's action, scaled by the action half-range.

    Args:
        env: the env (its bounded action spec clips the noisy action).
        kind: ``"gaussian"`` (independent noise each step, TD3's choice) or ``"ou"``
            (Ornstein-Uhlenbeck, temporally correlated, the DDPG paper's choice).
        sigma: noise scale as a fraction of the action half-range.
        sigma_end: decay linearly to this scale (``None``: constant ``sigma``) ...
        annealing_frames: ... over this many frames (call ``.step(frames)`` after each batch).
        algo: the recipe's name, for error messages.

    Example:
        >>> from rlbench.recipes import make_env
        >>> noise = make_exploration(make_env("native:Pendulum"), "gaussian", 0.1)
        >>> round(float(noise.sigma), 4)  # 0.1 of Pendulum's half-range 2
        0.2
    """
    spec = require_bounded_actions(env, algo)
    half = action_half_range(spec)
    end = sigma if sigma_end is None else sigma_end
    if sigma < 0 or end < 0:
        raise ValueError(f"{algo}: exploration noise scales must be >= 0, got sigma={sigma}, sigma_end={sigma_end}")
    if kind == "gaussian":
        return AdditiveGaussianModule(spec, sigma_init=sigma * half, sigma_end=end * half,
                                      annealing_num_steps=int(annealing_frames))
    if kind == "ou":
        # the module's eps multiplies the process; with dt=1 and sigma_ou^2 = 2 theta the process's stationary
        # std is sqrt(2 / (2 - theta)) ~ 1, so eps is the noise scale in action units, as for the Gaussian
        theta = 0.15
        return OrnsteinUhlenbeckProcessModule(spec, eps_init=sigma * half, eps_end=end * half,
                                              annealing_num_steps=int(annealing_frames), theta=theta,
                                              sigma=(2 * theta) ** 0.5, dt=1.0)
    raise ValueError(f"{algo}: unknown exploration {kind!r}; expected 'gaussian' or 'ou'")




# ---------------------------------------------------------------------------------------- shared pixel encoder
def make_pixel_encoder(env: EnvBase, out_features: int = 50) -> TensorDictModule | None:
    """The SAC-AE/DrQ encoder of the env's pixels, ``"pixels" -> "embedding"``; None for vector observations.

    SAC, TD3 and DDPG on pixels share one :class:`~rlbench.modules.DMCEncoder` between the actor and the
    critics, as SAC-AE (Yarats et al. 2021) and DrQ (Kostrikov et al. 2021) do: the heads read its
    ``out_features`` (50) features, the critic's loss trains it and the actor's does not
    (:func:`backward_through_encoder`), and the losses' ensembles and target copies hold the heads only
    (the encoder of the next observation runs without gradient, as in DrQ-v2, Yarats et al. 2022).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("dmc:cartpole-swingup", pixels=True, pixel_size=32)
        >>> make_pixel_encoder(env)(env.reset())["embedding"].shape
        torch.Size([50])
        >>> make_pixel_encoder(make_env("native:Pendulum")) is None
        True
        >>> env.close()
    """
    key = observation_key(env)
    shape = _observation_shape(env, key)
    if len(shape) != 3:
        return None
    return TensorDictModule(DMCEncoder(shape, out_features), in_keys=[key], out_keys=[EMBEDDING_KEY])


def with_encoder(encoder: TensorDictModule | None, head):
    """The policy that acts from observations: ``encoder`` then ``head`` (just ``head`` without an encoder).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("dmc:cartpole-swingup", pixels=True, pixel_size=32)
        >>> encoder = make_pixel_encoder(env)
        >>> policy = with_encoder(encoder, make_deterministic_actor(env, (16,), encoder=encoder))
        >>> policy(env.reset())["action"].shape
        torch.Size([1])
        >>> env.close()
    """
    return head if encoder is None else TensorDictSequential(encoder, head)


def split_encoder(actor) -> tuple[TensorDictModule | None, TensorDictModule]:
    """``(encoder, head)`` of a policy made by :func:`with_encoder` (``(None, actor)`` for any other).

    The losses take the head (it reads the features the loop writes with :func:`encode_sample`).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum")
        >>> split_encoder(make_deterministic_actor(env, (16,)))[0] is None
        True
    """
    if isinstance(actor, TensorDictSequential) and len(actor.module) == 2:
        first = actor.module[0]
        if isinstance(first, TensorDictModule) and list(first.out_keys) == [EMBEDDING_KEY]:
            return first, actor.module[1]
    return None, actor


def encode_sample(encoder: TensorDictModule | None, sample) -> torch.Tensor | None:
    """Write a replay sample's features for the loss; returns the features with their graph (None: no encoder).

    ``sample["embedding"]`` becomes a detached copy of the features that requires grad (the heads and the
    loss read it) and ``sample["next", "embedding"]`` the next observation's features, computed without
    gradient. :func:`backward_through_encoder` then sends the critic's gradient, and only it, into the encoder.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("dmc:cartpole-swingup", pixels=True, pixel_size=32)
        >>> td = env.rollout(3)
        >>> features = encode_sample(make_pixel_encoder(env), td)
        >>> features.shape, td["embedding"].requires_grad, td["next", "embedding"].requires_grad
        (torch.Size([3, 50]), True, False)
        >>> env.close()
    """
    if encoder is None:
        return None
    key = encoder.in_keys[0]
    net = _encoder_module(encoder)
    features = net(sample.get(key))
    with torch.no_grad():
        sample.set(("next", EMBEDDING_KEY), net(sample.get(("next", key))))
    sample.set(EMBEDDING_KEY, features.detach().requires_grad_())
    return features


def backward_through_encoder(loss: torch.Tensor, critic_loss: torch.Tensor, features: torch.Tensor | None,
                             sample) -> None:
    """``loss.backward()``, plus ``critic_loss``'s gradient (not the actor's) into the encoder of ``features``.

    SAC-AE and DrQ update the shared encoder with the critic's gradient only (the actor reads detached
    features): ``d critic_loss / d features`` is taken at the sample's ``"embedding"`` leaf, the total loss
    trains the heads, then that gradient flows back through the encoder. Without an encoder
    (``features is None``) this is ``loss.backward()``.
    """
    if features is None:
        loss.backward()
        return
    (grad,) = torch.autograd.grad(critic_loss, sample.get(EMBEDDING_KEY), retain_graph=True)
    loss.backward()
    features.backward(grad)
