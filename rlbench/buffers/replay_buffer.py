"""Replay buffers: a storage, a writer and a sampler put together, plus prefetching and persistence."""
from __future__ import annotations

import functools
import json
import pickle
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch
from tensordict import TensorDictBase

from . import _persist
from . import samplers as _samplers
from . import storages as _storages
from . import writers as _writers
from ._transforms import TransformList, check_transform
from .samplers import PrioritizedSampler, RandomSampler, Sampler
from .storages import LazyMemmapStorage, ListStorage, Storage, UnsafeCheckpointError
from .writers import RoundRobinWriter, Writer

__all__ = ["ReplayBuffer", "TensorDictReplayBuffer", "PrioritizedReplayBuffer", "TensorDictPrioritizedReplayBuffer",
           "EmptyBufferError"]


class EmptyBufferError(RuntimeError):
    """Sampling from a buffer that holds no items."""


class _hybridmethod:
    """A method that works on the class (``Cls.loads(path)`` builds a new object) and on an instance."""

    def __init__(self, on_class: Callable, on_instance: Callable):
        self.on_class, self.on_instance = on_class, on_instance
        functools.update_wrapper(self, on_instance)

    def __get__(self, obj, cls):
        if obj is None:
            return functools.partial(self.on_class, cls)
        return functools.partial(self.on_instance, obj)


def _unsqueeze(data):
    if isinstance(data, (torch.Tensor, TensorDictBase)):
        return data.unsqueeze(0)
    return [data]


def _load_state(file: Path) -> dict:
    """``state.pt`` (sampler, writer, RNG): tensors and plain values only, never an unpickled object."""
    try:
        return torch.load(file, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(f"{file} holds pickled objects other than tensors and plain values, which safe "
                                    "loading (torch.load(weights_only=True)) refuses; it was not written by "
                                    "ReplayBuffer.dumps or it was changed") from err


class ReplayBuffer:
    """A replay buffer: ``storage`` keeps items, ``writer`` places new ones, ``sampler`` picks batches.

    Args:
        storage: a :class:`~rlbench.buffers.storages.Storage` (default ``ListStorage(1000)``).
        sampler: a :class:`~rlbench.buffers.samplers.Sampler` (default :class:`RandomSampler`).
        writer: a :class:`~rlbench.buffers.writers.Writer` (default :class:`RoundRobinWriter`).
        batch_size: default batch size of :meth:`sample` and :meth:`__iter__`.
        transform: applied to every sampled batch (e.g. an ``rlbench.envs.transforms`` transform,
            or any callable): ``batch = transform(batch)``; a list of them is applied in order (as a
            :class:`~rlbench.buffers._transforms.TransformList`, see :meth:`append_transform`).
            Stored items are never changed. Items keep their own batch dims, so a transform sees
            ``[B, T]`` when ``[T]`` trajectories were stored as items (e.g. ``CatFrames`` then
            stacks frames along each trajectory).
        collate_fn: applied to what the storage returns for a batch, before ``transform`` (as in
            TorchRL), e.g. to turn a ``ListStorage``'s list of objects into a tensor (default: none).
        prefetch: number of batches sampled ahead in background threads (0: none). Prefetched
            batches were drawn before the call that returns them: data added in between shows up a
            few batches later, and exact reproducibility of the sequence (``set_seed``) is only
            guaranteed without prefetching. An error raised while sampling in a thread is raised
            again by :meth:`sample`.
        pin_memory: pin sampled batches in page-locked memory for fast host-to-GPU copies. When
            CUDA is not available this is accepted and does nothing.
        generator: the ``torch.Generator`` behind every random draw of the sampler and of
            :meth:`__iter__` (default: a new one, seeded from torch's global RNG, so that
            ``torch.manual_seed`` makes runs reproducible). Saved and restored with the buffer.

    Indexing (``rb[3]``, ``rb[-1]``, ``rb[:]``, ``rb[tensor]``) reads stored items by flat index
    over the items that hold data (``0 .. len(rb) - 1``), without the transform.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.buffers import ReplayBuffer, LazyTensorStorage
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(1000), batch_size=32)
        >>> td = TensorDict({"observation": torch.randn(100, 4), "action": torch.randint(2, (100, 1))}, [100])
        >>> rb.extend(td).shape, len(rb)
        (torch.Size([100]), 100)
        >>> batch, info = rb.sample(return_info=True)
        >>> batch.shape, info["index"].shape
        (torch.Size([32]), torch.Size([32]))
    """

    def __init__(self, *, storage: Storage | None = None, sampler: Sampler | None = None,
                 writer: Writer | None = None, batch_size: int | None = None,
                 transform: Callable | list | tuple | None = None, prefetch: int = 0, pin_memory: bool = False,
                 generator: torch.Generator | None = None, collate_fn: Callable | None = None):
        self._storage = storage if storage is not None else ListStorage(1000)
        self._sampler = sampler if sampler is not None else RandomSampler()
        self._writer = writer if writer is not None else RoundRobinWriter()
        if not isinstance(self._storage, Storage):
            raise TypeError(f"storage must be an rlbench Storage (e.g. LazyTensorStorage(max_size)), got {storage!r}")
        if not isinstance(self._sampler, Sampler):
            raise TypeError(f"sampler must be an rlbench Sampler (e.g. RandomSampler()), got {sampler!r}")
        if not isinstance(self._writer, Writer):
            raise TypeError(f"writer must be an rlbench Writer (e.g. RoundRobinWriter()), got {writer!r}")
        self._writer.register(self._storage, self._sampler)
        self._batch_size = self._check_batch_size(batch_size, allow_none=True)
        if isinstance(transform, (list, tuple)):
            transform = TransformList(transform)
        self.transform = check_transform(transform) if transform is not None else None
        self.collate_fn = check_transform(collate_fn) if collate_fn is not None else None
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an int >= 0 (batches sampled ahead), got {prefetch!r}")
        self.prefetch = prefetch
        self.pin_memory = bool(pin_memory)
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(int(torch.randint(0, 2**62, ()).item()))
        self._generator = generator
        self._sampler.generator = generator
        # the sampler and generator are not thread-safe: draws are serialised, reads run in parallel
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._queue: deque = deque()
        self._queue_batch_size: int | None = None

    # -- parts ------------------------------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def sampler(self) -> Sampler:
        return self._sampler

    @property
    def writer(self) -> Writer:
        return self._writer

    @property
    def batch_size(self) -> int | None:
        return self._batch_size

    @property
    def generator(self) -> torch.Generator:
        return self._generator

    def append_transform(self, transform: Callable) -> None:
        """Apply ``transform`` to sampled batches after the transforms already set (TorchRL's name)."""
        self._edit_transforms(lambda ts: ts.append(transform))

    def insert_transform(self, index: int, transform: Callable) -> None:
        """Apply ``transform`` to sampled batches at position ``index`` among the transforms already set."""
        self._edit_transforms(lambda ts: ts.insert(index, transform))

    def _edit_transforms(self, edit: Callable) -> None:
        self._stop_prefetch()  # queued batches were transformed the old way
        current = self.transform
        if not isinstance(current, TransformList):
            current = TransformList([] if current is None else [current])
        edit(current)
        self.transform = current

    def set_seed(self, seed: int) -> None:
        """Reseed the buffer's generator (sampling and iteration order)."""
        self._stop_prefetch()
        self._generator.manual_seed(seed)

    @staticmethod
    def _check_batch_size(batch_size, allow_none: bool = False):
        if batch_size is None and allow_none:
            return None
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return batch_size

    def __len__(self) -> int:
        return len(self._storage)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(storage={self._storage!r}, sampler={type(self._sampler).__name__}(), "
                f"writer={type(self._writer).__name__}(), batch_size={self._batch_size})")

    # -- writing ----------------------------------------------------------------------------------
    def add(self, data) -> torch.Tensor:
        """Add one item; returns its flat index (or the ``n_envs`` flat indices of its row)."""
        index = self.extend(_unsqueeze(data))
        return index[0] if len(index) == 1 else index

    def extend(self, data) -> torch.Tensor:
        """Add items (one per entry along the first dim of ``data``); returns their flat indices."""
        with self._lock:
            return self._writer.extend(data)

    def empty(self) -> None:
        """Remove every item (and any prefetched batch)."""
        self._stop_prefetch()
        with self._lock:
            self._storage.empty()
            self._sampler.empty()
            self._writer.empty()

    # -- reading ----------------------------------------------------------------------------------
    def sample(self, batch_size: int | None = None, return_info: bool = False):
        """A batch of ``batch_size`` items (default: the buffer's ``batch_size``).

        With ``return_info=True`` returns ``(batch, info)``; ``info["index"]`` holds the flat indices
        sampled, plus whatever the sampler adds (e.g. ``"priority_weight"``).
        """
        if batch_size is None:
            batch_size = self._batch_size
            if batch_size is None:
                raise ValueError("sample() needs a batch size: pass sample(batch_size) or build the buffer with "
                                 "ReplayBuffer(..., batch_size=n)")
        else:
            batch_size = self._check_batch_size(batch_size)
        if self.prefetch:
            batch, info = self._next_prefetched(batch_size)
        else:
            batch, info = self._sample(batch_size)
        return (batch, info) if return_info else batch

    def _draw(self, batch_size: int):
        with self._lock:
            if len(self._storage) == 0:
                raise EmptyBufferError(f"cannot sample from an empty {type(self).__name__}: add or extend it first")
            index, info = self._sampler.sample(self._storage, batch_size)
            return index, dict(info)

    def _sample(self, batch_size: int):
        with self._lock:  # reads under the lock too: a concurrent extend never tears a batch
            index, info = self._draw(batch_size)
            info["index"] = index
            batch = self._storage.get(index)
        return self._finish(batch, info), info

    def _finish(self, batch, info: dict):
        if self.collate_fn is not None:
            batch = self.collate_fn(batch)
        batch = self._annotate(batch, info)
        if self.transform is not None:
            batch = self.transform(batch)
        if self.pin_memory and torch.cuda.is_available():
            batch = batch.pin_memory()
        return batch

    def _annotate(self, batch, info: dict):
        """Hook for subclasses that write sample info into the batch."""
        return batch

    def _next_prefetched(self, batch_size: int):
        if self._queue_batch_size != batch_size:
            self._stop_prefetch()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.prefetch, thread_name_prefix="rlbench-prefetch")
            self._queue_batch_size = batch_size
        while len(self._queue) < self.prefetch:
            self._queue.append(self._executor.submit(self._sample, batch_size))
        future = self._queue.popleft()
        self._queue.append(self._executor.submit(self._sample, batch_size))
        try:
            return future.result()  # re-raises an error from the thread
        except BaseException:
            self._stop_prefetch()  # the batches queued behind it may hold the same (now stale) error
            raise

    def _stop_prefetch(self, wait: bool = True) -> None:
        executor, self._executor = getattr(self, "_executor", None), None
        queue = getattr(self, "_queue", None)
        if queue:
            for future in queue:
                future.cancel()
            queue.clear()
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    def close(self) -> None:
        """Stop the prefetching threads (they also stop when the buffer is emptied or deleted)."""
        self._stop_prefetch()

    def __del__(self):
        try:
            self._stop_prefetch(wait=False)  # never block the garbage collector; idle threads exit on their own
        except Exception:  # interpreter shutdown: nothing left to clean up
            pass

    def __getitem__(self, index):
        n = len(self._storage)
        if isinstance(index, (list, tuple)):
            index = torch.as_tensor(index, dtype=torch.long)
        if isinstance(index, torch.Tensor):
            if index.dtype == torch.bool:
                if index.shape != (n,):
                    raise IndexError(f"a boolean index must have shape [{n}] (one flag per stored item), "
                                     f"got {list(index.shape)}")
                index = index.nonzero().squeeze(1)
            if index.numel() and (int(index.max()) >= n or int(index.min()) < -n):
                bad = index[(index >= n) | (index < -n)][0].item()
                raise IndexError(f"index {bad} is out of range for a buffer holding {n} items (valid: {-n}..{n - 1})")
            index = torch.where(index < 0, index + n, index)
        elif not isinstance(index, (int, slice)):
            raise TypeError("replay buffers are indexed by an int, a slice, a list or a tensor, "
                            f"got {type(index).__name__}")
        return self._storage.get(index)

    def __iter__(self):
        """One epoch: every stored item once, in batches of ``batch_size`` (transform applied).

        With a sampler that has epochs (one that reports ``ran_out``, such as
        :class:`SamplerWithoutReplacement` or ``SliceSamplerWithoutReplacement``) this draws from it
        until it runs out; otherwise it walks one fresh random permutation of the stored items.
        """
        if self._batch_size is None:
            raise ValueError("iterating over a replay buffer needs its batch_size: ReplayBuffer(..., batch_size=n)")
        if len(self) == 0:
            return
        if type(self._sampler).ran_out is not Sampler.ran_out:  # the sampler has epochs
            while True:
                yield self.sample()
                if self._sampler.ran_out:
                    return
        with self._lock:
            perm = torch.randperm(len(self), generator=self._generator)
        for start in range(0, len(perm), self._batch_size):
            index = perm[start:start + self._batch_size]
            with self._lock:
                batch = self._storage.get(index)
            yield self._finish(batch, {"index": index})

    # -- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Contents, write cursor, writer and sampler state and the RNG state, as tensors and plain values.

        Tensors are references to the live storage (as with ``nn.Module.state_dict``); ``torch.save``
        it to take a snapshot. It loads back with ``torch.load(..., weights_only=True)`` unless a
        ``ListStorage`` holds objects other than tensors and plain values.
        """
        with self._lock:
            return {"storage": self._storage.state_dict(), "sampler": self._sampler.state_dict(),
                    "writer": self._writer.state_dict(), "generator": self._generator.get_state(),
                    "batch_size": self._batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._stop_prefetch()
        with self._lock:
            self._storage.load_state_dict(state["storage"])
            self._sampler.load_state_dict(state["sampler"])
            self._writer.load_state_dict(state["writer"])
            self._generator.set_state(state["generator"])
            self._batch_size = state.get("batch_size", self._batch_size)

    def _describe(self) -> dict[str, Any]:
        return {"buffer": _persist.describe(self, skip=("storage", "sampler", "writer", "transform", "generator",
                                                        "collate_fn")),
                "storage": _persist.describe(self._storage), "sampler": _persist.describe(self._sampler),
                "writer": _persist.describe(self._writer), "batch_size": self._batch_size}

    def dumps(self, path) -> None:
        """Save the buffer to directory ``path``.

        Layout: ``buffer.json`` (the parts' classes and arguments, human-readable), ``storage/``
        (the storage's own files: tensordict memory-mapped files for tensor storages) and
        ``state.pt`` (sampler, writer and RNG state: tensors and plain values only, read back with
        ``torch.load(weights_only=True)``).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._stop_prefetch()
        with self._lock:
            self._storage.dumps(path / "storage")
            torch.save({"sampler": self._sampler.state_dict(), "writer": self._writer.state_dict(),
                        "generator": self._generator.get_state()}, path / "state.pt")
            (path / "buffer.json").write_text(json.dumps(self._describe(), indent=1))

    def _loads_into(self, path, allow_pickle: bool = False) -> None:
        """Load what :meth:`dumps` saved in ``path`` into this buffer (parts must match)."""
        path = Path(path)
        self._stop_prefetch()
        with self._lock:
            self._storage.loads(path / "storage", allow_pickle=allow_pickle)
            state = _load_state(path / "state.pt")
            self._sampler.load_state_dict(state["sampler"])
            self._writer.load_state_dict(state["writer"])
            self._generator.set_state(state["generator"])

    @classmethod
    def _loads_new(cls, path, *, sampler: Sampler | None = None, writer: Writer | None = None,
                   transform: Callable | None = None, allow_pickle: bool = False, scratch_dir=None,
                   in_place: bool = False, **kwargs) -> "ReplayBuffer":
        """Rebuild a buffer from ``path``: a :meth:`dumps` directory or a LazyMemmapStorage's ``scratch_dir``."""
        path = Path(path)
        if in_place and scratch_dir is not None:
            raise ValueError("loads: pass scratch_dir= (copy the memory-mapped files there) or in_place=True "
                             "(use them where they are), not both")
        if not (path / "buffer.json").exists():
            if (path / "storage.json").exists():  # a bare memmap storage directory: reopened in place
                parts = {k: v for k, v in (("sampler", sampler), ("writer", writer)) if v is not None}
                storage = LazyMemmapStorage.load(path, scratch_dir, allow_pickle=allow_pickle)
                buffer = cls(storage=storage, transform=transform, **parts, **kwargs)
                # no sampler state was saved: tell the sampler about every stored item (new-item priority)
                storage = buffer._storage
                if len(storage):
                    buffer._sampler.extend(storage.rows_to_flat(torch.arange(storage.len_rows)))
                return buffer
            raise FileNotFoundError(f"{path} holds no replay buffer (no buffer.json) and no memmap storage "
                                    "(no storage.json)")
        desc = json.loads((path / "buffer.json").read_text())
        storage_desc = desc["storage"]
        if storage_desc["class"] == "LazyMemmapStorage":
            if not in_place and scratch_dir is None:  # a dump stays a snapshot: work on a copy
                scratch_dir = tempfile.mkdtemp(prefix="rlbench_memmap_")
            storage = LazyMemmapStorage.load(path / "storage", scratch_dir, allow_pickle=allow_pickle)
        else:
            storage = _persist.rebuild(storage_desc, vars(_storages), "storage")
        if writer is None:
            writer = _persist.rebuild(desc["writer"], vars(_writers), "writer")
        buffer_kwargs = {k: _persist._restore(v) for k, v in (desc["buffer"].get("kwargs") or {}).items()}
        buffer_kwargs.setdefault("batch_size", desc.get("batch_size"))
        buffer_kwargs.update(kwargs)
        buffer_cls = cls
        if cls is ReplayBuffer:  # ReplayBuffer.loads rebuilds whichever buffer class was saved
            buffer_cls = {c.__name__: c for c in (ReplayBuffer, TensorDictReplayBuffer, PrioritizedReplayBuffer)
                          }.get(desc["buffer"]["class"], ReplayBuffer)
        if issubclass(buffer_cls, PrioritizedReplayBuffer):
            if sampler is not None:
                raise TypeError("a PrioritizedReplayBuffer builds its own sampler; do not pass sampler= to loads()")
            buffer = buffer_cls(storage=storage, writer=writer, transform=transform, **buffer_kwargs)
        else:
            if sampler is None:
                sampler = _persist.rebuild(desc["sampler"], vars(_samplers), "sampler")
            buffer = buffer_cls(storage=storage, sampler=sampler, writer=writer, transform=transform, **buffer_kwargs)
        if storage_desc["class"] == "LazyMemmapStorage":
            # the storage was opened (copied) above; only the sampler, writer and RNG state remain to load
            state = _load_state(path / "state.pt")
            buffer._sampler.load_state_dict(state["sampler"])
            buffer._writer.load_state_dict(state["writer"])
            buffer._generator.set_state(state["generator"])
        else:
            buffer._loads_into(path, allow_pickle=allow_pickle)
        return buffer

    loads = _hybridmethod(_loads_new.__func__, _loads_into)
    loads.__doc__ = """Load a saved buffer.

    ``ReplayBuffer.loads(path, sampler=None, writer=None, transform=None, allow_pickle=False,
    scratch_dir=None, in_place=False, **kwargs)`` on the class rebuilds the buffer saved by
    :meth:`dumps` (its class, storage, writer, sampler and their state), or wraps the ``scratch_dir``
    of a :class:`LazyMemmapStorage` whose buffer never called ``dumps`` (e.g. its process died).
    Parts that are not rlbench's own must be passed in (``sampler=...``); ``transform`` and
    ``collate_fn`` are never saved.

    Memory-mapped storages: a :meth:`dumps` directory is a snapshot, so by default its files are
    **copied** into a fresh temporary directory (or into ``scratch_dir``, which must be empty) and
    the buffer writes there: the saved files never change. ``in_place=True`` uses them where they
    are instead (later writes change the saved snapshot). A bare ``scratch_dir`` of a storage is
    that storage itself and is reopened in place (rows a killed process was writing are dropped,
    see :class:`LazyMemmapStorage`), unless ``scratch_dir`` asks for a copy.

    ``rb.loads(path, allow_pickle=False)`` on an instance copies the saved contents and state into
    this buffer's own (matching) parts.

    Nothing is unpickled by default: the storages' files must hold exactly the tensors their
    ``storage.json`` declares (keys, dtypes, shapes and file sizes), ``state.pt`` only tensors and
    plain values; anything else raises :class:`~rlbench.buffers.UnsafeCheckpointError` (a file of
    the wrong size a ``ValueError`` naming it). ``allow_pickle=True`` lets a ``ListStorage``
    unpickle objects that are not tensors and tensordict files carry pickled entries (which the
    tensor storages then ignore): only for files you trust.
    """


class TensorDictReplayBuffer(ReplayBuffer):
    """A :class:`ReplayBuffer` of TensorDicts that writes the sample info into each sampled batch.

    Every sampled TensorDict gets ``"index"`` (the flat indices it was read from) and the
    sampler's per-item entries (e.g. ``"priority_weight"``), so that a loss can send new priorities
    back with :meth:`update_tensordict_priority`. When the items have batch dims of their own (a
    ``[B, T]`` sample of stored ``[T]`` trajectories) these entries are repeated over them, and
    per-step priorities sent back are reduced to one per item by the sampler's ``reduction``.

    Args:
        priority_key: where :meth:`update_tensordict_priority` reads new priorities (``"td_error"``).
        **kwargs: as :class:`ReplayBuffer`.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.buffers import TensorDictReplayBuffer, LazyTensorStorage
        >>> rb = TensorDictReplayBuffer(storage=LazyTensorStorage(100), batch_size=8)
        >>> _ = rb.extend(TensorDict({"obs": torch.arange(10.0)}, [10]))
        >>> batch = rb.sample()
        >>> bool((batch["obs"] == batch["index"].float()).all())
        True
    """

    def __init__(self, *, priority_key="td_error", **kwargs):
        super().__init__(**kwargs)
        self.priority_key = priority_key

    def _annotate(self, batch, info: dict):
        if isinstance(batch, TensorDictBase):
            n = batch.shape[0] if batch.batch_dims else None
            inner = batch.shape[1:]  # the items' own batch dims ([T] for stored trajectories)
            for key, value in info.items():
                if isinstance(value, torch.Tensor) and value.shape[:1] == (n,):
                    if inner and value.shape[1:1 + len(inner)] != inner:  # one entry per item: repeat it per step
                        value = value.reshape(n, *([1] * len(inner)), *value.shape[1:])
                        value = value.expand(n, *inner, *value.shape[1 + len(inner):])
                    batch.set(key, value)
        return batch

    def update_priority(self, index, priority) -> None:
        """Set new priorities of items ``index`` (needs a prioritized sampler)."""
        with self._lock:
            self._sampler.update_priority(index, priority)

    def update_tensordict_priority(self, td: TensorDictBase) -> None:
        """Read ``"index"`` and ``priority_key`` from a sampled (and processed) TensorDict and update."""
        index = td.get("index", None)
        if index is None:
            raise KeyError("update_tensordict_priority needs the 'index' entry that sample() writes; "
                           "pass the TensorDict sampled from this buffer")
        priority = td.get(self.priority_key, None)
        if priority is None:
            raise KeyError(f"update_tensordict_priority: no priority at {self.priority_key!r} in the TensorDict "
                           f"(keys: {list(td.keys(True, True))}); set priority_key=... to where the loss writes it")
        if index.ndim > 1:
            rows = index.reshape(index.shape[0], -1)
            if bool((rows == rows[:, :1]).all()):  # an item's index repeated over its steps ([B, T] items)
                index = rows[:, 0]  # one priority per item: the sampler reduces the steps' (``reduction``)
        self.update_priority(index, priority.detach())


class PrioritizedReplayBuffer(TensorDictReplayBuffer):
    """Prioritized experience replay (Schaul et al., 2016): items drawn in proportion to ``(priority + eps) ** alpha``.

    Built on a :class:`~rlbench.buffers.samplers.PrioritizedSampler` covering every item of the
    storage. Samples carry importance weights ``"priority_weight"`` (written into TensorDict batches
    together with ``"index"``; in ``info`` for any data) to multiply into the per-item loss; send the
    new priorities back with :meth:`update_priority` or :meth:`update_tensordict_priority`. A NaN or
    negative priority raises.

    Args:
        alpha: how strongly priorities shape sampling (0: uniform).
        beta: importance-weight exponent (0: no correction, 1: full).
        eps: added to every priority so that none is zero.
        storage: as :class:`ReplayBuffer`; its ``max_size`` sizes the priority tree.
        **kwargs: as :class:`TensorDictReplayBuffer` (``sampler`` is built here).

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.buffers import PrioritizedReplayBuffer, LazyTensorStorage
        >>> rb = PrioritizedReplayBuffer(alpha=0.7, beta=0.5, storage=LazyTensorStorage(100), batch_size=4)
        >>> _ = rb.extend(TensorDict({"obs": torch.arange(10.0)}, [10]))
        >>> batch = rb.sample()
        >>> batch["td_error"] = torch.rand(4)
        >>> rb.update_tensordict_priority(batch)
        >>> sorted(batch.keys())
        ['index', 'obs', 'priority_weight', 'td_error']
    """

    def __init__(self, *, alpha: float, beta: float, eps: float = 1e-8, storage: Storage | None = None, **kwargs):
        if "sampler" in kwargs:
            raise TypeError("PrioritizedReplayBuffer builds its own PrioritizedSampler; use "
                            "TensorDictReplayBuffer(sampler=...) to pass one")
        storage = storage if storage is not None else ListStorage(1000)
        sampler = PrioritizedSampler(storage.max_size, alpha=alpha, beta=beta, eps=eps)
        super().__init__(storage=storage, sampler=sampler, **kwargs)

    @property
    def alpha(self) -> float:
        return self._sampler.alpha

    @property
    def beta(self) -> float:
        return self._sampler.beta

    @property
    def eps(self) -> float:
        return self._sampler.eps


#: TorchRL's name for the same thing: :class:`PrioritizedReplayBuffer` already writes ``"index"`` and
#: ``"priority_weight"`` into TensorDict samples.
TensorDictPrioritizedReplayBuffer = PrioritizedReplayBuffer
