"""Prioritized slice sampling: whole-episode slices whose start steps are drawn in proportion to priority."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._sumtree import _last_write_wins
from .base import Sampler
from .prioritized import PrioritizedSampler
from .slice import NestedKey, SliceSampler


class PrioritizedSliceSampler(Sampler):
    """Samples slices of ``slice_len`` consecutive steps of one episode, starting at steps drawn by priority.

    Priorities belong to single steps, as in :class:`PrioritizedSampler` (``(priority + eps) ** alpha``,
    new steps get the largest seen so far). A slice *starts* at step ``i`` with probability proportional
    to step ``i``'s priority, among the steps a slice can start from: those with at least
    ``slice_len`` steps left in their episode (with ``strict_length=False`` also the first step of
    every shorter episode, whose slice is then the whole episode). The starts are drawn stratified on
    the same sum tree as :class:`PrioritizedSampler`; steps that cannot start a slice keep their
    priority but get no sampling mass. Episodes are found as :class:`SliceSampler` finds them
    (``traj_key`` or ``end_key``, cut at the write cursor and at the ends of the stored data).

    ``info["priority_weight"]`` holds each slice's importance weight ``(p_start / p_min) ** -beta``
    (``p_min``: the smallest mass among the steps that can start a slice), repeated over its steps.
    Send new priorities back per step with :meth:`update_priority` (the sampled ``index`` and, e.g.,
    one TD error per step); how a slice's priorities are combined into its start's is up to the
    caller, as in TorchRL's ``PrioritizedSliceSampler``. ``info[truncated_key]`` and ``info[end_key]``
    flag each slice's last step, as :class:`SliceSampler` does.

    Args:
        max_capacity: how many items the priorities cover (the storage's flat item count).
        alpha, beta, eps, reduction, max_priority_init: as :class:`PrioritizedSampler`.
        num_slices, slice_len, traj_key, end_key, strict_length, truncated_key: as :class:`SliceSampler`.

    Example:
        >>> from tensordict import TensorDict
        >>> done = torch.zeros(10, 1, dtype=torch.bool); done[[3, 9]] = True  # episodes 0-3 and 4-9
        >>> data = TensorDict({"t": torch.arange(10), "next": {"done": done}}, [10])
        >>> class Storage:  # what a sampler asks of a storage
        ...     def __len__(self): return 10
        ...     shape, ndim, write_cursor = torch.Size([10]), 1, 0
        ...     def get(self, index): return data[index]
        >>> sampler = PrioritizedSliceSampler(10, alpha=1.0, beta=1.0, eps=0.0, slice_len=3)
        >>> sampler.extend(torch.arange(10))
        >>> sampler.update_priority(torch.arange(10), torch.tensor([1., 1, 0, 0, 0, 0, 0, 4, 0, 0]))
        >>> sampler.generator = torch.Generator().manual_seed(4)
        >>> index, info = sampler.sample(Storage(), batch_size=6)  # 2, 3, 8, 9 cannot start: too near the end
        >>> index.view(2, 3)
        tensor([[1, 2, 3],
                [7, 8, 9]])
        >>> info["priority_weight"].view(2, 3)[:, 0]  # (p_start / p_min) ** -beta, p_min = 1
        tensor([1.0000, 0.2500])
    """

    def __init__(self, max_capacity: int, alpha: float, beta: float, eps: float = 1e-8, reduction: str = "max",
                 max_priority_init: float = 1.0, *, num_slices: int | None = None, slice_len: int | None = None,
                 traj_key: NestedKey = None, end_key: NestedKey = ("next", "done"), strict_length: bool = True,
                 truncated_key: NestedKey = ("next", "truncated")):
        self.prioritized = PrioritizedSampler(max_capacity, alpha, beta, eps, reduction, max_priority_init)
        self.slices = SliceSampler(num_slices=num_slices, slice_len=slice_len, traj_key=traj_key, end_key=end_key,
                                   strict_length=strict_length, truncated_key=truncated_key)
        self.max_capacity = self.prioritized.max_capacity
        # The tree holds priority * startable; the priorities themselves are kept here.
        self._priority = np.zeros(self.max_capacity, dtype=np.float64)
        self._startable = np.zeros(self.max_capacity, dtype=bool)
        self._layout: tuple[Any, int] | None = None  # (episodes, slice_len) that _startable was built for
        self._position = np.zeros(0, dtype=np.int64)  # flat item -> position in the episode grid
        self._left = np.zeros(0, dtype=np.int64)  # grid position -> steps to its episode's end, itself included

    # The replay buffer sets one generator; the start draws and the slices share it.
    @property
    def generator(self) -> torch.Generator | None:
        return self.prioritized.generator

    @generator.setter
    def generator(self, generator: torch.Generator | None) -> None:
        self.prioritized.generator = generator
        self.slices.generator = generator

    # the constructor's arguments, read from the parts that hold them (dumps() saves them by name)
    alpha = property(lambda self: self.prioritized.alpha)
    eps = property(lambda self: self.prioritized.eps)
    reduction = property(lambda self: self.prioritized.reduction)
    max_priority_init = property(lambda self: self.prioritized.max_priority_init)
    num_slices = property(lambda self: self.slices.num_slices)
    slice_len = property(lambda self: self.slices.slice_len)
    traj_key = property(lambda self: self.slices.traj_key)
    end_key = property(lambda self: self.slices.end_key)
    strict_length = property(lambda self: self.slices.strict_length)
    truncated_key = property(lambda self: self.slices.truncated_key)

    @property
    def beta(self) -> float:
        return self.prioritized.beta

    @beta.setter
    def beta(self, beta: float) -> None:
        self.prioritized.beta = float(beta)

    @property
    def max_priority(self) -> float:
        """The ``p`` that the next new step gets (see :attr:`PrioritizedSampler.max_priority`)."""
        return self.prioritized.max_priority

    def anneal_beta(self, progress: float, beta_end: float = 1.0) -> float:
        """See :meth:`PrioritizedSampler.anneal_beta`."""
        return self.prioritized.anneal_beta(progress, beta_end)

    # -- writes -----------------------------------------------------------------------------------
    def extend(self, index: torch.Tensor) -> None:
        index = torch.as_tensor(index).reshape(-1)
        mass = self.prioritized.max_priority
        self.prioritized.extend(index)  # checks the indices, gives them the max priority as mass
        self.slices.extend(index)  # the episodes changed: the startable steps are rebuilt at the next sample
        flat = np.asarray(index.cpu(), dtype=np.int64)
        self._priority[flat] = mass
        blocked = flat[~self._startable[flat]]
        if blocked.size:
            self.prioritized.write_mass(blocked, 0.0)

    def update_priority(self, index: Any, priority: Any) -> None:
        """Set the priorities of steps ``index``; see :meth:`PrioritizedSampler.update_priority`.

        Overlapping slices repeat steps: for a repeated index the last value wins.
        """
        index, p = self.prioritized.prepare_priority(index, priority)
        if index.size:
            index, p = _last_write_wins(index, p)  # sorted, unique
            self._priority[index] = p
            self.prioritized.write_mass(index, p * self._startable[index])

    def priorities(self, index: Any) -> torch.Tensor:
        """The stored ``(priority + eps) ** alpha`` of steps ``index`` (float64), startable or not."""
        index = np.asarray(torch.as_tensor(index).reshape(-1).cpu(), dtype=np.int64)
        return torch.from_numpy(self._priority[index])

    def empty(self) -> None:
        self.prioritized.empty()
        self.slices.empty()
        self._priority.fill(0.0)
        self._startable.fill(False)
        self._layout = None

    # -- sampling ---------------------------------------------------------------------------------
    def _refresh_startable(self, storage: Any, slice_len: int) -> dict[str, Any]:
        """The episodes of ``storage``; the tree's mass is moved onto the steps that can start a slice."""
        episodes = self.slices._episodes_of(storage)  # cached by the SliceSampler until the next write
        if self._layout is not None and self._layout[0] is episodes and self._layout[1] == slice_len:
            return episodes
        self.slices._candidates(episodes, slice_len)  # raises when no episode can give a slice
        start, length = episodes["start"], episodes["length"]
        total = episodes["rows"] * episodes["per_row"]
        grid = np.arange(total)
        left = np.repeat(start + length, length) - grid  # the episodes tile the grid, in order
        can_start = left >= slice_len
        if not self.slices.strict_length:
            can_start[start] = True  # a shorter episode gives one slice: all of it
        flat = self.slices._to_flat(episodes, grid).numpy()
        startable = np.zeros(self.max_capacity, dtype=bool)
        startable[flat] = can_start
        changed = np.flatnonzero(startable != self._startable)
        if changed.size:
            self.prioritized.write_mass(changed, self._priority[changed] * startable[changed])
        position = np.zeros(self.max_capacity, dtype=np.int64)
        position[flat] = grid
        self._startable, self._position, self._left = startable, position, left
        self._layout = (episodes, slice_len)
        return episodes

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if len(storage) == 0:
            raise ValueError("cannot sample from an empty storage: add or extend the buffer first")
        num_slices, slice_len = self.slices._slice_shape(batch_size)
        episodes = self._refresh_startable(storage, slice_len)
        first, info = self.prioritized.sample(storage, num_slices)  # flat start steps, sorted
        first = self._position[first.numpy()]
        taken = np.minimum(self._left[first], slice_len)
        step = np.arange(slice_len)
        position = first[:, None] + step  # [slices, slice_len] grid positions
        last = step == taken[:, None] - 1
        weight = info["priority_weight"]
        if self.slices.strict_length:
            index, ends, out = self.slices._to_flat(episodes, position.reshape(-1)), last.reshape(-1), {}
            out["priority_weight"] = weight.repeat_interleave(slice_len)
        else:
            keep = step < taken[:, None]
            index, ends = self.slices._to_flat(episodes, position[keep]), last[keep]
            lengths = torch.from_numpy(taken)
            out = {"slice_lengths": lengths, "priority_weight": weight.repeat_interleave(lengths)}
        out[self.slices.truncated_key] = out[self.slices.end_key] = torch.from_numpy(ends).unsqueeze(-1)
        return index, out

    def mark_slice_ends(self, batch, info: dict[str, Any]):
        """See :meth:`SliceSampler.mark_slice_ends`."""
        return self.slices.mark_slice_ends(batch, info)

    # -- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # The startable mask is rebuilt from the storage at the next sample; the tree's mass is saved as
        # it stands (masked), so the reloaded sampler draws what this one would have.
        return {"prioritized": self.prioritized.state_dict(), "slices": self.slices.state_dict(),
                "priority": torch.from_numpy(self._priority.copy()),
                "startable": torch.from_numpy(self._startable.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prioritized.load_state_dict(state["prioritized"])
        self.slices.load_state_dict(state["slices"])
        self._priority = state["priority"].numpy().astype(np.float64, copy=True)
        self._startable = state["startable"].numpy().astype(bool, copy=True)
        self._layout = None

    def __repr__(self) -> str:
        size = f"num_slices={self.slices.num_slices}" if self.slices.num_slices is not None \
            else f"slice_len={self.slices.slice_len}"
        return (f"{type(self).__name__}(max_capacity={self.max_capacity}, alpha={self.alpha}, beta={self.beta}, "
                f"{size}, strict_length={self.slices.strict_length})")

