"""``ParallelEnv``: copies of an env stepped in worker processes, seen as one batched env.

Use it when stepping one env costs more than talking to a process (physics simulators, rendering,
envs that hold the GIL in Python for milliseconds); for cheap envs :class:`~rlbench.envs.SerialEnv`
or a torch-native batched env is faster.

How data moves: at start-up the parent asks every worker for its specs, then allocates three
shared-memory TensorDicts once, each ``[num_workers, *env.batch_size]``:

- ``inputs``: the action (and state keys) the parent writes before each step;
- ``next``: what each worker's ``_step`` returned (observation, reward, done flags);
- ``root``: each worker's current root (its last reset, or the root part of its last step), which
  is what a partial reset returns for the workers it does not reset.

A step is then: the parent copies the action into ``inputs``, sends a tiny ``("step",)`` message to
every worker, each worker steps its env and writes into its row of ``next``, answers, and the parent
clones ``next`` once. Nothing is pickled per step but the two short messages per worker.
"""
from __future__ import annotations

import logging
import pickle
from typing import Callable, Sequence

import cloudpickle
import torch
from tensordict import TensorDictBase

from .batched import _stacked
from .common import EnvBase
from .makers import resolve_makers
from .utils import step_mdp, td_from_leaves, tensor_leaves
from .workers import WorkerGroup

__all__ = ["ParallelEnv"]

# the per-step commands, pickled once
_STEP = pickle.dumps(("step",))
_STEP_RESET = pickle.dumps(("step_reset",))

logger = logging.getLogger(__name__)


def _shared_leaves(td: TensorDictBase) -> list:
    """:func:`~rlbench.envs.utils.tensor_leaves` of ``td``, each tensor moved to shared memory in place.

    Leaf by leaf rather than ``td.share_memory_()``: walking the keys of a locked (shared)
    TensorDict caches them in a reference cycle, which would hold the shared memory's file
    descriptors until the cyclic garbage collector runs, long after ``close()``.
    """
    return [(key, value.share_memory_()) for key, value in tensor_leaves(td)]


def _root_keys(env: EnvBase) -> list:
    keys = list(env.observation_spec.keys(True, True)) + list(env.done_keys) + list(env.state_spec.keys(True, True))
    return list(dict.fromkeys(k if isinstance(k, tuple) else (k,) for k in keys))


def _spec_info(env: EnvBase) -> bytes:
    """The worker's specs and keys, cloudpickled (tensors by value: no shared-memory handles needed)."""
    return cloudpickle.dumps({
        "batch_size": env.batch_size,
        "device": env.device,
        "action_key": env.action_key,
        "reward_key": env.reward_key,
        "observation_spec": env.observation_spec,
        "action_spec": env.action_spec,
        "reward_spec": env.reward_spec,
        "done_spec": env.done_spec,
        "state_spec": env.state_spec,
        "repr": repr(env),
    })


def _write(out: TensorDictBase, pairs, env: EnvBase | None = None) -> None:
    """Copy ``out``'s entries into the shared views ``pairs``; with ``env``, every key is required."""
    for key, buf in pairs:
        value = out.get(key, None)
        if value is not None:
            buf.copy_(value)
        elif env is not None:
            raise KeyError(
                f"{type(env).__name__}._step did not return {key if len(key) > 1 else key[0]!r}, which its "
                f"specs promise (returned keys: {sorted(map(str, out.keys(True, True)))})"
            )


def _env_worker(channel, index: int, make_env: Callable[[], EnvBase]) -> None:
    """Main loop of a ParallelEnv worker: build the env, then serve step/reset/seed commands."""
    env = make_env()
    if not isinstance(env, EnvBase):
        raise TypeError(
            f"ParallelEnv: make_env must return an rlbench EnvBase (e.g. GymEnv('CartPole-v1')), "
            f"got {type(env).__name__}"
        )
    channel.send(_spec_info(env))
    dev = env.device
    inputs = next_out = root = None
    batch = env.batch_size
    while True:
        msg = channel.recv()
        cmd = msg[0]
        if cmd == "step" or cmd == "step_reset":
            # a private copy of the inputs: the parent overwrites the shared buffer at the next step
            out = env._complete_done(env._step(td_from_leaves(inputs, batch, dev, copy=True)))
            _write(out, next_out, env)
            done = out.get("done")
            if cmd == "step_reset" and bool(done.any()):
                # reset right here, in the same round trip (as gymnasium's vector envs do): the
                # final observation is already in ``next``, ``root`` gets the fresh one
                sub = None
                if batch:  # a batched sub-env resets only its done part, from its current values
                    sub = td_from_leaves([(k, out.get(k)) for k, _ in root if out.get(k, None) is not None],
                                   batch, dev, copy=False)
                    sub.set("_reset", done)
                out = env.reset(sub)
            _write(out, root)
            channel.send(None)
        elif cmd == "reset":
            mask = msg[1]
            sub = None
            if mask is not None:  # a batched sub-env resets only its masked part, from its current root
                sub = td_from_leaves(root, batch, dev, copy=True)
                sub.set("_reset", torch.tensor(mask, dtype=torch.bool, device=dev).reshape(*batch, 1))
            _write(env.reset(sub), root)
            channel.send(None)
        elif cmd == "buffers":
            inputs, next_out, root = ([(k, v[index]) for k, v in leaves] for leaves in msg[1:])
            channel.send(None)
        elif cmd == "seed":
            env.set_seed(msg[1])
            channel.send(None)
        elif cmd == "ping":  # liveness / latency probe
            channel.send(None)
        elif cmd == "close":
            env.close()
            return
        else:
            raise ValueError(f"ParallelEnv worker {index}: unknown command {cmd!r}")


class ParallelEnv(EnvBase):
    """Run ``num_workers`` envs made by ``make_env`` in worker processes, batched as one env.

    The batch size is ``[num_workers, *env.batch_size]``; the specs are those of the workers' envs,
    stacked (every worker must build the same kind of env). ``set_seed(s)`` seeds worker ``i`` with
    ``s + i``: the workers differ and the whole batch is reproducible. Partial resets (a ``"_reset"``
    mask) reset only the masked workers; the others keep their current values, as in
    :class:`~rlbench.envs.SerialEnv`, which gives the same data for the same seeds and actions.

    Only the keys the specs name travel between processes: an entry a worker's env returns outside
    its specs is dropped (declare it in ``observation_spec`` to receive it).

    ``make_env`` is cloudpickled, so lambdas and closures from a notebook cell work. An exception in a
    worker re-raises in the parent as :class:`~rlbench.envs.workers.WorkerError` with the worker's
    traceback, a worker that dies raises ``WorkerDiedError``; either way every worker is shut down.
    ``close()``, ``with ParallelEnv(...) as env:``, garbage collection and interpreter exit end the
    workers. Scripts need the usual ``if __name__ == "__main__":`` guard around the code that creates
    a ParallelEnv (``spawn`` and ``forkserver`` workers re-import the main module; one that finds a
    ParallelEnv created at import time makes the parent raise an error saying so); notebooks do not.

    Args:
        num_workers: how many worker processes (one env each).
        make_env: a callable returning an :class:`EnvBase`, or a list of ``num_workers`` callables.
        device: where the batched data the parent returns lives (default: the workers' env device).
        timeout: seconds to wait for the workers' answer to a step, reset or seed before raising
            ``TimeoutError`` (None: as long as they are alive; a dead worker raises at once anyway).
        start_timeout: seconds to wait for every worker to build its env at start-up.
        context: multiprocessing context or start method (default: the one chosen with
            ``multiprocessing.set_start_method``, else ``forkserver``, else ``spawn``; ``"fork"`` only
            when asked for).
        validate_actions: check each action's values against ``action_spec`` in ``step``.
        create_env_fn: TorchRL's name for ``make_env`` (give one of the two).
        create_env_kwargs: keyword arguments for every worker's maker, or a list of ``num_workers`` dicts.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> with ParallelEnv(2, lambda: CountingEnv(max_steps=3)) as env:
        ...     td = env.rollout(4, break_when_any_done=False)
        >>> td.shape
        torch.Size([2, 4])
        >>> td["next", "observation"][0].squeeze(-1).tolist()
        [1.0, 2.0, 3.0, 1.0]
    """

    def __init__(self, num_workers: int,
                 make_env: Callable[[], EnvBase] | Sequence[Callable[[], EnvBase]] | None = None,
                 device=None, timeout: float | None = None, start_timeout: float = 120.0, context=None,
                 validate_actions: bool = True, *, create_env_fn=None, create_env_kwargs=None):
        num_workers = int(num_workers)
        if num_workers < 1:
            raise ValueError(f"ParallelEnv: num_workers must be >= 1, got {num_workers}")
        makers = resolve_makers("ParallelEnv", num_workers, make_env, create_env_fn=create_env_fn,
                                create_env_kwargs=create_env_kwargs, size_name="num_workers")
        self.timeout = timeout
        self.is_closed = True  # until the workers are up: close() from a failed __init__ is harmless
        self._workers = WorkerGroup(num_workers, _env_worker, [(m,) for m in makers], context=context,
                                    name="ParallelEnv")
        try:
            infos = [cloudpickle.loads(b) for b in self._workers.recv_all(timeout=start_timeout)]
            first = infos[0]
            for i, info in enumerate(infos[1:], 1):
                if any(info[k] != first[k] for k in ("batch_size", "observation_spec", "action_spec")):
                    raise ValueError(
                        f"ParallelEnv: worker {i}'s env has different specs from worker 0's; every make_env must "
                        f"build the same kind of env.\nworker 0: {first['repr']}\nworker {i}: {info['repr']}"
                    )
            super().__init__(batch_size=(num_workers, *first["batch_size"]), device=device or first["device"],
                             validate_actions=validate_actions)
            self.action_key, self.reward_key = first["action_key"], first["reward_key"]
            for name in ("observation_spec", "state_spec", "done_spec", "action_spec", "reward_spec"):
                setattr(self, name, _stacked(first[name], num_workers, self.device))
            self._allocate()
        except BaseException:
            self._workers.close()
            raise

    def _allocate(self) -> None:
        """Allocate the shared buffers once and hand each worker its views of them."""
        cpu = torch.device("cpu")
        root = self.observation_spec.zero().update(self.done_spec.zero()).update(self.state_spec.zero())
        self._input_leaves = _shared_leaves(self.input_spec.zero().to(cpu))
        self._next_leaves = _shared_leaves(self.output_spec.zero().to(cpu))
        self._root_leaves = _shared_leaves(root.to(cpu))
        # sent through the pipe, tensors travel as shared-memory handles: the workers write into these
        self._workers.request(("buffers", self._input_leaves, self._next_leaves, self._root_leaves),
                              timeout=self.timeout)

    @property
    def num_workers(self) -> int:
        return int(self.batch_size[0])

    @property
    def worker_pids(self) -> list:
        """Process ids of the workers (empty once closed)."""
        return self._workers.pids

    def _out(self, leaves) -> TensorDictBase:
        # a copy: the buffer is overwritten by the next step, the caller keeps what we return.
        # Built from the leaf list: several times cheaper than TensorDict.clone() for a few small keys.
        return td_from_leaves(leaves, self.batch_size, self.device, copy=True)

    def _send_inputs(self, td, cmd: bytes) -> None:
        for key, buf in self._input_leaves:
            value = td.get(key, None)
            if value is not None:
                buf.copy_(value.detach())  # the workers get values; a policy's graph stays here
        self._workers.send_bytes_all(cmd)
        self._workers.recv_all(timeout=self.timeout)

    def _step(self, td):
        self._send_inputs(td, _STEP)
        return self._out(self._next_leaves)

    def step_and_maybe_reset(self, td):
        """Step, and reset the done workers in the same round trip; see :meth:`EnvBase.step_and_maybe_reset`."""
        self._check_action(td)
        self._send_inputs(td, _STEP_RESET)
        nxt = self._out(self._next_leaves)
        td.set("next", nxt)
        root = step_mdp(td, action_key=self.action_key, reward_key=self.reward_key)
        if bool(nxt.get("done").any()):  # the done workers already reset: take their fresh root
            for key, value in self._out(self._root_leaves).items(True, True):
                root.set(key, value)
        return td, root

    def _reset(self, td):
        mask = None if td is None else td.get("_reset", None)
        if mask is None:
            self._workers.request(("reset", None), timeout=self.timeout)
        else:
            per_worker = mask.reshape(self.num_workers, -1).cpu()
            indices = [i for i in range(self.num_workers) if bool(per_worker[i].any())]
            batched = len(self.batch_size) > 1
            for i in indices:
                self._workers.send(i, ("reset", per_worker[i].tolist() if batched else None))
            self._workers.recv_all(indices, timeout=self.timeout)
        return self._out(self._root_leaves)

    def _seeds_used(self) -> int:
        return self.num_workers

    def _set_seed(self, seed):
        for i in range(self.num_workers):
            self._workers.send(i, ("seed", None if seed is None else seed + i))
        self._workers.recv_all(timeout=self.timeout)

    def __getstate__(self):
        # the workers belong to this process: a copy elsewhere could not talk to them
        raise TypeError(
            "a ParallelEnv cannot be pickled or sent to another process (its workers belong to this one); "
            "pass a callable that builds it instead, e.g. lambda: ParallelEnv(4, make_env)"
        )

    def close(self) -> None:
        """Close every worker's env, end the worker processes and release the shared buffers."""
        self._workers.close()
        # the buffers' shared memory (one file descriptor per tensor) goes now, not when gc finds the env
        self._input_leaves = self._next_leaves = self._root_leaves = []
        super().close()

    def __repr__(self) -> str:
        return super().__repr__().replace("ParallelEnv(", f"ParallelEnv(\n    num_workers={self.num_workers},", 1)
