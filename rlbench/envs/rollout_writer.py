"""``RolloutWriter``: the preallocated buffers a rollout (or a collector's batch) is written into."""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from .utils import _KeyError

__all__ = ["RolloutWriter", "empty_buffer"]

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16,
                 torch.int64: np.int64, torch.int32: np.int32, torch.int16: np.int16, torch.int8: np.int8,
                 torch.uint8: np.uint8, torch.bool: np.bool_}


def empty_buffer(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype, device=device)`` for a big output buffer written once.

    On the CPU the memory comes from NumPy, which asks Linux for transparent huge pages for large
    arrays (``madvise(MADV_HUGEPAGE)``; torch's allocator does so only with ``THP_MEM_ALLOC_ENABLE=1``
    set before it starts). A rollout writes tens of MB of fresh memory, and with 4 KiB pages the page
    faults of that first touch cost about as much as the copies (issue 17). The result is an ordinary
    contiguous tensor (it shares the array's memory and keeps it alive).

    Example:
        >>> empty_buffer((2, 3), torch.float32, torch.device("cpu")).shape
        torch.Size([2, 3])
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type != "cpu" or dtype not in _NUMPY_DTYPES:
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.from_numpy(np.empty(tuple(shape), dtype=_NUMPY_DTYPES[dtype]))

# Entries with at most this many elements per step are stacked together with others of the same
# dtype and shape: for small tensors the per-op dispatch cost (microseconds) dominates, so one
# torch.stack per group beats one copy_ per key. Bigger entries (pixels, large batches) get their own
# [*batch, T, ...] buffer written in place: grouping them would cost a [T, *batch] -> [*batch, T]
# transpose of the whole rollout at the end, several times the in-place writes.
_GROUP_MAX_NUMEL = 1024


class RolloutWriter:
    """Writes each step of a rollout into buffers allocated once, after the first step.

    Small entries of equal dtype/shape share a time-major buffer ``[T, K, *batch, *event]`` filled by
    one ``torch.stack(..., out=buf[t])`` per step; :meth:`result` lays them out as ``[*batch, T, ...]``.
    :meth:`EnvBase.rollout <rlbench.envs.EnvBase.rollout>` and the collectors store their steps with it.

    Args:
        batch_size: the env's batch size (the leading dims of every step).
        max_steps: how many steps the buffers hold.
        differentiable: keep each step's tensors as they are and stack them in :meth:`result`
            instead of copying them into buffers, so gradients flow from the result back to the steps
            (``torch.stack(..., out=)`` and in-place copies do not carry them). A differentiable
            :meth:`EnvBase.rollout <rlbench.envs.EnvBase.rollout>` uses this mode.

    Every step must have the keys, shapes and dtypes of the first one; a step that does not raises
    an error naming the key and the step.

    Example:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> writer = RolloutWriter(torch.Size([2]), max_steps=3)
        >>> for t in range(3):
        ...     writer.write(t, TensorDict({"x": torch.full((2, 1), float(t))}, [2]))
        >>> out = writer.result(2)  # the first two steps
        >>> out.shape, out["x"][0].squeeze(-1).tolist()
        (torch.Size([2, 2]), [0.0, 1.0])
    """

    def __init__(self, batch_size: torch.Size, max_steps: int, differentiable: bool = False):
        self.batch_size = batch_size
        self.differentiable = differentiable
        self.kept: list[tuple] = []  # differentiable: ([tensor of each step], level, leaf key, full key)
        self.nb = len(batch_size)
        self.max_steps = max_steps
        self.device = None
        self.levels: list[tuple] = []  # (parent level index, key) of each nested TensorDict; 0 = root
        self.groups: list[tuple] = []  # (buffer [T, K, ...], [(level, leaf key, full key), ...])
        self.singles: list[tuple] = []  # (buffer [*batch, T, ...], level, leaf key, full key)
        self.allocated = False

    def _allocate(self, td: TensorDictBase) -> None:
        nb, T = self.nb, self.max_steps
        self.device = td.device
        level_of = {(): 0}
        self.levels = [(None, None)]
        groups: dict[tuple, list] = {}
        for key in td.keys(True, True):
            key = key if isinstance(key, tuple) else (key,)
            if key[-1] == "_reset":
                continue
            value = td.get(key)
            if not isinstance(value, torch.Tensor):
                continue  # non-tensor data is not recorded
            for i in range(1, len(key)):  # register the nested TensorDicts on the way
                if key[:i] not in level_of:
                    level_of[key[:i]] = len(self.levels)
                    self.levels.append((level_of[key[:i - 1]], key[i - 1]))
            entry = (level_of[key[:-1]], key[-1], key)
            if self.differentiable:
                self.kept.append(([], *entry, value.shape, value.dtype))
            elif value.numel() <= _GROUP_MAX_NUMEL:
                groups.setdefault((value.dtype, value.device, value.shape), []).append(entry)
            else:
                buf = empty_buffer((*self.batch_size, T, *value.shape[nb:]), value.dtype, value.device)
                self.singles.append((buf, *entry))
        for (dtype, device, shape), entries in groups.items():
            self.groups.append((empty_buffer((T, len(entries), *shape), dtype, device), entries))
        self.allocated = True

    def _tds(self, td: TensorDictBase) -> list:
        """The entries of ``td`` and of each nested TensorDict, as plain dicts.

        One ``dict(td.items())`` per level is much cheaper than one ``td.get(key)`` per key.
        """
        tds = [dict(td.items())]
        for parent, key in self.levels[1:]:
            sub = tds[parent].get(key)
            tds.append(dict(sub.items()) if isinstance(sub, TensorDictBase) else {})
        return tds

    def write(self, t: int, td: TensorDictBase) -> None:
        """Store step ``t`` (a TensorDict of the env's batch size, with its ``"next"`` entry)."""
        if not self.allocated:
            self._allocate(td)
        tds = self._tds(td)
        for values, level, k, key, shape, dtype in self.kept:
            value = tds[level].get(k)
            if not isinstance(value, torch.Tensor) or value.shape != shape or value.dtype != dtype:
                self._explain(t, tds, shape, dtype, [(level, k, key)])
            del values[t:]  # a rewritten step replaces the old one
            values.append(value)
        for buf, entries in self.groups:
            try:
                torch.stack([tds[level].get(k) for level, k, _ in entries], out=buf[t])
            except (RuntimeError, TypeError, AttributeError):
                self._explain(t, tds, buf.shape[2:], buf.dtype, entries)
                raise
        nb = self.nb
        for buf, level, k, key in self.singles:
            value = tds[level].get(k)
            view = buf.select(nb, t)
            if not isinstance(value, torch.Tensor) or value.shape != view.shape:
                self._explain(t, tds, view.shape, buf.dtype, [(level, k, key)])
            view.copy_(value)

    def time_major(self) -> dict:
        """``{full key: [T, *batch, *event] view of its buffer}``, for callers that write steps themselves."""
        views = {}
        for buf, entries in self.groups:
            for j, (_, _, key) in enumerate(entries):
                views[key] = buf[:, j]
        for buf, _, _, key in self.singles:
            views[key] = buf.movedim(self.nb, 0)
        return views

    def _explain(self, t, tds, expected, dtype, entries) -> None:
        """Raise a clear error for the entry of this step that does not fit its buffer."""
        for level, k, key in entries:
            value = tds[level].get(k)
            name = key[0] if len(key) == 1 else key
            if value is None:
                raise _KeyError(
                    f"rollout: key {name!r} was present at the first step but is missing at step {t}; "
                    f"the env and the policy must write the same keys at every step"
                )
            if not isinstance(value, torch.Tensor) or value.shape != expected or value.dtype != dtype:
                got = (
                    f"{type(value).__name__}" if not isinstance(value, torch.Tensor)
                    else f"shape {tuple(value.shape)}, dtype {value.dtype}"
                )
                raise ValueError(
                    f"rollout: key {name!r} changed at step {t}: the first step had shape {tuple(expected)}, "
                    f"dtype {dtype}; now {got}. Every step must return the same shapes and dtypes."
                )

    def result(self, steps: int) -> TensorDictBase:
        """The first ``steps`` steps as one ``[*batch_size, steps]`` TensorDict."""
        nb = self.nb
        out = TensorDict({}, batch_size=(*self.batch_size, steps), device=self.device)
        for values, _, _, key, _, _ in self.kept:
            out.set(key, torch.stack(values[:steps], nb))
        for buf, entries in self.groups:
            for j, (_, _, key) in enumerate(entries):
                out.set(key, buf[:steps, j].movedim(0, nb).contiguous())
        index = (slice(None),) * nb + (slice(0, steps),)
        for buf, _, _, key in self.singles:
            out.set(key, buf if steps == self.max_steps else buf[index].clone())
        return out
