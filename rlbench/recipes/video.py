"""Filming a recipe's final policy (``--video`` / ``Config.video``): which env shows frames, and the recording.

The policy must see what it saw in training (states, or the stacked pixels), while the video should show
the picture of the env. So :func:`video_env` builds the evaluation env as :func:`~rlbench.recipes.make_env`
does and adds the picture beside the observation: a gymnasium or DeepMind Control env from states renders
into ``"pixels"`` next to its state vector; a pixel env (and an Atari game) keeps a copy of each raw frame
under ``("raw", "pixels")`` before its stacking transforms. Torch-native envs are filmed through their
gymnasium twin (the same dynamics and observations), which renders.

:func:`video_recorder` is what a recipe hands its :class:`~rlbench.trainers.RunTracker`; the tracker calls
it after the final evaluation with the run's logger, whose ``log_video`` writes the mp4 beside the CSV logs
(``logs/videos/eval_video_<frames>.mp4``), where the HTML report finds it.
"""
from __future__ import annotations

import functools
from typing import Callable

from ..envs import CatTensors, DMControlEnv, EnvBase, GymEnv, RenameTransform, TransformedEnv
from ..trainers import record_episode
from ..trainers.run import FINAL_EVAL_SEED_OFFSET
from .envs import ATARI_PREFIX, DMC_PREFIX, NATIVE_PREFIX, _dmc_names, env_options, make_env, max_episode_steps

__all__ = ["NATIVE_TWINS", "RAW_PIXELS", "video_env", "record_video", "video_recorder"]

RAW_PIXELS = ("raw", "pixels")
"""Where a pixel env's video env keeps each raw frame (before resizing and stacking)."""

NATIVE_TWINS = {"CartPole": "CartPole-v1", "Pendulum": "Pendulum-v1", "MountainCar": "MountainCar-v0",
                "MountainCarContinuous": "MountainCarContinuous-v0", "Acrobot": "Acrobot-v1"}
"""The gymnasium id whose dynamics each torch-native env reproduces (it renders the video)."""


def _keep_raw_frames(env: EnvBase, key: str = "pixels") -> EnvBase:
    """``env`` (a TransformedEnv over an env writing raw ``key`` frames) with a copy of them under RAW_PIXELS."""
    if not isinstance(env, TransformedEnv) or key not in env.base_env.observation_spec.keys():
        raise ValueError(f"video: expected the pixel env to be transforms over an env writing raw {key!r} frames, got "
                         f"{type(env).__name__}")
    env.insert_transform(0, RenameTransform([key], [RAW_PIXELS], create_copy=True))
    return env


def video_env(config) -> tuple[EnvBase, object]:
    """The env a recipe's final policy is filmed in, and the key of its frames.

    Args:
        config: a recipe Config (its ``env`` and suite fields: ``pixels``, ``pixel_size``, ``atari_*``, ...).

    Returns:
        ``(env, key)``: an unbatched env whose observations are those of training, and the image key
        (``"pixels"`` or :data:`RAW_PIXELS`) that a :class:`~rlbench.envs.transforms.VideoRecorder` reads.

    Example:
        >>> from rlbench.recipes import ppo
        >>> env, key = video_env(ppo.Config(env="native:CartPole"))  # filmed through CartPole-v1
        >>> key, sorted(env.observation_spec.keys())
        ('pixels', ['observation', 'pixels'])
    """
    name, options = config.env, env_options(config)
    pixels = options["pixels"]
    if name.startswith(NATIVE_PREFIX):
        base = name[len(NATIVE_PREFIX):].split("-v")[0]
        if base not in NATIVE_TWINS:
            raise ValueError(f"video: no gymnasium twin to film {name!r}: expected one of "
                             f"{', '.join(NATIVE_PREFIX + k for k in NATIVE_TWINS)}")
        return GymEnv(NATIVE_TWINS[base], from_pixels=True, pixels_only=False), "pixels"
    if name.startswith(ATARI_PREFIX):
        prep = options["atari"]
        raw = GymEnv(name, frameskip=1, repeat_action_probability=float(prep.repeat_action_probability))
        keep = RenameTransform(["observation"], [RAW_PIXELS], create_copy=True)
        return TransformedEnv(TransformedEnv(raw, keep), prep.transforms()), RAW_PIXELS
    if pixels:
        return _keep_raw_frames(make_env(name, 1, **options)), RAW_PIXELS
    repeat = int(options["action_repeat"]) or 1
    if name.startswith(DMC_PREFIX):
        domain, task = _dmc_names(name)
        env = DMControlEnv(domain, task, from_pixels=True, pixels_only=False, height=240, width=320,
                           frame_skip=repeat)
        states = [k for k in env.observation_spec.keys() if k != "pixels"]
        return TransformedEnv(env, CatTensors(states, "observation")), "pixels"  # as make_env joins them
    return GymEnv(name, from_pixels=True, pixels_only=False, frame_skip=repeat), "pixels"


def record_video(config, policy: Callable, logger, step: int, *, tag: str = "eval/video", fps: float = 30) -> float:
    """Film one deterministic episode of ``policy`` (seeded as the final evaluation); returns its return.

    The video goes through ``logger.log_video`` (a :class:`~rlbench.trainers.CSVLogger` writes an mp4 under
    its ``videos/`` folder). The episode is capped as the evaluations are (``config.eval_max_steps`` or the
    env's time limit).
    """
    if not hasattr(logger, "log_video"):
        raise TypeError(f"video: the run's logger {type(logger).__name__} has no log_video; give the run an out_dir "
                        f"(its CSVLogger writes mp4 files) or a logger with log_video")
    env, key = video_env(config)
    try:
        env.set_seed(int(config.seed) + FINAL_EVAL_SEED_OFFSET)
        cap = int(getattr(config, "eval_max_steps", 0)) or max_episode_steps(config.env)
        return record_episode(env, policy, logger, tag, int(step), max_steps=cap, in_keys=[key], fps=fps)
    finally:
        env.close()


def video_recorder(config) -> Callable | None:
    """``record_video`` bound to ``config`` when ``config.video`` is set, else None (RunTracker's ``video``).

    Example:
        >>> from rlbench.recipes import ppo
        >>> video_recorder(ppo.Config()) is None, callable(video_recorder(ppo.Config(video=True)))
        (True, True)
    """
    return functools.partial(record_video, config) if getattr(config, "video", False) else None
