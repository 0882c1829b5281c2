"""``ListStorage``: a Python list of items of any kind."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDictBase

from .base import Storage, StorageMismatchError, UnsafeCheckpointError

__all__ = ["ListStorage", "UnsafeLoadError"]


class UnsafeLoadError(UnsafeCheckpointError, RuntimeError):
    """Loading the saved items would unpickle arbitrary Python objects and it was not allowed.

    The :class:`UnsafeCheckpointError` that :class:`ListStorage` raises (also a ``RuntimeError``,
    as it was before the two were unified).
    """


def _layout(td: TensorDictBase) -> tuple:
    """What stacking TensorDicts needs them to share: the batch size and every leaf's shape and dtype."""
    return tuple(td.batch_size), {k: (tuple(v.shape), getattr(v, "dtype", None)) for k, v in td.items(True, True)}


def _key_name(key) -> str:
    return key if isinstance(key, str) else "/".join(key)


def _layout_mismatch(expected: tuple, got: tuple) -> str | None:
    """What differs between two layouts (``None`` if nothing does)."""
    (batch, leaves), (got_batch, got_leaves) = expected, got
    if got_batch != batch:
        return f"a TensorDict of batch size {list(got_batch)}, the stored TensorDicts have {list(batch)}"
    missing = [k for k in leaves if k not in got_leaves]
    if missing:
        return (f"key {_key_name(missing[0])!r} is missing (the stored TensorDicts have keys "
                f"{[_key_name(k) for k in leaves]})")
    extra = [k for k in got_leaves if k not in leaves]
    if extra:
        return (f"unexpected key(s) {[_key_name(k) for k in extra]} (the stored TensorDicts have keys "
                f"{[_key_name(k) for k in leaves]})")
    for key, (shape, dtype) in leaves.items():
        got_shape, got_dtype = got_leaves[key]
        if (got_shape, got_dtype) != (shape, dtype):
            return (f"key {_key_name(key)!r}: expected shape {list(shape)} and dtype {dtype}, got shape "
                    f"{list(got_shape)} and dtype {got_dtype}")
    return None


def _stack(items: list):
    first = items[0]
    if isinstance(first, TensorDictBase) and all(isinstance(x, TensorDictBase) for x in items):
        return torch.stack(items)
    if isinstance(first, torch.Tensor) and all(isinstance(x, torch.Tensor) and x.shape == first.shape for x in items):
        return torch.stack(items)
    return items


class ListStorage(Storage):
    """Stores items of any kind (TensorDicts, tensors, Python objects) in a list.

    ``extend`` takes a list (one item per element), a tensor or a TensorDict (one item per entry
    along the first dim). ``get`` of several items stacks them when they are all TensorDicts or
    same-shaped tensors, and returns a list otherwise. Slower than the tensor storages: use it for
    data that is not tensors or whose shapes vary.

    TensorDict items are stacked when sampled, so they must share one layout: the first one stored
    fixes the batch size, keys, shapes and dtypes, and ``extend`` refuses a TensorDict of another
    layout with a :class:`StorageMismatchError` naming the key (nothing of that call is written). Other
    items (tensors of any shape, arbitrary objects) are not constrained.

    **Saving.** ``dumps`` writes the items with ``torch.save``. ``loads`` first tries
    ``torch.load(weights_only=True)``, which reads tensors, numbers, strings and lists/dicts of them
    without running any code. Items of other kinds (TensorDicts, arbitrary objects) can only be
    read back by unpickling, which can run code from the file: pass ``allow_pickle=True`` for files
    you trust, otherwise :class:`UnsafeLoadError` is raised.

    Args:
        max_size: number of items held.

    Example:
        >>> s = ListStorage(10)
        >>> s.set(slice(0, 2), ["a", {"b": 1}]); s.set_counters(2, 2)
        >>> s.get(1), s.get(torch.tensor([0, 1]))
        ({'b': 1}, ['a', {'b': 1}])
    """

    def __init__(self, max_size: int = 1000):
        super().__init__(max_size, ndim=1)
        self._items: list = [None] * max_size
        self._layout: tuple | None = None  # of the TensorDict items (see the class docstring)

    @staticmethod
    def _as_list(data) -> list:
        if isinstance(data, (torch.Tensor, TensorDictBase)):
            return list(data.unbind(0))
        if isinstance(data, (list, tuple)):
            return list(data)
        raise TypeError(f"ListStorage.extend takes a list, a tensor or a TensorDict, got {type(data).__name__}")

    def _check_layout(self, data, items: list) -> None:
        """Refuse TensorDict items whose layout differs from the stored ones (before anything is written)."""
        candidates = [(0, data[0])] if isinstance(data, TensorDictBase) and items else [
            (i, x) for i, x in enumerate(items) if isinstance(x, TensorDictBase)]  # a batch shares one layout
        for i, item in candidates:
            layout = _layout(item)
            if self._layout is None:
                self._layout = layout
                continue
            what = _layout_mismatch(self._layout, layout)
            if what is not None:
                raise StorageMismatchError(
                    f"ListStorage: item {i} of the data written: {what}. TensorDict items are stacked when sampled, "
                    "so each needs the layout of the first one stored (batch size, keys, shapes, dtypes); "
                    "empty() the storage or use another one for data of another layout")

    def set(self, rows, data) -> None:
        items = self._as_list(data)
        layout = self._layout
        try:
            self._check_layout(data, items)
        except StorageMismatchError:
            self._layout = layout  # a layout first seen in the refused call is not kept
            raise
        if isinstance(rows, int):
            rows = [rows]
        elif isinstance(rows, slice):
            rows = range(*rows.indices(self.max_size))
        else:
            rows = rows.tolist()
        if len(rows) != len(items):
            raise ValueError(f"ListStorage.set: {len(rows)} rows but {len(items)} items")
        for r, item in zip(rows, items):
            self._items[r] = item

    def get(self, index):
        if isinstance(index, int):
            return self._items[self._check_index(index)]
        if isinstance(index, slice):
            return _stack(self._items[: len(self)][index]) if len(self) else []
        return _stack([self._items[i] for i in index.tolist()])

    def empty(self) -> None:
        self._items = [None] * self.max_size
        self._layout = None
        super().empty()

    # -- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"class": "ListStorage", "max_size": self.max_size, "len_rows": self.len_rows,
                "cursor": self.write_cursor, "items": list(self._items[: self.len_rows])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        items = state["items"]
        if len(items) > self.max_size:
            raise ValueError(f"the state holds {len(items)} items, more than this ListStorage's "
                             f"max_size={self.max_size}")
        self._items = list(items) + [None] * (self.max_size - len(items))
        first = next((x for x in items if isinstance(x, TensorDictBase)), None)
        self._layout = _layout(first) if first is not None else None
        self.set_counters(int(state["len_rows"]), int(state["cursor"]))

    def dumps(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self._items[: self.len_rows], path / "items.pt")
        (path / "storage.json").write_text(json.dumps({"class": "ListStorage", "max_size": self.max_size,
                                                       "len_rows": self.len_rows, "cursor": self.write_cursor}))

    def loads(self, path, allow_pickle: bool = False, **kwargs) -> None:
        """Load items saved by :meth:`dumps`; ``allow_pickle=True`` permits unpickling (trusted files only)."""
        path = Path(path)
        meta = json.loads((path / "storage.json").read_text())
        try:
            items = torch.load(path / "items.pt", weights_only=True)
        except Exception as err:  # weights_only refuses anything but tensors and plain containers
            if not allow_pickle:
                raise UnsafeLoadError(
                    f"{path / 'items.pt'} holds Python objects that only unpickling can restore, and unpickling "
                    "can run code from the file. If you trust it, load with allow_pickle=True"
                ) from err
            items = torch.load(path / "items.pt", weights_only=False)
        self.load_state_dict({"items": items, "len_rows": meta["len_rows"], "cursor": meta["cursor"]})
