"""``LazyMemmapStorage``: like ``LazyTensorStorage`` but in memory-mapped files that outlive the process."""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDictBase

from . import _files
from .tensor import LazyTensorStorage

__all__ = ["LazyMemmapStorage"]

logger = logging.getLogger(__name__)

_COUNTERS = "counters.memmap"
_ROWS = "rows.memmap"
_LOW = 0xFFFFFFFF
_MAX_ROWS = 2**31 - 1  # the row count and the cursor share one int64


def _read_counters(path: Path, meta: dict) -> tuple[int, int, bool]:
    """``(len_rows, cursor, current)`` from ``counters.memmap`` (or ``storage.json`` when there is none).

    ``current`` is False when the file is missing or in the old layout (two int64), which is then rewritten.
    """
    file = path / _COUNTERS
    if not file.exists():  # a dumps() directory: its counters were saved in storage.json
        return int(meta["len_rows"]), int(meta["cursor"]), False
    size = os.path.getsize(file)
    if size == 16:  # written before the counters shared one word
        old = np.fromfile(file, dtype=np.int64)
        return int(old[0]), int(old[1]), False
    _files.check_size(file, 8, "the row count and the write cursor, one int64")
    word = int(np.fromfile(file, dtype=np.int64)[0])
    return word >> 32, word & _LOW, True


class LazyMemmapStorage(LazyTensorStorage):
    """Items in tensordict memory-mapped files: large buffers with bounded RAM, shared between processes.

    Layout of ``scratch_dir`` (created on the first write)::

        data/            the items, one memory-mapped file per key (tensordict's memmap format)
        counters.memmap  one int64: rows holding data (high 32 bits) and next row to write (low 32 bits)
        rows.memmap      one byte per row: 1 when the row holds a whole write, 0 while it is being written
        storage.json     max_size, ndim, shape, and each key's dtype, shape and file size

    Because the counters live in the directory too, a storage whose process died (or another
    process) reopens it with all its data, length and write cursor: ``LazyMemmapStorage.load(dir)``
    or ``ReplayBuffer.loads(dir)``. Pickling the storage (e.g. handing it to a worker process) sends
    only the directory: both processes then read and write the same files. Writes from concurrent
    writers are not synchronised: let one process write at a time.

    **Crash safety** (issue 13). A process killed in the middle of a write leaves no torn rows behind:
    every write first marks its rows as being written (``rows.memmap``), writes each key, then marks
    them whole; and the row count and the cursor are one word, changed by one store. Reopening with
    :meth:`load` drops the rows that were being written (moving whole rows from the end of the filled
    region into their places, so the filled region stays ``[0, len)``; the next writes then fill the
    freed rows before they overwrite old ones) and logs a warning that says how many. This protects
    against a killed process, whose writes to the mapped files the kernel keeps; surviving a power
    cut needs the files synced to disk (``os.fsync``), which ``Trainer.save`` does for checkpoints.

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
        self._word: np.ndarray | None = None  # the shared counters word (a NumPy view: cheap to read and write)
        self._rows: np.ndarray | None = None  # the shared whole-row flags
        self._maps: list = []  # the tensors that own the two mappings above

    # -- counters live in a shared file once allocated --------------------------------------------
    @property
    def len_rows(self) -> int:
        return int(self._word[0]) >> 32 if self._word is not None else self._len_rows

    @property
    def write_cursor(self) -> int:
        return int(self._word[0]) & _LOW if self._word is not None else self._cursor

    def set_counters(self, len_rows: int, cursor: int) -> None:
        self._len_rows, self._cursor = len_rows, cursor
        if self._word is not None:
            self._word[0] = (len_rows << 32) | cursor  # one aligned store: never half old, half new

    # -- allocation -------------------------------------------------------------------------------
    def _allocate(self, td: TensorDictBase, rows: int, inner: list) -> None:
        if rows > _MAX_ROWS:
            raise ValueError(f"LazyMemmapStorage holds at most {_MAX_ROWS} rows, got max_size={self.max_size} "
                             f"({rows} rows)")
        if self.scratch_dir is None:
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="rlbench_memmap_"))
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        shape = [rows, *inner]
        # zero-stride template (also from 0 rows of data): memmap_like makes files of the full size
        # without touching RAM
        template = td.apply(lambda x: torch.zeros((), dtype=x.dtype).expand(*shape, *x.shape[len(shape):]),
                            batch_size=self._full_batch(td, shape))
        storage = template.memmap_like(self.scratch_dir / "data", num_threads=0)
        self._map_counters(0, 0, create=True)
        self._map_rows(rows, create=True, whole=False)
        self._attach(storage)
        self._write_meta()

    def _map(self, name: str, count: int, dtype: torch.dtype) -> np.ndarray:
        t = torch.from_file(str(self.scratch_dir / name), shared=True, size=count, dtype=dtype)
        self._maps.append(t)
        return t.numpy()

    def _map_counters(self, len_rows: int, cursor: int, create: bool) -> None:
        file = self.scratch_dir / _COUNTERS
        if create:
            tmp = file.with_name(file.name + ".tmp")
            np.array([(len_rows << 32) | cursor], dtype=np.int64).tofile(tmp)
            os.replace(tmp, file)
        self._word = self._map(_COUNTERS, 1, torch.int64)

    def _map_rows(self, rows: int, create: bool, whole: bool) -> None:
        file = self.scratch_dir / _ROWS
        if create:
            tmp = file.with_name(file.name + ".tmp")
            np.full(rows, int(whole), dtype=np.uint8).tofile(tmp)
            os.replace(tmp, file)
        else:
            _files.check_size(file, rows, f"one whole-row flag per row, {rows} rows")
        self._rows = self._map(_ROWS, rows, torch.uint8)

    def _write_meta(self) -> None:
        _files.write_json(self.scratch_dir / "storage.json", self._meta())

    # -- writing ----------------------------------------------------------------------------------
    def set(self, rows, data) -> None:
        if self._storage is None:
            self.prepare(data)
        values = self._check(data)  # a mismatch raises before any row is touched
        flags = self._rows
        where = rows if isinstance(rows, (int, slice)) else torch.as_tensor(rows).cpu().numpy()
        flags[where] = 0  # from here until every key is written these rows hold no whole item
        self._write(rows, values)
        flags[where] = 1

    def _load_data(self, data: TensorDictBase, meta: dict, where: str = "the saved storage") -> None:
        if self._rows is not None:
            self._rows[:] = 0
        super()._load_data(data, meta, where)
        self._rows[:] = 1

    # -- reopening --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path, scratch_dir=None, *, allow_pickle: bool = False) -> "LazyMemmapStorage":
        """Reopen the storage in directory ``path``: in place, or as a copy in ``scratch_dir``.

        ``path`` is a ``scratch_dir`` of a LazyMemmapStorage or a directory written by ``dumps``.
        Without ``scratch_dir`` its files are used where they are (writes change them: this is how a
        storage whose process died is recovered); with it they are copied there first (it must be
        empty or not exist) and ``path`` is only read. The files are checked before they are used
        (only the keys, dtypes and shapes that ``storage.json`` declares, no pickled entries unless
        ``allow_pickle=True``, every file of its declared size), and rows that a killed process
        was writing are dropped (see the class docstring).
        """
        path = Path(path)
        meta = cls._read_meta(path)
        if scratch_dir is None:
            self = cls(meta["max_size"], scratch_dir=path, ndim=meta["ndim"])
            self._reopen(meta, allow_pickle=allow_pickle)
            self._recover()
            return self
        dest = Path(scratch_dir)
        if dest.exists() and any(dest.iterdir()):
            raise FileExistsError(f"scratch_dir {dest} is not empty: copying the storage there could overwrite "
                                  "other files; pass an empty or new directory")
        self = cls(meta["max_size"], scratch_dir=dest, ndim=meta["ndim"])
        self._check_compatible(meta, str(path))
        if not meta["initialized"]:
            return self
        data = _files.load(path / "data", meta.get("leaves"), allow_pickle=allow_pickle, mode="r")
        len_rows, cursor, _ = _read_counters(path, meta)
        self._load_data(data, {**meta, "len_rows": len_rows, "cursor": cursor}, str(path))
        if (path / _ROWS).exists():  # a scratch_dir: bring its whole-row flags along
            rows = self.capacity
            _files.check_size(path / _ROWS, rows, f"one whole-row flag per row, {rows} rows")
            self._rows[:] = np.fromfile(path / _ROWS, dtype=np.uint8)
            self._recover()
        return self

    def _reopen(self, meta: dict, allow_pickle: bool = False) -> None:
        self._is_tensor = bool(meta["is_tensor"])
        if not meta["initialized"]:
            return
        data = _files.load(self.scratch_dir / "data", meta.get("leaves"), allow_pickle=allow_pickle)
        rows = data.batch_size[0]
        len_rows, cursor, current = _read_counters(self.scratch_dir, meta)
        self._checked_counters({"len_rows": len_rows, "cursor": cursor}, rows, str(self.scratch_dir / _COUNTERS))
        self._map_counters(len_rows, cursor, create=not current)
        # a dumps() directory or an older scratch_dir has no flags: its rows were written whole
        self._map_rows(rows, create=not (self.scratch_dir / _ROWS).exists(), whole=True)
        self._attach(data)

    def _recover(self) -> None:
        """Drop the rows that a killed process was writing; the filled region stays ``[0, len)``."""
        n = self.len_rows
        if self._rows is None or n == 0:
            return
        flags = self._rows
        holes = np.flatnonzero(flags[:n] == 0)
        if not len(holes):
            return
        keep = n - len(holes)
        targets = torch.from_numpy(holes[holes < keep])
        sources = torch.from_numpy(np.flatnonzero(flags[keep:n]) + keep)  # as many whole rows past `keep`
        if len(targets):
            for _, buf in self._leaves:
                buf[targets] = buf[sources]
            flags[targets.numpy()] = 1
            flags[sources.numpy()] = 0
        self.set_counters(keep, keep)
        logger.warning("LazyMemmapStorage at %s: %d row(s) were being written when the writing process stopped; "
                       "they were dropped and %d whole rows remain", self.scratch_dir, len(holes), keep)

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_storage", "_leaves", "_flat", "_word", "_rows", "_maps")}
        state["_reopen_meta"] = self._meta() if self.initialized else None
        return state

    def __setstate__(self, state: dict) -> None:
        meta = state.pop("_reopen_meta")
        self.__dict__.update(state)
        self._storage, self._leaves, self._flat, self._shape = None, [], None, None
        self._word, self._rows, self._maps = None, None, []
        if meta is not None:
            self._reopen(meta)  # no recovery here: the other process may be writing right now

    # -- persistence ------------------------------------------------------------------------------
    def dumps(self, path) -> None:
        """Save to ``path``; when ``path`` is the storage's own ``scratch_dir`` only the metadata is rewritten."""
        path = Path(path)
        if self.scratch_dir is not None and path.resolve() == self.scratch_dir.resolve():
            self._write_meta()
            return
        super().dumps(path)

    def loads(self, path, allow_pickle: bool = False, **kwargs) -> None:
        """Copy what ``dumps`` saved in ``path`` into this storage's own files (``path`` is only read)."""
        path = Path(path)
        if self.scratch_dir is not None and path.resolve() == self.scratch_dir.resolve() and self.initialized:
            return  # the files and counters there are this storage's own, already current
        super().loads(path, allow_pickle=allow_pickle)
