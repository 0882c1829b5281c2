"""What the off-policy recipes do between the collector and the replay buffer.

:func:`transitions` keeps of a collected batch only what a one-step target reads (the recipes
``replay.extend(transitions(batch))``); :func:`updates_due` says how many gradient steps a batch of
frames buys at the config's update-to-data ratio.
"""
from __future__ import annotations

__all__ = ["transitions", "updates_due"]


def transitions(batch, obs_key: str = "observation"):
    """The collected ``batch`` flattened to ``[frames]`` with only what a one-step target reads.

    Dropping the rest (the actor's ``loc``/``scale``, log-probs, truncation flags, trajectory ids)
    makes every stored batch the same layout whether it came from random or policy actions, and
    keeps the buffer small.

    Example:
        >>> from rlbench.recipes import make_env
        >>> env = make_env("native:Pendulum", num_envs=2)
        >>> flat = transitions(env.rollout(3))
        >>> flat.batch_size, sorted(map(str, flat.keys(True, True)))[:3]
        (torch.Size([6]), ["('next', 'done')", "('next', 'observation')", "('next', 'reward')"])
    """
    keys = [obs_key, "action", ("next", obs_key), ("next", "reward"), ("next", "done"), ("next", "terminated")]
    return batch.reshape(-1).select(*keys)


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
