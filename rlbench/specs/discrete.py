"""Discrete specs: categorical, one-hot, binary and their multi-dimensional forms."""
from __future__ import annotations

import math

import torch

from ._utils import _check_int_dtype, _device, _examples, _size, _to_int64, _within
from .base import Spec

__all__ = ["Categorical", "OneHot", "Binary", "MultiCategorical", "MultiOneHot"]


class Categorical(Spec):
    """An integer in ``{0, ..., n - 1}`` per element (a discrete action as gymnasium's ``Discrete``).

    Args:
        n: the number of categories (>= 1).
        shape: the full shape (batch dims; there is no event dim).
        dtype: an integer dtype wide enough for ``n - 1``.
        device: where samples live.

    Example:
        >>> import torch
        >>> from rlbench.specs import Categorical
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

    def _rand(self, shape, generator=None):
        return torch.randint(0, self.n, shape, dtype=self.dtype, device=self.device, generator=generator)

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
        >>> import torch
        >>> from rlbench.specs import OneHot
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

    def _rand(self, shape, generator=None):
        idx = torch.randint(0, self.n, shape[:-1], device=self.device, generator=generator)
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
        >>> import torch
        >>> from rlbench.specs import Binary
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

    def _rand(self, shape, generator=None):
        return torch.randint(0, 2, shape, device=self.device, generator=generator).to(self.dtype)

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
        >>> import torch
        >>> from rlbench.specs import MultiCategorical
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

    def _rand(self, shape, generator=None):
        u = torch.rand(shape, dtype=torch.float64, device=self.device, generator=generator)
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
        >>> import torch
        >>> from rlbench.specs import MultiOneHot
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

    def _rand(self, shape, generator=None):
        parts = [
            OneHot(n, shape[:-1] + (n,), self.dtype, self.device)._rand(shape[:-1] + (n,), generator)
            for n in self.nvec
        ]
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
