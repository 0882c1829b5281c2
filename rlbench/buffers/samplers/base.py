"""The contract every sampler follows.

A replay buffer owns one storage, one writer and one sampler. The writer decides *where* new data
goes and tells the sampler which positions it wrote (``extend``); the sampler decides *which*
positions a batch reads (``sample``). Positions are flat item indices: for a storage of shape
``[capacity]`` they run over ``0 .. capacity-1``; for a multi-dimensional storage of shape
``[capacity, n_envs]`` item ``(row, env)`` has flat index ``row * n_envs + env`` (row-major, as
``torch.Tensor.flatten`` orders them). The storage converts flat indices back when it reads.

What a sampler may ask of the storage (all storages provide it):

- ``len(storage)``: how many items hold data (flat count; rows filled times ``n_envs``);
- ``storage.shape``: the full shape over the item dims (``[capacity]`` or ``[capacity, n_envs]``);
- ``storage.ndim``: how many leading dims index items (1 or more);
- ``storage.get(index)``: the stored items at flat ``index`` (a TensorDict for TensorDict data).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class Sampler(ABC):
    """Chooses which stored items a batch reads. Subclasses implement :meth:`sample`.

    All randomness comes from ``self.generator`` (a ``torch.Generator`` on the CPU, or ``None`` for
    torch's global RNG). The replay buffer assigns it (``ReplayBuffer(generator=...)`` or
    ``rb.set_seed(seed)``) and saves/restores its state with the buffer, so a reloaded buffer draws
    the same batches as the original would have.
    """

    generator: torch.Generator | None = None

    @abstractmethod
    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """Return ``(index, info)``: the items a batch reads, and extra per-item entries.

        ``index`` holds flat long indices of shape ``[batch_size]`` into ``storage``; ``info`` the
        sample's per-item entries (e.g. ``{"priority_weight": tensor}``).
        """

    def extend(self, index: torch.Tensor) -> None:
        """Called by the writer with the flat indices it just wrote (new or overwritten items)."""

    def update_priority(self, index: torch.Tensor, priority: torch.Tensor) -> None:
        raise TypeError(f"{type(self).__name__} has no priorities; use a PrioritizedSampler to update them")

    @property
    def has_priorities(self) -> bool:
        """Whether this sampler takes priority updates (it overrides :meth:`update_priority`)."""
        return type(self).update_priority is not Sampler.update_priority

    def empty(self) -> None:
        """Forget everything about the stored items (the buffer was emptied)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume sampling exactly (RNG state included), as tensors and plain values."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    @property
    def ran_out(self) -> bool:
        """True when a sampler without replacement has just finished an epoch."""
        return False
