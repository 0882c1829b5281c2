"""Env transforms: process what an env produces and consumes, composable as a list.

``TransformedEnv(env, Compose(...))`` is an env whose specs and data pass through each transform;
every transform also works on its own on any TensorDict (e.g. a replay-buffer sample).

Files by concern: ``base`` (Transform, Compose), ``env`` (TransformedEnv), ``image``,
``normalization``, ``reward``, ``episode`` (step counting, resets, frame skip), ``observation``
(dtype and shape), ``keys`` (rename, exclude), ``atari`` (the ALE life-loss signal), ``device`` (device casts),
``primer`` (entries filled at reset),
``action_mask`` (allowed discrete actions), ``video`` (recording frames as videos through a logger).
"""
from .action_mask import ActionMask
from .atari import EndOfLifeTransform
from .base import Compose, EnvSpecs, Transform, TransformKeyError, episode_starts, time_dim
from .device import DeviceCastTransform
from .env import TransformedEnv
from .episode import FrameSkipTransform, InitTracker, NoopResetEnv, StepCounter
from .image import CatFrames, CenterCrop, GrayScale, Resize, TimeMaxPool, ToTensorImage
from .keys import ExcludeTransform, RenameTransform, SelectTransform
from .normalization import ObservationNorm, VecNorm
from .observation import (
    CatTensors,
    DoubleToFloat,
    FlattenObservation,
    PermuteTransform,
    SqueezeTransform,
    UnsqueezeTransform,
)
from .primer import TensorDictPrimer
from .reward import RewardClipping, RewardScaling, RewardSum, SignTransform
from .video import VideoRecorder

__all__ = [
    "Transform",
    "Compose",
    "TransformedEnv",
    "EnvSpecs",
    "TransformKeyError",
    "time_dim",
    "episode_starts",
    "ToTensorImage",
    "Resize",
    "GrayScale",
    "CenterCrop",
    "CatFrames",
    "ObservationNorm",
    "VecNorm",
    "RewardScaling",
    "RewardClipping",
    "RewardSum",
    "StepCounter",
    "InitTracker",
    "NoopResetEnv",
    "FrameSkipTransform",
    "DoubleToFloat",
    "FlattenObservation",
    "UnsqueezeTransform",
    "CatTensors",
    "RenameTransform",
    "ExcludeTransform",
    "SignTransform",
    "TimeMaxPool",
    "EndOfLifeTransform",
    "SqueezeTransform",
    "PermuteTransform",
    "SelectTransform",
    "DeviceCastTransform",
    "TensorDictPrimer",
    "ActionMask",
    "VideoRecorder",
]
