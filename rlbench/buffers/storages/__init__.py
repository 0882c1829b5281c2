"""Storages: where a replay buffer keeps its items (see :mod:`.base` for the contract)."""
from .base import Storage, StorageMismatchError, UnsafeCheckpointError
from .list import ListStorage, UnsafeLoadError
from .memmap import LazyMemmapStorage
from .tensor import LazyTensorStorage

__all__ = ["Storage", "StorageMismatchError", "UnsafeCheckpointError", "ListStorage", "UnsafeLoadError",
           "LazyTensorStorage", "LazyMemmapStorage"]
