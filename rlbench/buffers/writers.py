"""Writers decide where new items go: a ring buffer (``RoundRobinWriter``) or a top-k (``TensorDictMaxValueWriter``)."""
from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase

__all__ = ["Writer", "RoundRobinWriter", "TensorDictMaxValueWriter"]


def _length(data) -> int:
    return len(data) if isinstance(data, (list, tuple)) else data.shape[0]


class Writer:
    """Base class: a writer is registered with a buffer's storage and sampler, then writes rows.

    ``extend(data)`` writes one row per entry along the first dim of ``data``, records the storage's
    counters (``storage.set_counters``) and tells the sampler the flat indices it wrote. It returns
    those flat indices.
    """

    storage: Any = None
    sampler: Any = None

    def register(self, storage, sampler) -> None:
        self.storage, self.sampler = storage, sampler

    def extend(self, data) -> torch.Tensor:
        raise NotImplementedError

    def empty(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class RoundRobinWriter(Writer):
    """A ring buffer: writes at the cursor and wraps around, overwriting the oldest rows.

    The cursor is kept by the storage (``storage.write_cursor``), so a memory-mapped storage
    reopened from disk continues where it stopped. Extending with more rows than the storage holds
    keeps the last ``capacity`` of them (the cursor still advances by the full count).

    Example:
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage, RoundRobinWriter
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(4), writer=RoundRobinWriter())
        >>> rb.extend(torch.arange(6)).tolist(), rb[:].tolist(), rb.storage.write_cursor
        ([2, 3, 0, 1], [4, 5, 2, 3], 2)
    """

    def extend(self, data) -> torch.Tensor:
        storage = self.storage
        storage.prepare(data)
        n = _length(data)
        cap = storage.capacity
        start = storage.write_cursor
        end, total = start + n, n
        if n > cap:  # only the last `cap` rows survive; write them where they would have landed
            data, start, n = data[n - cap:], (end - cap) % cap, cap
        # contiguous slices are much cheaper to write than scattered rows: at most two of them
        first = min(n, cap - start)
        storage.set(slice(start, start + first), data if first == n else data[:first])
        if first < n:
            storage.set(slice(0, n - first), data[first:])
            rows = torch.cat([torch.arange(start, cap), torch.arange(n - first)])
        else:
            rows = torch.arange(start, start + n)
        storage.set_counters(min(storage.len_rows + total, cap), end % cap)
        flat = storage.rows_to_flat(rows)
        if self.sampler is not None:
            self.sampler.extend(flat)
        return flat


_REDUCTIONS = {
    "sum": lambda x: x.sum(-1),
    "mean": lambda x: x.mean(-1),
    "max": lambda x: x.max(-1).values,
    "min": lambda x: x.min(-1).values,
}


class TensorDictMaxValueWriter(Writer):
    """Keeps the ``capacity`` items with the highest rank (e.g. the best episodes seen so far).

    Each item's rank is ``data[rank_key]`` reduced over its non-batch dims by ``reduction``. While
    the storage has room every item is written; once full, a new item replaces the lowest-ranked
    stored item if it ranks higher (vectorised over the batch: one ``topk`` per ``extend``). Only
    one-dimensional storages of TensorDicts are supported.

    Args:
        rank_key: the key ranking items (default ``("next", "reward")``).
        reduction: ``"sum"``, ``"mean"``, ``"max"`` or ``"min"`` over the rank's non-batch dims.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage, TensorDictMaxValueWriter
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(3), writer=TensorDictMaxValueWriter(rank_key="score"))
        >>> _ = rb.extend(TensorDict({"score": torch.tensor([5., 1., 9., 7., 0.])}, [5]))
        >>> sorted(rb[:]["score"].tolist())
        [5.0, 7.0, 9.0]
    """

    def __init__(self, rank_key=("next", "reward"), reduction: str = "sum"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {sorted(_REDUCTIONS)}, got {reduction!r}")
        self.rank_key = rank_key
        self.reduction = reduction
        self._ranks: torch.Tensor | None = None

    def _rank(self, data) -> torch.Tensor:
        if not isinstance(data, TensorDictBase):
            raise TypeError(f"TensorDictMaxValueWriter ranks TensorDicts by {self.rank_key!r}, "
                            f"got {type(data).__name__}")
        x = data.get(self.rank_key, None)
        if x is None:
            raise KeyError(f"TensorDictMaxValueWriter: rank_key {self.rank_key!r} is not in the data "
                           f"(keys: {list(data.keys(True, True))})")
        x = x.reshape(x.shape[0], -1).to(torch.float64)
        rank = _REDUCTIONS[self.reduction](x) if x.shape[1] else torch.zeros(x.shape[0], dtype=torch.float64)
        if torch.isnan(rank).any():
            raise ValueError(f"TensorDictMaxValueWriter: NaN rank from {self.rank_key!r}; ranks must be numbers")
        return rank

    def _stored_ranks(self) -> torch.Tensor:
        """Ranks of the stored rows (-inf where empty), recomputed from the storage when unknown."""
        storage = self.storage
        if self._ranks is None or len(self._ranks) != storage.capacity:
            ranks = torch.full((storage.capacity,), -float("inf"), dtype=torch.float64)
            n = storage.len_rows
            if n:
                ranks[:n] = self._rank(storage.get(slice(0, n)))
            self._ranks = ranks
        return self._ranks

    def extend(self, data) -> torch.Tensor:
        storage = self.storage
        if storage.ndim != 1:
            raise ValueError("TensorDictMaxValueWriter supports storages with ndim=1 only")
        rank = self._rank(data)
        storage.prepare(data)
        ranks = self._stored_ranks()
        cap, filled = storage.capacity, storage.len_rows
        written = []
        # 1) free rows first, in order, so the filled region stays [0, len)
        k = min(len(rank), cap - filled)
        if k:
            storage.set(slice(filled, filled + k), data[:k])
            ranks[filled:filled + k] = rank[:k]
            written.append(torch.arange(filled, filled + k))
            filled += k
        # 2) the rest competes with the stored items: keep the top `cap` of both
        if k < len(rank):
            new = rank[k:]
            keep = torch.cat([ranks, new]).topk(cap).indices
            chosen = keep[keep >= cap] - cap
            if len(chosen):
                evicted = torch.ones(cap, dtype=torch.bool)
                evicted[keep[keep < cap]] = False
                slots = evicted.nonzero().squeeze(1)
                storage.set(slots, data[k:][chosen])
                ranks[slots] = new[chosen]
                written.append(slots)
        storage.set_counters(filled, filled % cap)
        rows = torch.cat(written) if written else torch.zeros(0, dtype=torch.long)
        if self.sampler is not None and len(rows):
            self.sampler.extend(rows)
        return rows

    def empty(self) -> None:
        self._ranks = None

    def state_dict(self) -> dict[str, Any]:
        return {"ranks": self._ranks.clone() if self._ranks is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ranks = state.get("ranks")
        self._ranks = ranks.clone() if ranks is not None else None
