"""What rlbench's own tests use, shipped so that users' tests can use it too.

- :mod:`rlbench.testing.envs`: small deterministic envs (counters) with predictable specs and data.
- :mod:`rlbench.testing.loggers`: ``ListLogger``, which keeps every logged scalar for a test to check.
- :mod:`rlbench.testing.losses`: the checklist every loss passes (``check_loss_contract``), and real data to run it on.
- :mod:`rlbench.testing.nets`: small linear actors and critics whose outputs a test can write by hand.
- :mod:`rlbench.testing.processes`: checks that worker processes ended, and a timed Ctrl-C.
- :mod:`rlbench.testing.transforms`: the checklist every env transform passes (``check_transform_contract``).
"""
from .envs import ContinuousCountingEnv, CountingEnv, DoubleCountingEnv, PixelCountingEnv, SlowCountingEnv
from .loggers import ListLogger
from .losses import check_loss_contract, check_loss_runs_on, replay_sample, rollout_batch
from .nets import (
    LinearQNet,
    action_value_critic,
    categorical_actor,
    deterministic_actor,
    gaussian_actor,
    qvalue_critic,
    value_critic,
)
from .processes import ctrl_c_after, processes_gone
from .transforms import TransformCase, check_transform_contract

__all__ = ["CountingEnv", "ContinuousCountingEnv", "PixelCountingEnv", "DoubleCountingEnv", "SlowCountingEnv",
           "processes_gone", "ctrl_c_after"]
__all__ += ["check_transform_contract", "TransformCase"]
__all__ += ["check_loss_contract", "check_loss_runs_on", "rollout_batch", "replay_sample"]
__all__ += ["LinearQNet", "categorical_actor", "gaussian_actor", "deterministic_actor", "value_critic",
            "qvalue_critic", "action_value_critic"]
__all__ += ["ListLogger"]
