"""Torch-native, batched, state-less classic-control envs with gymnasium's dynamics.

``CartPoleEnv`` (CartPole-v1), ``PendulumEnv`` (Pendulum-v1), ``MountainCarEnv`` (MountainCar-v0),
``MountainCarContinuousEnv`` (MountainCarContinuous-v0) and ``AcrobotEnv`` (Acrobot-v1). The physical
state travels in the TensorDict (``"state"``, ``"step_count"``), so ``env.step(td)`` works from any state.
"""
from ._base import ClassicControlEnv
from .acrobot import AcrobotEnv
from .cartpole import CartPoleEnv
from .mountain_car import MountainCarContinuousEnv, MountainCarEnv
from .pendulum import PendulumEnv

__all__ = [
    "ClassicControlEnv",
    "CartPoleEnv",
    "PendulumEnv",
    "MountainCarEnv",
    "MountainCarContinuousEnv",
    "AcrobotEnv",
]
