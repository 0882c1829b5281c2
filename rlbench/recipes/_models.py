"""Networks built from an env's specs, shared by the recipes' ``make_models``: observation encoders
(MLP for vectors, ConvNet for pixels), a stochastic actor for discrete or bounded continuous
actions, a value network, and orthogonal initialisation.
"""
from __future__ import annotations

import math

import torch

from ..envs import EnvBase

__all__ = ["observation_key", "make_encoder", "orthogonal_init", "make_stochastic_actor", "make_value_network"]


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


def make_encoder(env: EnvBase, hidden_sizes, out_features: int, activation=torch.nn.Tanh) -> torch.nn.Module:
    """A network from the env's observation to ``out_features``: an MLP for vectors, ConvNet + MLP for pixels.

    Pixel observations must be float ``[C, H, W]`` (apply ``ToTensorImage`` to ``uint8`` frames).

    Example:
        >>> from rlbench.recipes import make_env
        >>> net = make_encoder(make_env("native:CartPole"), (16,), 2)
        >>> net(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """
    from ..modules import MLP, ConvNet

    key = observation_key(env)
    spec = env.observation_spec[key]
    shape = spec.shape[len(env.batch_size):]
    if key == "pixels" or len(shape) == 3:
        if len(shape) != 3:
            raise ValueError(f"pixel observations must be [C, H, W], got shape {tuple(shape)}")
        conv = ConvNet(in_features=shape[0], num_cells=[32, 64, 64], kernel_sizes=[8, 4, 3], strides=[4, 2, 1],
                       activation_class=torch.nn.ReLU)
        with torch.no_grad():  # infer the flattened feature size from one dummy frame
            n_features = conv(torch.zeros(1, *shape)).shape[-1]
        return torch.nn.Sequential(conv, MLP(in_features=n_features, out_features=out_features,
                                             num_cells=list(hidden_sizes), activation_class=torch.nn.ReLU))
    if len(shape) != 1:
        raise ValueError(f"vector observations must be 1-d, got shape {tuple(shape)} for {key!r}; flatten them "
                         f"with rlbench.envs.transforms.FlattenObservation")
    return MLP(in_features=shape[0], out_features=out_features, num_cells=list(hidden_sizes),
               activation_class=activation)


def orthogonal_init(net: torch.nn.Module, last_gain: float) -> torch.nn.Module:
    """Orthogonal weights and zero biases: gain sqrt(2) for hidden layers, ``last_gain`` for the output.

    The small output gain of a policy (0.01) starts it near uniform over actions, which keeps early
    PPO/A2C updates from locking onto one action (Engstrom et al. 2020, "Implementation Matters in
    Deep Policy Gradients"; Stable-Baselines3's ``ortho_init``). Returns ``net``.

    Example:
        >>> net = orthogonal_init(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)), 0.01)
        >>> float(net[2].weight.detach().norm()) < 0.05
        True
    """
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for i, layer in enumerate(layers):
        torch.nn.init.orthogonal_(layer.weight, gain=last_gain if i == len(layers) - 1 else math.sqrt(2))
        torch.nn.init.zeros_(layer.bias)
    return net


def make_stochastic_actor(env: EnvBase, hidden_sizes, activation=torch.nn.Tanh, ortho_init: bool = False):
    """A sampling policy for the env's action spec: Categorical logits, or a TanhNormal within bounds.

    Writes ``"action"`` and ``"sample_log_prob"``; deterministic mode gives the most likely action
    (discrete) or the squashed mean (continuous). ``ortho_init``: :func:`orthogonal_init` with an
    output gain of 0.01.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=3)
        >>> td = make_stochastic_actor(env, (16,))(env.reset())
        >>> td["action"].shape, bool(env.action_spec.is_in(td["action"]))
        (torch.Size([3, 1]), True)
    """
    from tensordict.nn import TensorDictModule

    from ..modules import NormalParamExtractor, ProbabilisticActor, TanhNormal
    from ..specs import Bounded, Categorical, OneHot

    spec = env.action_spec
    key = observation_key(env)

    def encoder(out_features):
        net = make_encoder(env, hidden_sizes, out_features, activation)
        return orthogonal_init(net, 0.01) if ortho_init else net

    if isinstance(spec, Categorical):
        net = encoder(spec.n)
        # argument validation costs more than the log-prob itself for small batches; the spec
        # already guarantees valid actions
        return ProbabilisticActor(TensorDictModule(net, [key], ["logits"]), in_keys=["logits"],
                                  distribution_class=torch.distributions.Categorical,
                                  distribution_kwargs={"validate_args": False}, spec=spec, return_log_prob=True)
    if isinstance(spec, OneHot):
        from ..modules import OneHotCategorical

        net = encoder(spec.n)
        return ProbabilisticActor(TensorDictModule(net, [key], ["logits"]), in_keys=["logits"],
                                  distribution_class=OneHotCategorical, spec=spec, return_log_prob=True)
    if isinstance(spec, Bounded):
        n = spec.shape[-1]
        net = torch.nn.Sequential(encoder(2 * n), NormalParamExtractor())
        low, high = spec.low.reshape(-1, n)[0], spec.high.reshape(-1, n)[0]
        return ProbabilisticActor(TensorDictModule(net, [key], ["loc", "scale"]), in_keys=["loc", "scale"],
                                  distribution_class=TanhNormal, distribution_kwargs={"low": low, "high": high},
                                  spec=spec, return_log_prob=True)
    raise TypeError(f"no stochastic actor for action spec {type(spec).__name__}: expected Categorical, OneHot or "
                    f"Bounded (wrap an unbounded action space so that it has bounds)")


def make_value_network(env: EnvBase, hidden_sizes, activation=torch.nn.Tanh, ortho_init: bool = False):
    """A critic ``V(s)`` writing ``"state_value"`` from the env's observation (``ortho_init``: output gain 1).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:CartPole", num_envs=3)
        >>> make_value_network(env, (16,))(env.reset())["state_value"].shape
        torch.Size([3, 1])
    """
    from ..modules import ValueOperator

    net = make_encoder(env, hidden_sizes, 1, activation)
    return ValueOperator(orthogonal_init(net, 1.0) if ortho_init else net, in_keys=[observation_key(env)])
