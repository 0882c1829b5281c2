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
from tensordict import TensorDict

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


def _insert_point(data_shape: torch.Size, spec_shape: torch.Size) -> int | None:
    """Where extra dims were inserted into ``spec_shape`` to give ``data_shape`` (None if nowhere).

    The rightmost insertion point wins, so extra dims count as batch dims whenever that is possible.
    """
    n, m = len(spec_shape), len(data_shape)
    if m < n:
        return None
    for b in range(n, -1, -1):
        tail = n - b
        if data_shape[:b] == spec_shape[:b] and data_shape[m - tail:] == spec_shape[b:]:
            return b
    return None


def _fmt_values(t: torch.Tensor) -> str:
    """Short printable form of a bound tensor: a scalar when all entries agree."""
    flat = t.reshape(-1)
    if flat.numel() and bool((flat == flat[0]).all()):
        v = flat[0].item()
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    if flat.numel() > 8:
        return f"[{', '.join(f'{v:.4g}' for v in flat[:6].tolist())}, ...]"
    return "[" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat.tolist()) + "]"


class Spec:
    """Base class of leaf specs. Subclasses set ``shape``, ``dtype`` and ``device``.

    Subclasses implement ``_values_ok(x, view)`` (range check on a correctly shaped tensor),
    ``_rand(shape)``, ``_project(x)`` and ``_clone_with(shape, device)``.
    """

    shape: torch.Size
    dtype: torch.dtype
    device: torch.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    # ----------------------------------------------------------------- membership
    def mismatch(self, x) -> str | None:
        """Explain why ``x`` is not in this spec, or return ``None`` if it is."""
        if not isinstance(x, torch.Tensor):
            return f"expected a torch.Tensor, got {type(x).__name__}"
        if x.dtype != self.dtype:
            return f"expected dtype {self.dtype}, got {x.dtype}"
        b = _insert_point(x.shape, self.shape)
        if b is None:
            return f"expected shape {tuple(self.shape)} (optionally with extra batch dims), got {tuple(x.shape)}"
        bad = self._values_bad(x, b)
        if bad:
            return bad
        return None

    def is_in(self, x) -> bool:
        """True when ``x`` has this spec's dtype, a compatible shape and values in range."""
        return self.mismatch(x) is None

    def _values_bad(self, x: torch.Tensor, b: int) -> str | None:
        return None

    def _param_view(self, param: torch.Tensor, x: torch.Tensor, b: int) -> torch.Tensor:
        """Reshape a full-shape parameter (e.g. ``low``) so it broadcasts against ``x``."""
        extra = x.ndim - self.ndim
        shape = self.shape[:b] + (1,) * extra + self.shape[b:]
        return param.to(x.device).reshape(shape)

    # ---------------------------------------------------------------- generation
    def rand(self, shape=None) -> torch.Tensor:
        """A random member of the spec, with extra leading dims ``shape``."""
        return self._rand(_size(shape) + self.shape)

    def zero(self, shape=None) -> torch.Tensor:
        """An all-zero member of the spec (for one-hot specs, the first category)."""
        return torch.zeros(_size(shape) + self.shape, dtype=self.dtype, device=self.device)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The member of the spec closest to ``x`` (same shape as ``x``, this spec's dtype)."""
        return self._project(torch.as_tensor(x, device=self.device))

    # ------------------------------------------------------------------ reshaping
    def expand(self, *shape) -> "Spec":
        """A copy with new leading dims: ``shape`` must end with this spec's shape.

        ``-1`` keeps the existing size of that dim.
        """
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = list(shape)
        if len(shape) < self.ndim:
            raise ValueError(f"cannot expand a spec of shape {tuple(self.shape)} to {tuple(shape)}: fewer dims")
        offset = len(shape) - self.ndim
        for i, s in enumerate(self.shape):
            if shape[offset + i] == -1:
                shape[offset + i] = s
            elif shape[offset + i] != s:
                raise ValueError(
                    f"cannot expand a spec of shape {tuple(self.shape)} to {tuple(shape)}: "
                    f"the trailing dims must equal the spec's shape"
                )
        if any(s < 0 for s in shape):
            raise ValueError(f"cannot expand to {tuple(shape)}: -1 is only allowed over existing dims")
        return self._clone_with(torch.Size(shape), self.device)

    def to(self, device) -> "Spec":
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
        return torch.randint(-100, 100, shape, dtype=self.dtype, device=self.device)

    def _project(self, x):
        return x.to(self.dtype)

    def _clone_with(self, shape, device):
        return Unbounded(shape, self.dtype, device)


class Bounded(Spec):
    """Values in the closed box ``[low, high]`` (element-wise).

    ``low`` and ``high`` are scalars or tensors broadcastable to ``shape``; when ``shape`` is omitted
    it is taken from them. Infinite bounds are allowed (``rand`` then samples a normal or exponential
    on the open side, as gymnasium's ``Box.sample`` does).

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
        else:  # keep the bounds wide enough to hold +-inf while checking integer specs
            low_t, high_t = low_t.to(torch.float64), high_t.to(torch.float64)
        if bool((low_t > high_t).any()):
            raise ValueError(f"Bounded: low must be <= high everywhere, got low={low_t} high={high_t}")
        self.low, self.high = low_t.contiguous(), high_t.contiguous()
        self._finite = bool(torch.isfinite(self.low).all() and torch.isfinite(self.high).all())
        self._span = (self.high - self.low) if self._finite else None

    def _values_bad(self, x, b):
        low, high = self._param_view(self.low, x, b), self._param_view(self.high, x, b)
        out = (x < low) | (x > high)
        if x.is_floating_point():
            out = out | torch.isnan(x)
        if bool(out.any()):
            bad = x[out].reshape(-1)[:3].tolist()
            return f"values outside [{_fmt_values(self.low)}, {_fmt_values(self.high)}], e.g. {bad}"
        return None

    def _rand(self, shape):
        lead = shape[: len(shape) - self.ndim]
        if self.dtype.is_floating_point:
            if self._finite:
                return self.low + self._span * torch.rand(shape, dtype=self.dtype, device=self.device)
            return self._rand_unbounded(lead, shape)
        # integers: uniform over {low, ..., high}
        low, high = self.low.clamp(-(2**31), 2**31 - 1), self.high.clamp(-(2**31), 2**31 - 1)
        u = torch.rand(shape, dtype=torch.float64, device=self.device)
        return torch.minimum(low + torch.floor(u * (high - low + 1)), high).to(self.dtype)

    def _rand_unbounded(self, lead, shape):
        low, high = self.low.expand(shape), self.high.expand(shape)
        lo_f, hi_f = torch.isfinite(low), torch.isfinite(high)
        uniform = low + (high - low) * torch.rand(shape, dtype=self.dtype, device=self.device)
        normal = torch.randn(shape, dtype=self.dtype, device=self.device)
        expo = torch.empty(shape, dtype=self.dtype, device=self.device).exponential_()
        out = torch.where(lo_f & hi_f, uniform, normal)
        out = torch.where(lo_f & ~hi_f, low + expo, out)
        out = torch.where(~lo_f & hi_f, high - expo, out)
        return out

    def _project(self, x):
        low, high = self.low, self.high
        if x.ndim > self.ndim:
            b = _insert_point(x.shape, self.shape)
            if b is not None:
                low, high = self._param_view(low, x, b), self._param_view(high, x, b)
        if self.dtype.is_floating_point:
            x = x.to(self.dtype)
            mid = torch.where(torch.isfinite(low), low, torch.where(torch.isfinite(high), high, 0.0))
            x = torch.where(torch.isnan(x), mid.to(x.dtype).expand_as(x), x)
            return torch.maximum(torch.minimum(x, high), low)
        x = x.to(torch.float64)
        x = torch.nan_to_num(x, nan=0.0).round()
        return torch.maximum(torch.minimum(x, high), low).to(self.dtype)

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
        self.n = int(n)
        self.shape = _size(shape)
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        out = (x < 0) | (x >= self.n)
        if bool(out.any()):
            return f"values outside {{0, ..., {self.n - 1}}}, e.g. {x[out].reshape(-1)[:3].tolist()}"
        return None

    def _rand(self, shape):
        return torch.randint(0, self.n, shape, dtype=self.dtype, device=self.device)

    def _project(self, x):
        if x.is_floating_point():
            x = torch.nan_to_num(x, nan=0.0, posinf=self.n - 1, neginf=0).round()
        return x.clamp(0, self.n - 1).to(self.dtype)

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

    Example:
        >>> spec = OneHot(3)
        >>> spec.project(torch.tensor([0.1, 0.7, 0.2]))
        tensor([False,  True, False])
    """

    def __init__(self, n: int, shape=None, dtype: torch.dtype = torch.bool, device=None):
        self.n = int(n)
        self.shape = _size((self.n,) if shape is None else shape)
        if not self.shape or self.shape[-1] != self.n:
            raise ValueError(f"OneHot({n}): the last dim of shape must be n={n}, got shape {tuple(self.shape)}")
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        ok = ((x == 0) | (x == 1)).all(-1) & (x.to(torch.int64).sum(-1) == 1)
        if not bool(ok.all()):
            return "not one-hot: each vector along the last dim needs exactly one 1 and the rest 0"
        return None

    def _rand(self, shape):
        idx = torch.randint(0, self.n, shape[:-1], device=self.device)
        return torch.nn.functional.one_hot(idx, self.n).to(self.dtype)

    def _project(self, x):
        if x.is_floating_point():
            x = torch.nan_to_num(x, nan=-math.inf)
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

    Example:
        >>> Binary(4).is_in(torch.tensor([0, 1, 1, 0], dtype=torch.int8))
        True
    """

    def __init__(self, n: int, shape=None, dtype: torch.dtype = torch.int8, device=None):
        self.n = int(n)
        self.shape = _size((self.n,) if shape is None else shape)
        if not self.shape or self.shape[-1] != self.n:
            raise ValueError(f"Binary({n}): the last dim of shape must be n={n}, got shape {tuple(self.shape)}")
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        if not bool(((x == 0) | (x == 1)).all()):
            return "values other than 0 and 1"
        return None

    def _rand(self, shape):
        return torch.randint(0, 2, shape, device=self.device).to(self.dtype)

    def _project(self, x):
        if x.is_floating_point():
            x = torch.nan_to_num(x, nan=0.0)
        return (x > 0.5).to(self.dtype) if x.is_floating_point() else (x > 0).to(self.dtype)

    def _clone_with(self, shape, device):
        return Binary(self.n, shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.n,)

    def _extra_repr(self):
        return f"n={self.n}"


class MultiCategorical(Spec):
    """Several categorical values side by side: entry ``i`` lies in ``{0, ..., nvec[i] - 1}``.

    Example:
        >>> spec = MultiCategorical([2, 3])
        >>> spec.project(torch.tensor([5, 5]))
        tensor([1, 2])
    """

    def __init__(self, nvec, shape=None, dtype: torch.dtype = torch.int64, device=None):
        nvec = torch.as_tensor(nvec, dtype=torch.int64).reshape(-1)
        if bool((nvec < 1).any()):
            raise ValueError(f"MultiCategorical needs every nvec entry >= 1, got {nvec.tolist()}")
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
            return f"values outside [0, nvec) with nvec={nvec.tolist()}"
        return None

    def _rand(self, shape):
        u = torch.rand(shape, device=self.device)
        return torch.minimum((u * self.nvec).long(), self.nvec - 1).to(self.dtype)

    def _project(self, x):
        if x.is_floating_point():
            x = torch.nan_to_num(x, nan=0.0, posinf=1e9, neginf=0).round()
        return torch.minimum(x.to(torch.int64).clamp_min(0), self.nvec - 1).to(self.dtype)

    def _clone_with(self, shape, device):
        return MultiCategorical(self.nvec.clone(), shape, self.dtype, device)

    def _eq_fields(self):
        return super()._eq_fields() + (self.nvec,)

    def _extra_repr(self):
        return f"nvec={self.nvec.tolist()}"


class MultiOneHot(Spec):
    """Several one-hot vectors concatenated along the last dim (sizes ``nvec``).

    Example:
        >>> spec = MultiOneHot([2, 3])
        >>> spec.rand().shape
        torch.Size([5])
    """

    def __init__(self, nvec, shape=None, dtype: torch.dtype = torch.bool, device=None):
        self.nvec = [int(n) for n in torch.as_tensor(nvec).reshape(-1).tolist()]
        if any(n < 1 for n in self.nvec):
            raise ValueError(f"MultiOneHot needs every nvec entry >= 1, got {self.nvec}")
        total = sum(self.nvec)
        self.shape = _size((total,) if shape is None else shape)
        if not self.shape or self.shape[-1] != total:
            raise ValueError(f"MultiOneHot: the last dim of shape must be sum(nvec)={total}, got {tuple(self.shape)}")
        self.dtype = dtype
        self.device = _device(device)

    def _values_bad(self, x, b):
        for i, part in enumerate(x.split(self.nvec, -1)):
            if OneHot(self.nvec[i], part.shape)._values_bad(part, b):
                return f"segment {i} (size {self.nvec[i]}) is not one-hot"
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
        if len(key) == 1:
            del self._specs[key[0]]
        else:
            del self[key[:-1]][key[-1]]

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
        for k, v in (other.items() if isinstance(other, Composite) else dict(other).items()):
            self[k] = v
        return self

    def select(self, *keys) -> "Composite":
        out = Composite(shape=self.shape, device=self.device)
        for k in keys:
            out[k] = self[k]
        return out

    def exclude(self, *keys) -> "Composite":
        out = self.clone()
        for k in keys:
            if k in out:
                del out[k]
        return out

    def empty(self) -> "Composite":
        return Composite(shape=self.shape, device=self.device)

    # ----------------------------------------------------------------- membership
    def mismatches(self, td, prefix: tuple = ()) -> list[str]:
        """Every way ``td`` differs from this spec, one readable line per key."""
        out = []
        for k, spec in self._specs.items():
            key = prefix + (k,)
            name = _key_str(key)
            if k not in td.keys():
                out.append(f"key {name}: missing from the data (expected {spec!r})")
                continue
            value = td.get(k)
            if isinstance(spec, Composite):
                if not hasattr(value, "keys"):
                    out.append(f"key {name}: expected a nested TensorDict, got {type(value).__name__}")
                else:
                    out.extend(spec.mismatches(value, key))
                continue
            why = spec.mismatch(value)
            if why:
                out.append(f"key {name}: {why}")
        return out

    def mismatch(self, td) -> str | None:
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
        out = td.copy()
        for k, spec in self._specs.items():
            if k in td.keys():
                out.set(k, spec.project(td.get(k)))
        return out

    # ------------------------------------------------------------------ reshaping
    def expand(self, *shape) -> "Composite":
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        shape = _size(shape)
        if shape[len(shape) - self.ndim:] != self.shape:
            raise ValueError(f"cannot expand a Composite of shape {tuple(self.shape)} to {tuple(shape)}")
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
