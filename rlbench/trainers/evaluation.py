"""``evaluate_policy``: the returns of a policy's episodes in an env, the one evaluator of the library.

:class:`~rlbench.trainers.Trainer` calls it on its ``eval_env``; the recipes' seeded evaluation by env
name (:func:`rlbench.recipes.evaluate`) builds a batched env with one sub-env per episode and calls it.
With ``recorder=`` (a :class:`~rlbench.envs.transforms.VideoRecorder`) it also films the episodes;
:func:`record_episode` films one episode into a logger in one call.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..envs.transforms import TransformedEnv, VideoRecorder
from ..modules import ExplorationType, set_exploration_type

__all__ = ["evaluate_policy", "record_episode"]


@torch.no_grad()
def evaluate_policy(env, policy: Callable, episodes: int = 5, *, max_steps: int = 100_000,
                    exploration_type=ExplorationType.DETERMINISTIC, include_unfinished: bool = False,
                    recorder: VideoRecorder | None = None) -> list[float]:
    """Returns of ``episodes`` episodes of ``policy`` in ``env``, from a reset, without gradients.

    With a batched env each sub-env contributes its first ``ceil(episodes / n_envs)`` episodes, so
    short episodes are not over-represented (the sub-envs that finish first would otherwise fill the
    quota). The run stops as soon as ``episodes`` episodes have ended, or after ``max_steps`` steps;
    then the episodes completed so far are returned, and with ``include_unfinished`` also the return
    so far of each sub-env's running episode that its share still needs. The policy runs under
    ``exploration_type`` (default: the distribution's mode or mean).

    Each episode's return is summed once at the end, in float64, over the steps it covers.

    Args:
        env: an :class:`~rlbench.envs.EnvBase` (batched or not).
        policy: a ``td -> td`` callable writing the action (it may write in place and return None).
        episodes: episodes to return.
        max_steps: step cap.
        exploration_type: an :class:`~rlbench.modules.ExplorationType`.
        include_unfinished: at the cap, count the running episodes' partial returns.
        recorder: a :class:`~rlbench.envs.transforms.VideoRecorder` filming the episodes (``env`` must
            show its image key, e.g. ``GymEnv(name, from_pixels=True)``). A free recorder is put on top of
            ``env`` for this call only (and is free again afterwards, for the next evaluation); one already
            inside ``env`` records as it sits. Each episode becomes a video as it ends (one grid video per
            round of episodes for a batched env, see its ``make_grid``); the frames of episodes still
            running at the end are written when the evaluation returns. Videos are logged at
            ``recorder.step`` (set it to the training step before the call).

    Returns:
        At most ``episodes`` returns, sub-env by sub-env (each sub-env's in the order they ran); if
        more episodes end on the last step than are needed, the sub-envs with the highest indices
        give theirs up.

    Example:
        >>> from rlbench.envs import CartPoleEnv
        >>> def push_right(td):
        ...     return td.set("action", torch.ones(td.batch_size, dtype=torch.long))
        >>> returns = evaluate_policy(CartPoleEnv(batch_size=[2], seed=0), push_right, episodes=4)
        >>> len(returns), all(5 <= r < 50 for r in returns)
        (4, True)
        >>> evaluate_policy(CartPoleEnv(batch_size=[2], seed=0), push_right, 2, max_steps=3, include_unfinished=True)
        [3.0, 3.0]
    """
    if isinstance(episodes, bool) or int(episodes) < 1:
        raise ValueError(f"evaluate_policy: episodes must be >= 1, got {episodes!r}")
    if recorder is None:
        return _evaluate(env, policy, int(episodes), int(max_steps), exploration_type, include_unfinished)
    if not isinstance(recorder, VideoRecorder):
        raise TypeError(f"evaluate_policy: recorder must be a VideoRecorder, got {type(recorder).__name__}")
    if recorder.container is not None:  # already in (a transform of) env: it records where it sits
        returns = _evaluate(env, policy, int(episodes), int(max_steps), exploration_type, include_unfinished)
        recorder.dump()
        return returns
    filmed = TransformedEnv(env, recorder)
    try:
        returns = _evaluate(filmed, policy, int(episodes), int(max_steps), exploration_type, include_unfinished)
        recorder.dump()  # episodes cut by max_steps (or a grid's unfinished round)
    finally:
        recorder.set_container(None)  # free for the next evaluation; env itself is untouched
    return returns


def _evaluate(env, policy, episodes: int, max_steps: int, exploration_type, include_unfinished: bool) -> list[float]:
    n_envs = env.batch_size.numel()
    quota = math.ceil(episodes / n_envs)
    ended = torch.zeros(n_envs, dtype=torch.long)  # episodes ended so far, per sub-env
    rewards, dones = [], []
    reward_key = env.reward_key
    td = env.reset()
    with set_exploration_type(exploration_type):
        for _ in range(int(max_steps)):
            out = policy(td)
            cur, td = env.step_and_maybe_reset(td if out is None else out)
            rewards.append(cur.get(("next", reward_key)).reshape(n_envs, -1).sum(-1))
            done = cur.get(("next", "done")).reshape(n_envs)
            dones.append(done)
            if done.any():
                ended += done.cpu()
                if int(ended.clamp(max=quota).sum()) >= episodes:
                    break
    if not rewards:
        return []
    reward = torch.stack(rewards, -1).cpu().double()  # [n_envs, steps]
    done = torch.stack(dones, -1).cpu()
    steps = reward.shape[-1]
    episode = done.long().cumsum(-1) - done.long()  # index of the episode each step belongs to
    ends = [row.nonzero().reshape(-1).tolist() for row in done]
    candidates = []  # (end step, sub-env, episode index, return)
    for k in range(quota):
        returns = (reward * (episode == k)).sum(-1).tolist()
        for i in range(n_envs):
            if k < len(ends[i]):
                candidates.append((ends[i][k], i, k, returns[i]))
            elif include_unfinished and k == len(ends[i]) and (not ends[i] or ends[i][-1] < steps - 1):
                candidates.append((steps, i, k, returns[i]))  # running at the cap: its return so far
    kept = sorted(candidates)[:episodes]  # the first to end
    return [ret for _, _, _, ret in sorted(kept, key=lambda c: (c[1], c[2]))]


def record_episode(env, policy: Callable, logger, tag: str = "eval/video", step: int = 0, *, max_steps: int = 1000,
                   in_keys=None, fps: float = 30, skip: int = 1,
                   exploration_type=ExplorationType.DETERMINISTIC) -> float:
    """Film one episode of ``policy`` in ``env`` and write it through ``logger.log_video``; returns its return.

    ``env`` must show images (``GymEnv(name, from_pixels=True)``, ``DMControlEnv(..., from_pixels=True)``);
    ``logger`` needs ``log_video`` (a :class:`~rlbench.trainers.CSVLogger` writes
    ``videos/<tag>_<step>.mp4`` beside its CSV, where :func:`~rlbench.trainers.write_report` finds it). An
    episode longer than ``max_steps`` is cut there (the video and the return cover the steps taken). A
    batched env gives one grid video of all its sub-envs, up to the end of the first episode.

    Args:
        env: the env (not closed here).
        policy: a ``td -> td`` callable writing the action.
        logger: where the video goes.
        tag: the video's name.
        step: the step it is logged at (e.g. training frames so far).
        max_steps: step cap.
        in_keys: the image key (default ``["pixels"]``).
        fps: frames per second of the video.
        skip: keep every ``skip``-th frame.
        exploration_type: as :func:`evaluate_policy`.

    Example:
        >>> import tempfile, torch
        >>> from rlbench.testing import PixelCountingEnv
        >>> from rlbench.trainers import CSVLogger, read_video
        >>> logger = CSVLogger(tempfile.mkdtemp(), "run")
        >>> def act(td):
        ...     return td.set("action", torch.ones(td.batch_size, dtype=torch.long))
        >>> record_episode(PixelCountingEnv(max_steps=4, height=8, width=8), act, logger, step=100)
        4.0
        >>> [(p.name, tuple(read_video(p).shape)) for p in (logger.run_dir / "videos").iterdir()]
        [('eval_video_000000100.mp4', (5, 8, 8, 3))]
    """
    recorder = VideoRecorder(logger, tag, in_keys, skip=skip, fps=fps, step=step)
    returns = evaluate_policy(env, policy, 1, max_steps=max_steps, exploration_type=exploration_type,
                              include_unfinished=True, recorder=recorder)
    return returns[0] if returns else 0.0
