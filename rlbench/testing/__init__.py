"""What rlbench's own tests use, shipped so that users' tests can use it too.

- :mod:`rlbench.testing.envs`: small deterministic envs (counters) with predictable specs and data.
- :mod:`rlbench.testing.processes`: checks that worker processes ended, and a timed Ctrl-C.
"""
from .envs import ContinuousCountingEnv, CountingEnv, DoubleCountingEnv, PixelCountingEnv, SlowCountingEnv
from .processes import ctrl_c_after, processes_gone

__all__ = ["CountingEnv", "ContinuousCountingEnv", "PixelCountingEnv", "DoubleCountingEnv", "SlowCountingEnv",
           "processes_gone", "ctrl_c_after"]
