"""``Collector``: runs a policy in an env and yields fixed-size batches of transitions.

The loop is the one a user would write by hand -- policy, ``step_and_maybe_reset``, store -- with
the storing done into buffers allocated once per batch (:class:`~rlbench.envs.rollout_writer.RolloutWriter`),
so no TensorDict is stacked or concatenated per step. Envs that can hand over a step as NumPy arrays
(gymnasium vector envs, ``SerialEnv`` of gym envs) go further: a fused loop (:mod:`._fused`) writes
them straight into the batch buffers, with no TensorDict built per step. Trajectory ids and episode returns
(:class:`~rlbench.collectors.EpisodeReturns`, always on, with or without a progress bar) are computed once per
batch with a few vectorized ops, not per step.

:meth:`Collector.start` runs the same loop on a background thread that fills the collector's replay
buffer (TorchRL's asynchronous collection), until ``total_frames`` or :meth:`Collector.async_shutdown`.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import set_interaction_type

from ..envs.common import EnvBase
from ..envs.makers import resolve_makers
from ..envs.rollout_writer import RolloutWriter
from ._env_state import env_rng_state, set_env_rng_state, state_in_td
from ._fused import fused_loop
from ._policy_call import NotDirect, direct_call, resolve_exploration
from .episodes import EpisodeReturns
from .utils import TRAJ_KEY, ExplorationType, _as_transitions, _flag_bt, assign_traj_ids, split_trajectories

__all__ = ["Collector"]

logger = logging.getLogger(__name__)


def _env_or_maker(env_or_make_env, create_env_fn, create_env_kwargs):
    """The env or maker the Collector was given, under rlbench's name or TorchRL's ``create_env_fn``/kwargs."""
    if env_or_make_env is not None and create_env_fn is not None:
        raise TypeError("Collector: give env_or_make_env or create_env_fn (TorchRL's name for it), not both")
    given = create_env_fn if env_or_make_env is None else env_or_make_env
    if given is None:
        raise TypeError("Collector: missing the env: pass an env, or a callable that builds one (create_env_fn=...)")
    if isinstance(given, EnvBase):
        if create_env_kwargs:
            raise TypeError(f"Collector: create_env_kwargs are arguments for a callable that builds the env, but the "
                            f"env itself ({type(given).__name__}) was given; pass the callable (e.g. "
                            f"create_env_fn={type(given).__name__}) or drop create_env_kwargs")
        return given
    if isinstance(given, Sequence) and not isinstance(given, str) and len(given) != 1:
        raise TypeError(f"Collector: runs one env, got {len(given)} makers; use SerialEnv/ParallelEnv(create_env_fn="
                        f"[...]) as its env, or MultiSyncCollector/MultiAsyncCollector for one worker per maker")
    if create_env_kwargs is None and not isinstance(given, Sequence):
        return given  # a callable (checked below): as before
    return resolve_makers("Collector", 1, given, create_env_kwargs=create_env_kwargs)[0]


class Collector:
    """Run ``policy`` in an env and yield batches of exactly ``frames_per_batch`` frames.

    Args:
        env_or_make_env: an :class:`~rlbench.envs.EnvBase`, or a callable that builds one (the
            collector then owns the env and closes it in :meth:`shutdown`). A callable is what
            multi-process collectors pass to their workers.
        create_env_fn: TorchRL's name for ``env_or_make_env`` (give one of the two): an env or a
            callable building one (an :class:`~rlbench.envs.EnvCreator` too).
        create_env_kwargs: keyword arguments for the callable (TorchRL's spelling; a callable only).
        policy: a callable ``td -> td`` writing ``env.action_key`` (e.g. a
            ``tensordict.nn.TensorDictModule``); it may also write in place and return None.
            ``None`` draws random actions from ``env.action_spec``.
        frames_per_batch: frames per yielded batch. For an env with batch size ``B`` (``B.numel()``
            sub-envs) a batch has shape ``[*B, frames_per_batch // B.numel()]``; ``frames_per_batch``
            must be a multiple of ``B.numel()`` (an error says so otherwise).
        total_frames: stop after this many frames (rounded up to whole batches); ``-1`` runs forever.
        init_random_frames: the first batches, until this many frames are collected, use random
            actions instead of the policy (counted in whole batches). They carry the policy's output
            keys too (zeros where the policy would have written, e.g. ``"action_value"``), so a replay
            buffer that stores whole batches takes both phases: the collector learns those keys by
            running the policy once on the first batch's starting TensorDict (under torch's saved and
            restored RNG state, so the random actions and every seeded run stay as they were).
        exploration_type: the :class:`ExplorationType` the policy runs under (``RANDOM`` samples,
            ``DETERMINISTIC``/``MODE``/``MEAN`` take the distribution's point estimate). Strings
            such as ``"deterministic"`` are accepted.
        split_trajs: yield ``[n_traj, max_len]`` batches, one row per trajectory, zero-padded with a
            ``("collector", "mask")`` (see :func:`split_trajectories`).
        reset_at_each_iter: reset the env at the start of every batch. By default the env's state
            carries over: the first step of a batch follows the last step of the previous one.
        device: where the policy runs; env outputs are moved there for the policy and actions moved
            back (default: the env's device, nothing is moved).
        storing_device: where batches are stored (default: ``device``).
        replay_buffer: anything with ``.extend(td)``; each batch is written to it as transitions
            (before split_trajs): flattened to ``[N]`` for a one-dimensional storage, time-major
            ``[T, n_envs]`` for a storage with ``ndim=2``. The batch is still yielded as ``[*B, T]``.
            Required by :meth:`start` (background collection writes only there).
        progress: show a ``tqdm.auto`` progress bar (notebook-aware) over the frames, with the mean
            return of the last 20 finished episodes; a dict is passed to ``tqdm`` as keyword
            arguments (e.g. ``{"file": sys.stdout, "desc": "ppo"}``). Episode returns are tracked
            either way (:attr:`episodes`).
        seed: seed the env (see :meth:`set_seed`).
        compile_policy: run the policy's networks through ``torch.compile`` (``compile_kwargs`` passed to
            it). For a policy on the direct path (below) each wrapped ``nn.Module`` is compiled and the
            distribution head stays eager, so sampling draws the same random numbers; any other policy
            is compiled whole. The first batch pays the compile time. Default off: measured on 2 CPU
            cores with the 4-64-64-2 CartPole MLP it is *slower* (see benchmarks/README.md,
            "Collectors"); use it for networks large enough that the fused kernels outweigh the
            compiled call's guard overhead, and check with ``benchmarks/bench_collectors.py --compile``.
            Compiled numerics may differ from eager in the last bits.
        compile_kwargs: keyword arguments for ``torch.compile`` (e.g. ``{"mode": "max-autotune-no-cudagraphs"}``);
            only with ``compile_policy=True``.

    What runs fast: a policy that is a plain ``TensorDictModule``, a ``TensorDictSequential`` of them or a
    ``ProbabilisticActor`` / ``ProbabilisticTensorDictSequential`` with a ``torch.distributions`` head
    (``Categorical``, ``Normal``...; under ``ExplorationType.RANDOM``) is called on its tensors directly,
    without tensordict's dispatch; over a gymnasium vector env or a ``SerialEnv`` of gym envs with one
    observation array, the whole step is fused (:mod:`rlbench.collectors._fused`): the env's arrays and
    every key the policy writes (action, ``"sample_log_prob"``, logits...) go straight into the batch
    buffers. Anything else (hooks, ``safe`` actors, ``TanhNormal``, Dict observations for the fused step)
    takes the generic loop. Both give the same batches, bit for bit, with the same random draws.

    Every batch carries ``("collector", "traj_ids")`` (int64, shape of the batch): the id of the
    episode each frame belongs to. Ids are unique over the collector's life and grow with time; a
    sub-env gets a new id after each of its episodes ends (or at each reset), and keeps its id
    across batches, so an episode cut by a batch boundary can be followed into the next batch.

    The returns of the episodes that end are kept in :attr:`episodes`, an
    :class:`~rlbench.collectors.EpisodeReturns` (``collector.episodes.recent``: the latest 100, in the
    order they ended; ``collector.episodes.mean()``: their mean). ``episode_returns`` is the same deque.

    Example:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from rlbench.envs import CartPoleEnv
        >>> policy = TensorDictModule(lambda obs: (obs[..., 2:3] > 0).long().squeeze(-1),
        ...                           in_keys=["observation"], out_keys=["action"])
        >>> collector = Collector(CartPoleEnv(batch_size=[4]), policy, frames_per_batch=64, total_frames=256)
        >>> len(collector)
        4
        >>> for batch in collector:
        ...     assert batch.shape == (4, 16)
        >>> sorted(batch["collector"].keys())
        ['traj_ids']
        >>> collector.episodes.finished > 0  # the policy keeps the pole up for a few dozen steps
        True
        >>> collector.shutdown()

    In the background, as TorchRL's ``collector.start()``: the thread fills ``replay_buffer`` while the
    caller trains; :meth:`async_shutdown` stops it (after the batch in progress) and re-raises anything
    the thread raised (so does the next call of ``update_policy_weights_``, ``collect`` or ``start``):

        >>> from rlbench.buffers import LazyTensorStorage, ReplayBuffer
        >>> rb = ReplayBuffer(storage=LazyTensorStorage(1_000))
        >>> collector = Collector(create_env_fn=CartPoleEnv, create_env_kwargs={"batch_size": [4]}, policy=policy,
        ...                       frames_per_batch=64, total_frames=256, replay_buffer=rb)
        >>> collector.start()
        >>> collector.join(timeout=60)  # or train on rb.sample() meanwhile
        >>> len(rb), collector.is_running()
        (256, False)
        >>> collector.async_shutdown()
    """

    def __init__(
        self,
        env_or_make_env: EnvBase | Callable[[], EnvBase] | None = None,
        policy: Callable | None = None,
        *,
        frames_per_batch: int,
        total_frames: int = -1,
        init_random_frames: int = 0,
        exploration_type=ExplorationType.RANDOM,
        split_trajs: bool = False,
        reset_at_each_iter: bool = False,
        device=None,
        storing_device=None,
        replay_buffer=None,
        progress: bool = False,
        seed: int | None = None,
        create_env_fn: EnvBase | Callable[..., EnvBase] | None = None,
        create_env_kwargs: Mapping[str, Any] | None = None,
        compile_policy: bool = False,
        compile_kwargs: Mapping[str, Any] | None = None,
    ):
        env_or_make_env = _env_or_maker(env_or_make_env, create_env_fn, create_env_kwargs)
        if isinstance(env_or_make_env, EnvBase):
            self.env, self._owns_env = env_or_make_env, False
        elif callable(env_or_make_env):
            env = env_or_make_env()
            if not isinstance(env, EnvBase):
                raise TypeError(
                    f"Collector: make_env must return an rlbench EnvBase, got {type(env).__name__}; wrap gym envs "
                    f"with rlbench.envs.GymWrapper or use GymEnv(name)"
                )
            self.env, self._owns_env = env, True
        else:
            raise TypeError(
                f"Collector: expected an EnvBase or a callable returning one, got {type(env_or_make_env).__name__}"
            )
        env = self.env
        if policy is not None and not callable(policy):
            raise TypeError(f"Collector: policy must be a callable td -> td (or None), got {type(policy).__name__}")
        self.policy = policy
        self._direct = direct_call(policy)
        self._compiled = None  # compile_policy on a policy without a direct call: the whole policy compiled
        if compile_kwargs is not None and not compile_policy:
            raise ValueError("Collector: compile_kwargs are torch.compile's arguments; pass compile_policy=True too")
        if compile_policy and policy is not None:
            kwargs = dict(compile_kwargs or {})
            if self._direct is not None:
                self._direct = self._direct.compiled(kwargs)
            else:
                self._compiled = torch.compile(policy, **kwargs)
        self.compile_policy = bool(compile_policy)
        n_envs = env.batch_size.numel()
        frames_per_batch = int(frames_per_batch)
        if frames_per_batch < 1 or frames_per_batch % n_envs:
            raise ValueError(
                f"Collector: frames_per_batch={frames_per_batch} must be a positive multiple of the env's "
                f"number of sub-envs ({n_envs}, batch_size={tuple(env.batch_size)}): every sub-env steps the same "
                f"number of times per batch. Use e.g. "
                f"frames_per_batch={max(1, round(frames_per_batch / n_envs)) * n_envs}."
            )
        self.frames_per_batch = frames_per_batch
        self.steps_per_batch = frames_per_batch // n_envs
        total_frames = int(total_frames)
        if total_frames == 0 or total_frames < -1:
            raise ValueError(f"Collector: total_frames must be positive or -1 (no end), got {total_frames}")
        self.total_frames = total_frames
        self.init_random_frames = int(init_random_frames)
        self.exploration_type = resolve_exploration(exploration_type)
        self.split_trajs = split_trajs
        self.reset_at_each_iter = reset_at_each_iter
        self.device = env.device if device is None else torch.device(device)
        self.storing_device = self.device if storing_device is None else torch.device(storing_device)
        if replay_buffer is not None and not callable(getattr(replay_buffer, "extend", None)):
            raise TypeError(
                f"Collector: replay_buffer must have an .extend(td) method, got {type(replay_buffer).__name__}"
            )
        self.replay_buffer = replay_buffer
        self.progress = progress
        self._pbar = None
        self.frames = 0  # frames collected so far
        self._td: TensorDictBase | None = None  # the env's current root (input of the next step)
        n = n_envs
        self._traj_ids = torch.arange(n, dtype=torch.int64)  # current episode id of each sub-env
        self._next_id = n
        self._fresh_ids = True  # the current ids belong to episodes that have not started yet
        self.episodes = EpisodeReturns(maxlen=100)  # returns of the finished episodes
        self._policy_checked = False
        # what the policy writes beyond its input: key -> (feature shape, dtype), learned before the first random
        # batch so random-phase batches carry the same keys (as zeros) as the policy's batches
        self._policy_extras: list[tuple] | None = None
        self._fused = True  # whether to try the fused loop (rlbench.collectors._fused); False: generic only
        self._thread: threading.Thread | None = None  # background collection (start / async_shutdown)
        self._stop = threading.Event()
        self._background_error: BaseException | None = None
        if seed is not None:
            self.set_seed(seed)

    # ----------------------------------------------------------------- public
    @property
    def episode_returns(self):
        """The returns of the latest 100 finished episodes (``self.episodes.recent``), oldest first."""
        return self.episodes.recent

    def __len__(self) -> int:
        if self.total_frames < 0:
            raise TypeError("Collector has no length: total_frames=-1 means it runs forever")
        return math.ceil(self.total_frames / self.frames_per_batch)

    def __iter__(self) -> Iterator[TensorDictBase]:
        return self.iterator()

    def iterator(self) -> Iterator[TensorDictBase]:
        """Yield batches until ``total_frames`` frames are collected (forever if it is -1)."""
        self._not_in_background("iterate over it")
        return self._batches()

    def _batches(self) -> Iterator[TensorDictBase]:
        try:
            while self.total_frames < 0 or self.frames < self.total_frames:
                batch = self.collect()
                if self.replay_buffer is not None:
                    self.replay_buffer.extend(_as_transitions(batch, self.replay_buffer))
                yield split_trajectories(batch) if self.split_trajs else batch
        finally:
            self._close_pbar()

    def collect(self) -> TensorDictBase:
        """Collect and return one batch.

        This is one step of iteration, without its extras: the batch is not written to the replay
        buffer nor split by trajectory, and ``total_frames`` is not checked.
        """
        if threading.current_thread() is not self._thread:
            self._not_in_background("collect() from another thread")
        env = self.env
        if self._td is None or self.reset_at_each_iter:
            if self._td is not None:  # a reset cuts every running episode: new ids
                self._new_episodes_everywhere()
            self._td = env.reset()
        random = self.policy is None or self.frames < self.init_random_frames
        if random and self._policy_extras is None and self._policy_acts_later():
            self._policy_extras = self._policy_output_layout(self._td)
        try:
            with torch.no_grad(), set_interaction_type(self.exploration_type):
                batch = self._rollout(self._td, random)
        except BaseException:
            # interrupted mid-batch (an error, KeyboardInterrupt): the env has moved past self._td,
            # so the next batch starts from a reset rather than from a stale state
            self._new_episodes_everywhere()
            self._td = None
            raise
        if random and self._policy_extras:
            self._add_policy_keys(batch)
        self._bookkeep(batch)
        self.frames += self.frames_per_batch
        if self.storing_device != batch.device:
            batch = batch.to(self.storing_device)
        return batch

    def set_seed(self, seed: int | None) -> int | None:
        """Seed the env; the env is reset before the next batch so the seed takes effect.

        Random actions (``policy=None`` and ``init_random_frames``) come from ``action_spec.rand()``,
        i.e. torch's global RNG: seed it with ``torch.manual_seed`` for reproducible random actions.
        """
        self._not_in_background("set_seed")
        self.env.set_seed(seed)
        if self._td is not None:
            self._new_episodes_everywhere()
        self._td = None
        return seed

    def update_policy_weights_(self, weights=None) -> None:
        """Load ``weights`` (a state dict or TensorDict of parameters) into the policy, if given.

        The single-process collector runs the trainer's own policy object, so without arguments
        this does nothing; it exists so code written for the multi-process collectors runs here too.
        While collecting in the background (:meth:`start`), it raises what the thread raised, if anything:
        a loop that calls it after each update learns of a fault at once.
        """
        self._raise_background_error()
        if weights is None:
            return
        if isinstance(weights, TensorDictBase):
            weights.to_module(self.policy)
        elif isinstance(self.policy, torch.nn.Module):
            self.policy.load_state_dict(weights)
        else:
            raise TypeError(f"Collector: cannot load weights into a policy of type {type(self.policy).__name__}")

    def state_dict(self) -> dict:
        """The collector's state, to continue collecting exactly where it stopped (see :meth:`load_state_dict`).

        Holds the frame count, the episode bookkeeping (trajectory ids, :attr:`episodes`),
        the env's random generators and -- when the env keeps its whole state in the TensorDict
        (the torch-native :class:`~rlbench.envs.ClassicControlEnv` family, possibly inside a
        ``TransformedEnv``) -- the in-flight root TensorDict, so the next batch continues the
        running episodes. Other envs (gym, processes) hold state a checkpoint cannot capture: for
        them the in-flight TensorDict is left out and the next batch after loading starts with a
        reset. Tensors and plain values only (loads with ``torch.load(weights_only=True)``).
        """
        self._not_in_background("state_dict")
        td = self._td if state_in_td(self.env) else None
        return {
            "frames": self.frames,
            "td": None if td is None else {"data": td.clone().to_dict(), "batch_size": list(td.batch_size)},
            "traj_ids": self._traj_ids.clone(),
            "next_id": self._next_id,
            "fresh_ids": self._fresh_ids,
            "episodes": self.episodes.state_dict(),
            "env_rng": env_rng_state(self.env),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (into a collector built the same way)."""
        self._not_in_background("load_state_dict")
        self.frames = int(state["frames"])
        saved = state["td"]
        if saved is not None and state_in_td(self.env):
            self._td = TensorDict(saved["data"], batch_size=saved["batch_size"], device=self.env.device)
        else:
            self._td = None
        self._traj_ids = state["traj_ids"].clone()
        self._next_id = int(state["next_id"])
        self._fresh_ids = bool(state["fresh_ids"])
        if "episodes" in state:
            self.episodes.load_state_dict(state["episodes"])
        else:  # written before EpisodeReturns: one running return per sub-env, under its current id
            self.episodes.recent.clear()
            self.episodes.recent.extend(state["episode_returns"])
            self.episodes.carry = {} if self._fresh_ids else dict(zip(self._traj_ids.tolist(),
                                                                      state["running_return"].tolist()))
        set_env_rng_state(self.env, state["env_rng"])
        if self._td is None:  # the env restarts: its running episodes end here
            self._new_episodes_everywhere()

    def shutdown(self) -> None:
        """Close the progress bar, and the env if the collector created it (stopping background collection first)."""
        if self._thread is not None:
            self.async_shutdown()
            return
        self._close_pbar()
        if self._owns_env and not self.env.is_closed:
            self.env.close()

    # ------------------------------------------------------------- background
    def start(self) -> None:
        """Collect on a background thread into ``replay_buffer`` until ``total_frames`` or :meth:`async_shutdown`.

        TorchRL's asynchronous collection: the caller samples from the buffer and trains meanwhile (the
        buffer's reads and writes are serialised by its lock; the policy is shared, so updates reach the
        next steps). The thread runs its policy under ``exploration_type`` for itself only (a thread-local
        interaction type): the caller's own ``set_exploration_type`` blocks, e.g. a deterministic
        evaluation, neither leak into it nor are changed by it. While it runs, iterating, ``collect()``,
        ``set_seed`` and ``state_dict`` are refused. An exception in the thread ends it and is raised in
        the caller by the next :meth:`update_policy_weights_`, :meth:`start`, :meth:`join` or
        :meth:`async_shutdown`.
        """
        self._raise_background_error()
        if self.replay_buffer is None:
            raise RuntimeError("Collector.start: background collection writes into a replay buffer: build the "
                               "collector with replay_buffer=ReplayBuffer(...) (or iterate over it instead)")
        if self.is_running():
            raise RuntimeError("Collector.start: already collecting in the background; call async_shutdown() first")
        self._stop.clear()
        self._thread = threading.Thread(target=self._collect_in_background, name="rlbench-Collector", daemon=True)
        self._thread.start()

    def _collect_in_background(self) -> None:
        try:
            # thread_local: the exploration type set here (and by collect() inside) stays in this thread
            with set_interaction_type(self.exploration_type, thread_local=True):
                for _ in self._batches():  # each batch is written to the replay buffer
                    if self._stop.is_set():
                        break
        except BaseException as err:  # handed to the caller (see _raise_background_error)
            self._background_error = err

    def is_running(self) -> bool:
        """Whether background collection (:meth:`start`) is in progress."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until background collection ends by itself (``total_frames`` reached), at most ``timeout`` seconds.

        Raises what the thread raised, if anything; ``TimeoutError`` if it is still running after ``timeout``.
        """
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._raise_background_error()
                raise TimeoutError(f"Collector.join: still collecting after {timeout} s ({self.frames} frames so far)")
        self._raise_background_error()

    def async_shutdown(self, timeout: float | None = None, close_env: bool = True) -> None:
        """Stop background collection after the batch in progress, then :meth:`shutdown` (TorchRL's spelling).

        Args:
            timeout: seconds to wait for the thread (``None``: until its batch is done); ``TimeoutError``
                if it is still running then (it stops on its own after that batch).
            close_env: close the env if the collector created it (as :meth:`shutdown`).

        Raises what the background thread raised, if that was not reported yet.
        """
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"Collector.async_shutdown: the background thread is still in a batch after "
                                   f"{timeout} s; it stops after that batch")
            self._thread = None
        self._close_pbar()
        if close_env and self._owns_env and not self.env.is_closed:
            self.env.close()
        self._raise_background_error()

    def _raise_background_error(self) -> None:
        err, self._background_error = self._background_error, None  # reported once
        if err is not None:
            raise RuntimeError(f"Collector: background collection failed after {self.frames} frames: "
                               f"{type(err).__name__}: {err}") from err

    def _not_in_background(self, what: str) -> None:
        self._raise_background_error()
        if self.is_running():
            raise RuntimeError(f"Collector: cannot {what} while collecting in the background (start()); call "
                               f"async_shutdown() first")

    def __repr__(self) -> str:
        total = "inf" if self.total_frames < 0 else self.total_frames
        return (
            f"Collector(env={type(self.env).__name__}(batch_size={tuple(self.env.batch_size)}), "
            f"frames_per_batch={self.frames_per_batch}, total_frames={total}, frames={self.frames}, "
            f"exploration_type={self.exploration_type.name})"
        )

    # ---------------------------------------------------------------- the loop
    def _rollout(self, td: TensorDictBase, random: bool) -> TensorDictBase:
        env, T = self.env, self.steps_per_batch
        writer = RolloutWriter(env.batch_size, T)
        step = env.step_and_maybe_reset
        # the first step of a batch takes the generic path: it lays out the writer's buffers (and, the
        # very first time, checks the policy's output)
        if not random and not self._policy_checked:
            td = self._checked_policy_call(td)
            cur, td = step(td)
            writer.write(0, cur)
            t = 1
        else:
            td, t = self._generic_steps(writer, td, 0, 1, random), 1
        out = None
        if self._fused and t < T:
            t, td, out = fused_loop(self, writer, td, t, random)
        if out is not None:  # the fused loop stopped after running the policy for step t
            cur, td = step(out)
            writer.write(t, cur)
            t += 1
        self._td = self._generic_steps(writer, td, t, T, random)
        return writer.result(T)

    def _generic_steps(self, writer, td, start: int, stop: int, random: bool) -> TensorDictBase:
        """Run steps ``start..stop-1`` through ``step_and_maybe_reset`` and ``writer.write``.

        Returns the root after them.
        """
        env = self.env
        step = env.step_and_maybe_reset
        if random:
            rand = env.rand_action
            for t in range(start, stop):
                cur, td = step(rand(td))
                writer.write(t, cur)
        else:
            policy = self.policy if self._compiled is None else self._compiled
            if self.device != env.device:
                policy = self._moving_policy(policy)
            elif self._direct is not None and self._direct_now():
                policy = self._direct
            for t in range(start, stop):
                try:
                    out = policy(td)
                except NotDirect:  # an output only tensordict knows how to write: use the module itself
                    logger.debug("Collector: %s returns an output layout the direct path leaves to tensordict",
                                 type(self.policy).__name__)
                    self._direct = None
                    policy = self.policy
                    out = policy(td)
                cur, td = step(td if out is None else out)
                writer.write(t, cur)
        return td

    def _direct_now(self) -> bool:
        """Whether the direct call runs this batch (a sampling head runs direct only under ``RANDOM``)."""
        try:
            self._direct.check()
        except NotDirect:
            return False
        return True

    def _moving_policy(self, policy):
        dev, env_dev = self.device, self.env.device

        def call(td):
            out = policy(td.to(dev))
            return (td if out is None else out).to(env_dev)

        return call

    def _checked_policy_call(self, td: TensorDictBase) -> TensorDictBase:
        """The first policy call, checked so a policy that writes no action fails with a clear message."""
        # the policy itself, not the direct path: its errors (a missing input key...) are tensordict's
        policy = self.policy if self.device == self.env.device else self._moving_policy(self.policy)
        out = policy(td)
        out = td if out is None else out
        key = self.env.action_key
        if not isinstance(out, TensorDictBase):
            raise TypeError(
                f"Collector: the policy must return a TensorDict (or None after writing in place), got "
                f"{type(out).__name__}; wrap a plain nn.Module as TensorDictModule(module, in_keys=[...], "
                f"out_keys=[{key!r}])"
            )
        if out.get(key, None) is None:
            raise KeyError(
                f"Collector: the policy did not write the action under {key!r} (expected {self.env.action_spec!r}); "
                f"it returned keys {sorted(map(str, out.keys(True, True)))}. Give the policy out_keys=[{key!r}, ...]."
            )
        self._policy_checked = True
        return out

    # ------------------------------------------------- random phase, policy layout (issue 13 item 14)
    def _policy_acts_later(self) -> bool:
        return self.policy is not None and (self.total_frames < 0 or self.total_frames > self.init_random_frames)

    def _policy_output_layout(self, td: TensorDictBase) -> list[tuple]:
        """``(key, feature shape, dtype)`` of every entry the policy adds to ``td`` (the action aside).

        Runs the policy once on a copy of ``td``. Why not zeros for the policy's declared ``out_keys``:
        a policy may be any callable (no ``out_keys``), and only a call gives the shapes and dtypes. Why
        this root rather than a reset at construction: a reset would move the env's RNG (and a gym env's
        state) before the user's first batch. torch's RNG state is saved and restored around the call, so
        sampling or exploring policies leave the random phase's draws untouched.
        """
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        cpu_state = torch.get_rng_state()
        cuda_states = torch.cuda.get_rng_state_all() if cuda else None
        try:
            policy = self.policy if self.device == self.env.device else self._moving_policy(self.policy)
            probe = td.clone()
            with torch.no_grad(), set_interaction_type(self.exploration_type):
                out = policy(probe)
        finally:
            torch.set_rng_state(cpu_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)
        out = probe if out is None else out
        if not isinstance(out, TensorDictBase):
            return []
        given = set(td.keys(True, True))
        nb = len(td.batch_size)
        return [(key, tuple(value.shape[nb:]), value.dtype) for key, value in out.items(True, True)
                if key not in given and key != self.env.action_key and isinstance(value, torch.Tensor)]

    def _add_policy_keys(self, batch: TensorDictBase) -> None:
        """Give a random-phase batch the policy's output keys, as zeros (the policy did not act)."""
        device = batch.device if batch.device is not None else self.env.device
        for key, shape, dtype in self._policy_extras:
            if batch.get(key, None) is None:
                batch.set(key, torch.zeros(*batch.shape, *shape, dtype=dtype, device=device))

    # ------------------------------------------------------------ bookkeeping
    def _new_episodes_everywhere(self) -> None:
        """Every sub-env starts a new episode (env reset): fresh ids, running episodes forgotten."""
        if self._fresh_ids:
            return
        n = self._traj_ids.numel()
        self._traj_ids = torch.arange(self._next_id, self._next_id + n, dtype=torch.int64)
        self._next_id += n
        self.episodes.drop_running()
        self._fresh_ids = True

    def _bookkeep(self, batch: TensorDictBase) -> None:
        """Write the trajectory ids into ``batch`` and track episode returns (vectorized over the batch)."""
        nb = len(self.env.batch_size)
        T = batch.shape[-1]
        done = _flag_bt(batch.get(("next", "done")), nb).reshape(-1, T).cpu()
        ids, self._traj_ids, self._next_id = assign_traj_ids(done, self._traj_ids, self._next_id)
        self._fresh_ids = False
        batch.set(TRAJ_KEY, ids.reshape(batch.shape).to(batch.device))
        reward = batch.get(("next", self.env.reward_key), None)
        if reward is not None:
            self.episodes.add(reward.reshape(*done.shape, -1), done, ids)
        if self.progress:
            self._update_pbar()

    def _update_pbar(self) -> None:
        if self._pbar is None:
            from tqdm.auto import tqdm  # lazy: tqdm.auto pulls in ipywidgets detection

            total = self.total_frames if self.total_frames > 0 else None
            kwargs = {"total": total, "unit": "frames"}
            if isinstance(self.progress, dict):
                kwargs.update(self.progress)
            self._pbar = tqdm(**kwargs)
        self._pbar.update(self.frames_per_batch)
        recent = self.episodes.mean(last=20)
        if recent is not None:
            self._pbar.set_postfix(episode_return=f"{recent:.4g}", refresh=False)

    def _close_pbar(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
