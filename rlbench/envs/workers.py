"""Worker processes for rlbench: start, talk to, watch and always shut down a group of workers.

Used by :class:`~rlbench.envs.ParallelEnv` and by the multi-process collectors. The pieces:

- **Start**: each worker runs ``target(channel, index, *args)``; the target and its arguments are
  serialized with ``cloudpickle``, so lambdas and closures defined in a notebook cell work.
  The start method is the one the caller chose (``context=``, or ``multiprocessing.set_start_method``),
  else ``forkserver`` where the platform has one, else ``spawn``; never ``fork`` unless chosen: a
  forked child inherits the parent's torch/OpenMP thread pools in whatever state they were (locks
  held by threads that do not exist in the child), and CUDA cannot be used in it once the parent
  initialized CUDA. A fork server is a clean single-threaded process that imports torch and rlbench
  once, so each worker then starts in milliseconds instead of re-importing everything as ``spawn``
  does (about a second each). Under ``spawn`` and ``forkserver`` every worker runs the main script
  again (as ``__mp_main__``): a script that starts workers outside ``if __name__ == "__main__":``
  makes its workers try to start workers of their own. Such a worker exits at once with
  :data:`UNGUARDED_MAIN_EXIT_CODE` and the parent raises an error saying what to change.
- **Talk**: one duplex pipe per worker; messages are small picklable objects. Tensors sent through
  the pipe travel as shared memory (torch's multiprocessing reductions), which is how the large,
  allocated-once data buffers reach the workers.
- **Faults**: an exception in a worker is sent back with its formatted traceback and re-raised in the
  parent as :class:`WorkerError` naming the worker. Every wait in the parent watches both the pipe
  and the process sentinel, so a worker killed by a signal raises :class:`WorkerDiedError` (exit
  code and signal name) as soon as it dies, never a hang, even while other workers keep answering.
  On any fault all workers are shut down.
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
import os
import signal
import sys
import time
import traceback
import weakref
from typing import Any, Callable, Sequence

import cloudpickle

__all__ = ["WorkerError", "WorkerDiedError", "WorkerGroup", "default_context", "UNGUARDED_MAIN_EXIT_CODE"]

logger = logging.getLogger(__name__)

# Modules the fork server imports once; every worker forked from it then starts without importing.
_PRELOAD = ["torch", "tensordict", "rlbench.envs"]
# How long close() waits for a worker to leave on its own before terminating, then killing it.
_JOIN_TIMEOUT = 3.0
# After a fault the other workers may be busy mid-step: wait less before terminating them.
_FAULT_JOIN_TIMEOUT = 0.5
#: Exit code of a worker that, while re-importing the main script, was asked to start workers itself
#: (a script without ``if __name__ == "__main__":``); the parent turns it into an error that says so.
UNGUARDED_MAIN_EXIT_CODE = 87
_fork_warned = False
_GONE = object()  # what reading from a dead worker's pipe gave


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
    """The start method chosen with ``multiprocessing.set_start_method``, else ``forkserver``, else ``spawn``.

    A choice is seen only when it differs from the platform's default method (the first of
    ``multiprocessing.get_all_start_methods()``): ``multiprocessing`` records its default as "set"
    as soon as anything uses it (a ``Queue``, gymnasium's ``AsyncVectorEnv``), so an explicit
    ``set_start_method("fork")`` on Linux cannot be told from that; pass ``context="fork"`` instead.
    A fork server preloads torch and rlbench, so its workers start in milliseconds.

    Example:
        >>> default_context().get_start_method() in ("forkserver", "spawn")  # nothing chosen here
        True
    """
    methods = mp.get_all_start_methods()
    chosen = mp.get_start_method(allow_none=True)
    if chosen is not None and chosen != methods[0]:
        method = chosen
    else:
        method = "forkserver" if "forkserver" in methods else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        # only effective before the server starts (the first forkserver process of this interpreter)
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _refuse_unguarded_main() -> None:
    """In a worker still importing the main script (spawn/forkserver), starting workers cannot work: leave.

    The process is a child that is re-running the parent's main module before its target starts;
    multiprocessing would raise a long generic error here, and the parent would only see an exit
    code. Exiting with :data:`UNGUARDED_MAIN_EXIT_CODE` lets the parent name the problem.
    """
    if not getattr(mp.current_process(), "_inheriting", False):
        return
    # while multiprocessing runs the script again, the module being run is registered as __mp_main__
    path = getattr(sys.modules.get("__mp_main__"), "__file__", None)
    sys.stderr.write(
        f"rlbench: this worker process re-imported the main script{f' {path}' if path else ''}, which starts "
        f"worker processes at import time; put that code under `if __name__ == \"__main__\":`\n"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(UNGUARDED_MAIN_EXIT_CODE)  # SystemExit would be turned into exit code 1 by a fork server child


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


def _main_script() -> str | None:
    """The path of the script ``__main__`` was run from, or None (a notebook, ``python -c``, a REPL)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return os.path.abspath(path) if path else None


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
            ``"fork"`` is used when asked for, with a warning (see the module docstring).
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
        _refuse_unguarded_main()
        if isinstance(context, str):
            context = mp.get_context(context)
        self.context = context or default_context()
        if self.context.get_start_method() == "fork":
            global _fork_warned
            if not _fork_warned:
                _fork_warned = True
                logger.warning(
                    "%s: starting workers with 'fork', as asked. A forked worker inherits the parent's thread "
                    "pools and locks as they were, and cannot use CUDA if the parent initialized it; "
                    "'forkserver' and 'spawn' avoid both (they need `if __name__ == \"__main__\":` in scripts)",
                    name,
                )
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
        """Send an already pickled message (``pickle.dumps(msg)``) to each worker.

        The hot path of a command repeated every step, pickled once. Only for messages without
        tensors (a shared tensor's handle can be unpickled once only, so those must go through
        :meth:`send`).
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

        When several have answered, the first of them in ``indices`` order wins: pass the indices
        oldest request first and every worker gets its turn, even when all are always ready (a
        consumer slower than its workers). A worker that died is reported before any answer is
        taken, so other workers that keep answering never hide its death. Faults, timeouts and
        interrupts are handled as in :meth:`recv_all`.
        """
        indices = list(range(len(self))) if indices is None else list(indices)
        return next(iter(self._recv(indices, timeout, first_only=True).items()))

    def _recv(self, indices: list, timeout: float | None, first_only: bool) -> dict:
        self._check_open()
        out: dict = {}
        pending = dict.fromkeys(indices)  # ordered: the caller's order is the order of preference
        conns = self.conns
        sentinels = [p.sentinel for p in self.processes]
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while pending and not (first_only and out):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    late = sorted(pending)
                    self.close(_FAULT_JOIN_TIMEOUT)
                    raise TimeoutError(
                        f"{self.name}: worker(s) {late} sent no answer within {timeout}s; all workers were shut down"
                    )
                ready = set(mp_connection.wait([conns[i] for i in pending] + [sentinels[i] for i in pending],
                                               timeout=left))
                # the dead first (a death must not wait behind live workers' answers), then the answers
                dead = [i for i in pending if sentinels[i] in ready]
                for i in dead + [i for i in pending if conns[i] in ready and i not in dead]:
                    conn = conns[i]
                    if i in dead and not conn.poll(0):
                        self._fail_dead(i)
                    try:  # a dead worker's last message (maybe its error) is read first
                        msg = conn.recv()
                    except (EOFError, OSError):
                        msg = _GONE
                    if msg is _GONE:  # raised here, not in the except: the EOFError is no news to the user
                        self._fail_dead(i)
                    if isinstance(msg, _RemoteError):
                        self._fail_remote(i, msg)
                    del pending[i]
                    out[i] = msg
                    if first_only:
                        break
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
        method = self.context.get_start_method()
        self.close(_FAULT_JOIN_TIMEOUT)
        if exitcode == UNGUARDED_MAIN_EXIT_CODE:
            message = (
                f"{self.name}: worker {index} (pid {proc.pid}) could not start: it re-imported the main script "
                f"{_main_script() or '(unknown)'} (the {method!r} start method runs the main module again in every "
                f"worker), and that script starts worker processes at import time. Put the code that creates "
                f"{self.name} under `if __name__ == \"__main__\":` (or choose the fork start method explicitly, "
                f"context=\"fork\"); all workers of {self.name} were shut down."
            )
        else:
            message = (
                f"{self.name}: worker {index} (pid {proc.pid}) {_describe_exit(exitcode)} without reporting an "
                f"error; all workers of {self.name} were shut down."
            )
            if exitcode is not None and exitcode < 0:
                message += (" A signal usually means the process was killed from outside or ran out of memory "
                            "(check the system log for the OOM killer).")
        raise WorkerDiedError(message, index, exitcode)

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

