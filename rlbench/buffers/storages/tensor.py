"""``LazyTensorStorage``: contiguous tensors allocated on the first write, from the data's own shapes."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase

from . import _files
from .base import Storage, StorageMismatchError

__all__ = ["LazyTensorStorage"]

_TENSOR_KEY = "_tensor"  # plain-tensor data is held as a one-key TensorDict, so one code path serves both


def _key_name(key) -> str:
    return key if isinstance(key, str) else "/".join(key)


def _ram_bytes() -> int | None:
    """Physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _is_out_of_memory(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, MemoryError) or "alloc" in text or "out of memory" in text


class LazyTensorStorage(Storage):
    """Holds TensorDicts (or plain tensors) in preallocated tensors, allocated on the first write.

    The first ``extend`` fixes the keys, per-item shapes and dtypes; later writes must match them
    (a :class:`StorageMismatchError` names the key and what was expected otherwise). Items keep
    their own batch dims: a ``[10]`` trajectory added as one item (``rb.add(traj)``, or
    ``rb.extend`` of a ``[N, 10]`` batch) is sampled back as ``[B, 10]``. A storage that would not fit
    in memory raises a ``MemoryError`` saying how many bytes each key needs, before allocating.

    Args:
        max_size: number of items held. With ``ndim=2`` and data shaped ``[T, n_envs]`` this counts
            items, not rows: the storage holds ``max_size // n_envs`` rows of ``n_envs`` items.
        device: where the data lives (default: the device of the first data written).
        ndim: how many leading dims of the written data index items (``2`` stores ``[T, n_envs]``
            batches as ``T`` rows; sampled items come back flat ``[batch]``, followed by the
            items' own batch dims if the data has more than ``ndim``).

    Example:
        >>> from tensordict import TensorDict
        >>> s = LazyTensorStorage(100)
        >>> td = TensorDict({"obs": torch.zeros(3, 4), "next": {"reward": torch.ones(3, 1)}}, [3])
        >>> s.prepare(td); s.set(slice(0, 3), td); s.set_counters(3, 3)
        >>> s.get(torch.tensor([0, 2]))["next", "reward"].shape
        torch.Size([2, 1])
    """

    def __init__(self, max_size: int, device=None, ndim: int = 1):
        super().__init__(max_size, ndim)
        self.device = torch.device(device) if device is not None else None
        self._storage: TensorDictBase | None = None
        self._is_tensor = False
        self._leaves: list = []
        self._flat = None
        self._shape = None
        self._item_shape: list = []

    # -- allocation -------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self._storage is not None

    @property
    def shape(self) -> torch.Size:
        if self._shape is not None:
            return self._shape
        if self.ndim == 1:
            return torch.Size([self.max_size])
        raise RuntimeError(f"{type(self).__name__}(ndim={self.ndim}) learns its shape from the first data written; "
                           "write (extend) data first")

    def _as_td(self, data) -> TensorDictBase:
        if isinstance(data, torch.Tensor):
            return TensorDict({_TENSOR_KEY: data}, batch_size=data.shape[: self.ndim])
        if isinstance(data, TensorDictBase):
            return data
        raise TypeError(f"{type(self).__name__} stores TensorDicts or tensors, got {type(data).__name__}; "
                        "use ListStorage for arbitrary Python objects")

    def prepare(self, data) -> None:
        if self._storage is not None:
            return
        self._is_tensor = isinstance(data, torch.Tensor)
        td = self._as_td(data)
        if td.batch_dims < self.ndim:
            raise ValueError(f"{type(self).__name__}(ndim={self.ndim}) needs data with at least {self.ndim} batch dims "
                             f"(rows first), got batch size {list(td.batch_size)}")
        inner = list(td.batch_size[1:self.ndim])
        per_row = 1
        for d in inner:
            per_row *= d
        rows = self.max_size // per_row
        if rows < 1:
            raise ValueError(f"max_size={self.max_size} is smaller than one row of {per_row} items "
                             f"(data batch size {list(td.batch_size)}); raise max_size")
        self._allocate(td, rows, inner)

    @staticmethod
    def _full_batch(td: TensorDictBase, shape: list) -> list:
        """The storage's batch size: ``shape`` (rows, inner dims) then the items' own batch dims."""
        return [*shape, *td.batch_size[len(shape):]]

    def _empty_like(self, td: TensorDictBase, shape: list) -> TensorDictBase:
        device = self.device if self.device is not None else td.device
        return td.apply(lambda x: torch.zeros((*shape, *x.shape[len(shape):]), dtype=x.dtype,
                                              device=device if device is not None else x.device),
                        batch_size=self._full_batch(td, shape), device=device)

    def _too_large(self, td: TensorDictBase, rows: int, why: str) -> MemoryError:
        sizes = [(_key_name(k), rows * math.prod(x.shape[1:]) * x.element_size()) for k, x in td.items(True, True)]
        total = sum(b for _, b in sizes)
        return MemoryError(
            f"{type(self).__name__}(max_size={self.max_size}) needs {total} bytes ({total / 2**30:.1f} GiB) for "
            f"{rows} rows: {', '.join(f'{k!r}: {b} bytes' for k, b in sizes)}; {why}. Keep the data on disk with "
            "LazyMemmapStorage(max_size, scratch_dir=...) (bounded RAM: the page cache holds the parts in use), "
            "or lower max_size")

    def _allocate(self, td: TensorDictBase, rows: int, inner: list) -> None:
        device = self.device if self.device is not None else td.device
        ram = _ram_bytes()
        if ram is not None and (device is None or torch.device(device).type == "cpu"):
            need = sum(rows * math.prod(x.shape[1:]) * x.element_size() for x in td.values(True, True))
            if need > ram:
                raise self._too_large(td, rows, f"this machine has {ram} bytes of RAM")
        try:
            storage = self._empty_like(td, [rows, *inner])
        except (RuntimeError, MemoryError) as err:
            if not _is_out_of_memory(err):
                raise
            raise self._too_large(td, rows, f"allocating it failed ({str(err).splitlines()[0]})") from err
        self._attach(storage)

    def _attach(self, storage: TensorDictBase) -> None:
        """Use ``storage`` (batch size ``[rows, *inner, *item dims]``) and cache what the hot paths need."""
        self._storage = storage
        self._shape = torch.Size(storage.batch_size[: self.ndim])
        self._item_shape = list(storage.batch_size[self.ndim:])
        if self.device is None:
            self.device = storage.device
        # the hot paths read and write plain-tensor views of the same memory: indexing a tensordict
        # MemoryMappedTensor costs tens of microseconds per leaf in Python wrapping
        plain = storage.apply(lambda x: x.as_subclass(torch.Tensor))
        self._leaves = list(plain.items(True, True))
        # number of direct keys of the root and of every nested TensorDict (extra-key check in set)
        self._key_counts = [((), len(storage.keys()))] + [
            (key, len(value.keys())) for key, value in storage.items(True) if isinstance(value, TensorDictBase)]
        self._flat = plain if self.ndim == 1 else plain.flatten(0, self.ndim - 1)
        if self._is_tensor:
            self._flat = self._flat.get(_TENSOR_KEY)

    # -- writing ----------------------------------------------------------------------------------
    def _mismatch(self, what: str) -> StorageMismatchError:
        return StorageMismatchError(f"{type(self).__name__}: {what}. The storage was allocated from the first data "
                                    "written; write data with the same keys, per-item shapes and dtypes "
                                    "(or use a new storage for data of another layout)")

    def set(self, rows, data) -> None:
        if self._storage is None:
            self.prepare(data)
        self._write(rows, self._check(data))

    def _check(self, data) -> list:
        """The tensors to write, one per leaf (in ``self._leaves`` order), after checking ``data`` matches."""
        if self._is_tensor:
            if not isinstance(data, torch.Tensor):
                raise self._mismatch(f"expected a tensor (the storage holds tensors), got {type(data).__name__}")
            buf = self._leaves[0][1]
            if data.shape[1:] != buf.shape[1:] or data.dtype != buf.dtype:
                raise self._mismatch(f"expected items of shape {list(buf.shape[1:])} and dtype {buf.dtype}, "
                                     f"got shape {list(data.shape[1:])} and dtype {data.dtype}")
            return [data]
        if not isinstance(data, TensorDictBase):
            raise self._mismatch(f"expected a TensorDict (the storage holds TensorDicts), got {type(data).__name__}")
        # one pass over the leaves checks them; no per-call TensorDict validation
        values = []
        for key, buf in self._leaves:
            x = data.get(key, None)
            if x is None:
                raise self._mismatch(f"key {_key_name(key)!r} is missing from the data written")
            if x.shape[1:] != buf.shape[1:] or x.dtype != buf.dtype:
                dims = ", ".join(map(str, buf.shape[1:]))
                raise self._mismatch(f"key {_key_name(key)!r}: expected shape [N, {dims}] and dtype {buf.dtype}, "
                                     f"got shape {list(x.shape)} and dtype {x.dtype}")
            values.append(x)
        # extra keys: comparing the number of keys at each level is much cheaper than listing all leaves
        for path, count in self._key_counts:
            sub = data.get(path) if path else data
            if not isinstance(sub, TensorDictBase) or len(sub.keys()) != count:
                known = {k for k, _ in self._leaves}
                extra = [k for k in data.keys(True, True) if k not in known]
                raise self._mismatch(f"unexpected key(s) {[_key_name(k) for k in extra]} in the data written "
                                     f"(the storage holds {[_key_name(k) for k in known]})")
        return values

    def _write(self, rows, values: list) -> None:
        if isinstance(rows, slice):
            for (_, buf), x in zip(self._leaves, values):
                buf[rows].copy_(x)
        else:
            for (_, buf), x in zip(self._leaves, values):
                buf[rows] = x

    # -- reading ----------------------------------------------------------------------------------
    def get(self, index):
        if isinstance(index, int):
            index = self._check_index(index)
        if self._flat is None:
            raise IndexError(f"{type(self).__name__} is empty: nothing was written yet")
        if isinstance(index, slice):
            r = range(len(self))[index]
            index = slice(r.start, r.stop, r.step) if r.step > 0 else torch.tensor(list(r), dtype=torch.long)
        return self._flat[index]

    # -- persistence ------------------------------------------------------------------------------
    def _meta(self) -> dict:
        """What ``storage.json`` records; ``leaves`` declares every key, dtype, shape and file size of the data."""
        return {"class": type(self).__name__, "format": 2, "max_size": self.max_size, "ndim": self.ndim,
                "len_rows": self.len_rows, "cursor": self.write_cursor, "is_tensor": self._is_tensor,
                "initialized": self.initialized,
                "shape": list(self._shape) if self._shape is not None else None, "item_shape": self._item_shape,
                "leaves": _files.schema(self._storage) if self._storage is not None else None}

    def state_dict(self) -> dict[str, Any]:
        """Counters plus the data as a nested dict of tensors (references, like ``nn.Module.state_dict``).

        Only tensors, ints and lists: ``torch.save`` it and ``torch.load(..., weights_only=True)`` it.
        """
        state = self._meta()
        # plain-tensor views (no copy): memory-mapped tensors would not load with weights_only=True
        state["data"] = (self._storage.apply(lambda x: x.as_subclass(torch.Tensor)).to_dict()
                         if self._storage is not None else None)
        return state

    def _check_compatible(self, meta: dict, where: str) -> None:
        if meta.get("ndim", 1) != self.ndim:
            raise ValueError(f"{where} holds a storage with ndim={meta.get('ndim')}, this one has ndim={self.ndim}")
        if self._shape is not None and meta.get("shape") is not None and list(self._shape) != meta["shape"]:
            raise ValueError(f"{where} holds a storage of shape {meta['shape']}, this one has shape "
                             f"{list(self._shape)}")
        if self._shape is None and meta.get("shape") is not None:
            items = 1
            for d in meta["shape"]:
                items *= d
            if items > self.max_size:
                raise ValueError(f"{where} holds {items} items (shape {meta['shape']}), more than this "
                                 f"storage's max_size={self.max_size}")

    @staticmethod
    def _checked_counters(meta: dict, rows: int, where: str) -> tuple[int, int]:
        len_rows, cursor = int(meta["len_rows"]), int(meta["cursor"])
        if not (0 <= len_rows <= rows and 0 <= cursor < rows):
            raise ValueError(f"{where}: inconsistent counters (len_rows={len_rows}, cursor={cursor}) for a storage of "
                             f"{rows} rows; the metadata is damaged")
        return len_rows, cursor

    def _load_data(self, data: TensorDictBase, meta: dict, where: str = "the saved storage") -> None:
        counters = self._checked_counters(meta, data.batch_size[0], where)
        self._is_tensor = bool(meta["is_tensor"])
        if self._storage is None:
            shape = list(data.batch_size)
            self._allocate(data, shape[0], shape[1:self.ndim])
        for key, buf in self._leaves:
            src = data.get(key, None)
            if src is None:
                raise StorageMismatchError(f"saved storage has no key {_key_name(key)!r}")
            if src.shape != buf.shape:
                raise StorageMismatchError(f"saved storage: key {_key_name(key)!r} has shape {list(src.shape)}, "
                                           f"this one {list(buf.shape)}")
            buf.copy_(src)
        self.set_counters(*counters)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_compatible(state, "the state dict")
        if state.get("data") is None:
            self.set_counters(0, 0)
            return
        data = TensorDict(state["data"], batch_size=[*state["shape"], *state.get("item_shape", [])])
        self._load_data(data, state, "the state dict")

    def dumps(self, path) -> None:
        """Write the data as tensordict memory-mapped files under ``path/data``, then ``storage.json``.

        ``storage.json`` holds the counters and shape and declares every key, dtype, shape and file
        size of the data, which :meth:`loads` checks before it reads anything.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self._storage is not None:
            self._storage.memmap(path / "data", num_threads=0, copy_existing=True)
        _files.write_json(path / "storage.json", self._meta())

    @staticmethod
    def _read_meta(path: Path) -> dict:
        meta_file = path / "storage.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{path} holds no storage (no storage.json); expected a directory written by "
                                    "dumps() or the scratch_dir of a LazyMemmapStorage")
        try:
            return json.loads(meta_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{meta_file} is not valid JSON ({err}): the file is damaged") from None

    def loads(self, path, allow_pickle: bool = False, **kwargs) -> None:
        """Copy the contents saved by :meth:`dumps` into this storage (the saved files are only read).

        The files are checked first: only the keys, dtypes and shapes that ``storage.json`` declares,
        no pickled entry (:class:`UnsafeCheckpointError` otherwise, unless ``allow_pickle=True`` for
        files you trust), every file of the declared size (a ``ValueError`` names a short one).
        """
        path = Path(path)
        meta = self._read_meta(path)
        self._check_compatible(meta, str(path))
        if not meta["initialized"]:
            self.set_counters(0, 0)
            return
        data = _files.load(path / "data", meta.get("leaves"), allow_pickle=allow_pickle, mode="r")
        self._load_data(data, meta, str(path))
