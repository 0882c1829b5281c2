"""Multi-process collectors: one :class:`~rlbench.collectors.Collector` per worker process.

Each worker builds its env and a :class:`Collector` over it, with its own copy of the policy
(cloudpickled, so a policy or ``make_env`` defined in a notebook cell works). After its first batch a
worker copies the batch into a shared-memory TensorDict and sends the handles once; from then on it
writes each batch into that buffer and sends only a short message. The parent reads the buffer, so
a batch is never pickled.

- :class:`MultiSyncCollector` asks every worker for a batch, waits for all, and yields them joined:
  ``frames_per_batch`` frames per iteration, split evenly over the workers.
- :class:`MultiAsyncCollector` keeps every worker collecting and yields whichever worker's batch is
  ready first (``frames_per_batch`` frames each; when several are ready, the one that has waited
  longest): the policy may be a few updates behind.

Faults behave as in :class:`~rlbench.envs.ParallelEnv`: an exception in a worker re-raises in the
parent as ``WorkerError`` with the worker's traceback, a worker killed by a signal raises
``WorkerDiedError`` within seconds, and either way every worker is shut down, as on
:meth:`shutdown`, a ``with`` block's exit, ``KeyboardInterrupt`` while waiting, garbage collection
and interpreter exit.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Iterator, Sequence

import cloudpickle
import torch
from tensordict import TensorDictBase

from ..envs.utils import td_from_leaves, tensor_leaves
from ..envs.workers import WorkerGroup
from .collector import Collector
from .utils import TRAJ_KEY, _as_transitions, split_trajectories

__all__ = ["MultiSyncCollector", "MultiAsyncCollector"]

logger = logging.getLogger(__name__)


def _collector_worker(channel, index: int, make_env, policy, kwargs: dict) -> None:
    """Main loop of a collector worker: serve collect / weights / seed / close commands."""
    collector = Collector(make_env, policy, total_frames=-1, **kwargs)
    channel.send(("ready", tuple(collector.env.batch_size)))
    leaves = None
    while True:
        msg = channel.recv()
        cmd = msg[0]
        if cmd == "collect":
            batch = collector.collect()
            if leaves is None:  # first batch: allocate the shared buffer and hand it over once
                # leaf by leaf: a locked (shared) TensorDict walked for its keys sits in a reference cycle
                leaves = [(key, value.share_memory_()) for key, value in tensor_leaves(batch.to("cpu").clone())]
                channel.send(("batch", leaves, tuple(batch.batch_size)))
            else:
                for key, dst in leaves:
                    dst.copy_(batch.get(key))
                channel.send(("batch", None, None))
        elif cmd == "weights":  # no answer: the next collect runs with these weights
            collector.update_policy_weights_(cloudpickle.loads(msg[1]))
        elif cmd == "seed":
            collector.set_seed(msg[1])
            channel.send(None)
        elif cmd == "close":
            collector.shutdown()
            return
        else:
            raise ValueError(f"collector worker {index}: unknown command {cmd!r}")


class _MultiCollector:
    """What the sync and async collectors share: workers, weights, seeds, shutdown."""

    _name = "MultiCollector"

    def __init__(self, create_env_fn: Sequence[Callable], policy=None, *, frames_per_batch: int,
                 total_frames: int = -1, worker_frames: int, init_random_frames: int = 0,
                 exploration_type=None, reset_at_each_iter: bool = False, split_trajs: bool = False,
                 storing_device=None, replay_buffer=None, seed: int | None = None,
                 timeout: float | None = None, start_timeout: float = 120.0, context=None,
                 compile_policy: bool = False, compile_kwargs: dict | None = None):
        if callable(create_env_fn) and not isinstance(create_env_fn, Sequence):
            raise TypeError(
                f"{self._name}: create_env_fn must be a list of env makers, one per worker "
                f"(e.g. [make_env] * 4), got a single {type(create_env_fn).__name__}"
            )
        makers = list(create_env_fn)
        if not makers or not all(callable(m) for m in makers):
            raise TypeError(f"{self._name}: create_env_fn must be a non-empty list of callables that build envs")
        total_frames = int(total_frames)
        if total_frames == 0 or total_frames < -1:
            raise ValueError(f"{self._name}: total_frames must be positive or -1 (no end), got {total_frames}")
        if replay_buffer is not None and not callable(getattr(replay_buffer, "extend", None)):
            raise TypeError(f"{self._name}: replay_buffer must have an .extend(td) method")
        self.frames_per_batch = int(frames_per_batch)
        self.total_frames = total_frames
        self.policy = policy
        self.split_trajs = split_trajs
        self.replay_buffer = replay_buffer
        self.storing_device = None if storing_device is None else torch.device(storing_device)
        self.timeout = timeout
        self.frames = 0
        kwargs = {"frames_per_batch": worker_frames, "init_random_frames": init_random_frames,
                  "reset_at_each_iter": reset_at_each_iter}
        if exploration_type is not None:
            kwargs["exploration_type"] = exploration_type
        if compile_kwargs is not None and not compile_policy:
            raise ValueError(f"{self._name}: compile_kwargs are torch.compile's arguments; pass "
                             f"compile_policy=True too")
        if compile_policy:  # each worker compiles its own copy (the first batch pays the compile time)
            kwargs["compile_policy"], kwargs["compile_kwargs"] = True, compile_kwargs
        self._workers = WorkerGroup(len(makers), _collector_worker, [(m, policy, kwargs) for m in makers],
                                    context=context, name=self._name)
        self._buffers: list = [None] * len(makers)  # per worker: (leaves, batch_size) once known
        try:
            self._env_sizes = [math.prod(msg[1]) for msg in self._workers.recv_all(timeout=start_timeout)]
            if seed is not None:
                self.set_seed(seed)
        except BaseException:
            self._workers.close()
            raise

    @property
    def num_workers(self) -> int:
        return len(self._buffers)

    @property
    def worker_pids(self) -> list:
        return self._workers.pids

    def __len__(self) -> int:
        if self.total_frames < 0:
            raise TypeError(f"{self._name} has no length: total_frames=-1 means it runs forever")
        return math.ceil(self.total_frames / self.frames_per_batch)

    def __iter__(self) -> Iterator[TensorDictBase]:
        return self.iterator()

    def set_seed(self, seed: int | None) -> int | None:
        """Seed worker ``i``'s env with ``seed`` plus the number of sub-envs of the workers before it.

        So every sub-env of every worker gets its own seed and the whole run is reproducible.
        """
        offset = 0
        for i, n in enumerate(self._env_sizes):
            self._workers.send(i, ("seed", None if seed is None else seed + offset))
            offset += n
        self._workers.recv_all(timeout=self.timeout)
        return seed

    def update_policy_weights_(self, weights=None) -> None:
        """Send the policy's current weights (or ``weights``: a state dict or TensorDict) to every worker.

        Each worker loads them before its next batch. Weights travel by value, pickled once.
        """
        if weights is None:
            if not isinstance(self.policy, torch.nn.Module):
                raise TypeError(
                    f"{self._name}.update_policy_weights_: the policy is not an nn.Module "
                    f"({type(self.policy).__name__}); pass the weights explicitly"
                )
            weights = {k: v.detach().cpu() for k, v in self.policy.state_dict().items()}
        elif isinstance(weights, TensorDictBase):
            weights = weights.detach().cpu()
        data = cloudpickle.dumps(("weights", cloudpickle.dumps(weights)))
        self._workers.send_bytes_all(data)

    def _batch(self, index: int, msg: tuple, copy: bool) -> TensorDictBase:
        """Worker ``index``'s batch from its shared buffer, with trajectory ids unique across workers."""
        if msg[1] is not None:
            self._buffers[index] = (msg[1], torch.Size(msg[2]))
        leaves, batch_size = self._buffers[index]
        td = td_from_leaves(leaves, batch_size, torch.device("cpu"), copy=copy)
        ids = td.get(TRAJ_KEY, None)
        if ids is not None:  # worker-local ids 0, 1, 2... -> interleaved global ids, still growing in time
            td.set(TRAJ_KEY, ids * self.num_workers + index)
        return td

    def _deliver(self, batch: TensorDictBase) -> TensorDictBase:
        self.frames += batch.numel()
        if self.storing_device is not None and batch.device != self.storing_device:
            batch = batch.to(self.storing_device)
        if self.replay_buffer is not None:
            self.replay_buffer.extend(_as_transitions(batch, self.replay_buffer))
        return split_trajectories(batch) if self.split_trajs else batch

    def shutdown(self) -> None:
        """End every worker (their collectors and envs are closed first) and release the shared buffers."""
        self._workers.close()
        self._buffers = [None] * len(self._buffers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self) -> str:
        total = "inf" if self.total_frames < 0 else self.total_frames
        return (f"{self._name}(num_workers={self.num_workers}, frames_per_batch={self.frames_per_batch}, "
                f"total_frames={total}, frames={self.frames})")


class MultiSyncCollector(_MultiCollector):
    """Collect in ``len(create_env_fn)`` worker processes; each iteration gathers a batch from all.

    Each worker runs a :class:`Collector` over its own env for ``frames_per_batch / num_workers``
    frames per iteration. Worker batches shaped ``[*B, T]`` are concatenated along the first dim
    (``[num_workers * B0, ..., T]``); for unbatched envs (``[T]``) they are stacked into
    ``[num_workers, T]``, so time stays last and trajectories stay contiguous.
    ``("collector", "traj_ids")`` are unique across workers. The workers wait between iterations,
    so a batch always comes from the weights last sent by :meth:`update_policy_weights_`.

    Args:
        create_env_fn: one env maker per worker (a list; may hold lambdas or closures).
        policy: the policy (``td -> td``), copied to every worker; ``None`` for random actions.
        frames_per_batch: frames per iteration in total; a multiple of the number of workers.
        total_frames: stop after this many frames; ``-1`` runs forever.
        init_random_frames, exploration_type, reset_at_each_iter: passed to each worker's
            :class:`Collector` (``init_random_frames`` counts per worker).
        split_trajs: regroup each yielded batch by trajectory (done in the parent).
        storing_device: where yielded batches live (default CPU).
        replay_buffer: anything with ``.extend(td)``; each batch is added to it as transitions
            (``[N]``, or ``[T, n_envs]`` for a storage with ``ndim=2``; see :class:`Collector`).
        seed: seeds the workers (see :meth:`set_seed`).
        timeout: seconds to wait for a batch before ``TimeoutError`` (None: as long as workers live).
        start_timeout: seconds to wait for the workers to build their envs.
        compile_policy, compile_kwargs: passed to each worker's :class:`Collector` (``torch.compile`` of the
            policy's networks in every worker; default off, see :class:`Collector`).
        context: multiprocessing context or start method (default: the one chosen with
            ``multiprocessing.set_start_method``, else ``forkserver``, else ``spawn``). Under
            ``spawn``/``forkserver`` a script must create the collector under
            ``if __name__ == "__main__":`` (workers re-import the main module); notebooks need nothing.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> with MultiSyncCollector([CountingEnv, CountingEnv], frames_per_batch=8, total_frames=16) as c:
        ...     shapes = [batch.shape for batch in c]
        >>> shapes
        [torch.Size([2, 4]), torch.Size([2, 4])]
    """

    _name = "MultiSyncCollector"

    def __init__(self, create_env_fn: Sequence[Callable], policy=None, *, frames_per_batch: int, **kwargs):
        n = len(create_env_fn) if isinstance(create_env_fn, Sequence) else 1
        if int(frames_per_batch) < 1 or int(frames_per_batch) % n:
            raise ValueError(
                f"MultiSyncCollector: frames_per_batch={frames_per_batch} must be a positive multiple of the number "
                f"of workers ({n}): each worker collects frames_per_batch / {n} frames per iteration"
            )
        super().__init__(create_env_fn, policy, frames_per_batch=frames_per_batch,
                         worker_frames=int(frames_per_batch) // n, **kwargs)

    def iterator(self) -> Iterator[TensorDictBase]:
        """Yield joined batches until ``total_frames`` frames are collected."""
        while self.total_frames < 0 or self.frames < self.total_frames:
            yield self._deliver(self.collect())

    def collect(self) -> TensorDictBase:
        """One batch from every worker, joined (not counted, buffered or split: see :meth:`iterator`)."""
        msgs = self._workers.request(("collect",), timeout=self.timeout)
        parts = [self._batch(i, msg, copy=False) for i, msg in enumerate(msgs)]
        # cat/stack allocate fresh memory: the shared buffers can be overwritten by the next batch
        if parts[0].batch_dims == 1:
            return torch.stack(parts, 0)
        return torch.cat(parts, 0)


class MultiAsyncCollector(_MultiCollector):
    """Collect in ``len(create_env_fn)`` worker processes, yielding each worker's batch as it comes.

    Every worker collects ``frames_per_batch`` frames per batch and starts its next batch as soon as
    the parent has taken the previous one, so the workers keep busy while the parent trains. When
    several batches are ready (the parent trains longer than a worker collects), the oldest request
    is served first, so every worker takes its turn; a worker that dies is reported at the next
    batch, whichever worker would have delivered it. A batch
    may thus have been collected with weights a few :meth:`update_policy_weights_` calls old (each
    worker loads new weights between two of its batches). Arguments are those of
    :class:`MultiSyncCollector`, except that ``frames_per_batch`` is per yielded batch.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> with MultiAsyncCollector([CountingEnv, CountingEnv], frames_per_batch=5, total_frames=20) as c:
        ...     shapes = [batch.shape for batch in c]
        >>> shapes
        [torch.Size([5]), torch.Size([5]), torch.Size([5]), torch.Size([5])]
    """

    _name = "MultiAsyncCollector"

    def __init__(self, create_env_fn: Sequence[Callable], policy=None, *, frames_per_batch: int, **kwargs):
        super().__init__(create_env_fn, policy, frames_per_batch=frames_per_batch,
                         worker_frames=int(frames_per_batch), **kwargs)
        self._busy: dict = {}  # workers with a collect request in flight, oldest request first

    def iterator(self) -> Iterator[TensorDictBase]:
        """Yield worker batches, first come first served, until ``total_frames`` frames are collected."""
        while self.total_frames < 0 or self.frames < self.total_frames:
            yield self._deliver(self.collect())

    def collect(self) -> TensorDictBase:
        """The next batch any worker finishes (not counted, buffered or split: see :meth:`iterator`)."""
        idle = [i for i in range(self.num_workers) if i not in self._busy]
        if idle:
            self._workers.send_all(("collect",), idle)
            self._busy.update(dict.fromkeys(idle))
        # oldest request first among the ready ones: with a slow consumer every worker is always
        # ready, and the lowest index would otherwise win every time
        i, msg = self._workers.recv_any(list(self._busy), timeout=self.timeout)
        del self._busy[i]
        batch = self._batch(i, msg, copy=True)  # copied before the worker may overwrite its buffer
        in_flight = len(self._busy) * self.frames_per_batch
        if self.total_frames < 0 or self.frames + self.frames_per_batch + in_flight < self.total_frames:
            self._workers.send(i, ("collect",))  # start its next batch while the parent trains
            self._busy[i] = None
        return batch
