"""``EpisodeReturns``: the returns of the episodes that end in a stream of batches.

One tracker for every place that reports training returns: the :class:`~rlbench.collectors.Collector`
(always on, whether or not it shows a progress bar), the :class:`~rlbench.trainers.Trainer` and the
recipes' :class:`~rlbench.trainers.RunTracker` (which reads the collector's).
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch
from tensordict import TensorDictBase

from .utils import TRAJ_KEY

__all__ = ["EpisodeReturns"]

_MASK_KEY = ("collector", "mask")


class EpisodeReturns:
    """Returns of the episodes that end in a stream of ``[N, T]`` batches, followed across batch boundaries.

    An episode may span several batches: its rewards are summed under its trajectory id (the
    ``("collector", "traj_ids")`` every collector writes) until the step where it is done. The
    running sums of unfinished episodes are kept between batches, including those of episodes that
    are absent from a batch (a multi-process collector yields each worker's batches in turn). Each
    update is a handful of vectorized ops over the whole batch, never a loop over steps.

    Sums are exact in the order of the steps: an episode's return is ``0.0 + r_1 + r_2 + ...`` in
    float64, the same number a step-by-step loop gives.

    Args:
        maxlen: how many of the latest returns :attr:`recent` keeps.
        max_running: at most this many unfinished episodes are followed; past it the oldest ids
            (the smallest: ids grow with time) are dropped. A collector's reset cuts its running
            episodes for good (their ids never come back): this bounds what they leave behind.

    Attributes:
        recent: ``deque`` of the latest ``maxlen`` returns, in the order the episodes ended (by step,
            then by sub-env).
        finished: episodes finished so far.

    Example:
        >>> import torch
        >>> tracker = EpisodeReturns()
        >>> reward = torch.ones(2, 3)  # 2 sub-envs, 3 steps of reward 1
        >>> tracker.add(reward, done=torch.tensor([[False, True, False], [False, False, False]]),
        ...             ids=torch.tensor([[0, 0, 2], [1, 1, 1]]))
        [2.0]
        >>> tracker.carry  # the running episodes 1 and 2, carried into the next batch
        {1: 3.0, 2: 1.0}
        >>> tracker.add(reward, done=torch.tensor([[True, False, False], [True, False, False]]),
        ...             ids=torch.tensor([[2, 3, 3], [1, 4, 4]]))
        [2.0, 4.0]
        >>> tracker.mean(), tracker.finished
        (2.6666666666666665, 3)
    """

    def __init__(self, maxlen: int = 100, max_running: int = 1024):
        if int(maxlen) < 1 or int(max_running) < 1:
            raise ValueError(f"EpisodeReturns: maxlen and max_running must be >= 1, got {maxlen}, {max_running}")
        self.recent: deque = deque(maxlen=int(maxlen))
        self.finished = 0
        self.max_running = int(max_running)
        # the running episodes: ids (sorted) and returns so far. NumPy, not torch: a batch's update is
        # some twenty small array ops, and NumPy's per-op cost is a fraction of torch's
        self._ids = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros(0, dtype=np.float64)

    # ------------------------------------------------------------------------------ updates
    def add(self, reward: torch.Tensor, done: torch.Tensor, ids: torch.Tensor,
            mask: torch.Tensor | None = None) -> list[float]:
        """Add a batch given as tensors; returns the returns of the episodes that ended in it.

        Args:
            reward: ``[N, T]`` rewards (trailing reward dims ``[N, T, *]`` are summed).
            done: ``[N, T]`` (or ``[N, T, 1]``) episode-end flags.
            ids: ``[N, T]`` trajectory ids. Each row runs forward in time (a sub-env's steps, or one
                trajectory), an id's steps are contiguous within its row, and an id that ended never
                appears again.
            mask: ``[N, T]`` bool, False on the padding at the end of rows (the ``("collector", "mask")``
                of :func:`~rlbench.collectors.split_trajectories`).

        Returns:
            The finished episodes' returns, in the order they ended (by step, then by row).
        """
        n, t = ids.shape
        ids = ids.detach().cpu().numpy()
        done = done.detach().reshape(n, t).cpu().numpy()
        reward = reward.detach().reshape(n, t, -1)
        reward = reward[..., 0] if reward.shape[-1] == 1 else reward.sum(-1)
        if reward.dtype not in (torch.float32, torch.float64):  # e.g. bfloat16, which NumPy lacks
            reward = reward.double()
        reward = reward.cpu().numpy().astype(np.float64)
        if mask is not None:  # padding joins its row's trajectory with reward 0 and never ends it
            mask = mask.detach().reshape(n, t).cpu().numpy()
            done = done & mask
            ids = np.where(mask, ids, ids[:, :1])
            reward = np.where(mask, reward, 0.0)
        # each row starts with the sum so far of the episode it continues (0 for a fresh one): the
        # episode's return then adds up as carry + r_1 + r_2 + ..., in step order
        start = np.zeros(n)
        unseen = np.ones(self._ids.size, dtype=bool)
        if self._ids.size:
            pos = np.minimum(np.searchsorted(self._ids, ids[:, 0]), self._ids.size - 1)
            hit = self._ids[pos] == ids[:, 0]
            start[hit] = self._sums[pos[hit]]
            unseen[pos[hit]] = False
        seq_ids = np.concatenate([ids[:, :1], ids], 1)  # [n, t + 1]: column 0 holds the carried sum
        weights = np.concatenate([start[:, None], reward], 1)
        # segments: runs of one id in a row, numbered in row-major order
        new = np.ones(seq_ids.shape, dtype=bool)
        new[:, 1:] = seq_ids[:, 1:] != seq_ids[:, :-1]
        seg = np.cumsum(new.reshape(-1)).reshape(n, t + 1) - 1
        sums = np.bincount(seg.reshape(-1), weights=weights.reshape(-1))  # sequential adds, in step order
        ended_seg = seg[:, 1:].T[done.T]  # time-major: the order the episodes ended in
        finished = sums[ended_seg].tolist()
        # a row's earlier segments all ended (a new id follows a done): only its last one may run on
        last = seg[:, -1]
        ended = np.zeros(sums.size, dtype=bool)
        ended[ended_seg] = True
        running = last[~ended[last]]
        self._set_running(np.concatenate([self._ids[unseen], seq_ids[:, -1][~ended[last]]]),
                          np.concatenate([self._sums[unseen], sums[running]]))
        self.recent.extend(finished)
        self.finished += len(finished)
        return finished

    def update(self, batch: TensorDictBase, reward_key="reward") -> list[float]:
        """Add a collected ``[*B, T]`` batch (time last); returns the returns of the episodes that ended in it.

        Reads ``("next", reward_key)``, ``("next", "done")``, ``("collector", "traj_ids")`` and,
        when present, ``("collector", "mask")``. A batch without trajectory ids or rewards adds
        nothing (returns ``[]``): without ids an episode cannot be followed into the next batch.
        """
        ids = batch.get(TRAJ_KEY, None)
        reward = batch.get(("next", reward_key), None)
        if ids is None or reward is None:
            return []
        t = batch.shape[-1]
        mask = batch.get(_MASK_KEY, None)
        return self.add(reward.reshape(-1, t, *reward.shape[ids.dim():]), batch.get(("next", "done")).reshape(-1, t),
                        ids.reshape(-1, t), None if mask is None else mask.reshape(-1, t))

    def drop_running(self) -> None:
        """Forget the unfinished episodes (their env was reset: they will never end)."""
        self._set_running(self._ids[:0], self._sums[:0])

    def _set_running(self, ids: np.ndarray, sums: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")[-self.max_running:]
        self._ids, self._sums = ids[order], sums[order]

    # ------------------------------------------------------------------------------ reading
    def mean(self, last: int | None = None) -> float | None:
        """Mean of the latest ``last`` returns (default: all of :attr:`recent`); ``None`` before any episode ended."""
        if not self.recent:
            return None
        tail = list(self.recent) if last is None else list(self.recent)[-int(last):]
        return sum(tail) / len(tail)

    @property
    def carry(self) -> dict[int, float]:
        """The unfinished episodes' returns so far, by trajectory id (settable, e.g. from a checkpoint)."""
        return dict(zip(self._ids.tolist(), self._sums.tolist()))

    @carry.setter
    def carry(self, value: dict) -> None:
        self._set_running(np.array([int(k) for k in value], dtype=np.int64),
                          np.array([float(v) for v in value.values()], dtype=np.float64))

    def state_dict(self) -> dict:
        """Everything needed to go on exactly, as tensors and plain values (``weights_only`` loading reads it)."""
        return {"recent": list(self.recent), "finished": self.finished,
                "running_ids": torch.from_numpy(self._ids.copy()),
                "running_returns": torch.from_numpy(self._sums.copy())}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.finished = int(state["finished"])
        self._set_running(np.asarray(state["running_ids"], dtype=np.int64),
                          np.asarray(state["running_returns"], dtype=np.float64))

    def __repr__(self) -> str:
        mean = self.mean()
        shown = "None" if mean is None else f"{mean:.4g}"
        return f"EpisodeReturns(finished={self.finished}, running={self._ids.size}, mean={shown})"
