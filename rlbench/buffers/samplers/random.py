"""Uniform samplers: with replacement (``RandomSampler``) and by epochs (``SamplerWithoutReplacement``)."""
from __future__ import annotations

from typing import Any

import torch

from .base import Sampler

__all__ = ["RandomSampler", "SamplerWithoutReplacement"]


class RandomSampler(Sampler):
    """Draws items uniformly at random, with replacement.

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage, RandomSampler
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(10), sampler=RandomSampler(), batch_size=4)
        >>> _ = rb.extend(torch.arange(10))
        >>> rb.sample().shape
        torch.Size([4])
    """

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return torch.randint(len(storage), (batch_size,), generator=self.generator), {}


class SamplerWithoutReplacement(Sampler):
    """Reads every stored item once per epoch, in a fresh random order each epoch.

    An epoch is a permutation of the items stored when it starts. Batches are consecutive pieces
    of it; the last piece may be smaller than ``batch_size`` (``drop_last=False``) or skipped
    (``drop_last=True``). :attr:`ran_out` is True right after the batch that ends an epoch; the
    next ``sample`` starts a new one.

    Args:
        drop_last: skip the incomplete last batch of each epoch.
        shuffle: random order (``False``: storage order, useful for going through data once).

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage, SamplerWithoutReplacement
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(10), sampler=SamplerWithoutReplacement(), batch_size=4)
        >>> _ = rb.extend(torch.arange(10))
        >>> seen = [rb.sample() for _ in range(3)]
        >>> sorted(torch.cat(seen).tolist()) == list(range(10)), rb.sampler.ran_out
        (True, True)
    """

    def __init__(self, drop_last: bool = False, shuffle: bool = True):
        self.drop_last = drop_last
        self.shuffle = shuffle
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self._ran_out = False

    def _epoch_over(self, batch_size: int) -> bool:
        left = len(self._perm) - self._pos
        return left <= 0 or (self.drop_last and left < batch_size)

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        n = len(storage)
        if self.drop_last and n < batch_size:
            raise ValueError(f"SamplerWithoutReplacement(drop_last=True): the buffer holds {n} items, fewer than "
                             f"batch_size={batch_size}, so every batch would be dropped; add data or use "
                             "drop_last=False")
        if self._perm is None or self._epoch_over(batch_size):
            self._perm = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            self._pos = 0
        index = self._perm[self._pos:self._pos + batch_size]
        self._pos += len(index)
        self._ran_out = self._epoch_over(batch_size)
        return index, {}

    @property
    def ran_out(self) -> bool:
        return self._ran_out

    def empty(self) -> None:
        self._perm, self._pos, self._ran_out = None, 0, False

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self._perm.clone() if self._perm is not None else None, "pos": self._pos,
                "ran_out": self._ran_out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._perm = state["perm"].clone() if state.get("perm") is not None else None
        self._pos = int(state["pos"])
        self._ran_out = bool(state["ran_out"])
