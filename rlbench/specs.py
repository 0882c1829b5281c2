"""Tensor specifications: what shape, dtype, device and range a value may take.

A spec describes one entry of an environment's TensorDict (an observation, an action, a reward) or,
as a :class:`Composite`, a whole nested group of them. Specs carry the environment's batch size in
their leading dimensions: a batch of 4 CartPoles has ``action_spec.shape == (4,)``.

Every spec answers the same small set of questions:

- ``is_in(x)``: does ``x`` belong to the spec?  ``mismatch(x)`` says *why not*, in words.
- ``rand(shape)``, ``zero(shape)``: a random / all-zero member with extra leading dims ``shape``.
- ``project(x)``: the closest member of the spec to ``x`` (clamping, rounding, arg-max).
- ``expand(*shape)``, ``to(device)``, ``clone()``, ``==``.

Membership tolerates extra dims inserted at one position, so a ``[4, 20, 1]`` rollout of an env
whose action spec is ``[4, 1]`` is "in" the spec (the time dim sits between batch and event dims).
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from tensordict import TensorDict, TensorDictBase

__all__ = [
    "Spec",
    "Unbounded",
    "Bounded",
    "Categorical",
    "OneHot",
    "Binary",
    "MultiCategorical",
    "MultiOneHot",
    "Composite",
]

ShapeLike = "int | Sequence[int] | torch.Size"


def _size(shape) -> torch.Size:
    if shape is None:
        return torch.Size([])
    if isinstance(shape, int):
        return torch.Size([shape])
    return torch.Size(int(s) for s in shape)


def _device(device) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _insert_points(data_shape: torch.Size, spec_shape: torch.Size, max_b: int | None = None) -> list[int]:
    """Every position ``b`` where extra dims inserted into ``spec_shape`` give ``data_shape``.

    ``data_shape == spec_shape[:b] + extra + spec_shape[b:]``. Positions come rightmost first, so
    extra dims count as batch/time dims sitting just before the event dims whenever that is possible.
    ``max_b`` caps the position: specs whose last dim is an event dim (one-hot, binary, ...) never
    accept extra dims after it.
    """
    n, m = len(spec_shape), len(data_shape)
    if m < n:
        return []
    top = n if max_b is None else max(min(max_b, n), 0)
    out = []
    for b in range(top, -1, -1):
        tail = n - b
        if data_shape[:b] == spec_shape[:b] and data_shape[m - tail:] == spec_shape[b:]:
            out.append(b)
    return out


def _fmt_values(t: torch.Tensor) -> str:
    """Short printable form of a bound tensor: a scalar when all entries agree."""
    flat = t.reshape(-1)
    if flat.numel() and bool((flat == flat[0]).all()):
        v = flat[0].item()
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    if flat.numel() > 8:
        return f"[{', '.join(f'{v:.4g}' for v in flat[:6].tolist())}, ...]"
    return "[" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat.tolist()) + "]"


def _examples(x: torch.Tensor, bad: torch.Tensor, k: int = 3) -> list:
    """Up to ``k`` offending values of ``x`` (``bad`` is a bool mask broadcastable to ``x``)."""
    return x[bad.expand_as(x)].reshape(-1)[:k].tolist()


def _within(x: torch.Tensor, low, high) -> bool:
    """True when every element of ``x`` lies in ``[low, high]`` (scalars); NaN never does.

    One ``aminmax`` and two scalar reads: this runs on every env step (action validation), where
    each eager op costs microseconds, so it beats the element-wise ``(x >= low) & (x <= high)``.
    """
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(lo.item() >= low) and bool(hi.item() <= high)  # NaN compares False


def _check_int_dtype(cls: str, dtype: torch.dtype) -> None:
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise TypeError(f"{cls} needs an integer dtype (e.g. torch.int64), got {dtype}")


def _int_limits(dtype: torch.dtype) -> tuple[int, int, float]:
    """``(min, max, max_f)``: an integer dtype's range, and the largest float64 not above its max.

    Casting a float that is out of an integer dtype's range is undefined (int64 gives -2**63 for
    1e20), so floats are clamped to ``[min, max_f]`` before any cast.
    """
    info = torch.iinfo(dtype)
    max_f = float(info.max)
    if int(max_f) > info.max:  # float64 rounds int64's max up to 2**63
        max_f = math.nextafter(max_f, 0.0)
    return info.min, info.max, max_f


def _to_int64(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round any tensor to int64 without overflow, within the range of the integer ``dtype``.

    NaN becomes 0 and +-inf the ends of the range; the result is safe to cast to ``dtype``.
    """
    lo, hi, hi_f = _int_limits(dtype)
    if x.dtype == torch.bool:
        return x.to(torch.int64)
    if x.is_floating_point():
        x = torch.nan_to_num(x.to(torch.float64), nan=0.0).round().clamp(float(lo), hi_f)
        return x.to(torch.int64)
    return x.to(torch.int64).clamp(lo, hi)


class Spec:
    """Base class of leaf specs. Subclasses set ``shape``, ``dtype`` and ``device``.

    Subclasses implement ``_values_bad(x, b)`` (range check of a tensor whose shape fits the spec,
    with extra dims inserted at position ``b``), ``_rand(shape)``, ``_project(x)`` and
    ``_clone_with(shape, device)``.
    """

    shape: torch.Size
    dtype: torch.dtype
    device: torch.device
    # Trailing dims that extra (batch/time) dims may not be inserted after: 1 when the last dim is
    # an event dim (the categories of a one-hot vector), 0 when every dim could be a batch dim.
    _event_ndim: int = 0
    # True when the range differs between elements, so where extra dims sit changes the answer.
    _bounds_vary: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _insert_points(self, shape: torch.Size) -> list[int]:
        return _insert_points(shape, self.shape, self.ndim - self._event_ndim)

    def _shape_msg(self, got) -> str:
        where = "before the last dim" if self._event_ndim else "e.g. a time dim after the batch dims"
        return (
            f"expected shape {tuple(self.shape)} (optionally with extra dims inserted, {where}), "
            f"got {tuple(got)}"
        )

    # ----------------------------------------------------------------- membership
    def mismatch(self, x) -> str | None:
        """Explain why ``x`` is not in this spec, or return ``None`` if it is.

        Example:
            >>> Categorical(3).mismatch(torch.tensor(5))
            'values outside {0, ..., 2}, e.g. [5]'
        """
        if not isinstance(x, torch.Tensor):
            return f"expected a torch.Tensor, got {type(x).__name__}"
        if x.dtype != self.dtype:
            return f"expected dtype {self.dtype}, got {x.dtype}"
        if x.shape == self.shape:  # the common case (one env step): no search for extra dims
            return self._values_bad(x, self.ndim)
        points = self._insert_points(x.shape)
        if not points:
            return self._shape_msg(x.shape)
        first = None
        for b in points:
            why = self._values_bad(x, b)
            if why is None:
                return None
            first = first or why
            if not self._bounds_vary:  # every position gives the same answer
                break
        return first

    def is_in(self, x) -> bool:
        """True when ``x`` has this spec's dtype, a compatible shape and values in range."""
        return self.mismatch(x) is None

    def _values_bad(self, x: torch.Tensor, b: int) -> str | None:
        return None

    def _param_view(self, param: torch.Tensor, x: torch.Tensor, b: int) -> torch.Tensor:
        """Reshape a full-shape parameter (e.g. ``low``) so it broadcasts against ``x``."""
        extra = x.ndim - self.ndim
        if param.device != x.device:
            param = param.to(x.device)
        if not extra:
            return param
        return param.reshape(self.shape[:b] + (1,) * extra + self.shape[b:])

    # ---------------------------------------------------------------- generation
    def rand(self, shape=None) -> torch.Tensor:
        """A random member of the spec, with extra leading dims ``shape``."""
        return self._rand(_size(shape) + self.shape)

    def zero(self, shape=None) -> torch.Tensor:
        """An all-zero member of the spec (for one-hot specs, the first category)."""
        return torch.zeros(_size(shape) + self.shape, dtype=self.dtype, device=self.device)

    def project(self, x) -> torch.Tensor:
        """The member of the spec closest to ``x`` (same shape as ``x``, this spec's dtype).

        ``x`` may have any dtype and any values (NaN, +-inf, huge, negative); its shape must fit the
        spec as in :meth:`is_in`.
        """
        x = torch.as_tensor(x, device=self.device)
        if x.shape != self.shape and not self._insert_points(x.shape):
            raise ValueError(f"{type(self).__name__}.project: {self._shape_msg(x.shape)}")
        return self._project(x)

    def _b_of(self, x: torch.Tensor) -> int:
        """Where extra dims of ``x`` sit (the rightmost possible position)."""
        return self.ndim if x.shape == self.shape else self._insert_points(x.shape)[0]

    # ------------------------------------------------------------------ reshaping
    def expand(self, *shape) -> "Spec":
        """A copy with new leading dims: ``shape`` must end with this spec's shape.

        ``-1`` keeps the existing size of that dim.

        Example:
            >>> Bounded(-1.0, 1.0, shape=(3,)).expand(4, -1).shape
            torch.Size([4, 3])
        """
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = [int(s) for s in shape]
        if len(shape) < self.ndim:
            raise ValueError(
                f"cannot expand {type(self).__name__} of shape {tuple(self.shape)} to {tuple(shape)}: the new "
                f"shape has fewer dims; it must end with {tuple(self.shape)}"
            )
        offset = len(shape) - self.ndim
        for i, s in enumerate(self.shape):
            if shape[offset + i] == -1:
                shape[offset + i] = s
            elif shape[offset + i] != s:
                raise ValueError(
                    f"cannot expand {type(self).__name__} of shape {tuple(self.shape)} to {tuple(shape)}: the "
                    f"trailing dims must equal the spec's shape (only new leading dims can be added)"
                )
        if any(s < 0 for s in shape):
            raise ValueError(
                f"cannot expand {type(self).__name__} of shape {tuple(self.shape)} to {tuple(shape)}: -1 is only "
                f"allowed over the spec's existing dims, new leading dims need a size >= 0"
            )
        return self._clone_with(torch.Size(shape), self.device)

    def to(self, device) -> "Spec":
        """This spec on ``device`` (``self`` when it is already there)."""
        device = _device(device)
        if device == self.device:
            return self
        return self._clone_with(self.shape, device)

    def clone(self) -> "Spec":
        return self._clone_with(self.shape, self.device)

    def _clone_with(self, shape: torch.Size, device: torch.device) -> "Spec":  # pragma: no cover
        raise NotImplementedError

    def _eq_fields(self) -> tuple:
        return (type(self), self.shape, self.dtype, self.device)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Spec) or type(other) is not type(self):
            return False
        mine, theirs = self._eq_fields(), other._eq_fields()
        return all(
            torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(mine, theirs)
        )

    def __hash__(self):  # specs are mutable containers: hash by identity
        return id(self)

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self._extra_repr()
        extra = f", {extra}" if extra else ""
        return (
            f"{type(self).__name__}(shape={tuple(self.shape)}{extra}, dtype={str(self.dtype)[6:]}, "
            f"device={self.device})"
        )


class Unbounded(Spec):
    """Any value of the given shape and dtype.

    Args:
        shape: the full shape, batch dims first.
        dtype: any torch dtype (``rand`` draws normals for floats, integers in ``[-100, 100)``
            clipped to the dtype's range, fair coin flips for bool).
        device: where ``rand``/``zero`` put their tensors.

    Example:
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

    def _rand(self, shape):
        if self.dtype.is_floating_point:
            return torch.randn(shape, dtype=self.dtype, device=self.device)
        if self.dtype == torch.bool:
            return torch.randint(0, 2, shape, device=self.device).bool()
        lo, hi, _ = _int_limits(self.dtype)
        return torch.randint(max(-100, lo), min(100, hi), shape, dtype=self.dtype, device=self.device)

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

    def _rand(self, shape):
        if not self.dtype.is_floating_point:  # integers: uniform over {lo, ..., hi}
            lo, hi = self._lo.to(torch.float64), self._hi.to(torch.float64)
            u = torch.rand(shape, dtype=torch.float64, device=self.device)
            x = lo + torch.floor(u * (hi - lo + 1))
            return _to_int64(x, self.dtype).clamp(self._lo, self._hi).to(self.dtype)
        low, high = self.low, self.high
        u = torch.rand(shape, dtype=self.dtype, device=self.device)
        if self._finite:
            # low*(1-u) + high*u cannot overflow, unlike low + (high - low)*u for huge bounds
            out = low * (1 - u) + high * u
        else:
            lo_f, hi_f = torch.isfinite(low), torch.isfinite(high)
            low0, high0 = torch.where(lo_f, low, 0.0), torch.where(hi_f, high, 0.0)
            expo = torch.empty(shape, dtype=self.dtype, device=self.device).exponential_()
            out = torch.randn(shape, dtype=self.dtype, device=self.device)
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

    def _clone_with(self, shape, device):
        low = self.low.expand(shape) if shape != self.shape else self.low
        high = self.high.expand(shape) if shape != self.shape else self.high
        return Bounded(low.clone(), high.clone(), shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.low, self.high)

    def _extra_repr(self):
        return f"low={_fmt_values(self.low)}, high={_fmt_values(self.high)}"


class Categorical(Spec):
    """An integer in ``{0, ..., n - 1}`` per element (a discrete action as gymnasium's ``Discrete``).

    Args:
        n: the number of categories (>= 1).
        shape: the full shape (batch dims; there is no event dim).
        dtype: an integer dtype wide enough for ``n - 1``.
        device: where samples live.

    Example:
        >>> spec = Categorical(3)
        >>> spec.project(torch.tensor(7))
        tensor(2)
        >>> spec.is_in(torch.tensor(1))
        True
    """

    def __init__(self, n: int, shape=(), dtype: torch.dtype = torch.int64, device=None):
        if int(n) < 1:
            raise ValueError(f"Categorical needs n >= 1 categories, got n={n}")
        _check_int_dtype("Categorical", dtype)
        if int(n) - 1 > torch.iinfo(dtype).max:
            raise ValueError(f"Categorical: n={n} categories do not fit in {dtype}")
        self.n = int(n)
        self.shape = _size(shape)
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        if _within(x, 0, self.n - 1):
            return None
        out = (x < 0) | (x >= self.n)
        if bool(out.any()):
            return f"values outside {{0, ..., {self.n - 1}}}, e.g. {_examples(x, out)}"
        return None

    def _rand(self, shape):
        return torch.randint(0, self.n, shape, dtype=self.dtype, device=self.device)

    def _project(self, x):
        return _to_int64(x, torch.int64).clamp(0, self.n - 1).to(self.dtype)

    def to_one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """Categorical indices to a one-hot bool tensor with a trailing dim of size ``n``."""
        return torch.nn.functional.one_hot(x.long(), self.n).bool()

    def _clone_with(self, shape, device):
        return Categorical(self.n, shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.n,)

    def _extra_repr(self):
        return f"n={self.n}"


class OneHot(Spec):
    """A one-hot vector over ``n`` categories: trailing dim ``n``, exactly one entry set.

    Args:
        n: the number of categories (>= 1).
        shape: the full shape, ending with ``n`` (default ``(n,)``).
        dtype: bool by default; integer and float dtypes hold 0/1.
        device: where samples live.

    Example:
        >>> spec = OneHot(3)
        >>> spec.project(torch.tensor([0.1, 0.7, 0.2]))
        tensor([False,  True, False])
    """

    _event_ndim = 1

    def __init__(self, n: int, shape=None, dtype: torch.dtype = torch.bool, device=None):
        if int(n) < 1:
            raise ValueError(f"OneHot needs n >= 1 categories, got n={n}")
        self.n = int(n)
        self.shape = _size((self.n,) if shape is None else shape)
        if not self.shape or self.shape[-1] != self.n:
            raise ValueError(f"OneHot({n}): the last dim of shape must be n={n}, got shape {tuple(self.shape)}")
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        if x.dtype == torch.bool and _within(x.sum(-1), 1, 1):  # bool entries are 0/1 already
            return None
        ok = ((x == 0) | (x == 1)).all(-1) & (x.to(torch.int64).sum(-1) == 1)
        if not bool(ok.all()):
            example = x[~ok][0].tolist()
            return (
                f"not one-hot: each vector along the last dim (size {self.n}) needs exactly one 1 and the rest 0, "
                f"e.g. {example}"
            )
        return None

    def _rand(self, shape):
        idx = torch.randint(0, self.n, shape[:-1], device=self.device)
        return torch.nn.functional.one_hot(idx, self.n).to(self.dtype)

    def _project(self, x):
        if x.is_floating_point():
            x = torch.nan_to_num(x.to(torch.float64), nan=-math.inf)
        return torch.nn.functional.one_hot(x.to(torch.float64).argmax(-1), self.n).to(self.dtype)

    def zero(self, shape=None):
        out = torch.zeros(_size(shape) + self.shape, dtype=self.dtype, device=self.device)
        out[..., 0] = 1
        return out

    def to_categorical(self, x: torch.Tensor) -> torch.Tensor:
        """One-hot vectors to integer category indices (the trailing dim is removed)."""
        return x.to(torch.int64).argmax(-1)

    def _clone_with(self, shape, device):
        return OneHot(self.n, shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.n,)

    def _extra_repr(self):
        return f"n={self.n}"


class Binary(Spec):
    """``n`` independent 0/1 flags (gymnasium's ``MultiBinary``).

    Args:
        n: the number of flags (the last dim).
        shape: the full shape, ending with ``n`` (default ``(n,)``).
        dtype: int8 by default; bool, other integer and float dtypes hold 0/1 too.
        device: where samples live.

    Example:
        >>> Binary(4).is_in(torch.tensor([0, 1, 1, 0], dtype=torch.int8))
        True
    """

    _event_ndim = 1

    def __init__(self, n: int, shape=None, dtype: torch.dtype = torch.int8, device=None):
        self.n = int(n)
        self.shape = _size((self.n,) if shape is None else shape)
        if not self.shape or self.shape[-1] != self.n:
            raise ValueError(f"Binary({n}): the last dim of shape must be n={n}, got shape {tuple(self.shape)}")
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        if self.dtype == torch.bool or (not x.is_floating_point() and _within(x, 0, 1)):
            return None
        ok = (x == 0) | (x == 1)
        if not bool(ok.all()):
            return f"values other than 0 and 1, e.g. {_examples(x, ~ok)}"
        return None

    def _rand(self, shape):
        return torch.randint(0, 2, shape, device=self.device).to(self.dtype)

    def _project(self, x):
        if x.is_floating_point():  # threshold at 0.5; NaN counts as 0
            return (torch.nan_to_num(x, nan=0.0) > 0.5).to(self.dtype)
        return (x > 0).to(self.dtype)

    def _clone_with(self, shape, device):
        return Binary(self.n, shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.n,)

    def _extra_repr(self):
        return f"n={self.n}"


class MultiCategorical(Spec):
    """Several categorical values side by side: entry ``i`` lies in ``{0, ..., nvec[i] - 1}``.

    Args:
        nvec: the number of categories of each entry (a 1-D sequence, every entry >= 1).
        shape: the full shape, ending with ``len(nvec)`` (default ``(len(nvec),)``).
        dtype: an integer dtype.
        device: where samples live.

    Example:
        >>> spec = MultiCategorical([2, 3])
        >>> spec.project(torch.tensor([5, 5]))
        tensor([1, 2])
    """

    _event_ndim = 1

    def __init__(self, nvec, shape=None, dtype: torch.dtype = torch.int64, device=None):
        nvec = torch.as_tensor(nvec, dtype=torch.int64).reshape(-1)
        if bool((nvec < 1).any()):
            raise ValueError(f"MultiCategorical needs every nvec entry >= 1, got {nvec.tolist()}")
        _check_int_dtype("MultiCategorical", dtype)
        if len(nvec) and int(nvec.max()) - 1 > torch.iinfo(dtype).max:
            raise ValueError(f"MultiCategorical: nvec={nvec.tolist()} does not fit in {dtype}")
        self.nvec = nvec.to(_device(device))
        self.shape = _size((len(nvec),) if shape is None else shape)
        if not self.shape or self.shape[-1] != len(nvec):
            raise ValueError(
                f"MultiCategorical: the last dim of shape must be len(nvec)={len(nvec)}, got {tuple(self.shape)}"
            )
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        nvec = self.nvec.to(x.device)
        out = (x < 0) | (x >= nvec)
        if bool(out.any()):
            return f"values outside [0, nvec) with nvec={nvec.tolist()}, e.g. {_examples(x, out)}"
        return None

    def _rand(self, shape):
        u = torch.rand(shape, dtype=torch.float64, device=self.device)
        return torch.minimum((u * self.nvec).long(), self.nvec - 1).to(self.dtype)

    def _project(self, x):
        x = _to_int64(x, torch.int64).clamp_min(0)
        return torch.minimum(x, self.nvec - 1).to(self.dtype)

    def _clone_with(self, shape, device):
        return MultiCategorical(self.nvec.clone(), shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.nvec,)

    def _extra_repr(self):
        return f"nvec={self.nvec.tolist()}"


class MultiOneHot(Spec):
    """Several one-hot vectors concatenated along the last dim (sizes ``nvec``).

    Args:
        nvec: the number of categories of each one-hot segment (every entry >= 1).
        shape: the full shape, ending with ``sum(nvec)`` (default ``(sum(nvec),)``).
        dtype: bool by default.
        device: where samples live.

    Example:
        >>> spec = MultiOneHot([2, 3])
        >>> spec.rand().shape
        torch.Size([5])
    """

    _event_ndim = 1

    def __init__(self, nvec, shape=None, dtype: torch.dtype = torch.bool, device=None):
        self.nvec = [int(n) for n in torch.as_tensor(nvec).reshape(-1).tolist()]
        if not self.nvec or any(n < 1 for n in self.nvec):
            raise ValueError(f"MultiOneHot needs a non-empty nvec with every entry >= 1, got {self.nvec}")
        total = sum(self.nvec)
        self.shape = _size((total,) if shape is None else shape)
        if not self.shape or self.shape[-1] != total:
            raise ValueError(f"MultiOneHot: the last dim of shape must be sum(nvec)={total}, got {tuple(self.shape)}")
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        for i, part in enumerate(x.split(self.nvec, -1)):
            why = OneHot(self.nvec[i], part.shape)._values_bad(part, b)
            if why:
                return f"segment {i} (size {self.nvec[i]}) is {why}"
        return None

    def _rand(self, shape):
        parts = [OneHot(n, shape[:-1] + (n,), self.dtype, self.device)._rand(shape[:-1] + (n,)) for n in self.nvec]
        return torch.cat(parts, -1)

    def _project(self, x):
        parts = [OneHot(n, dtype=self.dtype)._project(p) for n, p in zip(self.nvec, x.split(self.nvec, -1))]
        return torch.cat(parts, -1)

    def zero(self, shape=None):
        parts = [OneHot(n, self.shape[:-1] + (n,), self.dtype, self.device).zero(shape) for n in self.nvec]
        return torch.cat(parts, -1)

    def _clone_with(self, shape, device):
        return MultiOneHot(self.nvec, shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (tuple(self.nvec),)

    def _extra_repr(self):
        return f"nvec={self.nvec}"


def _key_tuple(key) -> tuple:
    if isinstance(key, str):
        return (key,)
    if isinstance(key, tuple) and key and all(isinstance(k, str) for k in key):
        return key
    raise KeyError(f"spec keys are strings or tuples of strings, got {key!r}")


def _key_str(key) -> str:
    key = _key_tuple(key)
    return repr(key[0]) if len(key) == 1 else repr(key)


class Composite:
    """A nested dict of specs describing a TensorDict, with a batch ``shape`` shared by all entries.

    Keys may be nested: ``spec["next", "observation"]`` and ``spec[("next", "observation")]`` are the
    same. Every entry's shape must start with the composite's ``shape``.

    Example:
        >>> spec = Composite(observation=Unbounded((4,)), action=Categorical(2))
        >>> sorted(spec.keys())
        ['action', 'observation']
        >>> td = spec.rand()
        >>> spec.is_in(td)
        True
    """

    def __init__(self, specs: dict | None = None, shape=(), device=None, **kwargs):
        self.shape = _size(shape)
        self.device = _device(device)
        self._specs: dict[str, Spec | Composite] = {}
        for key, spec in {**(specs or {}), **kwargs}.items():
            self[key] = spec

    # ------------------------------------------------------------ dict interface
    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __setitem__(self, key, spec) -> None:
        key = _key_tuple(key)
        if len(key) > 1:
            sub = self._specs.get(key[0])
            if sub is None:
                sub = self._specs[key[0]] = Composite(shape=self.shape, device=self.device)
            elif not isinstance(sub, Composite):
                raise KeyError(f"cannot set {key!r}: {key[0]!r} holds a leaf spec, not a Composite")
            sub[key[1:]] = spec
            return
        if isinstance(spec, dict):
            spec = Composite(spec, shape=self.shape, device=self.device)
        if not isinstance(spec, (Spec, Composite)):
            raise TypeError(f"entry {key[0]!r} must be a Spec or Composite, got {type(spec).__name__}")
        if spec.shape[: self.ndim] != self.shape:
            raise ValueError(
                f"entry {key[0]!r} has shape {tuple(spec.shape)}, which does not start with the Composite's "
                f"batch shape {tuple(self.shape)}; expand it first, e.g. spec.expand({(*self.shape, *spec.shape)})"
            )
        self._specs[key[0]] = spec

    def __getitem__(self, key):
        key = _key_tuple(key)
        try:
            spec = self._specs[key[0]]
        except KeyError:
            raise KeyError(f"no spec under key {key[0]!r}; available keys: {sorted(self._specs)}") from None
        if len(key) == 1:
            return spec
        if not isinstance(spec, Composite):
            raise KeyError(f"{key[0]!r} is a leaf spec; it has no entry {key[1:]!r}")
        return spec[key[1:]]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __delitem__(self, key) -> None:
        key = _key_tuple(key)
        if len(key) > 1:
            sub = self[key[:-1]]
            if not isinstance(sub, Composite):
                raise KeyError(f"cannot delete {key!r}: {key[:-1]!r} is a leaf spec, not a Composite")
            del sub[key[-1]]
            return
        if key[0] not in self._specs:
            raise KeyError(f"no spec under key {key[0]!r} to delete; available keys: {sorted(self._specs)}")
        del self._specs[key[0]]

    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def keys(self, include_nested: bool = False, leaves_only: bool = False) -> list:
        """Entry keys; with ``include_nested`` nested keys come as tuples."""
        out = []
        for k, spec in self._specs.items():
            is_comp = isinstance(spec, Composite)
            if not (leaves_only and is_comp):
                out.append(k)
            if include_nested and is_comp:
                out.extend((k, *_key_tuple(sub)) for sub in spec.keys(True, leaves_only))
        return out

    def items(self, include_nested: bool = False, leaves_only: bool = False):
        return [(k, self[k]) for k in self.keys(include_nested, leaves_only)]

    def values(self, include_nested: bool = False, leaves_only: bool = False):
        return [self[k] for k in self.keys(include_nested, leaves_only)]

    def update(self, other) -> "Composite":
        """Set every entry of ``other`` (a Composite or a dict) in place; returns ``self``."""
        for k, v in (other.items() if isinstance(other, Composite) else dict(other).items()):
            self[k] = v
        return self

    def select(self, *keys) -> "Composite":
        """A new Composite with only ``keys`` (nested keys allowed; entries are shared, not copied)."""
        out = Composite(shape=self.shape, device=self.device)
        for k in keys:
            out[k] = self[k]
        return out

    def exclude(self, *keys) -> "Composite":
        """A copy without ``keys`` (keys that are absent are ignored)."""
        out = self.clone()
        for k in keys:
            if k in out:
                del out[k]
        return out

    def empty(self) -> "Composite":
        return Composite(shape=self.shape, device=self.device)

    # ----------------------------------------------------------------- membership
    def mismatches(self, td, prefix: tuple = ()) -> list[str]:
        """Every way ``td`` differs from this spec, one readable line per key.

        Keys of ``td`` that the spec does not describe are allowed. ``td``'s batch size must be this
        spec's ``shape``, optionally with extra dims inserted (a ``[4, T]`` rollout of a ``[4]`` env).

        Example:
            >>> spec = Composite(observation=Unbounded((3,)), done=Binary(1, dtype=torch.bool))
            >>> for line in spec.mismatches(TensorDict(observation=torch.zeros(3, dtype=torch.int64))):
            ...     print(line)
            key 'observation': expected dtype torch.float32, got torch.int64
            key 'done': missing from the data (expected Binary(shape=(1,), n=1, dtype=bool, device=cpu))
        """
        where = "the data" if not prefix else f"key {_key_str(prefix)}"
        if not isinstance(td, TensorDictBase):
            return [f"{where}: expected a TensorDict, got {type(td).__name__}"]
        batch = getattr(td, "batch_size", None)
        if batch is not None and len(batch) >= self.ndim and not _insert_points(batch, self.shape):
            return [
                f"{where}: expected batch size {tuple(self.shape)} (optionally with extra dims inserted), "
                f"got batch size {tuple(batch)}"
            ]
        out = []
        for k, spec in self._specs.items():
            key = prefix + (k,)
            name = _key_str(key)
            if k not in td.keys():
                out.append(f"key {name}: missing from the data (expected {spec!r})")
                continue
            value = td.get(k)
            if isinstance(spec, Composite):
                if not isinstance(value, TensorDictBase):
                    out.append(f"key {name}: expected a nested TensorDict, got {type(value).__name__}")
                else:
                    out.extend(spec.mismatches(value, key))
                continue
            why = spec.mismatch(value)
            if why:
                out.append(f"key {name}: {why}")
        return out

    def mismatch(self, td) -> str | None:
        """All of :meth:`mismatches` in one string, or ``None`` when ``td`` is in the spec."""
        found = self.mismatches(td)
        return "\n".join(found) if found else None

    def is_in(self, td) -> bool:
        return not self.mismatches(td)

    # ---------------------------------------------------------------- generation
    def _build(self, fn, shape) -> TensorDict:
        shape = _size(shape)
        data = {k: (s._build(fn, shape) if isinstance(s, Composite) else fn(s, shape)) for k, s in self._specs.items()}
        return TensorDict(data, batch_size=shape + self.shape, device=self.device)

    def rand(self, shape=None) -> TensorDict:
        return self._build(lambda s, sh: s.rand(sh), shape)

    def zero(self, shape=None) -> TensorDict:
        return self._build(lambda s, sh: s.zero(sh), shape)

    def project(self, td) -> TensorDict:
        """A shallow copy of ``td`` with every entry the spec describes projected into it."""
        out = td.copy()
        for k, spec in self._specs.items():
            if k in td.keys():
                out.set(k, spec.project(td.get(k)))
        return out

    # ------------------------------------------------------------------ reshaping
    def expand(self, *shape) -> "Composite":
        """A copy with new leading batch dims (``-1`` keeps an existing dim), applied to every entry.

        Example:
            >>> Composite(observation=Unbounded((3,))).expand(4)["observation"].shape
            torch.Size([4, 3])
        """
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = [int(s) for s in shape]
        offset = len(shape) - self.ndim
        if offset < 0 or any(shape[offset + i] not in (-1, s) for i, s in enumerate(self.shape)):
            raise ValueError(
                f"cannot expand a Composite of shape {tuple(self.shape)} to {tuple(shape)}: the new shape must "
                f"end with {tuple(self.shape)} (or -1 in those dims); only new leading dims can be added"
            )
        shape[offset:] = self.shape
        if any(s < 0 for s in shape):
            raise ValueError(
                f"cannot expand a Composite of shape {tuple(self.shape)} to {tuple(shape)}: -1 is only allowed "
                f"over existing dims, new leading dims need a size >= 0"
            )
        shape = torch.Size(shape)
        out = Composite(shape=shape, device=self.device)
        for k, spec in self._specs.items():
            out[k] = spec.expand(*shape, *spec.shape[self.ndim:])
        return out

    def to(self, device) -> "Composite":
        device = _device(device)
        out = Composite(shape=self.shape, device=device)
        for k, spec in self._specs.items():
            out[k] = spec.to(device)
        return out

    def clone(self) -> "Composite":
        out = Composite(shape=self.shape, device=self.device)
        for k, spec in self._specs.items():
            out[k] = spec.clone()
        return out

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Composite)
            and self.shape == other.shape
            and self.device == other.device
            and self._specs.keys() == other._specs.keys()
            and all(self._specs[k] == other._specs[k] for k in self._specs)
        )

    def __hash__(self):
        return id(self)

    def __repr__(self) -> str:
        lines = [f"Composite(shape={tuple(self.shape)}, device={self.device}"]
        for k, spec in self._specs.items():
            body = repr(spec).replace("\n", "\n    ")
            lines.append(f"    {k}: {body}")
        return "\n".join(lines) + ")"
