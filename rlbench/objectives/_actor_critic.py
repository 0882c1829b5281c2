"""Plumbing shared by the actor-critic losses (DDPG, TD3, SAC, REDQ, A2C, PPO).

Everything here is the part of a loss that is *not* the paper's equations: calling a network
with another set of parameters (targets, detached copies, ensembles), summing log-probabilities
over action dimensions, reading ``terminated``. Keeping it here lets each loss's ``forward`` read
like the math.

Networks, targets and critic ensembles are registered with
:meth:`rlbench.objectives.common.LossModule.convert_to_functional` (stacked ``TensorDictParams``,
one ``torch.vmap`` call per ensemble); this module only holds what that base does not.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from tensordict import TensorDictBase

from .utils import distance_loss

__all__: list[str] = []  # private module


# ----------------------------------------------------------------------------- networks
def require_initialized(owner: str, **networks) -> None:
    """Refuses networks with lazy (uninitialised) parameters, naming them and saying what to do.

    A loss copies parameters at construction (targets, critic ensembles): a lazy layer has no
    shape yet, and the failure would otherwise come later, far from its cause.
    """
    for name, net in networks.items():
        if net is None:
            continue
        lazy = [n for n, p in net.named_parameters() if isinstance(p, torch.nn.parameter.UninitializedParameter)]
        if lazy:
            raise ValueError(
                f"{owner}: {name} has uninitialised (lazy) parameters {lazy[:3]}; run it once on a sample "
                f"first (e.g. {name}(env.reset())), or give its layers their input sizes (MLP(in_features=...))")


def require_probabilistic(owner: str, actor) -> None:
    """Stochastic-policy losses need the actor's distribution, not just its action."""
    if not hasattr(actor, "get_dist"):
        raise TypeError(
            f"{owner}: actor_network must be a probabilistic actor with a get_dist(td) method "
            f"(rlbench.modules.ProbabilisticActor or tensordict's ProbabilisticTensorDictSequential), "
            f"got {type(actor).__name__}")


# ----------------------------------------------------------------------------- distributions
def get_dist(actor, td: TensorDictBase):
    """The action distribution ``actor`` produces for ``td`` (tensordict's ``get_dist`` protocol)."""
    return actor.get_dist(td)


def per_sample(x: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """Sum ``x`` over every dim after the first ``batch_ndim`` and return it shaped ``[*batch, 1]``.

    Log-probabilities of a factorised Gaussian come per action dimension (``[*batch, A]``) unless the
    distribution is ``Independent``; the joint log-probability of the action is their sum.
    """
    if x.dim() > batch_ndim:
        x = x.flatten(batch_ndim).sum(-1)
    return x.unsqueeze(-1)


def log_prob(dist, action: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """``log pi(action)`` summed over action dims, shaped ``[*batch, 1]``."""
    return per_sample(dist.log_prob(action), batch_ndim)


def rsample_with_log_prob(dist, batch_ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised sample and its log-probability ``[*batch, 1]``.

    Distributions that compute both at once (a tanh-squashed Gaussian can, without inverting the
    tanh) expose ``rsample_and_log_prob``; others get ``rsample`` then ``log_prob``.
    """
    if hasattr(dist, "rsample_and_log_prob"):
        action, lp = dist.rsample_and_log_prob()
        return action, per_sample(lp, batch_ndim)
    action = dist.rsample()
    return action, log_prob(dist, action, batch_ndim)


def entropy(dist, batch_ndim: int, sample_log_prob: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy ``[*batch, 1]``: exact when the distribution knows it, else a one-sample estimate.

    Squashed distributions (tanh-Normal) have no closed-form entropy; ``-log pi(a)`` of a fresh
    sample is an unbiased estimate of it.
    """
    try:
        return per_sample(dist.entropy(), batch_ndim)
    except NotImplementedError:
        if sample_log_prob is None:
            sample = dist.rsample() if dist.has_rsample else dist.sample()
            sample_log_prob = log_prob(dist, sample, batch_ndim)
        return -sample_log_prob


def action_bounds(spec, what: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(low, high)`` of a bounded action spec, or None when no spec is given."""
    if spec is None:
        return None
    low, high = getattr(spec, "low", None), getattr(spec, "high", None)
    if low is None or high is None:
        raise TypeError(f"{what}: action_spec must be a Bounded spec with low/high, got {type(spec).__name__}")
    return _per_env(torch.as_tensor(low)), _per_env(torch.as_tensor(high))


def _per_env(bound: torch.Tensor) -> torch.Tensor:
    """A batched env's spec repeats the bounds over its env dims (``[n_envs, n]``); a replay batch has
    other leading dims (``[256, n]``). When every env has the same bounds, keep one row, which
    broadcasts against any batch.
    """
    while bound.ndim > 1 and bool((bound == bound[:1]).all()):
        bound = bound[0]
    return bound


def auto_target_entropy(action_shape: Sequence[int]) -> float:
    """SAC's default target entropy ``-dim(A)`` (Haarnoja et al. 2018b, sec. 5)."""
    return -float(math.prod(action_shape))


def register_alpha(loss, alpha_init: float, fixed_alpha: bool) -> None:
    """Adds ``log_alpha`` to ``loss``: a parameter, or a buffer when ``fixed_alpha``."""
    # alpha is learnt in log space: it stays positive and its gradient is scale-free
    if alpha_init <= 0:
        raise ValueError(f"{type(loss).__name__}: alpha_init must be > 0, got {alpha_init}")
    log_alpha = torch.tensor(math.log(alpha_init))
    if fixed_alpha:
        loss.register_buffer("log_alpha", log_alpha)
    else:
        loss.log_alpha = torch.nn.Parameter(log_alpha)


def alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: torch.Tensor) -> torch.Tensor:
    # J(alpha) = E[-alpha * (log pi(a|s) + H_target)] (Haarnoja et al. 2018b, eq. 18), in log-alpha
    # form: when the entropy -log pi is below its target the bracket is positive and descent raises alpha
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def parse_target_entropy(value, owner: str) -> torch.Tensor:
    """A target entropy as a buffer value; ``"auto"`` becomes NaN, filled in from the first batch."""
    if value == "auto":
        return torch.tensor(float("nan"))
    if isinstance(value, str):
        raise ValueError(f"{owner}: target_entropy must be 'auto' or a number, got {value!r}")
    return torch.tensor(float(value))


def resolve_target_entropy(loss, action: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """``loss.target_entropy``, filling in ``"auto"`` (NaN) as ``-dim(A)`` from the first action seen."""
    if torch.isnan(loss.target_entropy):
        loss.target_entropy.fill_(auto_target_entropy(action.shape[batch_ndim:]))
    return loss.target_entropy


def policy_action(loss, name: str, td: TensorDictBase, *, target: bool = False) -> torch.Tensor:
    """The action a deterministic actor (DDPG, TD3) takes in ``td``'s states, online or target.

    The actor is run on a copy holding only its inputs; its action is read under the loss's
    ``action`` key, or under the actor's last output key when the actor writes another name.
    """
    actor = loss._network(name)
    out = loss.call_network(name, td.select(*actor.in_keys, strict=False), target=target)
    key = loss.tensor_keys.action
    return out.get(key) if key in out.keys(True, True) else out.get(actor.out_keys[-1])


def td0_only(loss, value_type, hyperparams: dict):
    """``make_value_estimator`` for off-policy actor-critic losses: a one-step target, ``gamma`` settable.

    Their targets bootstrap from a value that involves the policy and the target critics (a soft
    value, a smoothed target action), on transitions sampled one at a time from a replay buffer,
    so the multi-step estimators do not apply.
    """
    from .common import ValueEstimators

    owner = type(loss).__name__
    kind = ValueEstimators.parse(value_type if value_type is not None else ValueEstimators.TD0)
    if kind is not ValueEstimators.TD0:
        raise ValueError(f"{owner}.make_value_estimator: only 'td0' (one-step target) is supported, got {kind.value!r}")
    extra = sorted(set(hyperparams) - {"gamma"})
    if extra:
        raise TypeError(f"{owner}.make_value_estimator('td0'): unexpected hyperparameter(s) {extra}; expected gamma")
    gamma = float(hyperparams.get("gamma", loss.gamma))
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"{owner}.make_value_estimator: gamma must be in [0, 1], got {gamma}")
    loss.gamma = gamma
    return loss


# ----------------------------------------------------------------------------- data
def next_of(td: TensorDictBase, owner: str) -> TensorDictBase:
    """``td["next"]``, with an error that says what a transition must contain."""
    nxt = td.get("next", None)
    if not isinstance(nxt, TensorDictBase):
        raise KeyError(f"{owner}: expected transitions with a 'next' sub-TensorDict (next observation, reward, "
                       f"done, terminated), as env.rollout and the collectors write; got keys {sorted(map(str, td.keys()))}")
    return nxt


def reward_and_terminated(loss, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r, terminated)`` of each transition as floats ``[*batch, 1]``, read under ``"next"``.

    Only ``terminated`` stops bootstrapping: a truncated episode still has a future value. Data
    without a ``terminated`` entry (older recordings) falls back to ``done``.
    """
    keys, owner = loss.tensor_keys, type(loss).__name__
    nxt = next_of(td, owner)
    reward = nxt.get(keys.reward, None)
    if reward is None:
        raise KeyError(f"{owner}: expected the reward at ('next', {keys.reward!r}); "
                       f"found next keys {sorted(map(str, nxt.keys(True, True)))}")
    flag = nxt.get(keys.terminated, None)
    if flag is None:
        flag = nxt.get(keys.done, None)
    if flag is None:
        raise KeyError(f"{owner}: expected ('next', {keys.terminated!r}) or ('next', {keys.done!r}); "
                       f"found next keys {sorted(map(str, nxt.keys(True, True)))}")
    reward = as_column(reward, nxt, ("next", keys.reward), owner)
    flag = as_column(flag, nxt, ("next", keys.terminated), owner)
    dtype = reward.dtype if reward.is_floating_point() else torch.get_default_dtype()
    return reward.to(dtype), flag.to(dtype)


def td0_target(reward: torch.Tensor, terminated: torch.Tensor, next_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """One-step bootstrapped target ``r + gamma * (1 - terminated) * V(s')``."""
    return reward + gamma * (1.0 - terminated) * next_value


def with_action(td: TensorDictBase, in_keys, action_key, action: torch.Tensor) -> TensorDictBase:
    """A shallow copy of ``td``'s ``in_keys`` with ``action`` written under ``action_key``.

    Critics are evaluated on actions the policy proposes without touching the caller's data.
    """
    out = td.select(*[k for k in in_keys if k != action_key], strict=False)
    out.set(action_key, action)
    return out


def check_distance(kind: str, owner: str) -> str:
    """Validates a ``loss_function`` name at construction (not on the first batch)."""
    if kind not in ("l2", "l1", "smooth_l1"):
        raise ValueError(f"{owner}: loss_function must be one of 'l1', 'l2', 'smooth_l1', got {kind!r}")
    return kind


def distance(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Element-wise regression loss (:func:`rlbench.objectives.utils.distance_loss`): ``l2`` is ``(pred - target)**2``."""
    return distance_loss(pred, target, kind)


# ----------------------------------------------------------------------------- on-policy (A2C, PPO)
def ensure_advantage(loss, td: TensorDictBase) -> torch.Tensor:
    """``td[advantage]``, computed first by the loss's value estimator (GAE by default) when missing.

    The estimator writes ``advantage`` and ``value_target`` into ``td`` itself, so a training loop can
    call the loss on a full batch once and reuse them, or call ``loss.value_estimator(batch)`` before
    splitting it into minibatches.
    """
    key = loss.tensor_keys.advantage
    adv = td.get(key, None)
    if adv is None:
        with torch.no_grad():
            loss.value_estimator(td)
        adv = td.get(key, None)
        if adv is None:
            raise KeyError(f"{type(loss).__name__}: the value estimator did not write {key!r}; "
                           f"use an advantage estimator (make_value_estimator('gae')) or provide {key!r}")
    return as_column(adv, td, key, type(loss).__name__)


def as_column(x: torch.Tensor, td: TensorDictBase, key, owner: str) -> torch.Tensor:
    """``x`` shaped ``[*batch, 1]``: a ``[*batch]`` entry gets its trailing dim (never a silent broadcast)."""
    if x.shape == td.batch_size:
        return x.unsqueeze(-1)
    if x.shape != (*td.batch_size, 1):
        raise ValueError(f"{owner}: {key!r} has shape {tuple(x.shape)}; expected {(*td.batch_size, 1)} "
                         f"(or {tuple(td.batch_size)}) for a batch of size {tuple(td.batch_size)}")
    return x


def critic_loss(loss, td: TensorDictBase, critic_name: str, clip_value: float | None) -> torch.Tensor:
    """``E[d(V(s), value_target)]``, PPO's clipped form when ``clip_value`` is set.

    Clipped (as in the PPO reference implementation, baselines ``ppo2``): with ``V_old`` the value
    stored at collection time, ``V_clip = V_old + clip(V - V_old, -c, c)`` and the loss is
    ``max(d(V, target), d(V_clip, target))`` -- the critic cannot profit from moving far from ``V_old``.
    """
    keys, owner = loss.tensor_keys, type(loss).__name__
    target = td.get(keys.value_target, None)
    if target is None:
        raise KeyError(f"{owner}: expected {keys.value_target!r} in the input (written by the value estimator "
                       f"along with {keys.advantage!r}); got keys {sorted(map(str, td.keys()))}")
    critic = getattr(loss, critic_name)
    target = as_column(target, td, keys.value_target, owner)
    value = loss.call_network(critic_name, td.select(*critic.in_keys, strict=False)).get(keys.value)
    value = as_column(value, td, keys.value, owner)
    err = distance(value, target.to(value.dtype), loss.loss_critic_type)
    if clip_value is not None:
        old = td.get(keys.value, None)
        if old is None:
            raise KeyError(f"{owner}: clip_value needs the value at collection time under {keys.value!r} "
                           f"(the value estimator writes it); it is missing from the input")
        old = as_column(old, td, keys.value, owner)
        clipped = old + (value - old).clamp(-clip_value, clip_value)
        err = torch.maximum(err, distance(clipped, target.to(value.dtype), loss.loss_critic_type))
    return err.mean()


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` over the whole batch (a single element is only centred)."""
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)
