"""``LazyMemmapStorage``: like ``LazyTensorStorage`` but in memory-mapped files that outlive the process."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from tensordict import MemoryMappedTensor, TensorDict, TensorDictBase

from .tensor import LazyTensorStorage

__all__ = ["LazyMemmapStorage"]


class LazyMemmapStorage(LazyTensorStorage):
    """Items in tensordict memory-mapped files: large buffers with bounded RAM, shared between processes.

    Layout of ``scratch_dir`` (created on the first write)::

        data/            the items, one memory-mapped file per key (tensordict's memmap format)
        counters.memmap  two int64: rows holding data, next row to write (updated on every write)
        storage.json     max_size, ndim, shape, whether the items are plain tensors

    Because the counters live in the directory too, a storage whose process died (or another
    process) reopens it with all its data, length and write cursor: ``LazyMemmapStorage.load(dir)``
    or ``ReplayBuffer.loads(dir)``. Pickling the storage (e.g. handing it to a worker process) sends
    only the directory: both processes then read and write the same files. Writes from concurrent
    writers are not synchronised: let one process write at a time.

    Args:
        max_size: number of items held (see :class:`LazyTensorStorage` for ``ndim > 1``).
        scratch_dir: directory of the files (default: a fresh temporary directory, kept on exit so
            the data can still be reopened; delete it when done).
        ndim: how many leading dims of the written data index items.

    Example:
        >>> import tempfile
        >>> from tensordict import TensorDict
        >>> d = tempfile.mkdtemp()
        >>> s = LazyMemmapStorage(1000, scratch_dir=d)
        >>> td = TensorDict({"obs": torch.arange(3.0)}, [3])
        >>> s.prepare(td); s.set(slice(0, 3), td); s.set_counters(3, 3)
        >>> LazyMemmapStorage.load(d).get(slice(None))["obs"].tolist()
        [0.0, 1.0, 2.0]
        >>> import shutil; shutil.rmtree(d)
    """

    def __init__(self, max_size: int, scratch_dir=None, device="cpu", ndim: int = 1):
        super().__init__(max_size, device=device, ndim=ndim)
        if self.device.type != "cpu":
            raise ValueError(f"LazyMemmapStorage keeps data in files on the CPU, got device={device!r}; "
                             "use LazyTensorStorage for data on an accelerator")
        self.scratch_dir = Path(scratch_dir) if scratch_dir is not None else None
        self._counters: torch.Tensor | None = None

    # -- counters live in a shared file once allocated --------------------------------------------
    @property
    def len_rows(self) -> int:
        return int(self._counters[0]) if self._counters is not None else self._len_rows

    @property
    def write_cursor(self) -> int:
        return int(self._counters[1]) if self._counters is not None else self._cursor

    def set_counters(self, len_rows: int, cursor: int) -> None:
        self._len_rows, self._cursor = len_rows, cursor
        if self._counters is not None:
            self._counters[0] = len_rows
            self._counters[1] = cursor

    # -- allocation -------------------------------------------------------------------------------
    def _allocate(self, td: TensorDictBase, rows: int, inner: list) -> None:
        if self.scratch_dir is None:
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="rlbench_memmap_"))
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        shape = [rows, *inner]
        # zero-stride template: memmap_like makes files of the full size without touching RAM
        template = td.apply(lambda x: x[:1].expand(*shape, *x.shape[len(shape):]), batch_size=shape)
        storage = template.memmap_like(self.scratch_dir / "data", num_threads=0)
        self._open_counters(create=True)
        self._attach(storage)
        self._write_meta()

    def _open_counters(self, create: bool) -> None:
        filename = str(self.scratch_dir / "counters.memmap")
        if create or not Path(filename).exists():
            self._counters = MemoryMappedTensor.empty((2,), dtype=torch.int64, filename=filename)
            self._counters.zero_()
        else:
            self._counters = MemoryMappedTensor.from_filename(filename, dtype=torch.int64, shape=(2,))

    def _write_meta(self) -> None:
        (self.scratch_dir / "storage.json").write_text(json.dumps(self._meta()))

    # -- reopening --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path) -> "LazyMemmapStorage":
        """Reopen the storage in directory ``path`` in place (its files are used, not copied).

        ``path`` is a ``scratch_dir`` of a LazyMemmapStorage or a directory written by ``dumps``.
        """
        path = Path(path)
        meta_file = path / "storage.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{path} holds no storage (no storage.json); expected the scratch_dir of a "
                                    "LazyMemmapStorage or a directory written by dumps()")
        meta = json.loads(meta_file.read_text())
        self = cls(meta["max_size"], scratch_dir=path, ndim=meta["ndim"])
        self._reopen(meta)
        return self

    def _reopen(self, meta: dict) -> None:
        self._is_tensor = bool(meta["is_tensor"])
        if not meta["initialized"]:
            return
        had_counters = (self.scratch_dir / "counters.memmap").exists()
        self._open_counters(create=False)
        if not had_counters:  # a dumps() directory: counters were saved in storage.json
            self.set_counters(int(meta["len_rows"]), int(meta["cursor"]))
        self._attach(TensorDict.load_memmap(self.scratch_dir / "data"))

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_storage", "_leaves", "_flat", "_counters")}
        state["_reopen_meta"] = self._meta() if self.initialized else None
        return state

    def __setstate__(self, state: dict) -> None:
        meta = state.pop("_reopen_meta")
        self.__dict__.update(state)
        self._storage, self._leaves, self._flat, self._counters, self._shape = None, [], None, None, None
        if meta is not None:
            self._reopen(meta)

    # -- persistence ------------------------------------------------------------------------------
    def dumps(self, path) -> None:
        """Save to ``path``; when ``path`` is the storage's own ``scratch_dir`` only the metadata is rewritten."""
        path = Path(path)
        if self.scratch_dir is not None and path.resolve() == self.scratch_dir.resolve():
            self._write_meta()
            return
        super().dumps(path)

    def loads(self, path, **kwargs) -> None:
        path = Path(path)
        if self.scratch_dir is not None and path.resolve() == self.scratch_dir.resolve() and self.initialized:
            return  # the files and counters there are this storage's own, already current
        super().loads(path)
