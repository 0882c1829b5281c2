"""RandomSampler and SamplerWithoutReplacement: ranges, uniformity, epochs, drop_last, state."""
import pytest
import torch

from rlbench.buffers import LazyTensorStorage, RandomSampler, ReplayBuffer, SamplerWithoutReplacement


def filled(n, sampler, batch_size, capacity=None, seed=0):
    rb = ReplayBuffer(storage=LazyTensorStorage(capacity or n), sampler=sampler, batch_size=batch_size,
                      generator=torch.Generator().manual_seed(seed))
    rb.extend(torch.arange(n))
    return rb


def test_random_sampler_uniform_over_stored_items_only():
    rb = filled(10, RandomSampler(), 1000, capacity=50)
    counts = torch.bincount(torch.cat([rb.sample() for _ in range(20)]), minlength=50)
    assert counts[10:].sum() == 0  # never the unfilled part
    # 20000 draws over 10 items: each count ~ 2000 +- 40 (sd); 5 sd bounds
    assert counts[:10].min() > 1800 and counts[:10].max() < 2200


def test_random_sampler_follows_the_generator():
    a = [filled(100, RandomSampler(), 8, seed=3).sample() for _ in range(2)]
    assert torch.equal(a[0], a[1])
    b = filled(100, RandomSampler(), 8, seed=4).sample()
    assert not torch.equal(a[0], b)


def test_without_replacement_epochs():
    rb = filled(10, SamplerWithoutReplacement(), 4)
    for _ in range(3):
        batches = [rb.sample(), rb.sample()]
        assert not rb.sampler.ran_out
        batches.append(rb.sample())
        assert [len(b) for b in batches] == [4, 4, 2] and rb.sampler.ran_out
        assert sorted(torch.cat(batches).tolist()) == list(range(10))


def test_without_replacement_drop_last_and_order():
    rb = filled(10, SamplerWithoutReplacement(drop_last=True, shuffle=False), 4)
    assert rb.sample().tolist() == [0, 1, 2, 3]
    assert rb.sample().tolist() == [4, 5, 6, 7] and rb.sampler.ran_out
    assert rb.sample().tolist() == [0, 1, 2, 3]  # the incomplete [8, 9] was dropped
    with pytest.raises(ValueError, match="fewer than batch_size=20"):
        rb.sample(20)


def test_without_replacement_new_items_join_next_epoch():
    rb = filled(4, SamplerWithoutReplacement(), 2, capacity=10)
    first = torch.cat([rb.sample(), rb.sample()])
    rb.extend(torch.arange(4, 8))
    second = torch.cat([rb.sample() for _ in range(4)])
    assert sorted(first.tolist()) == [0, 1, 2, 3] and sorted(second.tolist()) == list(range(8))


def test_without_replacement_state_round_trip():
    rb = filled(20, SamplerWithoutReplacement(), 3)
    rb.sample()
    state = rb.state_dict()
    expected = [rb.sample() for _ in range(8)]  # crosses an epoch boundary
    other = filled(20, SamplerWithoutReplacement(), 3, seed=99)
    other.load_state_dict(state)
    assert all(torch.equal(a, other.sample()) for a in expected)


def test_has_priorities_says_which_samplers_take_priority_updates():
    from rlbench.buffers.samplers import (
        PrioritizedSampler,
        PrioritizedSliceSampler,
        RandomSampler,
        SamplerWithoutReplacement,
        SliceSampler,
    )

    assert PrioritizedSampler(10, 0.6, 0.4).has_priorities
    assert PrioritizedSliceSampler(10, 0.6, 0.4, slice_len=2).has_priorities
    assert not any(s.has_priorities for s in (RandomSampler(), SamplerWithoutReplacement(), SliceSampler(slice_len=2)))
