"""SliceSampler: slices stay inside one episode, in time order, across ring-buffer wraps and env columns.

The storages here record ground truth with every step (env, episode uid, step within the episode,
global time), so a slice is checked against what really happened, not against the sampler's logic.
"""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from tensordict import TensorDict

from rlbench.buffers.samplers.slice import SliceSampler, SliceSamplerWithoutReplacement


class RingStorage:
    """A minimal round-robin storage of shape ``[capacity]`` (``n_envs=None``) or ``[capacity, n_envs]``."""

    def __init__(self, capacity: int, n_envs: int | None = None):
        self.capacity, self.n_envs = capacity, n_envs
        self.per_row = n_envs or 1
        self.data = None
        self.len_rows = 0
        self.write_cursor = 0
        self.slice_reads = 0

    @property
    def shape(self):
        return torch.Size([self.capacity] + ([self.n_envs] if self.n_envs else []))

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.len_rows * self.per_row

    def extend(self, td: TensorDict, samplers=()) -> None:
        if self.data is None:
            self.data = torch.zeros_like(td[0]).expand(*self.shape).clone()
        rows = (torch.arange(td.shape[0]) + self.write_cursor) % self.capacity
        self.data[rows] = td
        self.write_cursor = int(rows[-1] + 1) % self.capacity
        self.len_rows = min(self.len_rows + td.shape[0], self.capacity)
        flat = (rows.unsqueeze(-1) * self.per_row + torch.arange(self.per_row)).reshape(-1)
        for s in samplers:
            s.extend(flat)

    def get(self, index):
        if isinstance(index, slice):
            self.slice_reads += 1
        return self.data.reshape(-1)[index]


def episode_stream(n_envs: int, steps: int, max_len: int, seed: int, long_every: int = 0):
    """``steps`` rows of ``n_envs`` envs, episodes of random length 1..max_len, with ground-truth columns."""
    g = torch.Generator().manual_seed(seed)
    uid = torch.zeros(steps, n_envs, dtype=torch.long)
    step = torch.zeros(steps, n_envs, dtype=torch.long)
    done = torch.zeros(steps, n_envs, 1, dtype=torch.bool)
    next_uid = 0
    for e in range(n_envs):
        t = 0
        while t < steps:
            length = int(torch.randint(1, max_len + 1, (1,), generator=g))
            if long_every and next_uid % long_every == 0:
                length = 10 * max_len
            end = min(t + length, steps)
            uid[t:end, e] = next_uid
            step[t:end, e] = torch.arange(end - t)
            if t + length <= steps:
                done[end - 1, e] = True
            next_uid += 1
            t = end
    time = torch.arange(steps).unsqueeze(-1).expand(steps, n_envs)
    env = torch.arange(n_envs).expand(steps, n_envs)
    return TensorDict({"uid": uid, "step": step, "time": time.clone(), "env": env.clone(),
                       "traj": uid.clone(), "next": {"done": done}}, [steps, n_envs])


def fill(capacity, n_envs, steps, max_len, seed, samplers, chunk=7, long_every=0):
    storage = RingStorage(capacity, n_envs)
    stream = episode_stream(n_envs or 1, steps, max_len, seed, long_every)
    if not n_envs:
        stream = stream[:, 0]
    for t in range(0, steps, chunk):
        storage.extend(stream[t:t + chunk], samplers)
    return storage


def valid_windows(storage: RingStorage, slice_len: int) -> set:
    """Reference: every (env, start time) whose next ``slice_len`` steps are all stored, in one episode."""
    flat = storage.data.reshape(-1)[: len(storage)]
    where = {(int(e), int(t)): int(u) for e, t, u in zip(flat["env"], flat["time"], flat["uid"])}
    out = set()
    for (e, t), u in where.items():
        if all(where.get((e, t + k)) == u for k in range(slice_len)):
            out.add((e, t))
    return out


def check_slices(storage, index, info, slice_len, num_slices):
    """Every slice: one env, one episode, consecutive times, the last step flagged truncated."""
    items = storage.get(index)
    assert index.shape == (num_slices * slice_len,)
    for key in ("env", "uid"):
        col = items[key].view(num_slices, slice_len)
        assert (col == col[:, :1]).all(), f"a slice mixes {key}s: {col}"
    for key in ("time", "step"):
        col = items[key].view(num_slices, slice_len)
        assert (col.diff(dim=1) == 1).all(), f"a slice's {key} is not consecutive: {col}"
    truncated = info["next", "truncated"].view(num_slices, slice_len)
    assert torch.equal(info["next", "done"], info["next", "truncated"])
    assert truncated[:, -1].all() and not truncated[:, :-1].any()
    starts = items.view(num_slices, slice_len)[:, 0]
    return {(int(e), int(t)) for e, t in zip(starts["env"], starts["time"])}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("n_envs", [None, 3])
def test_slices_never_cross_episodes_or_the_ring_seam(seed, n_envs):
    # 50 rows of capacity, 173 written: wrapped 3 times, cursor mid-buffer, episodes cut by the seam
    sampler = SliceSampler(slice_len=4)
    sampler.generator = torch.Generator().manual_seed(seed)
    storage = fill(50, n_envs, 173, max_len=9, seed=seed, samplers=[sampler], long_every=5)
    assert storage.write_cursor not in (0, 50)
    valid = valid_windows(storage, 4)
    seen = set()
    for _ in range(40):
        index, info = sampler.sample(storage, 32)
        seen |= check_slices(storage, index, info, 4, 8)
    assert seen <= valid
    # not needlessly restrictive: every episode that holds a window comes up in 320 slices
    uid_at = {(int(e), int(t)): int(u) for e, t, u in zip(storage.data["env"].reshape(-1),
                                                          storage.data["time"].reshape(-1),
                                                          storage.data["uid"].reshape(-1))}
    assert {uid_at[w] for w in seen} == {uid_at[w] for w in valid}


def test_every_valid_window_is_reachable_and_only_those():
    sampler = SliceSampler(num_slices=16)
    sampler.generator = torch.Generator().manual_seed(0)
    storage = fill(30, 2, 77, max_len=6, seed=1, samplers=[sampler], long_every=4)
    valid = valid_windows(storage, 3)
    seen = set()
    for _ in range(300):
        index, info = sampler.sample(storage, 48)  # 16 slices of 3
        seen |= check_slices(storage, index, info, 3, 16)
    assert seen == valid


def test_long_episode_across_the_cursor_is_cut():
    # one endless episode written past capacity: newest and oldest rows share an episode id, but time jumps
    sampler = SliceSampler(slice_len=5)
    sampler.generator = torch.Generator().manual_seed(0)
    storage = RingStorage(20)
    stream = TensorDict({"time": torch.arange(33), "uid": torch.zeros(33, dtype=torch.long),
                         "next": {"done": torch.zeros(33, 1, dtype=torch.bool)}}, [33])
    storage.extend(stream[:25], [sampler])
    storage.extend(stream[25:], [sampler])
    for _ in range(50):
        index, _ = sampler.sample(storage, 20)
        times = storage.get(index)["time"].view(4, 5)
        assert (times.diff(dim=1) == 1).all()
        assert times.min() >= 13  # the 20 newest steps


def test_episodes_are_picked_uniformly_then_start_uniformly():
    # episodes of length 3, 5 and 10 in one env; slices of 3: each episode 1/3 of the time
    done = torch.zeros(18, 1, dtype=torch.bool)
    done[[2, 7, 17]] = True
    td = TensorDict({"time": torch.arange(18), "next": {"done": done}}, [18])
    sampler = SliceSampler(slice_len=3)
    sampler.generator = torch.Generator().manual_seed(0)
    storage = RingStorage(18)
    storage.extend(td, [sampler])
    starts = Counter()
    n = 6000
    for _ in range(n // 100):
        index, _ = sampler.sample(storage, 300)
        starts.update(storage.get(index)["time"].view(-1, 3)[:, 0].tolist())
    # start times 0 (ep 1); 3..5 (ep 2); 8..15 (ep 3)
    expected = {0: n / 3, **{t: n / 9 for t in range(3, 6)}, **{t: n / 24 for t in range(8, 16)}}
    assert set(starts) == set(expected)
    chi2 = sum((starts[t] - e) ** 2 / e for t, e in expected.items())
    df = len(expected) - 1
    assert chi2 < df * (1 - 2 / (9 * df) + 3.09 * math.sqrt(2 / (9 * df))) ** 3  # chi-square, p = 0.999


@pytest.mark.parametrize("seed", range(5))
def test_traj_key_defines_episodes(seed):
    sampler = SliceSampler(slice_len=3, traj_key="traj")
    sampler.generator = torch.Generator().manual_seed(seed)
    storage = fill(40, 2, 95, max_len=7, seed=seed, samplers=[sampler])
    storage.data["next", "done"].zero_()  # the done flags must not matter
    valid = valid_windows(storage, 3)
    for _ in range(20):
        index, info = sampler.sample(storage, 30)
        assert check_slices(storage, index, info, 3, 10) <= valid


@pytest.mark.parametrize("seed", range(5))
def test_non_strict_gives_short_slices_from_short_episodes(seed):
    sampler = SliceSampler(num_slices=10, strict_length=False)
    sampler.generator = torch.Generator().manual_seed(seed)
    storage = fill(60, None, 140, max_len=6, seed=seed, samplers=[sampler])
    index, info = sampler.sample(storage, 50)  # slices of up to 5
    lengths = info["slice_lengths"]
    assert lengths.shape == (10,) and int(lengths.sum()) == len(index) and (lengths <= 5).all()
    assert (lengths < 5).any()  # with episodes of 1..6 steps some slice is short
    items = storage.get(index)
    offset = 0
    for n in lengths.tolist():
        piece = items[offset:offset + n]
        assert (piece["uid"] == piece["uid"][0]).all() and (piece["time"].diff() == 1).all()
        if n < 5:  # a short slice is a whole episode: it starts at step 0 (or at the oldest stored step)
            assert piece["step"][0] == 0 or piece["time"][0] == storage.get(slice(None))["time"].min()
        assert info["next", "truncated"][offset:offset + n, 0].tolist() == [False] * (n - 1) + [True]
        offset += n


def test_episode_boundaries_are_cached_until_the_storage_is_written():
    sampler = SliceSampler(slice_len=2)
    storage = fill(40, None, 30, max_len=5, seed=0, samplers=[sampler])
    for _ in range(5):
        sampler.sample(storage, 8)
    assert storage.slice_reads == 1
    storage.extend(episode_stream(1, 3, 5, seed=1)[:, 0], [sampler])
    sampler.sample(storage, 8)
    sampler.sample(storage, 8)
    assert storage.slice_reads == 2
    # a write the sampler was not told about still shows in the storage's size / cursor
    storage.extend(episode_stream(1, 3, 5, seed=2)[:, 0])
    sampler.sample(storage, 8)
    assert storage.slice_reads == 3


def test_mark_slice_ends_sets_truncated_and_done():
    sampler = SliceSampler(slice_len=4)
    sampler.generator = torch.Generator().manual_seed(0)
    storage = fill(40, None, 40, max_len=8, seed=3, samplers=[sampler], long_every=2)
    index, info = sampler.sample(storage, 12)
    batch = storage.get(index)
    stored_done = batch["next", "done"].clone()
    sampler.mark_slice_ends(batch, info)
    assert batch["next", "truncated"].shape == (12, 1)
    assert batch["next", "truncated"].view(3, 4)[:, -1].all()
    assert torch.equal(batch["next", "done"], stored_done | info["next", "truncated"])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="exactly one of num_slices or slice_len"):
        SliceSampler()
    with pytest.raises(ValueError, match="exactly one of num_slices or slice_len"):
        SliceSampler(num_slices=2, slice_len=3)
    with pytest.raises(ValueError, match="slice_len must be a positive int, got 0"):
        SliceSampler(slice_len=0)
    sampler = SliceSampler(slice_len=4)
    with pytest.raises(ValueError, match="cannot sample from an empty storage"):
        sampler.sample(RingStorage(10), 8)
    storage = fill(40, None, 40, max_len=3, seed=0, samplers=[sampler])
    with pytest.raises(ValueError, match="batch_size=10 must be a positive multiple of slice_len=4"):
        sampler.sample(storage, 10)
    with pytest.raises(ValueError, match="no episode in the storage has slice_len=4 steps \\(the longest has 3"):
        sampler.sample(storage, 8)
    with pytest.raises(KeyError, match="end_key=\\('next', 'finished'\\) is not in the stored data.*traj_key="):
        SliceSampler(slice_len=2, end_key=("next", "finished")).sample(storage, 4)
    with pytest.raises(KeyError, match="traj_key='episode' is not in the stored data"):
        SliceSampler(slice_len=2, traj_key="episode").sample(storage, 4)


def test_empty_and_state_round_trip():
    sampler = SliceSampler(slice_len=3)
    sampler.generator = torch.Generator().manual_seed(4)
    storage = fill(30, 2, 50, max_len=6, seed=4, samplers=[sampler])
    restored = SliceSampler(slice_len=3)
    restored.load_state_dict(sampler.state_dict())
    restored.generator = torch.Generator()
    restored.generator.set_state(sampler.generator.get_state())
    for _ in range(3):
        assert torch.equal(sampler.sample(storage, 12)[0], restored.sample(storage, 12)[0])
    sampler.empty()
    storage2 = fill(30, 2, 20, max_len=6, seed=5, samplers=[sampler])
    index, info = sampler.sample(storage2, 12)
    check_slices(storage2, index, info, 3, 4)


# ------------------------------------------------------------------------ with the real buffers


def continuous_in_time(batch, num_slices, slice_len) -> bool:
    """Within each slice, a step's observation is the previous step's next observation (no reset between)."""
    obs = batch["observation"].view(num_slices, slice_len, -1)
    next_obs = batch["next", "observation"].view(num_slices, slice_len, -1)
    return torch.equal(obs[:, 1:], next_obs[:, :-1])


def collect(n_envs, frames, batches, seed=0):
    from rlbench.collectors import Collector
    from rlbench.envs import CartPoleEnv

    env = CartPoleEnv(batch_size=[n_envs])
    collector = Collector(env, None, frames_per_batch=frames, total_frames=frames * batches, seed=seed)
    try:
        yield from collector
    finally:
        collector.shutdown()


def test_replay_buffer_ndim2_storage_with_done_flags():
    from rlbench.buffers import LazyTensorStorage, TensorDictReplayBuffer

    rb = TensorDictReplayBuffer(storage=LazyTensorStorage(40 * 4, ndim=2), sampler=SliceSampler(slice_len=5),
                                batch_size=40, generator=torch.Generator().manual_seed(0))
    for batch in collect(4, 64, 6):  # 96 rows into 40: wraps twice, cursor mid-buffer
        rb.extend(batch.transpose(0, 1).contiguous())  # [T, n_envs]
        if len(rb) < 40 * 4:
            continue
        for _ in range(5):
            sample = rb.sample()
            assert sample.shape == (40,)
            assert continuous_in_time(sample, 8, 5)
            ids = sample["collector", "traj_ids"].view(8, 5)
            assert (ids == ids[:, :1]).all()
            done = sample["next", "done"].view(8, 5)  # written from info: the slice ends
            assert done[:, -1].all() and not done[:, :-1].any()
            assert torch.equal(sample["next", "truncated"], sample["next", "done"])
    assert rb.storage.write_cursor not in (0, 40)


def test_replay_buffer_flat_storage_with_traj_ids():
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    sampler = SliceSampler(num_slices=6, traj_key=("collector", "traj_ids"))
    rb = ReplayBuffer(storage=LazyTensorStorage(300), sampler=sampler, batch_size=24,
                      generator=torch.Generator().manual_seed(1))
    for batch in collect(3, 60, 8):
        rb.extend(batch.reshape(-1))  # env-major: one env's run, then the next env's
        for _ in range(3):
            sample, info = rb.sample(return_info=True)
            assert continuous_in_time(sample, 6, 4)
            ids = sample["collector", "traj_ids"].view(6, 4)
            assert (ids == ids[:, :1]).all()
            assert torch.equal(info["index"], info["index"].clamp(0, len(rb) - 1))
            sampler.mark_slice_ends(sample, info)
            assert sample["next", "truncated"].view(6, 4)[:, -1].all()


def test_replay_buffer_state_round_trip_with_slice_sampler(tmp_path):
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer

    def make():
        return ReplayBuffer(storage=LazyTensorStorage(200), sampler=SliceSampler(slice_len=3), batch_size=12,
                            generator=torch.Generator().manual_seed(2))

    rb = make()
    for batch in collect(2, 50, 5, seed=3):
        rb.extend(batch.reshape(-1))
    rb.sample()
    rb.dumps(tmp_path / "rb")
    other = make()
    other.loads(tmp_path / "rb")
    for _ in range(3):
        (a, ia), (b, ib) = rb.sample(return_info=True), other.sample(return_info=True)
        assert torch.equal(ia["index"], ib["index"]) and torch.equal(a["observation"], b["observation"])
    # rebuilt from the directory alone: the sampler's class and (tuple) keys come back from buffer.json
    rb.dumps(tmp_path / "rb2")
    rebuilt = ReplayBuffer.loads(tmp_path / "rb2")
    assert isinstance(rebuilt.sampler, SliceSampler) and rebuilt.sampler.end_key == ("next", "done")
    assert torch.equal(rb.sample(return_info=True)[1]["index"], rebuilt.sample(return_info=True)[1]["index"])


# ------------------------------------------------------------------------ without replacement


def episodes_of(storage, index, slice_len):
    uid = storage.get(index)["uid"].view(-1, slice_len)
    assert (uid == uid[:, :1]).all()
    return uid[:, 0].tolist()


def long_enough_episodes(storage, slice_len):
    # an episode cut by the ring seam counts as two pieces; this storage never wraps, so uids are exact
    counts = Counter(storage.data["uid"].reshape(-1)[: len(storage)].tolist())
    return {u for u, c in counts.items() if c >= slice_len}


@pytest.mark.parametrize("drop_last", [False, True])
def test_without_replacement_visits_each_episode_once_per_epoch(drop_last):
    sampler = SliceSamplerWithoutReplacement(num_slices=4, drop_last=drop_last)
    sampler.generator = torch.Generator().manual_seed(0)
    storage = fill(100, 2, 60, max_len=8, seed=7, samplers=[sampler])
    eligible = long_enough_episodes(storage, 3)
    for _epoch in range(3):
        seen, sizes = [], []
        while True:
            index, info = sampler.sample(storage, 12)  # 4 slices of 3
            check_slices(storage, index, info, 3, len(index) // 3)
            seen += episodes_of(storage, index, 3)
            sizes.append(len(index) // 3)
            if sampler.ran_out:
                break
        assert len(seen) == len(set(seen))  # no episode twice in an epoch
        if drop_last:
            assert all(n == 4 for n in sizes) and len(eligible) - len(seen) < 4
            assert set(seen) <= eligible
        else:
            assert set(seen) == eligible and sizes[:-1] == [4] * (len(sizes) - 1) and sizes[-1] <= 4


def test_without_replacement_restarts_after_a_write_and_resumes_from_state():
    sampler = SliceSamplerWithoutReplacement(slice_len=2)
    sampler.generator = torch.Generator().manual_seed(1)
    storage = fill(200, None, 80, max_len=6, seed=2, samplers=[sampler])
    first = episodes_of(storage, sampler.sample(storage, 8)[0], 2)
    clone = SliceSamplerWithoutReplacement(slice_len=2)
    clone.load_state_dict(sampler.state_dict())
    clone.generator = torch.Generator()
    clone.generator.set_state(sampler.generator.get_state())
    rest = []
    while not sampler.ran_out:
        index = sampler.sample(storage, 8)[0]
        assert torch.equal(index, clone.sample(storage, 8)[0])  # resumes mid-epoch exactly
        rest += episodes_of(storage, index, 2)
    assert not set(first) & set(rest)
    sampler.sample(storage, 8)
    assert not sampler.ran_out
    storage.extend(episode_stream(1, 5, 3, seed=9)[:, 0], [sampler])
    sampler.sample(storage, 8)
    assert sampler._pos == 4  # a new epoch began with the write
    with pytest.raises(ValueError, match=r"drop_last=True\): only .* episodes can give a slice, fewer than the 100"):
        SliceSamplerWithoutReplacement(slice_len=2, drop_last=True).sample(storage, 200)


def test_iterating_a_buffer_gives_one_epoch_of_episodes():
    from rlbench.buffers import LazyTensorStorage, TensorDictReplayBuffer

    sampler = SliceSamplerWithoutReplacement(num_slices=5, traj_key=("collector", "traj_ids"))
    rb = TensorDictReplayBuffer(storage=LazyTensorStorage(500), sampler=sampler, batch_size=15,
                                generator=torch.Generator().manual_seed(3))
    for batch in collect(2, 200, 2, seed=4):
        rb.extend(batch.reshape(-1))
    stored = rb.storage.get(slice(None))["collector", "traj_ids"]
    pieces = torch.unique_consecutive(stored, return_counts=True)[1]  # runs of one id = candidate episodes
    seen = []
    for sample in rb:
        assert continuous_in_time(sample, len(sample) // 3, 3)
        seen += sample["index"].view(-1, 3)[:, 0].tolist()
    assert len(seen) == int((pieces >= 3).sum()) and len(set(seen)) == len(seen)
