"""``RayReplayBuffer``: a replay buffer that lives in a Ray actor, shared by every process of a Ray cluster.

The buffer itself -- an ordinary :class:`~rlbench.buffers.ReplayBuffer` (or a subclass) with its storage,
sampler and writer -- is built inside one Ray actor; a ``RayReplayBuffer`` is a handle on it that forwards
each call. The handle pickles as the handle, so it can be given to remote collectors
(``RayCollector(..., collector_kwargs={"replay_buffer": rb})``) and to other learners: several writers and
readers then share one buffer, and the actor runs their calls one at a time (a batch is never torn by a
concurrent write). TensorDicts travel as NumPy arrays through Ray's object store (see :mod:`rlbench._ray`).

Ray is the optional ``ray`` extra (``pip install 'rlbench[ray]'``), imported when a buffer is built.
"""
from __future__ import annotations

from typing import Any, Mapping

from .. import _ray
from .replay_buffer import ReplayBuffer

__all__ = ["RayReplayBuffer"]


class _BufferActor:
    """What runs inside the Ray actor: the buffer, and each call forwarded to it."""

    def __init__(self, buffer_cls, kwargs: dict):
        self.buffer = buffer_cls(**kwargs)
        storage = self.buffer.storage
        self.info = {"class": buffer_cls.__name__, "storage": type(storage).__name__, "max_size": storage.max_size,
                     "ndim": storage.ndim, "batch_size": self.buffer.batch_size}

    def describe(self) -> dict:
        return self.info

    def call(self, name: str, args: tuple, kwargs: dict):
        args = tuple(_ray.from_wire(a) for a in args)
        out = getattr(self.buffer, name)(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(_ray.to_wire(o) for o in out)
        return _ray.to_wire(out)


class RemoteStorage:
    """What a :class:`RayReplayBuffer` tells about its storage without fetching it: class, size, layout.

    ``len(rb.storage)`` asks the actor; the items themselves are read with ``rb[index]`` or ``rb.sample()``.
    """

    def __init__(self, buffer: "RayReplayBuffer", info: dict):
        self._buffer = buffer
        self.name = info["storage"]
        self.max_size = info["max_size"]
        self.ndim = info["ndim"]

    def __len__(self) -> int:
        return len(self._buffer)

    def __repr__(self) -> str:
        return f"RemoteStorage({self.name}, max_size={self.max_size}, ndim={self.ndim})"


class RayReplayBuffer:
    """A replay buffer served by a Ray actor: the :class:`~rlbench.buffers.ReplayBuffer` API, across a cluster.

    Args:
        buffer_cls: the buffer class built inside the actor: :class:`~rlbench.buffers.ReplayBuffer`
            (default), :class:`~rlbench.buffers.TensorDictReplayBuffer`,
            :class:`~rlbench.buffers.PrioritizedReplayBuffer`...
        remote_config: Ray options of the actor (``num_cpus``, ``memory``, ``resources`` to pin it to a node,
            ``name`` to find it from another driver with ``ray.get_actor``...; default ``{"num_cpus": 0}``:
            the actor mostly waits for calls, so it takes no CPU from the collectors' share).
        ray_init_config: keyword arguments of ``ray.init`` when this process is not connected to Ray yet (as
            for :class:`~rlbench.collectors.RayCollector`); :meth:`shutdown` stops an instance started here.
        **buffer_kwargs: the arguments of ``buffer_cls`` exactly as for a local buffer (``storage=``,
            ``sampler=``, ``writer=``, ``batch_size=``, ``transform=``, ``alpha=``...). Parts are given as
            instances, as locally: they are pickled, sent to the actor and the buffer is built there from
            these copies, on the actor's node (so a :class:`~rlbench.buffers.LazyMemmapStorage` writes its
            files on that node's disk); the local objects are not used afterwards. Give fresh parts: what
            they hold is copied too. A ``generator`` cannot travel (torch generators do not pickle): seed
            the remote buffer with :meth:`set_seed`.

    Every method of the local buffer that reads or writes items is forwarded and blocks until the actor
    has answered: :meth:`add`, :meth:`extend`, :meth:`sample`, :meth:`update_priority`,
    :meth:`update_tensordict_priority`, ``len``, ``rb[index]``, :meth:`empty`, :meth:`set_seed`,
    :meth:`state_dict`/:meth:`load_state_dict`, :meth:`dumps`/:meth:`loads` (paths on the actor's node).
    An exception raised in the actor is raised here, with the same type (Ray's ``RayTaskError``
    subclasses it and carries the actor's traceback).

    A pickled ``RayReplayBuffer`` is another handle on the same actor (it never shuts it down): pass it to
    remote collectors and other learners. The handle that built the actor owns it: :meth:`shutdown` (or a
    ``with`` block's end) ends it, and Ray ends it when the owner is garbage collected.

    Example:
        >>> import os
        >>> os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a local instance on 127.0.0.1
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlbench.buffers import LazyTensorStorage
        >>> with RayReplayBuffer(storage=LazyTensorStorage(100), batch_size=8,
        ...                      ray_init_config={"num_cpus": 1}) as rb:  # doctest: +SKIP
        ...     _ = rb.extend(TensorDict({"obs": torch.arange(10.0)}, [10]))
        ...     len(rb), rb.sample().shape
        (10, torch.Size([8]))

    (Skipped as a doctest: starting Ray takes seconds; tests/buffers/test_ray_buffer.py runs these calls.)
    """

    def __init__(self, buffer_cls: type = ReplayBuffer, *, remote_config: Mapping[str, Any] | None = None,
                 ray_init_config: Mapping[str, Any] | None = None, **buffer_kwargs):
        if not (isinstance(buffer_cls, type) and issubclass(buffer_cls, ReplayBuffer)):
            raise TypeError(f"RayReplayBuffer: buffer_cls must be ReplayBuffer or a subclass, got {buffer_cls!r}")
        if "generator" in buffer_kwargs:
            raise TypeError("RayReplayBuffer: a torch.Generator cannot be sent to the actor; seed the buffer with "
                            "rb.set_seed(seed) instead")
        self._started_ray = _ray.connect("RayReplayBuffer", ray_init_config)
        self._owner = True
        self._actor = None
        try:
            ray = _ray.import_ray("RayReplayBuffer")
            options = {"num_cpus": 0, **dict(remote_config or {})}
            _ray.check_resources("RayReplayBuffer", [options])
            self._actor = ray.remote(_BufferActor).options(**options).remote(buffer_cls, buffer_kwargs)
            try:
                self._info = ray.get(self._actor.describe.remote())
            except ray.exceptions.RayActorError as err:
                raise RuntimeError(f"RayReplayBuffer: the actor could not build {buffer_cls.__name__}(...): "
                                   f"{err}") from None
        except BaseException:
            self.shutdown()
            raise
        self.storage = RemoteStorage(self, self._info)

    # -- handles ----------------------------------------------------------------------------------
    @property
    def actor(self):
        """The Ray actor handle that serves the buffer."""
        return self._actor

    @property
    def batch_size(self) -> int | None:
        return self._info["batch_size"]

    def __reduce__(self):
        return (_from_handle, (self._actor, self._info))

    def _call(self, name: str, *args, **kwargs):
        if self._actor is None:
            raise RuntimeError("RayReplayBuffer: shut down; build a new one")
        ray = _ray.import_ray("RayReplayBuffer")
        out = ray.get(self._actor.call.remote(name, tuple(_ray.to_wire(a) for a in args), kwargs))
        if isinstance(out, tuple) and not _ray._is_wire(out):
            return tuple(_ray.from_wire(o) for o in out)
        return _ray.from_wire(out)

    # -- the ReplayBuffer API -----------------------------------------------------------------------
    def add(self, data):
        """Add one item; returns its flat index (see :meth:`ReplayBuffer.add`)."""
        return self._call("add", data)

    def extend(self, data):
        """Add items (one per entry along the first dim of ``data``); returns their flat indices."""
        return self._call("extend", data)

    def sample(self, batch_size: int | None = None, return_info: bool = False):
        """A batch drawn by the remote sampler (``(batch, info)`` with ``return_info=True``)."""
        return self._call("sample", batch_size, return_info)

    def update_priority(self, index, priority) -> None:
        """Set new priorities of items ``index`` (needs a prioritized sampler)."""
        self._call("update_priority", index, priority)

    def update_tensordict_priority(self, td) -> None:
        """Read ``"index"`` and the priority key from a sampled TensorDict and update (TensorDict buffers)."""
        self._call("update_tensordict_priority", td)

    def __len__(self) -> int:
        return self._call("__len__")

    def __getitem__(self, index):
        return self._call("__getitem__", index)

    def empty(self) -> None:
        """Remove every item."""
        self._call("empty")

    def set_seed(self, seed: int) -> None:
        """Reseed the remote buffer's generator."""
        self._call("set_seed", seed)

    def state_dict(self) -> dict[str, Any]:
        """The remote buffer's :meth:`ReplayBuffer.state_dict`, copied here."""
        return self._call("state_dict")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state_dict` (of this or of a local buffer built the same way) into the remote buffer."""
        self._call("load_state_dict", state)

    def dumps(self, path) -> None:
        """Save the remote buffer to directory ``path`` on the actor's node (see :meth:`ReplayBuffer.dumps`)."""
        self._call("dumps", str(path))

    def loads(self, path, allow_pickle: bool = False) -> None:
        """Load what :meth:`dumps` saved in ``path`` (on the actor's node) into the remote buffer."""
        self._call("loads", str(path), allow_pickle=allow_pickle)

    # -- life -------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """End the actor (if this handle built it) and Ray itself if it was started here."""
        actor, self._actor = self._actor, None
        if actor is not None and self._owner:
            _ray.kill_actors("RayReplayBuffer", [actor])
        _ray.disconnect(self._started_ray)
        self._started_ray = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self) -> str:
        return (f"RayReplayBuffer({self._info['class']}, storage={self.storage!r}, batch_size={self.batch_size}"
                f"{'' if self._actor is not None else ', shut down'})")


def _from_handle(actor, info) -> RayReplayBuffer:
    """A non-owning :class:`RayReplayBuffer` on an existing actor (what unpickling gives)."""
    rb = RayReplayBuffer.__new__(RayReplayBuffer)
    rb._actor, rb._info, rb._owner, rb._started_ray = actor, info, False, False
    rb.storage = RemoteStorage(rb, info)
    return rb
