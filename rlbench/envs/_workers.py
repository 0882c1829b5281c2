"""Worker processes for rlbench: start, talk to, watch and always shut down a group of workers.

Used by :class:`~rlbench.envs.ParallelEnv` and by the multi-process collectors. The pieces:

- **Start**: each worker runs ``target(channel, index, *args)``; the target and its arguments are
  serialized with ``cloudpickle``, so lambdas and closures defined in a notebook cell work.
  Processes come from a ``forkserver`` context where the platform has one, else ``spawn``. Never
  ``fork``: a forked child inherits the parent's torch/OpenMP thread pools in whatever state they
  were (locks held by threads that do not exist in the child), which deadlocks at random. A fork
  server is a clean single-threaded process that imports torch and rlbench once, so each worker then
  starts in milliseconds instead of re-importing everything as ``spawn`` does (about a second each).
- **Talk**: one duplex pipe per worker; messages are small picklable objects. Tensors sent through
  the pipe travel as shared memory (torch's multiprocessing reductions), which is how the large,
  allocated-once data buffers reach the workers.
- **Faults**: an exception in a worker is sent back with its formatted traceback and re-raised in the
  parent as :class:`WorkerError` naming the worker. Every wait in the parent watches both the pipe
  and the process sentinel, so a worker killed by a signal raises :class:`WorkerDiedError` (exit
  code and signal name) as soon as it dies, never a hang. On any fault all workers are shut down.
- **Shutdown**: :meth:`WorkerGroup.close`, context manager, ``KeyboardInterrupt`` during a wait,
  garbage collection and interpreter exit (``weakref.finalize``) all end every worker: a polite
  ``close`` message, then ``terminate``, then ``kill``. Workers also exit when the parent's end of the
  pipe closes (the parent died), and ignore SIGINT so that Ctrl-C is handled by the parent alone.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import multiprocessing.util  # noqa: F401 - registers its atexit hook before ours (see _close_all_at_exit)
import signal
import time
import traceback
import weakref
from typing import Any, Callable, Sequence

import cloudpickle

__all__ = ["WorkerError", "WorkerDiedError", "WorkerGroup", "default_context"]

logger = logging.getLogger(__name__)

# Modules the fork server imports once; every worker forked from it then starts without importing.
_PRELOAD = ["torch", "tensordict", "rlbench.envs"]
# How long close() waits for a worker to leave on its own before terminating, then killing it.
_JOIN_TIMEOUT = 3.0
# After a fault the other workers may be busy mid-step: wait less before terminating them.
_FAULT_JOIN_TIMEOUT = 0.5


_live_groups: "weakref.WeakSet[WorkerGroup]" = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    """Close every live group at interpreter exit.

    Workers are not daemonic (so that a worker can itself start workers, e.g. a ParallelEnv inside a
    collector worker), and multiprocessing's own exit hook joins non-daemonic children: they must be
    gone by then. atexit runs hooks in reverse order of registration and multiprocessing.util
    registered its hook when imported above, so this one runs first.
    """
    for group in list(_live_groups):
        group.close(_FAULT_JOIN_TIMEOUT)


class WorkerError(RuntimeError):
    """A worker process failed: it raised an exception, or it died.

    Attributes:
        index: the worker's index in its group.
        remote_traceback: the worker's formatted traceback (``None`` when it died without one).

    Example:
        >>> def fail(channel, index):
        ...     raise ValueError("bad config")
        >>> group = WorkerGroup(1, fail)
        >>> try:
        ...     group.recv(0, timeout=60)
        ... except WorkerError as e:
        ...     print(e.index, "ValueError: bad config" in str(e), group.closed)
        0 True True
    """

    def __init__(self, message: str, index: int, remote_traceback: str | None = None):
        super().__init__(message)
        self.index = index
        self.remote_traceback = remote_traceback


class WorkerDiedError(WorkerError):
    """A worker process ended without reporting an error (killed by a signal, ``os._exit``, OOM killer).

    Example:
        >>> import os, signal
        >>> group = WorkerGroup(1, lambda channel, index: channel.recv())
        >>> os.kill(group.pids[0], signal.SIGKILL)
        >>> try:
        ...     group.recv(0, timeout=60)
        ... except WorkerDiedError as e:
        ...     print(e.exitcode, "SIGKILL" in str(e), group.closed)
        -9 True True
    """

    def __init__(self, message: str, index: int, exitcode: int | None):
        super().__init__(message, index)
        self.exitcode = exitcode


class _RemoteError:
    """What a worker sends when its target raised: the exception's type, message and traceback."""

    __slots__ = ("type_name", "message", "traceback")

    def __init__(self, exc: BaseException):
        self.type_name = type(exc).__name__
        self.message = str(exc)
        self.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def default_context() -> mp.context.BaseContext:
    """``forkserver`` (preloading torch and rlbench) where available, else ``spawn``; never ``fork``."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # only effective before the server starts (the first forkserver process of this interpreter)
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return mp.get_context("spawn")


def _bootstrap(conn, index: int, payload: bytes) -> None:
    """Entry point of every worker: set up, run the target, report any exception to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    import torch

    torch.set_num_threads(1)  # N workers x all cores of threads each would oversubscribe the machine
    try:
        target, args = cloudpickle.loads(payload)
        target(conn, index, *args)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent went away or closed our pipe: nobody to report to, just leave
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        try:
            conn.send(_RemoteError(exc))
        except Exception:  # noqa: BLE001 - the pipe is gone too; the exit code tells the parent
            pass
    finally:
        conn.close()


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "is not running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name} (exit code {exitcode})"
    return f"exited with code {exitcode}"


def _shutdown(processes: list, conns: list, join_timeout: float = _JOIN_TIMEOUT) -> None:
    """End every process: ask politely, then terminate, then kill. Safe to call more than once.

    A plain function of the lists (not a method) so that ``weakref.finalize`` can call it after the
    owner is gone without keeping the owner alive.
    """
    for conn, proc in zip(conns, processes):
        if proc.is_alive():
            try:
                conn.send(("close",))
            except Exception:  # noqa: BLE001 - a dead or busy worker is dealt with below
                pass
    deadline = time.monotonic() + join_timeout
    for proc in processes:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in processes:
        if proc.is_alive():
            logger.debug("worker pid %s did not exit within %.1fs; terminating it", proc.pid, join_timeout)
            proc.terminate()
            proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
    for conn in conns:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    processes.clear()
    conns.clear()


class WorkerGroup:
    """A group of worker processes, each running ``target(channel, index, *args)`` in its own process.

    The target is a loop that reads commands with ``channel.recv()`` and answers with
    ``channel.send(...)``; it returns (or the parent closes the pipe) to end the worker. A
    ``("close",)`` message is sent by :meth:`close`: targets should return when they receive it.

    Args:
        num_workers: how many processes to start.
        target: the worker's main function; may be a lambda or closure (it is cloudpickled).
        args: one tuple of extra arguments per worker (default: none), cloudpickled too.
        context: a ``multiprocessing`` context or start method name (default :func:`default_context`).
            ``"fork"`` is refused: see the module docstring.
        name: a label used in error messages and process names.

    Example:
        >>> def echo(channel, index):
        ...     while True:
        ...         msg = channel.recv()
        ...         if msg[0] == "close":
        ...             return
        ...         channel.send((index, msg[1] * 2))
        >>> with WorkerGroup(2, echo, name="echo") as group:
        ...     group.send_all(("double", 21))
        ...     group.recv_all(timeout=60)
        [(0, 42), (1, 42)]
    """

    def __init__(self, num_workers: int, target: Callable, args: Sequence[tuple] | None = None,
                 context=None, name: str = "worker"):
        if num_workers < 1:
            raise ValueError(f"{name}: num_workers must be >= 1, got {num_workers}")
        if args is not None and len(args) != num_workers:
            raise ValueError(f"{name}: got {len(args)} argument tuples for {num_workers} workers")
        if isinstance(context, str):
            if context == "fork":
                raise ValueError(
                    f"{name}: the 'fork' start method is unsafe with torch (a forked child inherits thread "
                    f"pools in an undefined state and can deadlock); use 'forkserver' or 'spawn'"
                )
            context = mp.get_context(context)
        self.context = context or default_context()
        self.name = name
        self.processes: list = []
        self.conns: list = []
        # registered before starting anything, so a failure half-way still cleans up what started
        self._finalizer = weakref.finalize(self, _shutdown, self.processes, self.conns)
        _live_groups.add(self)
        try:
            for i in range(num_workers):
                payload = cloudpickle.dumps((target, () if args is None else tuple(args[i])))
                parent_conn, child_conn = self.context.Pipe(duplex=True)
                proc = self.context.Process(
                    target=_bootstrap, args=(child_conn, i, payload), name=f"{name}-{i}", daemon=False
                )
                proc.start()
                child_conn.close()  # the parent keeps only its end: EOF then means the worker died
                self.processes.append(proc)
                self.conns.append(parent_conn)
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- info
    def __len__(self) -> int:
        return len(self.conns)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    @property
    def pids(self) -> list:
        return [p.pid for p in self.processes]

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"{self.name}: the workers are shut down (close() was called or a worker failed)")

    # -------------------------------------------------------------- messages
    def send(self, index: int, message: Any) -> None:
        """Send ``message`` to worker ``index``; a dead worker raises :class:`WorkerDiedError`."""
        self._check_open()
        try:
            self.conns[index].send(message)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._fail_dead(index)
        except BaseException:
            self.close()
            raise

    def send_all(self, message: Any, indices: Sequence[int] | None = None) -> None:
        for i in range(len(self)) if indices is None else indices:
            self.send(i, message)

    def send_bytes_all(self, data: bytes, indices: Sequence[int] | None = None) -> None:
        """Send an already pickled message (``pickle.dumps(msg)``) to each worker: the hot path of a
        command repeated every step, pickled once. Only for messages without tensors (a shared
        tensor's handle can be unpickled once only, so those must go through :meth:`send`).
        """
        self._check_open()
        for i in range(len(self)) if indices is None else indices:
            try:
                self.conns[i].send_bytes(data)
            except (BrokenPipeError, ConnectionResetError, OSError):
                self._fail_dead(i)
            except BaseException:
                self.close(_FAULT_JOIN_TIMEOUT)
                raise

    def recv(self, index: int, timeout: float | None = None) -> Any:
        """The next message from worker ``index`` (see :meth:`recv_all`)."""
        return self.recv_all([index], timeout)[0]

    def recv_all(self, indices: Sequence[int] | None = None, timeout: float | None = None) -> list:
        """One message from each of ``indices`` (default all), in that order.

        Waits on the pipes and the process sentinels together: a worker that raised gives a
        :class:`WorkerError` with its traceback, one that died a :class:`WorkerDiedError`, and
        ``timeout`` seconds (None: as long as the workers live) without an answer a ``TimeoutError``.
        Any of these, or a ``KeyboardInterrupt`` while waiting, shuts every worker down first.
        """
        indices = list(range(len(self))) if indices is None else list(indices)
        out = self._recv(indices, timeout, first_only=False)
        return [out[i] for i in indices]

    def recv_any(self, indices: Sequence[int] | None = None, timeout: float | None = None) -> tuple:
        """``(index, message)`` from whichever of ``indices`` (default all) answers first.

        Faults, timeouts and interrupts are handled as in :meth:`recv_all`.
        """
        indices = list(range(len(self))) if indices is None else list(indices)
        return next(iter(self._recv(indices, timeout, first_only=True).items()))

    def _recv(self, indices: list, timeout: float | None, first_only: bool) -> dict:
        self._check_open()
        out: dict = {}
        pending = {self.conns[i]: i for i in indices}
        sentinels = {self.processes[i].sentinel: i for i in indices}
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while pending and not (first_only and out):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    late = sorted(pending.values())
                    self.close(_FAULT_JOIN_TIMEOUT)
                    raise TimeoutError(
                        f"{self.name}: worker(s) {late} sent no answer within {timeout}s; all workers were shut down"
                    )
                waiting = set(pending.values())
                ready = mp_connection.wait(list(pending) + [s for s, i in sentinels.items() if i in waiting],
                                           timeout=left)
                for obj in ready:
                    if obj in pending:
                        i = pending.pop(obj)
                        try:
                            msg = obj.recv()
                        except (EOFError, OSError):
                            self._fail_dead(i)
                        if isinstance(msg, _RemoteError):
                            self._fail_remote(i, msg)
                        out[i] = msg
                        if first_only:
                            break
                for obj in ready:
                    i = sentinels.get(obj)
                    if i is not None and i in pending.values():
                        if self.conns[i].poll(0):  # it answered (maybe its error) before it exited: read that first
                            continue
                        self._fail_dead(i)
        except BaseException:
            if not self.closed:  # KeyboardInterrupt or anything unexpected: leave no worker behind
                self.close(_FAULT_JOIN_TIMEOUT)
            raise
        return out

    def request(self, message: Any, indices: Sequence[int] | None = None, timeout: float | None = None) -> list:
        """Send ``message`` to each of ``indices`` (default all) and return their answers."""
        self.send_all(message, indices)
        return self.recv_all(indices, timeout)

    # ---------------------------------------------------------------- faults
    def _fail_remote(self, index: int, err: _RemoteError) -> None:
        self.close(_FAULT_JOIN_TIMEOUT)
        raise WorkerError(
            f"{self.name}: worker {index} raised {err.type_name}: {err.message}\n"
            f"--- traceback in worker {index} ---\n{err.traceback.rstrip()}\n--- end of worker traceback ---\n"
            f"(all workers of {self.name} were shut down)",
            index, err.traceback,
        )

    def _fail_dead(self, index: int) -> None:
        proc = self.processes[index]
        proc.join(1.0)  # the pipe may close a moment before the process is reaped
        exitcode = proc.exitcode
        self.close(_FAULT_JOIN_TIMEOUT)
        raise WorkerDiedError(
            f"{self.name}: worker {index} (pid {proc.pid}) {_describe_exit(exitcode)} without reporting an error; "
            f"all workers of {self.name} were shut down. A signal usually means the process was killed from outside "
            f"or ran out of memory (check the system log for the OOM killer).",
            index, exitcode,
        )

    # -------------------------------------------------------------- shutdown
    def close(self, join_timeout: float = _JOIN_TIMEOUT) -> None:
        """End every worker: ask, wait up to ``join_timeout`` s, then terminate. Safe to call again."""
        if self._finalizer.detach() is not None:
            _shutdown(self.processes, self.conns, join_timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"pids={self.pids}"
        return f"WorkerGroup(name={self.name!r}, num_workers={len(self.conns)}, {state})"

