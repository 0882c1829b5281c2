"""``evaluate_policy``: the returns of a policy's episodes in an env, the one evaluator of the library.

:class:`~rlbench.trainers.Trainer` calls it on its ``eval_env``; the recipes' seeded evaluation by env
name (:func:`rlbench.recipes.evaluate`) builds a batched env with one sub-env per episode and calls it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..modules import ExplorationType, set_exploration_type

__all__ = ["evaluate_policy"]


@torch.no_grad()
def evaluate_policy(env, policy: Callable, episodes: int = 5, *, max_steps: int = 100_000,
                    exploration_type=ExplorationType.DETERMINISTIC, include_unfinished: bool = False) -> list[float]:
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
    episodes = int(episodes)
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
