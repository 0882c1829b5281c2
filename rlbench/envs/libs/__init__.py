"""Other simulators behind the rlbench contract; each imports its package only when an env is built."""
from .dm_control import DMControlEnv, DMControlWrapper
from .mujoco_gl import select_mujoco_gl

__all__ = ["DMControlEnv", "DMControlWrapper", "select_mujoco_gl"]
