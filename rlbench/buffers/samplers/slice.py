"""Sample contiguous sub-trajectories ("slices") that never cross an episode boundary.

Recurrent policies, n-step returns and sequence models train on runs of consecutive steps. A
slice must come from one episode: stitching the end of one episode to the start of the next would
teach the model a transition that never happened. Two more seams hide in a ring buffer: the write
cursor (the newest step sits right before the oldest one in storage order) and, once full, the
jump from the last row back to row 0, which *is* continuous in time. The sampler therefore lays
each env's rows out in time order (oldest first) before it looks for episodes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase

from .base import Sampler

NestedKey = Any


def _key_name(key: NestedKey) -> str:
    return repr(key) if isinstance(key, str) else repr(tuple(key))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"SliceSampler {name} must be a positive int, got {value!r}")
    return value


class SliceSampler(Sampler):
    """Samples ``num_slices`` runs of ``slice_len`` consecutive steps, each inside one episode.

    Give either ``num_slices`` or ``slice_len``; the other follows from the batch size, which must
    divide evenly. Episodes are found from ``traj_key`` (an id per step, such as the collector's
    ``("collector", "traj_ids")``: a new episode starts where the id changes) or, when no
    ``traj_key`` is given, from the ``end_key`` done flags (a step flagged done is its episode's
    last). Episodes are also cut where the stored data stops being continuous: at the ring buffer's
    write cursor, and at both ends of the stored data.

    A slice is drawn by picking an episode uniformly among those long enough, then a start uniformly
    among the positions that fit the slice. Indices come back slice after slice, each in time order;
    on a ``[capacity, n_envs]`` storage episodes run along the first dim of each env.
    ``info[truncated_key]`` (bool ``[n, 1]``, default key ``("next", "truncated")``) flags the last
    step of every slice: a learner that bootstraps from a slice's end must treat it as truncated.
    ``info[end_key]`` holds the same flags, so the slices read as episodes. A
    ``TensorDictReplayBuffer`` writes both into each batch (as TorchRL users expect); with a plain
    ``ReplayBuffer`` call :meth:`mark_slice_ends`. With ``strict_length=False`` episodes shorter than ``slice_len`` give
    slices of their whole length, so the batch may hold fewer than ``batch_size`` items;
    ``info["slice_lengths"]`` then says how long each slice is.

    The episode boundaries are computed once and reused until the storage is written again
    (:meth:`extend`) or its size or write cursor changed.

    Args:
        num_slices: slices per batch (``slice_len = batch_size // num_slices``).
        slice_len: steps per slice (``num_slices = batch_size // slice_len``).
        traj_key: key of per-step episode ids; if ``None`` episodes come from ``end_key``.
        end_key: key of the per-step done flags.
        strict_length: if ``True`` every slice has exactly ``slice_len`` steps and shorter episodes
            are never sampled; if ``False`` shorter episodes give shorter slices.
        truncated_key: where the slice ends go (in ``info`` and by :meth:`mark_slice_ends`).

    Example:
        >>> from tensordict import TensorDict
        >>> done = torch.zeros(10, 1, dtype=torch.bool); done[[3, 9]] = True  # episodes 0-3 and 4-9
        >>> data = TensorDict({"t": torch.arange(10), "next": {"done": done}}, [10])
        >>> class Storage:  # what a sampler asks of a storage
        ...     def __len__(self): return 10
        ...     shape, ndim, write_cursor = torch.Size([10]), 1, 0
        ...     def get(self, index): return data[index]
        >>> sampler = SliceSampler(slice_len=5)
        >>> sampler.generator = torch.Generator().manual_seed(0)
        >>> index, info = sampler.sample(Storage(), batch_size=10)
        >>> index.view(2, 5)  # only episode 4-9 is long enough
        tensor([[4, 5, 6, 7, 8],
                [5, 6, 7, 8, 9]])
        >>> info["next", "truncated"].view(2, 5)[:, -1]
        tensor([True, True])
    """

    def __init__(self, num_slices: int | None = None, slice_len: int | None = None, traj_key: NestedKey = None,
                 end_key: NestedKey = ("next", "done"), strict_length: bool = True,
                 truncated_key: NestedKey = ("next", "truncated")):
        if (num_slices is None) == (slice_len is None):
            raise ValueError("SliceSampler needs exactly one of num_slices or slice_len "
                             f"(got num_slices={num_slices!r}, slice_len={slice_len!r})")
        self.num_slices = None if num_slices is None else _positive_int("num_slices", num_slices)
        self.slice_len = None if slice_len is None else _positive_int("slice_len", slice_len)
        self.traj_key = traj_key
        self.end_key = end_key
        self.strict_length = bool(strict_length)
        self.truncated_key = truncated_key
        self._dirty = True
        self._cache_key = None
        self._episodes = None
        self._cursor_hint = 0  # where the last write ended, for storages that do not report their cursor
        self._writes = 0  # how many writes were notified (epochs of the subclass end with a write)

    # -- notifications ----------------------------------------------------------------------------
    def extend(self, index: torch.Tensor) -> None:
        self._dirty = True
        self._writes += 1
        index = torch.as_tensor(index).reshape(-1)
        if index.numel():
            self._cursor_hint = int(index[-1]) + 1

    def empty(self) -> None:
        self._dirty = True
        self._writes += 1
        self._episodes = None
        self._cache_key = None
        self._cursor_hint = 0

    # -- episodes ---------------------------------------------------------------------------------
    def _layout(self, storage: Any) -> tuple[int, int, int, int]:
        """``(rows filled, items per row, capacity in rows, oldest row)`` of ``storage``."""
        shape = storage.shape
        per_row = 1
        for d in shape[1:]:
            per_row *= int(d)
        capacity = int(shape[0])
        rows = len(storage) // per_row
        cursor = getattr(storage, "write_cursor", None)
        if cursor is None:
            cursor = (self._cursor_hint + per_row - 1) // per_row  # flat end of the last write -> next row
        # Until the ring buffer wraps, rows 0..rows-1 are already oldest first; after, the cursor row is oldest.
        oldest = int(cursor) % capacity if rows == capacity else 0
        return rows, per_row, capacity, oldest

    def _read(self, data: Any, key: NestedKey, rows: int, per_row: int, oldest: int, role: str) -> np.ndarray:
        """Column ``key`` as a NumPy ``[env, time]`` grid, oldest step first."""
        if not isinstance(data, TensorDictBase):
            raise TypeError(f"SliceSampler reads episode information from TensorDict data; the storage holds "
                            f"{type(data).__name__}")
        value = data.get(key, None)
        if value is None:
            keys = sorted(_key_name(k) for k in data.keys(True, True))
            hint = "pass traj_key=... (e.g. ('collector', 'traj_ids')) or end_key=..." if role == "end_key" \
                else "pass the key that holds per-step episode ids"
            raise KeyError(f"SliceSampler {role}={_key_name(key)} is not in the stored data (keys: {', '.join(keys)}); "
                           f"{hint}")
        value = value.reshape(rows, per_row, -1)
        value = value.any(-1) if role == "end_key" else value[..., 0]
        if oldest:  # only once the ring is full, so rows == capacity and a roll puts the oldest row first
            value = torch.roll(value, -oldest, 0)
        return value.T.cpu().numpy()

    def _episodes_of(self, storage: Any) -> dict[str, Any]:
        rows, per_row, capacity, oldest = self._layout(storage)
        key = (id(storage), rows, per_row, capacity, oldest)
        if not self._dirty and self._cache_key == key:
            return self._episodes
        data = storage.get(slice(0, rows * per_row))
        starts = np.ones((per_row, rows), dtype=bool)  # [env, time]: does an episode start here?
        if self.traj_key is not None:
            ids = self._read(data, self.traj_key, rows, per_row, oldest, "traj_key")
            np.not_equal(ids[:, 1:], ids[:, :-1], out=starts[:, 1:])
        else:
            starts[:, 1:] = self._read(data, self.end_key, rows, per_row, oldest, "end_key")[:, :-1]
        # Grid positions env * rows + time: since each env's first step starts an episode, no episode
        # runs from one env's newest step into the next env's oldest.
        start = np.flatnonzero(starts)
        length = np.diff(start, append=rows * per_row)
        self._episodes = {"start": start, "length": length, "rows": rows, "per_row": per_row,
                          "capacity": capacity, "oldest": oldest, "eligible": {}}
        self._cache_key = key
        self._dirty = False
        return self._episodes

    def _to_flat(self, ep: dict[str, Any], position: np.ndarray) -> torch.Tensor:
        """Flat storage index of grid positions ``env * rows + time``."""
        rows, per_row = ep["rows"], ep["per_row"]
        if per_row == 1:
            flat = (position + ep["oldest"]) % ep["capacity"] if ep["oldest"] else position
        else:
            env, step = np.divmod(position, rows)
            flat = (step + ep["oldest"]) % ep["capacity"] * per_row + env
        return torch.from_numpy(flat)

    # -- sampling ---------------------------------------------------------------------------------
    def _slice_shape(self, batch_size: int) -> tuple[int, int]:
        batch_size = int(batch_size)
        given, name = (self.num_slices, "num_slices") if self.num_slices is not None else (self.slice_len, "slice_len")
        if batch_size < 1 or batch_size % given:
            raise ValueError(f"SliceSampler: batch_size={batch_size} must be a positive multiple of {name}={given}")
        other = batch_size // given
        return (given, other) if name == "num_slices" else (other, given)

    def _candidates(self, ep: dict[str, Any], slice_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per episode that can be sampled: first position, steps a slice takes, number of start offsets."""
        cached = ep["eligible"].get(slice_len)
        if cached is None:
            length = ep["length"]
            keep = length >= slice_len if self.strict_length else np.ones(len(length), dtype=bool)
            if not keep.any():
                raise ValueError(f"SliceSampler: no episode in the storage has slice_len={slice_len} steps "
                                 f"(the longest has {int(length.max())}, across {len(length)} episodes); sample "
                                 "shorter slices, store longer episodes, or pass strict_length=False")
            taken = np.minimum(length[keep], slice_len)
            cached = ep["eligible"][slice_len] = (ep["start"][keep], taken, length[keep] - taken + 1)
        return cached

    def _pick(self, n: int, num_slices: int) -> np.ndarray:
        """Which of the ``n`` candidate episodes the slices come from: uniformly, with replacement."""
        u = torch.rand(num_slices, generator=self.generator, dtype=torch.float64).numpy()
        return np.minimum((u * n).astype(np.int64), n - 1)

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if len(storage) == 0:
            raise ValueError("cannot sample from an empty storage: add or extend the buffer first")
        num_slices, slice_len = self._slice_shape(batch_size)
        first, taken, room = self._candidates(self._episodes_of(storage), slice_len)
        pick = self._pick(len(first), num_slices)
        u = torch.rand(len(pick), generator=self.generator, dtype=torch.float64).numpy()
        offset = np.minimum((u * room[pick]).astype(np.int64), room[pick] - 1)  # uniform among starts that fit
        taken = taken[pick]
        step = np.arange(slice_len)
        position = (first[pick] + offset)[:, None] + step  # [slices, slice_len]
        last = step == taken[:, None] - 1
        if self.strict_length:
            index, ends, info = self._to_flat(self._episodes, position.reshape(-1)), last.reshape(-1), {}
        else:
            keep = step < taken[:, None]
            index, ends = self._to_flat(self._episodes, position[keep]), last[keep]
            info = {"slice_lengths": torch.from_numpy(taken)}
        # A stored episode end inside a slice can only be its last step, so the slice ends are a
        # superset of the stored done flags: a TensorDictReplayBuffer writes these over the stored ones.
        # (No root "truncated" entry: that key already names the env's own flags in stored steps.)
        info[self.truncated_key] = info[self.end_key] = torch.from_numpy(ends).unsqueeze(-1)
        return index, info

    def mark_slice_ends(self, batch: TensorDictBase, info: dict[str, Any]) -> TensorDictBase:
        """Flag each slice's last step as truncated (and done) in a sampled ``batch``, in place.

        ``truncated_key`` becomes ``stored | slice end`` and ``end_key`` ``stored | slice end``, shaped
        like the stored flags (``[batch, 1]`` when absent). Returns ``batch``.
        """
        ends = info[self.truncated_key].reshape(-1)
        for key in (self.truncated_key, self.end_key):
            stored = batch.get(key, None)
            flag = ends.reshape(stored.shape) if stored is not None and stored.numel() == ends.numel() \
                else ends.unsqueeze(-1)
            batch.set(key, flag if stored is None else stored | flag)
        return batch

    # -- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # Episode boundaries are recomputed from the storage; only the cursor hint is not in the data.
        return {"cursor_hint": self._cursor_hint, "writes": self._writes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._cursor_hint = int(state.get("cursor_hint", 0))
        self._writes = int(state.get("writes", 0))
        self._dirty = True

    def __repr__(self) -> str:
        size = f"num_slices={self.num_slices}" if self.num_slices is not None else f"slice_len={self.slice_len}"
        source = f"traj_key={self.traj_key!r}" if self.traj_key is not None else f"end_key={self.end_key!r}"
        return f"{type(self).__name__}({size}, {source}, strict_length={self.strict_length})"


class SliceSamplerWithoutReplacement(SliceSampler):
    """A :class:`SliceSampler` that takes at most one slice from each episode per epoch.

    An epoch is a permutation of the episodes that can give a slice when it starts; each batch
    takes the next ``num_slices`` of them (one slice each, at a random start). The last batch of an
    epoch may hold fewer slices (``drop_last=False``) or is skipped (``drop_last=True``);
    :attr:`ran_out` is True right after the batch that ends an epoch. A write to the storage changes
    the episodes, so the next ``sample`` starts a new epoch: epochs are meant for data that stays put
    while they run (offline datasets, or a buffer filled before each round of updates).

    Args:
        drop_last: skip the incomplete last batch of each epoch.
        shuffle: random episode order (``False``: storage order, oldest first, env by env).
        **kwargs: as :class:`SliceSampler`.

    Example:
        >>> from tensordict import TensorDict
        >>> done = torch.zeros(12, 1, dtype=torch.bool); done[[2, 5, 8, 11]] = True  # 4 episodes of 3
        >>> data = TensorDict({"t": torch.arange(12), "next": {"done": done}}, [12])
        >>> class Storage:
        ...     def __len__(self): return 12
        ...     shape, ndim, write_cursor = torch.Size([12]), 1, 0
        ...     def get(self, index): return data[index]
        >>> sampler = SliceSamplerWithoutReplacement(slice_len=3, shuffle=False)
        >>> [sampler.sample(Storage(), 6)[0].tolist() for _ in range(2)], sampler.ran_out
        ([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]], True)
    """

    def __init__(self, num_slices: int | None = None, slice_len: int | None = None, traj_key: NestedKey = None,
                 end_key: NestedKey = ("next", "done"), strict_length: bool = True,
                 truncated_key: NestedKey = ("next", "truncated"), drop_last: bool = False, shuffle: bool = True):
        super().__init__(num_slices=num_slices, slice_len=slice_len, traj_key=traj_key, end_key=end_key,
                         strict_length=strict_length, truncated_key=truncated_key)
        self.drop_last = bool(drop_last)
        self.shuffle = bool(shuffle)
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self._ran_out = False
        self._epoch_writes = -1

    def _epoch_over(self, num_slices: int) -> bool:
        left = len(self._perm) - self._pos
        return left <= 0 or (self.drop_last and left < num_slices)

    def _pick(self, n: int, num_slices: int) -> np.ndarray:
        if self.drop_last and n < num_slices:
            raise ValueError(f"SliceSamplerWithoutReplacement(drop_last=True): only {n} episodes can give a slice, "
                             f"fewer than the {num_slices} slices of a batch, so every batch would be dropped; "
                             "store more episodes or use drop_last=False")
        stale = self._perm is None or self._epoch_writes != self._writes or len(self._perm) != n
        if stale or self._epoch_over(num_slices):
            self._perm = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            self._pos = 0
            self._epoch_writes = self._writes
        pick = self._perm[self._pos:self._pos + num_slices]
        self._pos += len(pick)
        self._ran_out = self._epoch_over(num_slices)
        return pick.numpy()

    @property
    def ran_out(self) -> bool:
        return self._ran_out

    def empty(self) -> None:
        super().empty()
        self._perm, self._pos, self._ran_out = None, 0, False

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(perm=self._perm.clone() if self._perm is not None else None, pos=self._pos,
                     ran_out=self._ran_out, epoch_writes=self._epoch_writes)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._perm = state["perm"].clone() if state.get("perm") is not None else None
        self._pos = int(state["pos"])
        self._ran_out = bool(state["ran_out"])
        self._epoch_writes = int(state["epoch_writes"])
