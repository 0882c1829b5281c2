"""The losses' math as plain functions of tensors (and of distributions), with no loss object in sight.

Every loss's ``forward`` reads its batch through :class:`~rlbench.objectives.common.LossModule`'s
methods and computes its terms with these functions: a batch goes one way, loss -> ``LossModule``
-> this module, and nothing here calls back. Shapes follow the data contract: per-sample quantities
are ``[*batch, 1]``.

* log-probabilities and entropies of an action distribution, summed over action dims:
  :func:`per_sample`, :func:`log_prob`, :func:`rsample_with_log_prob`, :func:`entropy`;
* bootstrapped targets: :func:`td0_target`, :func:`nstep_discount`;
* regression and weighting: :func:`critic_loss`, :func:`weighted_mean`, :func:`normalize`,
  :func:`as_column`;
* discrete actions: :func:`check_index`, :func:`takes_indices`;
* PPO's adaptive KL coefficient: :func:`kl_beta_update`;
* SAC's temperature: :func:`alpha_loss`, :func:`auto_target_entropy`, :func:`target_entropy_tensor`,
  :func:`resolve_target_entropy`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .utils import distance_loss

__all__ = [
    "per_sample",
    "log_prob",
    "rsample_with_log_prob",
    "entropy",
    "as_column",
    "check_index",
    "takes_indices",
    "normalize",
    "td0_target",
    "nstep_discount",
    "weighted_mean",
    "critic_loss",
    "kl_beta_update",
    "alpha_loss",
    "auto_target_entropy",
    "target_entropy_tensor",
    "resolve_target_entropy",
]


# ----------------------------------------------------------------------------- distributions
def per_sample(x: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """Sum ``x`` over every dim after the first ``batch_ndim`` and return it shaped ``[*batch, 1]``.

    Log-probabilities of a factorised Gaussian come per action dimension (``[*batch, A]``) unless the
    distribution is ``Independent``; the joint log-probability of the action is their sum.

    Example:
        >>> per_sample(torch.ones(4, 3), batch_ndim=1)
        tensor([[3.],
                [3.],
                [3.],
                [3.]])
    """
    if x.dim() > batch_ndim:
        x = x.flatten(batch_ndim).sum(-1)
    return x.unsqueeze(-1)


def log_prob(dist, action: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """``log pi(action)`` summed over action dims, shaped ``[*batch, 1]``.

    Example:
        >>> dist = torch.distributions.Normal(torch.zeros(2, 3), torch.ones(2, 3))
        >>> log_prob(dist, torch.zeros(2, 3), batch_ndim=1).shape
        torch.Size([2, 1])
    """
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
    sample (or of ``sample_log_prob`` when given) is an unbiased estimate of it.

    Example:
        >>> entropy(torch.distributions.Categorical(logits=torch.zeros(5, 2)), batch_ndim=1)[0]
        tensor([0.6931])
    """
    try:
        return per_sample(dist.entropy(), batch_ndim)
    except NotImplementedError:
        if sample_log_prob is None:
            sample = dist.rsample() if dist.has_rsample else dist.sample()
            sample_log_prob = log_prob(dist, sample, batch_ndim)
        return -sample_log_prob


# ----------------------------------------------------------------------------- shapes and weights
def as_column(x: torch.Tensor, batch_size: Sequence[int], what: str) -> torch.Tensor:
    """``x`` shaped ``[*batch, 1]``: a ``[*batch]`` entry gets its trailing dim, never a silent broadcast.

    Args:
        x: a per-sample quantity (an advantage, a value, a reward).
        batch_size: the batch shape of the data it came from.
        what: how an error names ``x`` (e.g. ``"PPOLoss: 'advantage'"``).

    Example:
        >>> as_column(torch.zeros(4), (4,), "adv").shape
        torch.Size([4, 1])
    """
    batch_size = tuple(batch_size)
    if x.shape == batch_size:
        return x.unsqueeze(-1)
    if x.shape != (*batch_size, 1):
        raise ValueError(f"{what} has shape {tuple(x.shape)}; expected {(*batch_size, 1)}, i.e. [*B, 1] (or [*B] = "
                         f"{batch_size}): one value per transition of the batch of size {batch_size}")
    return x


def check_index(action: torch.Tensor, what: str) -> torch.Tensor:
    """``action`` if it holds class indices (an integer or bool dtype), else a ``TypeError`` naming the dtype.

    A float action where an index is expected would be truncated by ``.long()`` (1.7 -> 1) without a word.

    Example:
        >>> check_index(torch.tensor([0, 2]), "'action'")
        tensor([0, 2])
        >>> try:
        ...     check_index(torch.tensor([1.7]), "DQNLoss: 'action'")
        ... except TypeError as err:
        ...     print(str(err)[:45])
        DQNLoss: 'action' has dtype torch.float32, bu
    """
    if action.is_floating_point() or action.is_complex():
        raise TypeError(f"{what} has dtype {action.dtype}, but the action space is categorical: actions must be "
                        f"integer class indices (torch.int64, shape [*B] or [*B, 1], as a Categorical spec gives), "
                        f"or one-hot vectors [*B, n_actions] with action_space='one_hot'; a float action would be "
                        f"truncated")
    return action


def takes_indices(dist) -> bool:
    """Whether the distribution's samples are class indices (a ``Categorical``, masked or not), which must be integers.

    Example:
        >>> takes_indices(torch.distributions.Categorical(logits=torch.zeros(2))), takes_indices(
        ...     torch.distributions.OneHotCategorical(logits=torch.zeros(2)))
        (True, False)
    """
    return isinstance(dist, torch.distributions.Categorical)


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` over the whole batch (a single element is only centred).

    Example:
        >>> normalize(torch.tensor([1.0, 3.0]))
        tensor([-0.7071,  0.7071])
    """
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)


def weighted_mean(per_sample: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``mean(per_sample * weight)``; the plain mean without ``weight`` (prioritized replay's importance weights).

    Example:
        >>> weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0]))
        tensor(1.)
    """
    if weight is None:
        return per_sample.mean()
    return (per_sample * weight.reshape(per_sample.shape).to(per_sample.dtype)).mean()


# ----------------------------------------------------------------------------- targets
def td0_target(reward: torch.Tensor, terminated: torch.Tensor, next_value: torch.Tensor,
               gamma: float | torch.Tensor) -> torch.Tensor:
    """One-step bootstrapped target ``r + gamma * (1 - terminated) * V(s')``.

    Only termination stops the bootstrap: a truncated episode still has a future. ``gamma`` may
    be a tensor (``gamma ** m`` of an n-step transition, :func:`nstep_discount`).

    Example:
        >>> td0_target(torch.ones(2, 1), torch.tensor([[0.0], [1.0]]), torch.full((2, 1), 10.0), 0.9)
        tensor([[10.],
                [ 1.]])
    """
    return reward + gamma * (1.0 - terminated) * next_value


def nstep_discount(gamma: float, steps: torch.Tensor | None, like: torch.Tensor) -> float | torch.Tensor:
    """The bootstrap's discount: ``gamma ** m`` with ``m`` the steps to the next observation, else ``gamma``.

    ``steps`` is the ``"steps_to_next_obs"`` entry that
    :func:`~rlbench.objectives.multistep.nstep_return` writes; it is reshaped to ``like``.

    Example:
        >>> nstep_discount(0.5, torch.tensor([[1], [3]]), torch.zeros(2, 1))
        tensor([[0.5000],
                [0.1250]])
    """
    if steps is None:
        return gamma
    return gamma ** steps.reshape(like.shape).to(like.dtype)


def critic_loss(value: torch.Tensor, target: torch.Tensor, loss_function: str, *,
                old_value: torch.Tensor | None = None, clip_value: float | None = None) -> torch.Tensor:
    """``E[d(V(s), value_target)]``; PPO's clipped form when ``clip_value`` is given.

    Clipped (as in the PPO reference implementation, baselines ``ppo2``): with ``V_old`` the value
    stored at collection time, ``V_clip = V_old + clip(V - V_old, -c, c)`` and the loss is
    ``E[max(d(V, target), d(V_clip, target))]`` -- the critic cannot profit from moving far from ``V_old``.

    Args:
        value: ``V(s)`` ``[*batch, 1]``.
        target: the regression target, same shape (cast to ``value``'s dtype).
        loss_function: ``"l2"``, ``"l1"`` or ``"smooth_l1"`` (:func:`~rlbench.objectives.utils.distance_loss`).
        old_value: ``V_old``, needed with ``clip_value``.
        clip_value: ``c``.

    Example:
        >>> critic_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), "l2", old_value=torch.tensor([[0.0]]),
        ...             clip_value=0.5)  # max((1 - 0)^2, (0.5 - 0)^2)
        tensor(1.)
    """
    target = target.to(value.dtype)
    err = distance_loss(value, target, loss_function)
    if clip_value is not None:
        clipped = old_value + (value - old_value).clamp(-clip_value, clip_value)
        err = torch.maximum(err, distance_loss(clipped, target, loss_function))
    return err.mean()


# ----------------------------------------------------------------------------- PPO's KL penalty
def kl_beta_update(beta: torch.Tensor, kl: torch.Tensor, dtarg: float, increment: float,
                   decrement: float) -> torch.Tensor:
    """The next KL coefficient (Schulman et al. 2017, sec. 4): keep the measured KL within 1.5x of ``dtarg``.

    ``beta * increment`` when ``kl > 1.5 dtarg``, ``beta * decrement`` when ``kl < dtarg / 1.5``,
    else ``beta``.

    Example:
        >>> kl_beta_update(torch.tensor(1.0), torch.tensor(0.1), dtarg=0.01, increment=2.0, decrement=0.5)
        tensor(2.)
    """
    if kl > 1.5 * dtarg:
        return beta * increment
    if kl < dtarg / 1.5:
        return beta * decrement
    return beta


# ----------------------------------------------------------------------------- SAC's temperature
def alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: torch.Tensor) -> torch.Tensor:
    """``J(alpha) = E[-log alpha (log pi(a|s) + H_target)]`` (Haarnoja et al. 2018b, eq. 18, in log-alpha form).

    When the entropy ``-log pi`` is below its target the bracket is positive and descent raises
    alpha. ``log_prob`` is detached: this term trains the temperature only.

    Example:
        >>> alpha_loss(torch.tensor(0.0, requires_grad=True), torch.tensor([[1.0]]), torch.tensor(-1.0))
        tensor(-0., grad_fn=<NegBackward0>)
    """
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def auto_target_entropy(action_shape: Sequence[int]) -> float:
    """SAC's default target entropy ``-dim(A)`` (Haarnoja et al. 2018b, sec. 5).

    Example:
        >>> auto_target_entropy((3,))
        -3.0
    """
    return -float(math.prod(action_shape))


def target_entropy_tensor(value: float | str, owner: str) -> torch.Tensor:
    """A target entropy as a 0-d tensor (for a buffer); ``"auto"`` becomes NaN, filled in from the first batch.

    Example:
        >>> target_entropy_tensor("auto", "SACLoss"), target_entropy_tensor(-2, "SACLoss")
        (tensor(nan), tensor(-2.))
    """
    if value == "auto":
        return torch.tensor(float("nan"))
    if isinstance(value, str):
        raise ValueError(f"{owner}: target_entropy must be 'auto' or a number, got {value!r}")
    return torch.tensor(float(value))


def resolve_target_entropy(target_entropy: torch.Tensor, action: torch.Tensor, batch_ndim: int) -> torch.Tensor:
    """``target_entropy``, its ``"auto"`` (NaN) filled in place with ``-dim(A)`` of ``action``'s shape.

    Example:
        >>> resolve_target_entropy(torch.tensor(float("nan")), torch.zeros(8, 2), batch_ndim=1)
        tensor(-2.)
    """
    if torch.isnan(target_entropy):
        target_entropy.fill_(auto_target_entropy(action.shape[batch_ndim:]))
    return target_entropy
