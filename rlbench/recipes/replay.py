"""What the off-policy recipes do between the collector and the replay buffer.

:func:`transitions` keeps of a collected batch only what a one-step target reads (the recipes
``replay.extend(transitions(batch))``); :func:`updates_due` says how many gradient steps a batch of
frames buys at the config's update-to-data ratio; :func:`pixels_as_uint8` stores float frames as bytes.
"""
from __future__ import annotations

import torch

__all__ = ["transitions", "updates_due", "pixels_as_uint8"]


def pixels_as_uint8(td, key="pixels"):
    """Float frames in ``[0, 1]`` under ``key`` and ``("next", key)`` rounded to ``uint8`` (in ``td``, returned).

    A replay buffer of frames is mostly frames: one Atari transition (``[4, 84, 84]``, observation and next
    observation) is 226 KB in float32 and 56 KB in uint8, so the 100k transitions of the rl-zoo Atari
    settings take 5.6 GB instead of 22.6 GB; one DMC transition (``[9, 84, 84]``) is 127 KB instead of 508 KB.
    The recipes' pixel encoders (:mod:`rlbench.modules.encoders`) take both and scale uint8 by 1/255, so a
    network sees the same values (up to the rounding, at most 1/510) whether it reads the env or the buffer.
    ``uint8`` frames and vector observations are left alone.

    Example:
        >>> from tensordict import TensorDict
        >>> td = TensorDict(pixels=torch.full((2, 1, 4, 4), 0.5), next=TensorDict(pixels=torch.ones(2, 1, 4, 4)),
        ...                 batch_size=[2])
        >>> out = pixels_as_uint8(td)
        >>> out["pixels"].dtype, int(out["pixels"][0, 0, 0, 0]), int(out["next", "pixels"].max())
        (torch.uint8, 128, 255)
    """
    for name in (key, ("next", key)):
        x = td.get(name, None)
        if x is not None and x.is_floating_point() and x.ndim - td.batch_dims == 3:  # [C, H, W] frames
            td.set(name, x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8))
    return td


def transitions(batch, obs_key: str = "observation"):
    """The collected ``batch`` flattened to ``[frames]`` with only what a one-step target reads.

    Dropping the rest (the actor's ``loc``/``scale``, log-probs, truncation flags, trajectory ids)
    makes every stored batch the same layout whether it came from random or policy actions, and
    keeps the buffer small. Float frames are stored as uint8 (:func:`pixels_as_uint8`).

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=2)
        >>> flat = transitions(env.rollout(3))
        >>> flat.batch_size, sorted(map(str, flat.keys(True, True)))[:3]
        (torch.Size([6]), ["('next', 'done')", "('next', 'observation')", "('next', 'reward')"])
    """
    keys = [obs_key, "action", ("next", obs_key), ("next", "reward"), ("next", "done"), ("next", "terminated")]
    return pixels_as_uint8(batch.reshape(-1).select(*keys), obs_key)


def updates_due(frames: int, config, done_so_far: int) -> int:
    """Gradient steps to take now so that, after ``frames`` frames, ``utd_ratio`` steps per trained-on frame were made.

    Reads ``config.init_random_frames`` and ``config.utd_ratio`` (an
    :class:`~rlbench.recipes.config.OffPolicyConfig`). Counting from ``init_random_frames`` keeps
    fractional ratios exact over the run (``utd_ratio=0.5`` with 50-frame batches gives 25 steps per batch).

    Example:
        >>> from rlbench.recipes import OffPolicyConfig
        >>> cfg = OffPolicyConfig(init_random_frames=100, utd_ratio=0.5)
        >>> updates_due(100, cfg, 0), updates_due(150, cfg, 0), updates_due(175, cfg, 25)
        (0, 25, 12)
    """
    if frames <= config.init_random_frames:
        return 0
    return max(0, int((frames - config.init_random_frames) * config.utd_ratio) - done_so_far)
