"""PrioritizedSliceSampler: slice starts drawn in proportion to priority ** alpha among the steps that can start one.

Ground truth comes from the storages of test_slice_sampler (every step records its env, episode uid and
time), and the start distribution is checked against a brute-force reference over those records.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_slice_sampler import RingStorage, check_slices, collect, episode_stream, fill, valid_windows

from rlbench.buffers.samplers import PrioritizedSliceSampler

ALPHA, BETA = 0.7, 0.5


def flat_of(storage: RingStorage) -> dict:
    """(env, time) -> flat storage index, for the stored items."""
    flat = storage.data.reshape(-1)[: len(storage)]
    return {(int(e), int(t)): i for i, (e, t) in enumerate(zip(flat["env"], flat["time"]))}


def startable_flat(storage: RingStorage, slice_len: int) -> np.ndarray:
    where = flat_of(storage)
    return np.array(sorted(where[w] for w in valid_windows(storage, slice_len)))


def test_start_frequencies_follow_priorities_among_startable_steps():
    capacity, slice_len = 300, 4
    sampler = PrioritizedSliceSampler(capacity, ALPHA, BETA, eps=0.0, slice_len=slice_len)
    sampler.generator = torch.Generator().manual_seed(0)
    storage = fill(capacity, None, 240, max_len=12, seed=3, samplers=[sampler])
    raw = torch.rand(240, generator=torch.Generator().manual_seed(1)) * 5 + 0.1
    sampler.update_priority(torch.arange(240), raw)
    starts = startable_flat(storage, slice_len)
    expected = np.zeros(capacity)
    expected[starts] = raw.double().numpy()[starts] ** ALPHA
    expected /= expected.sum()
    counts = np.zeros(capacity)
    n_batches, num_slices = 1500, 16
    for _ in range(n_batches):
        index, info = sampler.sample(storage, num_slices * slice_len)
        check_slices(storage, index, info, slice_len, num_slices)
        np.add.at(counts, index.view(num_slices, slice_len)[:, 0].numpy(), 1)
    assert set(np.flatnonzero(counts)) <= set(starts.tolist())  # never a step too close to its episode's end
    freq = counts / counts.sum()
    # total variation from the reference: ~0.03 expected by chance at 24k draws, 0.2+ for a wrong distribution
    assert 0.5 * np.abs(freq - expected).sum() < 0.06
    # and the highest-priority quartile of startable steps is drawn about as often as it should be
    top = starts[np.argsort(expected[starts])[-len(starts) // 4:]]
    assert freq[top].sum() == pytest.approx(expected[top].sum(), abs=0.02)


def test_weights_are_per_slice_and_use_the_smallest_startable_mass():
    slice_len = 3
    sampler = PrioritizedSliceSampler(100, ALPHA, BETA, eps=1e-6, slice_len=slice_len)
    sampler.generator = torch.Generator().manual_seed(2)
    storage = fill(100, None, 90, max_len=8, seed=4, samplers=[sampler])
    raw = torch.rand(90, generator=torch.Generator().manual_seed(5)) + 0.05
    raw[torch.tensor(sorted(set(range(90)) - set(startable_flat(storage, slice_len).tolist())))] = 1e-3
    sampler.update_priority(torch.arange(90), raw)  # the smallest priorities sit where no slice can start
    mass = (raw.double() + 1e-6) ** ALPHA
    p_min = mass[torch.from_numpy(startable_flat(storage, slice_len))].min()
    index, info = sampler.sample(storage, 8 * slice_len)
    weight = info["priority_weight"].view(8, slice_len)
    assert (weight == weight[:, :1]).all()
    start = index.view(8, slice_len)[:, 0]
    torch.testing.assert_close(weight[:, 0], ((mass[start] / p_min) ** -BETA).float())


@pytest.mark.parametrize("seed", range(4))
def test_wrapped_multi_env_storage_gives_valid_prioritized_slices(seed):
    sampler = PrioritizedSliceSampler(50 * 3, ALPHA, BETA, slice_len=4)
    sampler.generator = torch.Generator().manual_seed(seed)
    storage = fill(50, 3, 173, max_len=9, seed=seed, samplers=[sampler], long_every=5)
    assert storage.write_cursor not in (0, 50)
    valid = valid_windows(storage, 4)
    seen = set()
    for _ in range(30):
        index, info = sampler.sample(storage, 32)
        seen |= check_slices(storage, index, info, 4, 8)
        sampler.update_priority(index, torch.rand(32, generator=torch.Generator().manual_seed(len(seen))))
    assert seen <= valid and len(seen) > 20


def test_new_steps_get_the_max_priority_and_repeats_keep_the_last_value():
    sampler = PrioritizedSliceSampler(40, 1.0, BETA, eps=0.0, slice_len=2)
    storage = RingStorage(40)
    stream = episode_stream(1, 30, 6, seed=0)[:, 0]
    storage.extend(stream[:20], [sampler])
    sampler.update_priority(torch.tensor([3, 5, 3, 7, 5]), torch.tensor([1.0, 2.0, 4.0, 9.0, 0.5]))
    assert sampler.priorities([3, 5, 7]).tolist() == [4.0, 0.5, 9.0]
    assert sampler.max_priority == 9.0
    storage.extend(stream[20:], [sampler])
    assert sampler.priorities(torch.arange(20, 30)).tolist() == [9.0] * 10
    # priorities of steps that cannot start a slice are kept, but never drawn as starts
    sampler.generator = torch.Generator().manual_seed(0)
    last_steps = {i for i in range(30) if bool(storage.data["next", "done"][i])} | {29}
    for _ in range(20):
        index, _ = sampler.sample(storage, 8)
        assert not set(index.view(4, 2)[:, 0].tolist()) & last_steps


def test_non_strict_short_episodes_give_whole_episode_slices():
    sampler = PrioritizedSliceSampler(200, ALPHA, BETA, slice_len=6, strict_length=False)
    sampler.generator = torch.Generator().manual_seed(1)
    storage = fill(200, None, 150, max_len=8, seed=2, samplers=[sampler])
    uid = storage.data["uid"][:150]
    for _ in range(20):
        index, info = sampler.sample(storage, 48)
        lengths = info["slice_lengths"]
        assert index.numel() == lengths.sum() == info["priority_weight"].numel()
        for piece in torch.split(index, lengths.tolist()):
            ep = uid[piece]
            assert (ep == ep[0]).all() and (piece.diff() == 1).all()
            if len(piece) < 6:  # a short slice is a whole short episode
                assert piece[0] == 0 or uid[piece[0] - 1] != ep[0]
                assert piece[-1] == 149 or uid[piece[-1] + 1] != ep[0]


def test_state_round_trip_gives_identical_next_samples():
    def make():
        s = PrioritizedSliceSampler(120, ALPHA, BETA, num_slices=4)
        s.generator = torch.Generator().manual_seed(7)
        return s

    sampler = make()
    storage = fill(120, None, 100, max_len=10, seed=5, samplers=[sampler])
    index, _ = sampler.sample(storage, 16)
    sampler.update_priority(index, torch.rand(16, generator=torch.Generator().manual_seed(0)) * 3)
    other = make()
    other.load_state_dict(sampler.state_dict())
    other.generator.set_state(sampler.generator.get_state())
    for _ in range(3):
        (a, ia), (b, ib) = sampler.sample(storage, 16), other.sample(storage, 16)
        assert torch.equal(a, b) and torch.equal(ia["priority_weight"], ib["priority_weight"])


def test_replay_buffer_dumps_and_rebuilds_the_sampler(tmp_path):
    from rlbench.buffers import LazyTensorStorage, ReplayBuffer, TensorDictReplayBuffer

    sampler = PrioritizedSliceSampler(400, ALPHA, BETA, reduction="mean", slice_len=5,
                                      traj_key=("collector", "traj_ids"))
    rb = TensorDictReplayBuffer(storage=LazyTensorStorage(400), sampler=sampler, batch_size=20,
                                generator=torch.Generator().manual_seed(3))
    for batch in collect(2, 60, 3):
        rb.extend(batch.reshape(-1))
    sample = rb.sample()
    ids = sample["collector", "traj_ids"].view(4, 5)
    assert (ids == ids[:, :1]).all()
    assert sample["next", "truncated"].view(4, 5)[:, -1].all()
    rb.update_priority(sample["index"], torch.rand(20, 3))  # per-step priorities with a trailing dim: mean
    rb.dumps(tmp_path / "rb")
    rebuilt = ReplayBuffer.loads(tmp_path / "rb")
    assert isinstance(rebuilt.sampler, PrioritizedSliceSampler)
    assert (rebuilt.sampler.reduction, rebuilt.sampler.slice_len, rebuilt.sampler.traj_key) == \
        ("mean", 5, ("collector", "traj_ids"))
    torch.testing.assert_close(rebuilt.sampler.priorities(torch.arange(360)), sampler.priorities(torch.arange(360)))
    a, b = rb.sample(return_info=True)[1], rebuilt.sample(return_info=True)[1]
    assert torch.equal(a["index"], b["index"]) and torch.equal(a["priority_weight"], b["priority_weight"])


def test_errors_name_the_problem():
    sampler = PrioritizedSliceSampler(20, ALPHA, BETA, slice_len=50)
    storage = fill(20, None, 20, max_len=5, seed=0, samplers=[sampler])
    with pytest.raises(ValueError, match="no episode in the storage has slice_len=50"):
        sampler.sample(storage, 50)
    with pytest.raises(ValueError, match="multiple of slice_len=50"):
        sampler.sample(storage, 7)
    with pytest.raises(ValueError, match="exactly one of num_slices or slice_len"):
        PrioritizedSliceSampler(20, ALPHA, BETA)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        PrioritizedSliceSampler(20, -1.0, BETA, slice_len=2)
    with pytest.raises(ValueError, match="only items \\[0, 20\\) have been written"):
        sampler.update_priority(torch.tensor([25]), torch.tensor([1.0]))
