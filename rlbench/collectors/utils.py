"""Helpers shared by the collectors: exploration-type aliases, trajectory ids and ``split_trajectories``.

``ExplorationType`` / ``set_exploration_type`` / ``exploration_type`` are tensordict's
``InteractionType`` / ``set_interaction_type`` / ``interaction_type`` under the names TorchRL users
know: ``ProbabilisticTensorDictModule`` reads them to decide between sampling (``RANDOM``) and the
distribution's mode/mean (``DETERMINISTIC``, ``MODE``, ``MEAN``). Re-exporting them (rather than
wrapping) means a policy built with tensordict alone obeys the collector's setting.
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import InteractionType as ExplorationType
from tensordict.nn import interaction_type as exploration_type
from tensordict.nn import set_interaction_type as set_exploration_type

__all__ = [
    "ExplorationType",
    "set_exploration_type",
    "exploration_type",
    "split_trajectories",
    "traj_ids_from_done",
]

TRAJ_KEY = ("collector", "traj_ids")
MASK_KEY = ("collector", "mask")


def _flag_bt(flag: torch.Tensor, nb: int) -> torch.Tensor:
    """A ``[*B, T, *extra]`` done flag reduced to ``[*B, T]`` (any of the trailing dims)."""
    if flag.ndim > nb + 1:
        flag = flag.reshape(*flag.shape[: nb + 1], -1).any(-1)
    return flag.bool()


def assign_traj_ids(done: torch.Tensor, start_ids: torch.Tensor, next_id: int):
    """Trajectory ids of a ``[N, T]`` batch from its done flags (vectorized, no loop over steps).

    Sub-env ``n`` starts the batch in trajectory ``start_ids[n]``; every done step ends a trajectory
    and the step after it gets a fresh id. Fresh ids are handed out in time-major order from
    ``next_id`` on, so ids grow with time across all sub-envs.

    Returns ``(ids [N, T], start ids of the next batch [N], next free id)``.
    """
    n, t = done.shape
    # rank of each done step in time-major order -> the id of the trajectory that starts after it
    order = done.t().reshape(-1).to(torch.int64).cumsum(0).reshape(t, n).t()
    new_ids = next_id - 1 + order  # valid where done
    starts = torch.full((n, t), -1, dtype=torch.int64, device=done.device)
    starts[:, 0] = start_ids
    if t > 1:
        starts[:, 1:] = torch.where(done[:, :-1], new_ids[:, :-1], -1)
    # fresh ids are larger than every earlier id of the sub-env, so a running max carries each id
    # forward until the next episode start
    ids = starts.cummax(1).values
    next_start = torch.where(done[:, -1], new_ids[:, -1], ids[:, -1])
    return ids, next_start, next_id + int(done.sum())


def traj_ids_from_done(td: TensorDictBase, done_key=("next", "done")) -> torch.Tensor:
    """Trajectory ids ``[*B, T]`` of a batch that has done flags but no ``("collector", "traj_ids")``.

    Each sub-env's first step starts a trajectory, as does every step after a done step. Ids are
    unique over the batch.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> td = CountingEnv(max_steps=2, batch_size=[2]).rollout(3, break_when_any_done=False)
        >>> traj_ids_from_done(td).tolist()
        [[0, 0, 2], [1, 1, 3]]
    """
    nb = td.ndim - 1
    if nb < 0:
        raise ValueError("traj_ids_from_done: the TensorDict needs a time dim (batch_size [*B, T])")
    done = _flag_bt(td.get(done_key), nb)
    flat = done.reshape(-1, done.shape[-1])
    n = flat.shape[0]
    ids, _, _ = assign_traj_ids(flat, torch.arange(n, device=flat.device), n)
    return ids.reshape(done.shape)


def split_trajectories(td: TensorDictBase, traj_key=TRAJ_KEY, done_key=("next", "done"),
                       mask_key=MASK_KEY, *, as_nested: bool = False, trajectory_key=None) -> TensorDictBase:
    """Regroup a ``[*B, T]`` batch into ``[n_traj, max_len]``, one row per trajectory, zero-padded.

    Trajectories are identified by ``traj_key`` (as the collector writes them) or, when the batch has
    no such entry, by the done flags under ``done_key``. Rows are ordered by trajectory id; within a
    row, steps keep their time order. ``mask_key`` (bool ``[n_traj, max_len]``) is True on real steps,
    and ``traj_key`` holds each row's id (padding included). The work is one ``unique`` and one
    scatter per entry: no Python loop over steps or trajectories.

    With ``as_nested=True`` the result has no padding and no mask: its batch size is ``[n_traj]``
    and every entry is a jagged nested tensor ``[n_traj, j, *feature]`` (``torch.nested``, jagged
    layout), one row of its own length per trajectory; ``traj_key`` holds the ids ``[n_traj]``.

    Args:
        td: a batch with batch_size ``[*B, T]`` (time last).
        traj_key: the key of the trajectory ids.
        done_key: done flags used when ``traj_key`` is absent.
        mask_key: where to write the mask.
        as_nested: return jagged nested tensors instead of zero-padded ones (TorchRL's argument).
        trajectory_key: TorchRL's name for ``traj_key``.

    Example:
        >>> from rlbench.testing import CountingEnv
        >>> td = CountingEnv(max_steps=2, batch_size=[2]).rollout(3, break_when_any_done=False)
        >>> out = split_trajectories(td)
        >>> out.shape, out["collector", "mask"].sum(-1).tolist()
        (torch.Size([4, 2]), [2, 2, 1, 1])
        >>> out["next", "observation"][..., 0].tolist()
        [[1.0, 2.0], [1.0, 2.0], [1.0, 0.0], [1.0, 0.0]]
        >>> nested = split_trajectories(td, as_nested=True)
        >>> nested.batch_size, [len(t) for t in nested["next", "observation"].unbind()]
        (torch.Size([4]), [2, 2, 1, 1])
    """
    if trajectory_key is not None:
        traj_key = trajectory_key
    if td.ndim < 1:
        raise ValueError("split_trajectories: the TensorDict needs a time dim (batch_size [*B, T])")
    ids = td.get(traj_key, None)
    if ids is None:
        if td.get(done_key, None) is None:
            raise KeyError(
                f"split_trajectories: the TensorDict has neither trajectory ids under {traj_key!r} nor done "
                f"flags under {done_key!r}; pass traj_key=/done_key= naming one of them"
            )
        ids = traj_ids_from_done(td, done_key)
    if ids.shape != td.batch_size:
        raise ValueError(
            f"split_trajectories: {traj_key!r} must have shape {tuple(td.batch_size)}, got {tuple(ids.shape)}"
        )
    flat = td.reshape(-1)  # sub-env major: a trajectory's steps are contiguous and in time order
    flat_ids = ids.reshape(-1)
    n = flat_ids.numel()
    uniq, row, counts = torch.unique(flat_ids, return_inverse=True, return_counts=True)
    n_traj, max_len = uniq.numel(), int(counts.max()) if n else 0
    pos = torch.arange(n, device=flat_ids.device)
    first = torch.full((n_traj,), n, dtype=torch.int64, device=flat_ids.device)
    first = first.scatter_reduce(0, row, pos, reduce="amin")
    col = pos - first[row]

    if as_nested:
        # rows in id order, steps in time order: one gather per entry, then jagged views with shared offsets
        order = torch.argsort(row * max(max_len, 1) + col)
        offsets = torch.zeros(n_traj + 1, dtype=torch.int64, device=flat_ids.device)
        offsets[1:] = counts.cumsum(0)

        def jagged(x: torch.Tensor) -> torch.Tensor:
            return torch.nested.nested_tensor_from_jagged(x[order], offsets)

        out = flat.exclude(traj_key).apply(jagged, batch_size=[n_traj])
        out.set(traj_key, uniq)
        return out

    def scatter(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((n_traj, max_len, *x.shape[1:]), dtype=x.dtype, device=x.device)
        out[row, col] = x
        return out

    out = flat.apply(scatter, batch_size=[n_traj, max_len])
    mask = torch.zeros((n_traj, max_len), dtype=torch.bool, device=flat_ids.device)
    mask[row, col] = True
    out.set(mask_key, mask)
    out.set(traj_key, uniq.unsqueeze(-1).expand(n_traj, max_len).clone())
    return out


def _as_transitions(batch: TensorDictBase, buffer) -> TensorDictBase:
    """``[*B, T]`` batch -> what ``buffer`` stores per write.

    ``[N]`` items, or ``[T, n_envs]`` rows for a two-dimensional storage (time along its first dim,
    as samplers of episodes expect).
    """
    ndim = getattr(getattr(buffer, "storage", None), "ndim", 1)
    if ndim == 1 or batch.ndim == 1:
        return batch.reshape(-1)
    if ndim == 2:
        return batch.reshape(-1, batch.shape[-1]).transpose(0, 1)
    raise ValueError(
        f"Collector: cannot write a batch of shape {list(batch.shape)} to a storage with ndim={ndim}; "
        f"use ndim=1 (transitions) or ndim=2 ([capacity, n_envs])"
    )
