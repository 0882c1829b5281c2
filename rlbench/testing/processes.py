"""Helpers for tests of worker processes: did every worker end, and a Ctrl-C at a chosen moment."""
from __future__ import annotations

import contextlib
import signal
import time

__all__ = ["processes_gone", "ctrl_c_after"]


def processes_gone(pids, within: float = 15.0) -> bool:
    """Wait up to ``within`` seconds for every process in ``pids`` to end; True if they all did.

    Zombies count as ended, and so do children the ``multiprocessing`` module no longer lists as
    active. Tests of worker processes use it to show that nothing outlives its owner. Needs
    ``psutil`` (installed with the ``dev`` extra).
    """
    import multiprocessing as mp

    import psutil

    pids = set(pids)
    deadline = time.monotonic() + within
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive and not any(p.pid in pids for p in mp.active_children()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@contextlib.contextmanager
def ctrl_c_after(seconds: float):
    """Raise ``KeyboardInterrupt`` in the main thread after ``seconds``, as a user's Ctrl-C would.

    Restores the previous SIGALRM handler on exit. POSIX only (uses ``signal.setitimer``).
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
