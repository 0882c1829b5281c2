"""The contract every storage follows.

A storage holds the items of a replay buffer; a writer decides where new items go and a sampler
decides which items a batch reads. Everything between them speaks in two kinds of positions:

- **rows**: positions along the storage's first dim. Writers write whole rows: ``extend`` of a
  ``[T, n_envs]`` batch into a storage of shape ``[capacity, n_envs]`` (``ndim=2``) writes ``T`` rows.
- **flat item indices**: what samplers draw and :meth:`Storage.get` reads. Item ``(row, env)`` has flat
  index ``row * n_envs + env`` (row-major, as ``torch.Tensor.flatten`` orders them); for ``ndim=1``
  rows and flat indices are the same thing.

What samplers and writers may rely on:

- ``len(storage)``: how many items hold data (flat count: filled rows times ``n_envs``);
- ``storage.shape``: the full item shape, ``[capacity]`` or ``[capacity, n_envs]``;
- ``storage.ndim``: how many leading dims index items;
- ``storage.capacity``: the number of rows (``shape[0]``);
- ``storage.get(flat_index)``: the stored items (a TensorDict for TensorDict data, a tensor for
  tensor data, a list or a stacked TensorDict for :class:`ListStorage`);
- ``storage.set(rows, data)``: write rows (an int, a slice or a long tensor of rows);
- ``storage.prepare(data)``: allocate from the first data seen (lazy storages), before a writer
  computes rows from ``capacity``;
- ``storage.write_cursor``: the row a round-robin writer writes next, recorded by the writer with
  ``set_counters`` so that a storage reopened from disk resumes where it stopped;
- ``state_dict()/load_state_dict()`` and ``dumps(path)/loads(path)`` for persistence.
"""
from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from typing import Any

import torch

__all__ = ["Storage", "StorageMismatchError", "UnsafeCheckpointError"]


class StorageMismatchError(ValueError):
    """Data written to a storage does not match what the storage holds (key, shape or dtype)."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """Saved data holds something that loading would have to unpickle, or that its metadata does not declare.

    Raised by ``ReplayBuffer.loads``, the storages' ``loads``/``load`` and (from
    :mod:`rlbench.trainers`) ``load_checkpoint`` and ``Trainer.load`` instead of running code from the
    files: a pickled non-tensor entry in a storage's tensordict files, an entry its ``storage.json``
    does not declare, a tensor of another dtype or shape than declared, or a pickled object where
    only tensors and plain values belong. Loading such files anyway is an explicit choice
    (``allow_pickle=True``, or ``weights_only=False`` for a checkpoint file) for files you trust.

    Example:
        >>> import tempfile
        >>> from fractions import Fraction
        >>> from rlbench.buffers import ListStorage, ReplayBuffer
        >>> rb = ReplayBuffer(storage=ListStorage(4))
        >>> _ = rb.add(Fraction(1, 3))  # not a tensor: only unpickling can restore it
        >>> d = tempfile.mkdtemp()
        >>> rb.dumps(d)
        >>> try:
        ...     ReplayBuffer.loads(d)
        ... except UnsafeCheckpointError:
        ...     print("refused")
        refused
        >>> ReplayBuffer.loads(d, allow_pickle=True)[0]  # trusted files only
        Fraction(1, 3)
    """


def check_max_size(max_size) -> int:
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
        raise ValueError(f"max_size must be a positive int (the number of items the storage holds), got {max_size!r}")
    return max_size


class Storage(ABC):
    """Base class of storages (see the module docstring for the contract).

    Subclasses implement :meth:`prepare`, :meth:`set`, :meth:`get`, :meth:`empty`,
    :meth:`state_dict`, :meth:`load_state_dict`, :meth:`dumps` and :meth:`loads`.

    Example:
        >>> from rlbench.buffers import LazyTensorStorage
        >>> s = LazyTensorStorage(4)
        >>> s.prepare(torch.zeros(2, 3)); s.set(slice(0, 2), torch.ones(2, 3)); s.set_counters(2, 2)
        >>> len(s), tuple(s.shape), s.get(torch.tensor([1])).shape
        (2, (4,), torch.Size([1, 3]))
    """

    ndim: int = 1

    def __init__(self, max_size: int, ndim: int = 1):
        self.max_size = check_max_size(max_size)
        if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim < 1:
            raise ValueError(f"ndim must be an int >= 1 (how many leading dims index items), got {ndim!r}")
        self.ndim = ndim
        self._len_rows = 0
        self._cursor = 0

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        """The item shape: ``[capacity]`` or ``[capacity, n_envs, ...]``."""
        return torch.Size([self.max_size])

    @property
    def capacity(self) -> int:
        """Number of rows (the first dim of :attr:`shape`)."""
        return self.shape[0]

    @property
    def items_per_row(self) -> int:
        n = 1
        for d in self.shape[1:]:
            n *= d
        return n

    def __len__(self) -> int:
        return self.len_rows * self.items_per_row

    @property
    def len_rows(self) -> int:
        """How many rows hold data."""
        return self._len_rows

    @property
    def write_cursor(self) -> int:
        """The row a round-robin writer writes next (recorded by the writer)."""
        return self._cursor

    def set_counters(self, len_rows: int, cursor: int) -> None:
        """Record how many rows hold data and where the writer goes next (writers call this)."""
        self._len_rows = len_rows
        self._cursor = cursor

    def rows_to_flat(self, rows: torch.Tensor) -> torch.Tensor:
        """Flat item indices of every item in ``rows`` (row-major)."""
        n = self.items_per_row
        if n == 1:
            return rows
        return (rows.unsqueeze(-1) * n + torch.arange(n, device=rows.device)).reshape(-1)

    # -- data -------------------------------------------------------------------------------------
    def prepare(self, data: Any) -> None:
        """Allocate from ``data`` if the storage is lazy and not allocated yet (default: nothing)."""

    @abstractmethod
    def set(self, rows, data: Any) -> None:
        """Write ``data`` (one item per row, leading dim = number of rows) at ``rows``."""

    @abstractmethod
    def get(self, index) -> Any:
        """The stored items at flat ``index`` (an int, a slice or a long tensor)."""

    def empty(self) -> None:
        """Forget all items (memory stays allocated)."""
        self.set_counters(0, 0)

    # -- persistence ------------------------------------------------------------------------------
    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...

    @abstractmethod
    def dumps(self, path) -> None:
        """Save contents and counters to directory ``path`` (created if missing)."""

    @abstractmethod
    def loads(self, path, **kwargs) -> None:
        """Load contents and counters saved by :meth:`dumps` into this storage."""

    def _check_index(self, index: int) -> int:
        n = len(self)
        if index < -n or index >= n:
            raise IndexError(f"index {index} is out of range for a storage holding {n} items (valid: {-n}..{n - 1})")
        return index + n if index < 0 else index

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_size={self.max_size}, len={len(self)}, ndim={self.ndim})"
