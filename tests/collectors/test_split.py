"""split_trajectories and traj_ids_from_done against naive Python references."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlbench.collectors import Collector, split_trajectories, traj_ids_from_done
from rlbench.testing import CountingEnv


def naive_split(td, ids):
    """Reference: walk every step of every sub-env and append it to its trajectory's list."""
    flat = td.reshape(-1)
    fids = ids.reshape(-1).tolist()
    trajs = {}
    for i, tid in enumerate(fids):
        trajs.setdefault(tid, []).append(i)
    order = sorted(trajs)
    max_len = max(len(v) for v in trajs.values())
    obs = torch.zeros(len(order), max_len, *flat["next", "observation"].shape[1:])
    mask = torch.zeros(len(order), max_len, dtype=torch.bool)
    for r, tid in enumerate(order):
        for c, i in enumerate(trajs[tid]):
            obs[r, c] = flat["next", "observation"][i]
            mask[r, c] = True
    return obs, mask, order


def naive_ids_from_done(done):
    """Reference: per sub-env, a new trajectory after each done step; ids numbered in time-major order."""
    n, t = done.shape
    ids = torch.empty(n, t, dtype=torch.int64)
    cur = list(range(n))
    nxt = n
    for j in range(t):
        for i in range(n):
            ids[i, j] = cur[i]
        for i in range(n):
            if done[i, j]:
                cur[i] = nxt
                nxt += 1
    return ids


@pytest.mark.parametrize("batch_size", [[], [3], [2, 2]])
def test_split_matches_naive(batch_size):
    limits = torch.randint(1, 6, batch_size) if batch_size else 4
    env = CountingEnv(max_steps=limits, batch_size=batch_size)
    collector = Collector(env, frames_per_batch=max(1, torch.Size(batch_size).numel()) * 13)
    collector.collect()
    batch = collector.collect()  # second batch: trajectories that started in the first one
    out = split_trajectories(batch)
    obs, mask, order = naive_split(batch, batch["collector", "traj_ids"])
    assert out.batch_size == mask.shape
    assert torch.equal(out["collector", "mask"], mask)
    assert torch.equal(out["next", "observation"], obs)
    assert out["collector", "traj_ids"][:, 0].tolist() == order
    assert (out["action"][~mask] == 0).all()  # padding is zeros


def test_split_random_ids():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        n, t = torch.randint(1, 5, (2,), generator=g).tolist()
        done = torch.rand(n, t, generator=g) < 0.3
        ids = naive_ids_from_done(done)
        td = TensorDict({"next": {"observation": torch.randn(n, t, 2, generator=g), "done": done.unsqueeze(-1)}},
                        [n, t])
        assert torch.equal(traj_ids_from_done(td), ids)
        out = split_trajectories(td)  # no traj_ids: falls back to the done flags
        obs, mask, _ = naive_split(td, ids)
        assert torch.equal(out["collector", "mask"], mask)
        assert torch.equal(out["next", "observation"], obs)


def test_split_errors():
    with pytest.raises(KeyError, match="neither trajectory ids"):
        split_trajectories(TensorDict({"a": torch.zeros(3)}, [3]))
    with pytest.raises(ValueError, match="time dim"):
        split_trajectories(TensorDict({"a": torch.zeros(())}, []))


@pytest.mark.parametrize("batch_size", [[3], [2, 2]])
def test_split_as_nested_matches_the_padded_rows(batch_size):
    """as_nested=True: one jagged row per trajectory, equal to the padded row's real steps."""
    env = CountingEnv(max_steps=torch.randint(1, 6, batch_size), batch_size=batch_size)
    collector = Collector(env, frames_per_batch=torch.Size(batch_size).numel() * 13)
    collector.collect()
    batch = collector.collect()
    padded = split_trajectories(batch)
    nested = split_trajectories(batch, as_nested=True, trajectory_key=("collector", "traj_ids"))
    obs, mask, order = naive_split(batch, batch["collector", "traj_ids"])
    assert nested.batch_size == (len(order),) and nested["collector", "traj_ids"].tolist() == order
    assert ("collector", "mask") not in nested.keys(True)
    rows = nested["next", "observation"].unbind()
    assert [len(r) for r in rows] == mask.sum(-1).tolist()
    for r, row in enumerate(rows):
        assert torch.equal(row, obs[r][mask[r]])
        assert torch.equal(nested["action"].unbind()[r], padded["action"][r][mask[r]])
