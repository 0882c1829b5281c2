"""``RayCollector``: collectors run as Ray actors, on whichever nodes of a Ray cluster have room for them.

Each remote collector is a Ray actor that builds an rlbench :class:`~rlbench.collectors.Collector` (or a
multi-process collector such as :class:`~rlbench.collectors.MultiSyncCollector`) on its node and hands
back one batch per request. The learner (this process) asks for batches, joins them, counts frames and
sends weights; Ray schedules the actors and moves the data through its object store. Batches travel
as NumPy arrays, which the object store gives the learner without a copy: the learner copies each
batch once, when it joins the actors' batches (``sync=True``) or takes one (``sync=False``).

Ray is the optional ``ray`` extra (``pip install 'rlbench[ray]'``); it is imported when a
``RayCollector`` is built. See :mod:`rlbench._ray` for how Ray is joined or started.
"""
from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from typing import Any, Callable, Iterator, Mapping, Sequence

import cloudpickle
import torch
from tensordict import TensorDict, TensorDictBase

from .. import _ray
from ..envs.workers import WorkerDiedError, WorkerError
from .collector import Collector
from .utils import TRAJ_KEY, split_trajectories

__all__ = ["RayCollector"]

logger = logging.getLogger(__name__)

VERSION_KEY = ("collector", "policy_version")
#: actor ``i`` is seeded with ``seed + i * SEED_STRIDE`` (its own collector spreads that over its sub-envs)
SEED_STRIDE = 10_000
_START_TIMEOUT = 120.0  # seconds for every actor to be placed and to build its collector
_SHUTDOWN_TIMEOUT = 10.0  # seconds for an actor to close its envs before it is killed
_RESERVED = ("frames_per_batch", "total_frames")
#: the numeric per-actor fields of :meth:`RayCollector.actor_stats` that logs and monitors follow
ACTOR_STAT_FIELDS = ("fps", "batches", "policy_lag_mean", "policy_lag_max", "restarts")
_FPS_WINDOW = 10  # an actor's frames/s is measured over its last 10 batches (so it follows changes in load)


class _CollectorActor:
    """What runs inside each Ray actor: a collector over its own env, collecting on request."""

    def __init__(self, collector_class, make_env, policy, frames_per_batch: int, kwargs: dict):
        self.collector = collector_class(make_env, policy, frames_per_batch=frames_per_batch, total_frames=-1,
                                         **kwargs)
        self._batches = iter(self.collector)  # iteration: the collector's replay_buffer (if any) is written
        self.version = 0

    def ready(self) -> tuple:
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def collect(self):
        batch = next(self._batches)
        batch.set(VERSION_KEY, torch.full(batch.shape, self.version, dtype=torch.int64, device=batch.device))
        # the pid tells the learner whether Ray restarted this actor since its last batch
        return _ray.to_wire(batch), os.getpid()

    def load_weights(self, weights, version: int) -> None:
        self.collector.update_policy_weights_(weights)
        self.version = version

    def set_seed(self, seed):
        return self.collector.set_seed(seed)

    def state_dict(self):
        return self.collector.state_dict() if hasattr(self.collector, "state_dict") else None

    def load_state_dict(self, state) -> None:
        self.collector.load_state_dict(state)

    def shutdown(self) -> None:
        self.collector.shutdown()


def _unavailable(ray) -> tuple:
    """Ray's "actor restarting" error (``ActorUnavailableError``, newer Rays only; older ones raise ActorDiedError)."""
    error = getattr(ray.exceptions, "ActorUnavailableError", None)
    return () if error is None else (error,)


def _wire_version(part) -> int | None:
    """The policy version an actor's batch (in :func:`rlbench._ray.to_wire` form) was collected with."""
    for key, value in part[2]:
        if tuple(key) == VERSION_KEY:
            flat = value.reshape(-1)
            return int(flat[0]) if len(flat) else None
    return None


def _check_picklable(what: str, obj) -> None:
    try:
        cloudpickle.dumps(obj)
    except Exception as err:
        raise TypeError(
            f"RayCollector: {what} cannot be serialized for the remote actors ({type(err).__name__}: {err}); it "
            f"must be picklable by cloudpickle: build locks, open files, sockets or envs inside the maker, not "
            f"outside it"
        ) from err


class RayCollector:
    """Collect with ``num_collectors`` remote collectors, each a Ray actor placed on a node of a Ray cluster.

    Args:
        make_envs: a callable building the env (every actor gets it), or a list with one entry per actor.
            Each actor's collector is built as ``collector_class(entry, policy, ...)``, so for a
            multi-process ``collector_class`` an entry is that collector's list of makers
            (``[[make_env] * 2] * 3``: three actors of two worker processes each).
        policy: the policy (``td -> td``), copied to every actor; ``None`` for random actions.
        num_collectors: number of actors (default: ``len(make_envs)`` for a list, else 1).
        frames_per_batch: with ``sync=True``, frames per iteration in total, split evenly over the
            actors (a multiple of ``num_collectors``); with ``sync=False``, frames per yielded batch
            (each actor's batch).
        total_frames: stop after this many frames (rounded up to whole batches, as
            :class:`~rlbench.collectors.Collector` does); ``-1`` runs forever. :attr:`frames` counts the
            frames yielded, exactly: no batch is requested beyond ``total_frames``, none is dropped.
        sync: ``True``: each iteration asks every actor for a batch, waits for all and yields them joined
            -- actor batches shaped ``[*B, T]`` are concatenated along their first dim
            (``[num_collectors * B0, ..., T]``), unbatched ``[T]`` ones stacked into
            ``[num_collectors, T]``, as :class:`~rlbench.collectors.MultiSyncCollector` does: time stays
            last and trajectories contiguous. ``False``: every actor keeps collecting and each iteration
            yields whichever actor's batch is ready first (the one requested earliest when several are);
            its policy may be a few updates old.
        collector_class: what each actor runs: :class:`~rlbench.collectors.Collector` (default) or a
            multi-process collector (:class:`~rlbench.collectors.MultiSyncCollector`...).
        collector_kwargs: keyword arguments of each actor's collector (``exploration_type``,
            ``init_random_frames``, ``device``, ``replay_buffer`` such as a
            :class:`~rlbench.buffers.RayReplayBuffer`, which the actors then write to directly...).
            ``split_trajs`` is applied by the learner to the joined batch (trajectory ids are made unique
            across actors first); ``seed`` seeds the actors as :meth:`set_seed`.
        remote_config: Ray options of each actor (``num_cpus``, ``num_gpus``, ``memory``,
            ``resources``...; default ``{"num_cpus": 1}``), or a list with one dict per actor (e.g. to
            pin actors to nodes by custom resources). An actor that fits on no node raises at once.
        ray_init_config: keyword arguments of ``ray.init`` when this process is not connected to Ray yet:
            ``{"address": "auto"}`` joins the cluster running on this machine (``ray start --head``), an
            address joins that cluster; without an address a local instance is started (dashboard off,
            bound to 127.0.0.1, e.g. ``{"num_cpus": 2}``), which :meth:`shutdown` stops again.
        max_restarts: how many times Ray restarts an actor that died (0: never). A restarted actor builds
            its collector again, loads the latest weights sent and collects the batch it owed; the batch it
            was collecting when it died is lost, never counted.

    Attributes:
        frames: frames yielded so far; ``actor_frames``/``actor_batches``: per actor (:meth:`actor_stats`
            turns them into per-actor throughput and policy lag).
        policy_version: number of :meth:`update_policy_weights_` calls.
        actors: the Ray actor handles; ``actor_nodes``/``actor_pids``: the node id and process of each.
        restarts: how many times Ray restarted each actor.

    Every batch carries ``("collector", "traj_ids")`` (unique across actors: actor ``i``'s ids become
    ``id * num_collectors + i``) and ``("collector", "policy_version")``: how many
    :meth:`update_policy_weights_` calls the weights that collected it had seen (the learner's
    :attr:`policy_version` minus it is the policy lag).

    Faults: an exception in an actor raises :class:`~rlbench.envs.WorkerError` here with the actor's
    traceback; an actor that dies (killed, its node lost) is restarted when ``max_restarts`` allows, or
    raises :class:`~rlbench.envs.WorkerDiedError`. Either way every actor is shut down first.

    Example:
        >>> import os
        >>> os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a local instance on 127.0.0.1
        >>> from rlbench.testing import CountingEnv
        >>> with RayCollector(CountingEnv, None, num_collectors=2, frames_per_batch=8, total_frames=16,
        ...                   ray_init_config={"num_cpus": 2}) as collector:  # doctest: +SKIP
        ...     shapes = [batch.shape for batch in collector]
        >>> shapes  # doctest: +SKIP
        [torch.Size([2, 4]), torch.Size([2, 4])]

    (Skipped as doctests: starting Ray takes seconds; tests/collectors/test_ray_collector.py runs these calls on
    a two-node cluster.) Arguments are checked before Ray is reached:

        >>> RayCollector(CountingEnv, None, num_collectors=2, frames_per_batch=5, total_frames=10)
        Traceback (most recent call last):
        ...
        ValueError: RayCollector: frames_per_batch=5 must be a positive multiple of the number of collectors (2) ...
    """

    def __init__(
        self,
        make_envs: Callable | Sequence,
        policy: Callable | None = None,
        *,
        num_collectors: int | None = None,
        frames_per_batch: int,
        total_frames: int,
        sync: bool = True,
        collector_class: type = Collector,
        collector_kwargs: Mapping[str, Any] | None = None,
        remote_config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        ray_init_config: Mapping[str, Any] | None = None,
        max_restarts: int = 0,
    ):
        makers = self._makers(make_envs, num_collectors)
        n = len(makers)
        total_frames = int(total_frames)
        if total_frames == 0 or total_frames < -1:
            raise ValueError(f"RayCollector: total_frames must be positive or -1 (no end), got {total_frames}")
        frames_per_batch = int(frames_per_batch)
        if frames_per_batch < 1 or (sync and frames_per_batch % n):
            raise ValueError(
                f"RayCollector: frames_per_batch={frames_per_batch} must be a positive multiple of the number of "
                f"collectors ({n}) with sync=True: each actor collects frames_per_batch / {n} frames per iteration"
            )
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < -1:
            raise ValueError(f"RayCollector: max_restarts must be an int >= 0 (or -1: always), got {max_restarts!r}")
        kwargs = dict(collector_kwargs or {})
        reserved = [k for k in _RESERVED if k in kwargs]
        if reserved:
            raise TypeError(f"RayCollector: collector_kwargs must not set {reserved}: the RayCollector's own "
                            f"frames_per_batch and total_frames decide them")
        self.split_trajs = bool(kwargs.pop("split_trajs", False))
        seed = kwargs.pop("seed", None)
        options = self._options(remote_config, n)
        _check_picklable("the policy", policy)
        for i, maker in enumerate(makers):
            _check_picklable(f"make_envs[{i}]" if n > 1 else "make_envs", maker)
        _check_picklable("collector_kwargs", kwargs)

        self.policy = policy
        self.sync = bool(sync)
        self.frames_per_batch = frames_per_batch
        self.total_frames = total_frames
        self.max_restarts = max_restarts
        self.frames = 0
        self.policy_version = 0
        self.actor_frames = [0] * n  # frames yielded from each actor
        self.actor_batches = [0] * n
        self.restarts = [0] * n
        self._lag_sum = [0] * n  # policy lag of each actor's batches (learner version - batch version): sum, max
        self._lag_max = [0] * n
        self._deliveries: list = []  # per actor: (time, its frames so far) of its last batches, for frames/s
        self._weights_ref = None  # the latest weights put in the object store (for restarted actors)
        self._loads: dict = {}  # actor index -> its load_weights calls not yet seen to succeed
        self._seed = None
        self._inflight: dict = {}  # async: object ref -> actor index, oldest request first
        self._unavailable_since: dict = {}  # actor index -> when Ray first said it was restarting
        self._actors: list = []
        self._started_ray = _ray.connect("RayCollector", ray_init_config)
        try:
            ray = _ray.import_ray("RayCollector")
            _ray.check_resources("RayCollector", options)
            remote_cls = ray.remote(_CollectorActor)
            # serialized once, read by every actor; kept referenced: a restarted actor reads it again
            self._policy_ref = ray.put(policy)
            worker_frames = frames_per_batch // n if self.sync else frames_per_batch
            self._actors = [
                remote_cls.options(max_restarts=max_restarts, **opts).remote(
                    collector_class, maker, self._policy_ref, worker_frames, kwargs)
                for maker, opts in zip(makers, options)
            ]
            placed = self._wait_ready()
            self.actor_nodes = [node for node, _ in placed]
            self.actor_pids = [pid for _, pid in placed]
            now = time.monotonic()
            self._deliveries = [deque([(now, 0)], maxlen=_FPS_WINDOW + 1) for _ in range(n)]
            if seed is not None:
                self.set_seed(seed)
        except BaseException:
            self.shutdown()
            raise

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _makers(make_envs, num_collectors) -> list:
        if isinstance(make_envs, Sequence) and not isinstance(make_envs, str):
            makers = list(make_envs)
            if not makers:
                raise TypeError("RayCollector: make_envs is an empty list; give an env maker, or one per actor")
            if num_collectors is not None and int(num_collectors) != len(makers):
                raise ValueError(f"RayCollector: num_collectors={num_collectors} but make_envs has {len(makers)} "
                                 f"entries (one per actor); give one maker for all, or one per actor")
        elif callable(make_envs):
            n = 1 if num_collectors is None else int(num_collectors)
            if n < 1:
                raise ValueError(f"RayCollector: num_collectors must be >= 1, got {num_collectors}")
            makers = [make_envs] * n
        else:
            raise TypeError(f"RayCollector: make_envs must be a callable building an env, or a list of them "
                            f"(one per actor), got {type(make_envs).__name__}")
        return makers

    @staticmethod
    def _options(remote_config, n: int) -> list[dict]:
        if remote_config is None:
            return [{"num_cpus": 1} for _ in range(n)]
        if isinstance(remote_config, Mapping):
            return [dict(remote_config) for _ in range(n)]
        configs = [dict(c) for c in remote_config]
        if len(configs) != n:
            raise ValueError(f"RayCollector: remote_config has {len(configs)} entries for {n} actors; give one "
                             f"dict for all, or one per actor")
        return configs

    def _wait_ready(self) -> list:
        ray = _ray.import_ray("RayCollector")
        refs = [a.ready.remote() for a in self._actors]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=_START_TIMEOUT)
        if pending:
            late = [refs.index(r) for r in pending]
            raise TimeoutError(f"RayCollector: actors {late} were not running after {_START_TIMEOUT:.0f} s: the "
                               f"cluster has no free room for them now (see `ray status`)")
        out = []
        for i, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError as err:
                raise WorkerError(f"RayCollector: actor {i} could not build its collector: {err}", i,
                                  str(err)) from None
        return out

    # ------------------------------------------------------------------ public
    @property
    def actors(self) -> list:
        """The Ray actor handles, one per remote collector."""
        return list(self._actors)

    @property
    def num_collectors(self) -> int:
        return len(self.actor_frames)

    def actor_stats(self) -> list[dict]:
        """Per-actor throughput, policy lag and restarts: one dict per actor, for logs and a ClusterMonitor.

        Each dict holds ``actor`` (its index), ``node`` (the Ray node id it runs on, shortened to 8
        characters), ``frames`` and ``batches`` delivered to the learner, ``fps`` (frames per second over
        its last 10 batches, arrival to arrival; its first batch is timed from the actors' start),
        ``policy_lag_mean``/``policy_lag_max`` (over its batches: :attr:`policy_version` when the batch
        arrived minus the version that collected it) and ``restarts``. Nothing is asked of the actors:
        the learner counts what it receives.
        """
        stats = []
        for i in range(self.num_collectors):
            window = self._deliveries[i] if i < len(self._deliveries) else ()
            fps = 0.0
            if len(window) >= 2 and window[-1][0] > window[0][0]:
                fps = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
            batches = self.actor_batches[i]
            node = self.actor_nodes[i] if i < len(getattr(self, "actor_nodes", ())) else None
            stats.append({"actor": i, "node": None if node is None else str(node)[:8], "frames": self.actor_frames[i],
                          "batches": batches, "fps": fps,
                          "policy_lag_mean": self._lag_sum[i] / batches if batches else 0.0,
                          "policy_lag_max": self._lag_max[i], "restarts": self.restarts[i]})
        return stats

    def __len__(self) -> int:
        if self.total_frames < 0:
            raise TypeError("RayCollector has no length: total_frames=-1 means it runs forever")
        return math.ceil(self.total_frames / self.frames_per_batch)

    def __iter__(self) -> Iterator[TensorDictBase]:
        return self.iterator()

    def iterator(self) -> Iterator[TensorDictBase]:
        """Yield batches until ``total_frames`` frames are collected (forever if it is -1)."""
        while self.total_frames < 0 or self.frames < self.total_frames:
            batch = self.collect()
            self.frames += batch.numel()
            yield split_trajectories(batch) if self.split_trajs else batch

    def collect(self) -> TensorDictBase:
        """One batch: joined from every actor (``sync=True``) or the first one ready (not counted or split)."""
        if not self._actors:
            raise RuntimeError("RayCollector: shut down; build a new one")
        try:
            return self._collect_sync() if self.sync else self._collect_async()
        except BaseException:
            self.shutdown()
            raise

    def update_policy_weights_(self, weights=None) -> None:
        """Put the policy's current weights (or ``weights``) in Ray's object store once; every actor loads them.

        Args:
            weights: a state dict or TensorDict of parameters (default: ``self.policy``'s, which must then
                be an ``nn.Module``). Checked against the policy's own keys and shapes here, so a wrong one
                fails at once, naming the entry.

        Each actor loads them before its next batch (``sync=False``: a batch already in progress keeps
        the weights it started with). :attr:`policy_version` counts the calls.
        """
        if not self._actors:
            raise RuntimeError("RayCollector: shut down; build a new one")
        ray = _ray.import_ray("RayCollector")
        if weights is None:
            if not isinstance(self.policy, torch.nn.Module):
                raise TypeError(f"RayCollector.update_policy_weights_: the policy is not an nn.Module "
                                f"({type(self.policy).__name__}); pass the weights explicitly")
            weights = {k: v.detach().cpu() for k, v in self.policy.state_dict().items()}
        elif isinstance(weights, TensorDictBase):
            self._check_weights(dict(weights.flatten_keys(".").items()), module_td=True)
            weights = weights.detach().cpu()
        elif isinstance(weights, Mapping):
            self._check_weights(weights)
            weights = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in weights.items()}
        else:
            raise TypeError(f"RayCollector.update_policy_weights_: weights must be a state dict or a TensorDict, "
                            f"got {type(weights).__name__}")
        self.policy_version += 1
        self._weights_ref = ray.put(weights)
        for i, actor in enumerate(self._actors):
            # kept: an actor that cannot load them (a policy that is no nn.Module, so not checked here) raises
            # with its next batch, instead of collecting on with its old weights
            self._loads.setdefault(i, []).append(actor.load_weights.remote(self._weights_ref, self.policy_version))

    def _check_weights(self, weights: Mapping, module_td: bool = False) -> None:
        if not isinstance(self.policy, torch.nn.Module):
            return  # nothing to compare with: the actors' load will tell
        if module_td:
            mine = dict(TensorDict.from_module(self.policy).flatten_keys(".").items())
        else:
            mine = self.policy.state_dict()
        missing = sorted(set(mine) - set(weights))
        unexpected = sorted(set(weights) - set(mine))
        if missing or unexpected:
            raise ValueError(f"RayCollector.update_policy_weights_: the weights do not match the policy: missing "
                             f"{missing}, unexpected {unexpected}")
        for key, value in weights.items():
            if isinstance(value, torch.Tensor) and value.shape != mine[key].shape:
                raise ValueError(f"RayCollector.update_policy_weights_: {key!r} has shape {tuple(value.shape)}, the "
                                 f"policy's has {tuple(mine[key].shape)}")

    def set_seed(self, seed: int | None) -> int | None:
        """Seed actor ``i``'s collector with ``seed + i * SEED_STRIDE`` (10,000), so no two actors repeat each other."""
        self._seed = seed
        refs = [a.set_seed.remote(None if seed is None else seed + i * SEED_STRIDE)
                for i, a in enumerate(self._actors)]
        self._get_all(refs)
        return seed

    def state_dict(self) -> dict:
        """Frame counts, policy version and each actor's collector state (``None`` where its class has none).

        With ``sync=False`` an actor's state is taken after the batch it is collecting, which is still
        delivered to this collector afterwards (a collector restored from this state does not get it).
        """
        states = self._get_all([a.state_dict.remote() for a in self._actors])
        return {"frames": self.frames, "policy_version": self.policy_version, "actor_frames": list(self.actor_frames),
                "actors": states}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (into a RayCollector built the same way)."""
        if len(state["actors"]) != self.num_collectors:
            raise ValueError(f"RayCollector.load_state_dict: the state holds {len(state['actors'])} actors, this "
                             f"collector has {self.num_collectors}")
        self.frames = int(state["frames"])
        self.policy_version = int(state["policy_version"])
        self.actor_frames = list(state.get("actor_frames", self.actor_frames))
        self._get_all([a.load_state_dict.remote(s) for a, s in zip(self._actors, state["actors"]) if s is not None])

    def shutdown(self) -> None:
        """End every actor (each closes its collector first, for at most 10 s) and Ray itself if it was started here."""
        actors, self._actors = self._actors, []
        self._inflight, self._loads = {}, {}
        self._policy_ref = self._weights_ref = None
        if actors:
            ray = _ray.import_ray("RayCollector")
            closing = [a.shutdown.remote() for a in actors]
            try:
                ray.wait(closing, num_returns=len(closing), timeout=_SHUTDOWN_TIMEOUT)
            except Exception:  # noqa: BLE001 - a dead actor: it is killed below all the same
                pass
            _ray.kill_actors("RayCollector", actors)
        _ray.disconnect(self._started_ray)
        self._started_ray = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self) -> str:
        total = "inf" if self.total_frames < 0 else self.total_frames
        return (f"RayCollector(num_collectors={self.num_collectors}, sync={self.sync}, "
                f"frames_per_batch={self.frames_per_batch}, total_frames={total}, frames={self.frames}, "
                f"policy_version={self.policy_version})")

    # ---------------------------------------------------------------- batches
    def _collect_sync(self) -> TensorDictBase:
        ray = _ray.import_ray("RayCollector")
        refs = [a.collect.remote() for a in self._actors]
        parts: list = [None] * len(refs)
        pending = dict(zip(refs, range(len(refs))))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            part = self._result(i, ready[0])
            if part is None:  # the actor was restarted: ask it again
                pending[self._actors[i].collect.remote()] = i
            else:
                parts[i] = part
                self._delivered(i, math.prod(part[1]), _wire_version(part))
        shapes = [tuple(p[1]) for p in parts]
        try:
            batch = _ray.join_wire(parts)
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"RayCollector(sync=True): the actors' batches (shapes {shapes}) cannot be joined: "
                             f"{err}; give every actor envs of the same batch size") from err
        self._unique_traj_ids(batch, [s[0] if len(s) > 1 else 1 for s in shapes])
        return batch

    def _collect_async(self) -> TensorDictBase:
        ray = _ray.import_ray("RayCollector")
        self._request(self._batches_wanted(0))
        while True:
            if not self._inflight:
                raise RuntimeError("RayCollector: total_frames reached: no batch is left to collect")
            ready, _ = ray.wait(list(self._inflight), num_returns=1)
            i = self._inflight.pop(ready[0])
            part = self._result(i, ready[0])
            if part is None:  # restarted: it collects again
                self._inflight[self._actors[i].collect.remote()] = i
                continue
            batch = _ray.from_wire(part)
            ids = batch.get(TRAJ_KEY, None)
            if ids is not None:
                batch.set(TRAJ_KEY, ids * self.num_collectors + i)
            self._delivered(i, batch.numel(), _wire_version(part))
            # keep the actors busy while the learner trains, but ask for no batch beyond total_frames
            self._request(self._batches_wanted(batch.numel()))
            return batch

    def _delivered(self, i: int, frames: int, version: int | None) -> None:
        """Count a batch of actor ``i``: its frames, its arrival time and its policy lag."""
        self.actor_frames[i] += frames
        self.actor_batches[i] += 1
        lag = 0 if version is None else self.policy_version - version
        self._lag_sum[i] += lag
        self._lag_max[i] = max(self._lag_max[i], lag)
        self._deliveries[i].append((time.monotonic(), self.actor_frames[i]))

    def _batches_wanted(self, delivering: int) -> float:
        """How many batches are still to come after this one (``delivering`` frames) and the in-flight ones."""
        if self.total_frames < 0:
            return math.inf
        return math.ceil((self.total_frames - self.frames - delivering) / self.frames_per_batch)

    def _request(self, wanted: float) -> None:
        busy = set(self._inflight.values())
        for i, actor in enumerate(self._actors):
            if len(self._inflight) >= wanted:
                return
            if i not in busy:
                self._inflight[actor.collect.remote()] = i

    def _unique_traj_ids(self, batch: TensorDictBase, rows: list) -> None:
        """Actor ``i``'s ids (``rows[i]`` rows of the joined batch) become ``id * num_collectors + i``."""
        ids = batch.get(TRAJ_KEY, None)
        if ids is None:
            return
        owner = torch.repeat_interleave(torch.arange(len(rows)), torch.tensor(rows))
        owner = owner.reshape(batch.shape[:1] + (1,) * (batch.ndim - 1))
        batch.set(TRAJ_KEY, ids * self.num_collectors + owner)

    def _result(self, i: int, ref):
        """The actor's batch; ``None`` when it must be asked again (restarting or restarted); raises on a fault."""
        ray = _ray.import_ray("RayCollector")
        try:
            part, pid = ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            tb = getattr(err, "traceback_str", None) or str(err)
            raise WorkerError(f"RayCollector: actor {i} raised while collecting "
                              f"({type(getattr(err, 'cause', err)).__name__}):\n{tb}", i, tb) from None
        except _unavailable(ray) as err:  # Ray is restarting it (max_restarts)
            since = self._unavailable_since.setdefault(i, time.monotonic())
            if time.monotonic() - since > _START_TIMEOUT:
                raise WorkerDiedError(f"RayCollector: actor {i} died and was still not back after "
                                      f"{_START_TIMEOUT:.0f} s of restarting ({err})", i, None) from None
            time.sleep(0.2)
            return None
        except ray.exceptions.RayActorError as err:  # dead for good: killed, out of restarts, node lost
            first = str(err).splitlines()[0] if str(err) else ""
            raise WorkerDiedError(
                f"RayCollector: actor {i} died ({type(err).__name__}: {first}) after {self.actor_frames[i]} of its "
                f"frames were delivered and {self.restarts[i]} restarts (max_restarts={self.max_restarts}; pass "
                f"max_restarts=n to let Ray restart a dead actor)", i, None) from None
        self._unavailable_since.pop(i, None)
        self._check_loads(i)
        if pid != self.actor_pids[i]:  # a new process: Ray restarted the actor
            self.restarts[i] += 1
            self.actor_pids[i] = pid
            logger.warning("RayCollector: actor %d died and Ray restarted it (%d of max_restarts=%d); the batch it "
                           "was collecting is lost", i, self.restarts[i], self.max_restarts)
            if self._weights_ref is not None or self._seed is not None:
                # it collected this batch with the constructor's policy or seed: bring it up to date, drop the batch
                if self._weights_ref is not None:
                    self._actors[i].load_weights.remote(self._weights_ref, self.policy_version)
                if self._seed is not None:  # a new seed: the restarted env does not replay its first episodes
                    self._actors[i].set_seed.remote(self._seed + i * SEED_STRIDE + self.restarts[i])
                return None
        return part

    def _check_loads(self, i: int) -> None:
        """Raise WorkerError if actor ``i`` failed to load weights sent to it (calls finished so far)."""
        refs = self._loads.get(i)
        if not refs:
            return
        ray = _ray.import_ray("RayCollector")
        ready, self._loads[i] = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                tb = getattr(err, "traceback_str", None) or str(err)
                cause = getattr(err, "cause", None)
                what = f"{type(cause).__name__}: {cause}" if cause is not None else str(err).splitlines()[0]
                raise WorkerError(
                    f"RayCollector: actor {i} could not load the weights of update_policy_weights_ "
                    f"({what}); they must be a state dict or TensorDict of the "
                    f"policy's own parameters, with its keys and shapes:\n{tb}", i, tb) from None
            except ray.exceptions.RayActorError:
                pass  # it died: the batch requests report that

    def _get_all(self, refs: list) -> list:
        ray = _ray.import_ray("RayCollector")
        out = []
        for i, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayTaskError as err:
                tb = getattr(err, "traceback_str", None) or str(err)
                raise WorkerError(f"RayCollector: actor {i} raised:\n{tb}", i, tb) from None
            except ray.exceptions.RayActorError as err:
                raise WorkerDiedError(f"RayCollector: actor {i} died ({type(err).__name__})", i, None) from None
        return out
