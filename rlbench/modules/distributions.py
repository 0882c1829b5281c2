"""Action distributions: tanh-squashed Gaussians, point masses and (masked) categoricals.

Every distribution here has a ``deterministic_sample`` (what a policy plays under
``ExplorationType.DETERMINISTIC``) and a ``mode``, so ``ProbabilisticActor`` never has to guess.

``Delta``, ``OneHotCategorical`` and ``NormalParamExtractor`` are tensordict's own classes,
re-exported so users find every distribution in one place. For integer-valued categorical actions use
``torch.distributions.Categorical`` as it is (tensordict already plays its mode under
``DETERMINISTIC``); it is not re-exported here because ``rlbench.specs.Categorical`` owns that name.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tensordict.nn import NormalParamExtractor
from tensordict.nn.distributions import Delta, OneHotCategorical
from torch import distributions as D

__all__ = [
    "TanhNormal",
    "TanhDelta",
    "Delta",
    "OneHotCategorical",
    "MaskedCategorical",
    "MaskedOneHotCategorical",
    "NormalParamExtractor",
]

_LOG2 = math.log(2.0)


def _log1m_tanh_sq(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(x)^2)`` without cancellation: ``2 * (log 2 - x - softplus(-2x))``.

    The naive form is ``log(0) = -inf`` once ``tanh(x)`` rounds to 1 (|x| > ~9 in float32); this
    identity stays finite and exact for every finite ``x`` (used by SAC, Haarnoja et al. 2018, App. C).
    """
    return 2.0 * (_LOG2 - x - F.softplus(-2.0 * x))


def _bounds(low, high, like: torch.Tensor):
    """``(mid, half)`` of the box.

    Python floats for number bounds (the common ``[-1, 1]``, no tensor ops), tensors on ``like``'s
    device otherwise.
    """
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        if not low < high:
            raise ValueError(f"TanhNormal/TanhDelta: low must be < high everywhere, got low={low}, high={high}")
        return (high + low) / 2, (high - low) / 2
    low = torch.as_tensor(low, dtype=like.dtype, device=like.device)
    high = torch.as_tensor(high, dtype=like.dtype, device=like.device)
    if bool((low >= high).any()):
        raise ValueError(f"TanhNormal/TanhDelta: low must be < high everywhere, got low={low}, high={high}")
    return (high + low) / 2, (high - low) / 2


class TanhNormal(D.Distribution):
    """A Normal squashed by ``tanh`` and rescaled to the box ``[low, high]``.

    ``y = mid + half * tanh(x)`` with ``x ~ Normal(loc, scale)``, ``mid = (high + low) / 2`` and
    ``half = (high - low) / 2``. The last ``event_dims`` dims are one event: ``log_prob`` sums over
    them (an action vector has one log-probability).

    Args:
        loc: mean of the underlying Normal.
        scale: its standard deviation (> 0).
        low, high: bounds of the action box (scalars or tensors broadcastable to ``loc``).
        event_dims: how many trailing dims form one event (default 1).
        tanh_loc: squash ``loc`` as ``upscale * tanh(loc / upscale)`` first, which keeps the
            pre-tanh mean in a range where gradients do not vanish.
        upscale: the range of the squashed ``loc`` when ``tanh_loc`` is True.

    ``log_prob(y)`` inverts the squashing (``atanh``, clamped just inside the box so a value on a
    bound has a finite log-probability) and uses the stable ``log(1 - tanh^2)`` identity. A value that
    ``rsample``/``sample`` just returned is matched with its exact pre-tanh value, as torch's
    transforms do with their cache, so near-saturated samples lose no precision.

    ``mode`` and ``deterministic_sample`` are ``mid + half * tanh(loc)`` (the squashed mode of the
    Normal: always inside the box). ``mean`` and ``entropy`` have no closed form and raise
    ``NotImplementedError`` (tensordict then estimates the mean from samples).

    Example:
        >>> d = TanhNormal(torch.zeros(2), torch.ones(2), low=-2.0, high=2.0)
        >>> a = d.rsample((5,))
        >>> a.shape, bool(a.abs().max() <= 2)
        (torch.Size([5, 2]), True)
        >>> d.log_prob(a).shape
        torch.Size([5])
        >>> d.mode
        tensor([0., 0.])
    """

    arg_constraints = {}
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, low=-1.0, high=1.0, event_dims: int = 1,
                 tanh_loc: bool = False, upscale: float = 5.0, validate_args=None):
        loc, scale = torch.as_tensor(loc), torch.as_tensor(scale)
        if loc.shape != scale.shape:
            loc, scale = torch.broadcast_tensors(loc, scale)
        if event_dims < 0 or event_dims > loc.ndim:
            raise ValueError(f"TanhNormal: event_dims must be in [0, loc.ndim={loc.ndim}], got {event_dims}")
        if tanh_loc:
            loc = upscale * torch.tanh(loc / upscale)
        self.loc, self.scale = loc, scale
        self.low, self.high = low, high
        mid, half = _bounds(low, high, loc)
        self._mid, self._half = mid, half
        self._log_half = math.log(half) if isinstance(half, float) else torch.log(half)
        self.event_dims = event_dims
        self._base = D.Normal(loc, scale, validate_args=False)
        self._cache = None  # (y, x): the last sample and its pre-tanh value
        split = loc.ndim - event_dims
        super().__init__(loc.shape[:split], loc.shape[split:], validate_args=False)

    def _sum_event(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(tuple(range(-self.event_dims, 0))) if self.event_dims else x

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        return self._mid + self._half * torch.tanh(x)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        x = self._base.rsample(sample_shape)
        y = self._squash(x)
        self._cache = (y, x)
        return y

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def rsample_and_log_prob(self, sample_shape=torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample and its log-probability, computed from the pre-tanh draw (no ``atanh``)."""
        x = self._base.rsample(sample_shape)
        y = self._squash(x)
        self._cache = (y, x)
        return y, self._log_prob_pre(x)

    def _pre_tanh(self, value: torch.Tensor) -> torch.Tensor:
        if self._cache is not None and self._cache[0] is value:
            return self._cache[1]
        y = (value - self._mid) / self._half
        # a value on a bound (e.g. a projected or rounded action) would give atanh(+-1) = inf
        eps = torch.finfo(y.dtype).eps
        return torch.atanh(y.clamp(-1 + eps, 1 - eps))

    def _log_prob_pre(self, x: torch.Tensor) -> torch.Tensor:
        lp = self._base.log_prob(x) - _log1m_tanh_sq(x) - self._log_half
        return self._sum_event(lp)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self._log_prob_pre(self._pre_tanh(value))

    @property
    def mode(self) -> torch.Tensor:
        return self._squash(self.loc)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode

    @property
    def mean(self):
        raise NotImplementedError("TanhNormal has no closed-form mean; use .mode or average samples")

    def entropy(self):
        raise NotImplementedError("TanhNormal has no closed-form entropy; estimate it as -log_prob(rsample())")

    @property
    def support(self):
        return D.constraints.interval(self._mid - self._half, self._mid + self._half)

    def __repr__(self) -> str:
        return (f"TanhNormal(loc: {tuple(self.loc.shape)}, scale: {tuple(self.scale.shape)}, "
                f"low={self.low}, high={self.high})")


class TanhDelta(Delta):
    """A point mass at ``mid + half * tanh(param)``: a deterministic policy squashed into ``[low, high]``.

    ``rsample`` keeps the gradient to ``param`` (DDPG/TD3 actors train through it).

    Args:
        param: the pre-tanh value.
        low, high: bounds of the action box.
        **kwargs: passed to tensordict's ``Delta`` (``atol``, ``rtol``, ``event_shape``...).

    Example:
        >>> d = TanhDelta(torch.tensor([0.0, 100.0]), low=-2.0, high=2.0)
        >>> d.mode
        tensor([0., 2.])
    """

    def __init__(self, param: torch.Tensor, low=-1.0, high=1.0, **kwargs):
        mid, half = _bounds(low, high, param)
        self.low, self.high = low, high
        super().__init__(mid + half * torch.tanh(param), **kwargs)


class MaskedCategorical(D.Categorical):
    """A categorical over the classes a boolean ``mask`` allows (invalid actions get probability 0).

    ``log_prob`` of a masked-out class is ``-inf``; ``sample``/``mode`` never return one; ``entropy``
    counts only the allowed classes (no ``0 * -inf`` NaN).

    Args:
        logits / probs: unnormalised log-probabilities or probabilities, ``[*batch, n]`` (one of the two).
        mask: bool ``[*batch, n]`` (broadcastable), True where the class is allowed. Every row needs
            at least one allowed class.

    Example:
        >>> d = MaskedCategorical(logits=torch.zeros(3), mask=torch.tensor([True, False, True]))
        >>> d.probs
        tensor([0.5000, 0.0000, 0.5000])
        >>> d.log_prob(torch.tensor(1))
        tensor(-inf)
    """

    def __init__(self, logits: torch.Tensor | None = None, probs: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, validate_args=None):
        if (logits is None) == (probs is None):
            raise ValueError("MaskedCategorical: pass exactly one of logits or probs")
        if mask is None:
            raise ValueError("MaskedCategorical: mask is required (bool, True where an action is allowed)")
        if mask.dtype != torch.bool:
            raise TypeError(f"MaskedCategorical: mask must be a bool tensor, got dtype {mask.dtype}")
        if logits is None:
            logits = probs.log()
        mask = mask.to(logits.device)
        if not bool(mask.any(-1).all()):
            raise ValueError("MaskedCategorical: every row of mask needs at least one allowed (True) class")
        self.mask = mask.expand_as(logits) if mask.shape != logits.shape else mask
        super().__init__(logits=logits.masked_fill(~self.mask, -math.inf), validate_args=False)

    def entropy(self) -> torch.Tensor:
        logp = self.logits.masked_fill(~self.mask, 0.0)
        return -(self.probs * logp).sum(-1)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode


class MaskedOneHotCategorical(MaskedCategorical):
    """:class:`MaskedCategorical` whose samples are one-hot vectors (the last dim has size ``n``).

    Example:
        >>> d = MaskedOneHotCategorical(logits=torch.tensor([5.0, 0.0, 1.0]), mask=torch.tensor([False, True, True]))
        >>> d.mode
        tensor([0, 0, 1])
    """

    @property
    def event_shape(self):
        return self.logits.shape[-1:]

    def _one_hot(self, idx: torch.Tensor) -> torch.Tensor:
        return F.one_hot(idx, self.logits.shape[-1])

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self._one_hot(super().sample(sample_shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.argmax(-1))

    @property
    def mode(self) -> torch.Tensor:
        return self._one_hot(super().mode)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode
