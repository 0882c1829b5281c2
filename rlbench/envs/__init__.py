"""Environments: the EnvBase contract, gymnasium wrappers, torch-native envs, batching, transforms."""
from ._workers import WorkerDiedError, WorkerError
from .batched import SerialEnv
from .classic import AcrobotEnv, CartPoleEnv, ClassicControlEnv, MountainCarContinuousEnv, MountainCarEnv, PendulumEnv
from .common import DONE_KEYS, EnvBase
from .gym import GymEnv, GymWrapper
from .gym_spaces import numpy_to_torch, space_to_spec, torch_to_numpy
from .libs import DMControlEnv, DMControlWrapper  # dm_control itself is imported when an env is built
from .parallel import ParallelEnv
from .transforms import Compose, Transform, TransformedEnv
from .utils import SpecCheckError, SpecMismatch, check_env_specs, step_mdp

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
    "space_to_spec",
    "numpy_to_torch",
    "torch_to_numpy",
    "Transform",
    "Compose",
    "TransformedEnv",
    "ClassicControlEnv",
    "CartPoleEnv",
    "PendulumEnv",
    "MountainCarEnv",
    "MountainCarContinuousEnv",
    "AcrobotEnv",
]
