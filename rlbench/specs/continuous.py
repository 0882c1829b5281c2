"""Continuous specs: ``Unbounded`` and ``Bounded`` (a box)."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._utils import _device, _examples, _fmt_values, _int_limits, _size, _to_int64, _within
from .base import Spec

__all__ = ["Unbounded", "Bounded", "ContinuousBox"]


class ContinuousBox(NamedTuple):
    """The ``low`` and ``high`` bounds of a :class:`Bounded` spec, as ``spec.space`` gives them.

    Example:
        >>> from rlbench.specs import Bounded
        >>> low, high = Bounded(-2.0, 2.0, shape=(1,)).space
        >>> low, high
        (tensor([-2.]), tensor([2.]))
    """

    low: torch.Tensor
    high: torch.Tensor


class Unbounded(Spec):
    """Any value of the given shape and dtype.

    Args:
        shape: the full shape, batch dims first.
        dtype: any torch dtype (``rand`` draws normals for floats, integers in ``[-100, 100)``
            clipped to the dtype's range, fair coin flips for bool).
        device: where ``rand``/``zero`` put their tensors.

    Example:
        >>> import torch
        >>> from rlbench.specs import Unbounded
        >>> spec = Unbounded(shape=(3,))
        >>> spec.rand().shape
        torch.Size([3])
        >>> spec.is_in(torch.zeros(3))
        True
    """

    def __init__(self, shape=(), dtype: torch.dtype = torch.float32, device=None):
        self.shape = _size(shape)
        self.dtype = dtype
        self.device = _device(device)

    def _rand(self, shape, generator=None):
        g = generator
        if self.dtype.is_floating_point:
            return torch.randn(shape, dtype=self.dtype, device=self.device, generator=g)
        if self.dtype == torch.bool:
            return torch.randint(0, 2, shape, device=self.device, generator=g).bool()
        lo, hi, _ = _int_limits(self.dtype)
        return torch.randint(max(-100, lo), min(100, hi), shape, dtype=self.dtype, device=self.device, generator=g)

    def _project(self, x):
        if self.dtype.is_floating_point or self.dtype == torch.bool or self.dtype.is_complex:
            return x.to(self.dtype)
        return _to_int64(x, self.dtype).to(self.dtype)  # round, and clamp rather than wrap around

    def _clone_with(self, shape, device):
        return Unbounded(shape, self.dtype, device)


class Bounded(Spec):
    """Values in the closed box ``[low, high]`` (element-wise).

    Args:
        low, high: scalars or tensors broadcastable to ``shape``. Infinite bounds are allowed
            (``rand`` then samples a normal or an exponential on the open side, as gymnasium's
            ``Box.sample`` does); NaN bounds are not.
        shape: the full shape; taken from ``low``/``high`` when omitted.
        dtype: float32 by default (or the common dtype of tensor bounds). With an integer dtype the
            members are the integers in ``[ceil(low), floor(high)]``.
        device: where the bounds and samples live.

    Example:
        >>> import torch
        >>> from rlbench.specs import Bounded
        >>> spec = Bounded(-2.0, 2.0, shape=(1,))
        >>> spec.project(torch.tensor([5.0]))
        tensor([2.])
        >>> spec.is_in(spec.rand((10,)))
        True
    """

    def __init__(self, low, high, shape=None, dtype: torch.dtype | None = None, device=None):
        low_t, high_t = torch.as_tensor(low), torch.as_tensor(high)
        if dtype is None:
            dtype = low_t.dtype if low_t.dtype == high_t.dtype and low_t.is_floating_point() else torch.float32
            if not low_t.is_floating_point() and not high_t.is_floating_point() and low_t.ndim + high_t.ndim:
                dtype = torch.promote_types(low_t.dtype, high_t.dtype)
        if dtype == torch.bool or dtype.is_complex:
            raise TypeError(f"Bounded needs a real floating or integer dtype, got {dtype} (use Binary for flags)")
        self.dtype = dtype
        self.device = _device(device)
        shape = torch.broadcast_shapes(low_t.shape, high_t.shape) if shape is None else _size(shape)
        self.shape = _size(shape)
        try:
            low_t = low_t.to(self.device).expand(self.shape)
            high_t = high_t.to(self.device).expand(self.shape)
        except RuntimeError as err:
            raise ValueError(
                f"Bounded: low {tuple(low_t.shape)} and high {tuple(high_t.shape)} do not broadcast to shape "
                f"{tuple(self.shape)}"
            ) from err
        if dtype.is_floating_point:
            low_t, high_t = low_t.to(dtype), high_t.to(dtype)
        else:  # keep the bounds as given (they may be +-inf or fractional); the integer range is below
            low_t, high_t = low_t.to(torch.float64), high_t.to(torch.float64)
        if bool(torch.isnan(low_t).any() or torch.isnan(high_t).any()):
            raise ValueError(f"Bounded: low and high must not be NaN, got low={low_t} high={high_t}")
        if bool((low_t > high_t).any()):
            raise ValueError(f"Bounded: low must be <= high everywhere, got low={low_t} high={high_t}")
        self.low, self.high = low_t.contiguous(), high_t.contiguous()
        self._finite = bool(torch.isfinite(self.low).all() and torch.isfinite(self.high).all())
        if dtype.is_floating_point:
            lo, hi = self.low, self.high
        else:
            # Integer members are the integers in [ceil(low), floor(high)] within the dtype's range,
            # kept as exact int64 tensors (float64 cannot hold every int64).
            imin, imax, imax_f = _int_limits(dtype)
            lo = self.low.ceil().clamp(float(imin), imax_f).to(torch.int64)
            hi = self.high.floor().clamp(float(imin), imax_f).to(torch.int64)
            hi = torch.where(self.high > imax_f, torch.full_like(hi, imax), hi)
            if bool((lo > hi).any()):
                raise ValueError(
                    f"Bounded: no {dtype} value lies in [low, high] (low={_fmt_values(self.low)}, "
                    f"high={_fmt_values(self.high)})"
                )
        self._lo, self._hi = lo, hi  # the bounds membership is checked against (dtype's members)
        flat_lo, flat_hi = lo.reshape(-1), hi.reshape(-1)
        uniform = bool(flat_lo.numel()) and bool((flat_lo == flat_lo[0]).all() and (flat_hi == flat_hi[0]).all())
        # Scalar bounds make every check independent of where extra dims sit (and cheaper).
        self._lo_s = flat_lo[0].item() if uniform else None
        self._hi_s = flat_hi[0].item() if uniform else None
        self._bounds_vary = not uniform

    def _bounds_for(self, x, b):
        if self._lo_s is not None:
            return self._lo_s, self._hi_s
        return self._param_view(self._lo, x, b), self._param_view(self._hi, x, b)

    def _values_bad(self, x, b):
        if self._lo_s is not None and _within(x, self._lo_s, self._hi_s):
            return None
        lo, hi = self._bounds_for(x, b)
        ok = (x >= lo) & (x <= hi)  # NaN fails both comparisons, so it is caught too
        if not bool(ok.all()):
            return (
                f"values outside [{_fmt_values(self._lo)}, {_fmt_values(self._hi)}], "
                f"e.g. {_examples(x, ~ok)}"
            )
        return None

    def _rand(self, shape, generator=None):
        g = generator
        if not self.dtype.is_floating_point:  # integers: uniform over {lo, ..., hi}
            lo, hi = self._lo.to(torch.float64), self._hi.to(torch.float64)
            u = torch.rand(shape, dtype=torch.float64, device=self.device, generator=g)
            x = lo + torch.floor(u * (hi - lo + 1))
            return _to_int64(x, self.dtype).clamp(self._lo, self._hi).to(self.dtype)
        low, high = self.low, self.high
        u = torch.rand(shape, dtype=self.dtype, device=self.device, generator=g)
        if self._finite:
            # low*(1-u) + high*u cannot overflow, unlike low + (high - low)*u for huge bounds
            out = low * (1 - u) + high * u
        else:
            lo_f, hi_f = torch.isfinite(low), torch.isfinite(high)
            low0, high0 = torch.where(lo_f, low, 0.0), torch.where(hi_f, high, 0.0)
            expo = torch.empty(shape, dtype=self.dtype, device=self.device).exponential_(generator=g)
            out = torch.randn(shape, dtype=self.dtype, device=self.device, generator=g)
            out = torch.where(lo_f & hi_f, low0 * (1 - u) + high0 * u, out)
            out = torch.where(lo_f & ~hi_f, low0 + expo, out)
            out = torch.where(~lo_f & hi_f, high0 - expo, out)
        return torch.clamp(out, low, high)  # rounding can step just outside the box

    def _project(self, x):
        b = self._b_of(x)
        if self.dtype.is_floating_point:
            x = x.to(self.dtype)
            if self._lo_s is not None:
                lo, hi = self._lo_s, self._hi_s
                mid = lo if math.isfinite(lo) else (hi if math.isfinite(hi) else 0.0)
                return torch.nan_to_num(x, nan=mid, posinf=math.inf, neginf=-math.inf).clamp(lo, hi)
            lo, hi = self._bounds_for(x, b)
            mid = torch.where(torch.isfinite(lo), lo, torch.where(torch.isfinite(hi), hi, 0.0))
            x = torch.where(torch.isnan(x), mid.expand_as(x), x)
            return torch.maximum(torch.minimum(x, hi), lo)
        lo, hi = self._bounds_for(x, b)
        x = _to_int64(x, self.dtype)
        if self._lo_s is not None:
            return x.clamp(lo, hi).to(self.dtype)
        return torch.maximum(torch.minimum(x, hi), lo).to(self.dtype)

    def zero(self, shape=None):
        # zero may lie outside the box (e.g. [1, 2]): use the projected zero so it is a member
        return self._project(torch.zeros(_size(shape) + self.shape, dtype=self.dtype, device=self.device))

    @property
    def space(self) -> ContinuousBox:
        """The box as ``space.low`` / ``space.high`` (TorchRL's spelling; the same tensors as ``low``/``high``)."""
        return ContinuousBox(self.low, self.high)

    def _unbatched(self, batch_ndim):
        if not batch_ndim:
            return self.clone()
        first = (0,) * batch_ndim
        low, high = self.low[first], self.high[first]
        if not (bool((self.low == low).all()) and bool((self.high == high).all())):
            raise ValueError(
                f"Bounded.unbatched({batch_ndim}): the bounds differ between the elements of the batch "
                f"(low={_fmt_values(self.low)}, high={_fmt_values(self.high)}), so no one spec describes them all"
            )
        return Bounded(low.clone(), high.clone(), self.shape[batch_ndim:], self.dtype, self.device)

    def _clone_with(self, shape, device):
        low = self.low.expand(shape) if shape != self.shape else self.low
        high = self.high.expand(shape) if shape != self.shape else self.high
        return Bounded(low.clone(), high.clone(), shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.low, self.high)

    def _extra_repr(self):
        return f"low={_fmt_values(self.low)}, high={_fmt_values(self.high)}"
