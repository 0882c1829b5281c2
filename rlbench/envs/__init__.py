"""Environments: the EnvBase contract, gymnasium wrappers, torch-native envs, batching, transforms.

Every transform of :mod:`rlbench.envs.transforms` is importable from here too (``from rlbench.envs
import StepCounter``), as TorchRL users write it.
"""
from .batched import SerialEnv
from .classic import AcrobotEnv, CartPoleEnv, ClassicControlEnv, MountainCarContinuousEnv, MountainCarEnv, PendulumEnv
from .common import DONE_KEYS, EnvBase
from .gym import GymEnv, GymWrapper
from .gym_spaces import numpy_to_torch, space_to_spec, torch_to_numpy
from .libs import AtariEnv, AtariPreprocessing, DMControlEnv, DMControlWrapper  # packages load at env build
from .makers import EnvCreator
from .model_based import ModelBasedEnvBase, ModelOutputError, WorldModelEnv
from .parallel import ParallelEnv
from .random_policy import RandomPolicy
from .transforms import *  # noqa: F403 - every transform, as from rlbench.envs.transforms
from .transforms import __all__ as _transform_names
from .utils import SpecCheckError, SpecMismatch, check_env_specs, step_mdp
from .workers import WorkerDiedError, WorkerError

__all__ = [
    "EnvBase",
    "DONE_KEYS",
    "step_mdp",
    "check_env_specs",
    "SpecCheckError",
    "SpecMismatch",
    "SerialEnv",
    "ParallelEnv",
    "WorkerError",
    "WorkerDiedError",
    "GymEnv",
    "GymWrapper",
    "DMControlEnv",
    "DMControlWrapper",
    "AtariPreprocessing",
    "AtariEnv",
    "space_to_spec",
    "numpy_to_torch",
    "torch_to_numpy",
    "ClassicControlEnv",
    "CartPoleEnv",
    "PendulumEnv",
    "MountainCarEnv",
    "MountainCarContinuousEnv",
    "AcrobotEnv",
    "EnvCreator",
    "ModelBasedEnvBase",
    "WorldModelEnv",
    "ModelOutputError",
    "RandomPolicy",
] + list(_transform_names)
