"""Other simulators behind the rlbench contract; each imports its package only when an env is built."""
from .atari import AtariEnv, AtariPreprocessing
from .dm_control import DMControlEnv, DMControlWrapper
from .mujoco_gl import select_mujoco_gl

__all__ = ["AtariEnv", "AtariPreprocessing", "DMControlEnv", "DMControlWrapper", "select_mujoco_gl"]
