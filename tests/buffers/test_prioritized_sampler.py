"""PrioritizedSampler against plain NumPy references (frequencies, stratified draws, direct weight formulas)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlbench.buffers.samplers.prioritized import PrioritizedSampler


def chi2_quantile(df: int, z: float = 3.09) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile at normal score z (3.09: p = 0.999)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


# ------------------------------------------------------------------------------------ PrioritizedSampler


def make_sampler(n, priorities, alpha=0.7, beta=0.5, eps=1e-8, seed=0, capacity=None):
    sampler = PrioritizedSampler(max_capacity=capacity or n, alpha=alpha, beta=beta, eps=eps)
    sampler.extend(torch.arange(n))
    sampler.update_priority(torch.arange(n), torch.as_tensor(priorities))
    sampler.generator = torch.Generator().manual_seed(seed)
    return sampler, torch.zeros(n)  # a tensor of length n stands in for the storage: samplers only ask len()


def test_sampling_frequencies_follow_priorities_to_the_alpha():
    n, alpha = 50, 0.7
    priorities = np.random.default_rng(0).uniform(0.1, 5.0, n)
    sampler, storage = make_sampler(n, priorities, alpha=alpha)
    counts = np.zeros(n)
    for _ in range(400):
        index, _ = sampler.sample(storage, 256)
        counts += np.bincount(index.numpy(), minlength=n)
    p = (priorities + 1e-8) ** alpha
    expected = counts.sum() * p / p.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < chi2_quantile(n - 1), chi2


def test_sample_is_stratified_one_draw_per_segment():
    n, batch = 40, 16
    priorities = np.random.default_rng(3).uniform(0.0, 3.0, n)
    sampler, storage = make_sampler(n, priorities, alpha=1.0, eps=0.0)
    p = priorities
    upper = np.cumsum(p)
    lower = upper - p
    seg = p.sum() / batch
    for _ in range(20):
        index = sampler.sample(storage, batch)[0].numpy()
        # item i covers mass [lower_i, upper_i); the draw of segment k lies in [k seg, (k+1) seg)
        k = np.arange(batch)
        assert (lower[index] < (k + 1) * seg + 1e-9).all() and (upper[index] > k * seg - 1e-9).all()


def test_importance_weights_equal_direct_formula():
    n, alpha, beta = 30, 0.6, 0.4
    priorities = np.random.default_rng(5).uniform(0.01, 10.0, n)
    sampler, storage = make_sampler(n, priorities, alpha=alpha, beta=beta)
    index, info = sampler.sample(storage, 64)
    p = (priorities + 1e-8) ** alpha
    P = p / p.sum()
    w = (n * P) ** -beta
    expected = w[index.numpy()] / w.max()
    assert info["priority_weight"].dtype == torch.float32 and info["priority_weight"].shape == (64,)
    np.testing.assert_allclose(info["priority_weight"].numpy(), expected, rtol=1e-6)
    assert info["priority_weight"].max() <= 1.0


def test_weights_normalised_by_stored_items_only():
    # items 0..3 written into a sampler that could hold 100: unwritten slots must not set the max weight
    sampler, storage = make_sampler(4, [1.0, 2.0, 4.0, 8.0], alpha=1.0, beta=1.0, eps=0.0, capacity=100)
    index, info = sampler.sample(storage, 8)
    assert index.max() < 4
    np.testing.assert_allclose(info["priority_weight"].numpy(), 1.0 / np.array([1.0, 2.0, 4.0, 8.0])[index.numpy()])


def test_new_items_get_the_max_priority():
    sampler = PrioritizedSampler(10, alpha=1.0, beta=1.0, eps=0.0)
    sampler.extend(torch.arange(3))
    assert sampler.priorities([0, 1, 2]).tolist() == [1.0, 1.0, 1.0]  # max_priority_init
    sampler.update_priority([0, 1], [5.0, 0.5])
    sampler.update_priority([0], [2.0])  # lowering an item does not lower the running max
    sampler.extend(torch.tensor([3, 4]))
    assert sampler.max_priority == 5.0
    assert sampler.priorities([3, 4]).tolist() == [5.0, 5.0]
    custom = PrioritizedSampler(10, alpha=1.0, beta=1.0, max_priority_init=3.0)
    custom.extend(torch.tensor([7]))
    assert custom.priorities([7]).tolist() == [3.0]


def test_update_priority_accepts_tensors_arrays_lists_scalars():
    sampler = PrioritizedSampler(6, alpha=0.5, beta=1.0, eps=0.25)
    sampler.extend(torch.arange(6))
    sampler.update_priority(torch.tensor([0, 1]), torch.tensor([1.0, 2.0], dtype=torch.float16))
    sampler.update_priority(np.array([2]), np.array([3.0]))
    sampler.update_priority([3, 4], 4.0)  # one priority for all
    sampler.update_priority(5, 0.0)  # plain scalars
    expected = (np.array([1.0, 2.0, 3.0, 4.0, 4.0, 0.0]) + 0.25) ** 0.5
    np.testing.assert_allclose(sampler.priorities(torch.arange(6)).numpy(), expected)
    sampler.update_priority(torch.tensor([[3], [4]]), torch.tensor([5.0, 6.0]))  # same size, other shape
    np.testing.assert_allclose(sampler.priorities([3, 4]).numpy(), (np.array([5.0, 6.0]) + 0.25) ** 0.5)
    sampler.update_priority(torch.tensor([1, 1, 2]), torch.tensor([9.0, 7.0, 1.0]))  # last value wins
    np.testing.assert_allclose(sampler.priorities([1, 2]).numpy(), (np.array([7.0, 1.0]) + 0.25) ** 0.5)


@pytest.mark.parametrize("reduction,reduce", [("max", np.max), ("min", np.min), ("mean", np.mean),
                                              ("median", np.median)])
def test_update_priority_reduces_trailing_dims(reduction, reduce):
    sampler = PrioritizedSampler(4, alpha=1.0, beta=1.0, eps=0.0, reduction=reduction)
    sampler.extend(torch.arange(4))
    per_step = np.random.default_rng(0).random((4, 5, 2))  # e.g. a TD error per time step of each slice
    sampler.update_priority(torch.arange(4), torch.as_tensor(per_step))
    np.testing.assert_allclose(sampler.priorities(torch.arange(4)).numpy(), reduce(per_step, axis=(1, 2)))


def test_update_priority_errors_name_the_problem():
    sampler = PrioritizedSampler(8, alpha=0.6, beta=0.4)
    sampler.extend(torch.arange(5))
    with pytest.raises(ValueError, match=r"got nan at position \(2,\)"):
        sampler.update_priority(torch.arange(3), torch.tensor([1.0, 2.0, float("nan")]))
    with pytest.raises(ValueError, match=r"got -0.5 at position \(1, 0\)"):
        sampler.update_priority(torch.arange(2), torch.tensor([[1.0], [-0.5]]))
    with pytest.raises(ValueError, match="got inf at position"):
        sampler.update_priority([0], [float("inf")])
    with pytest.raises(ValueError, match=r"index 5 but only items \[0, 5\) have been written"):
        sampler.update_priority([4, 5], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"index -1 but only items"):
        sampler.update_priority([-1], [1.0])
    with pytest.raises(ValueError, match=r"index of shape \(3,\) and priority of shape \(2,\)"):
        sampler.update_priority([0, 1, 2], [1.0, 2.0])
    # nothing was written by the failed calls
    np.testing.assert_array_equal(sampler.priorities(torch.arange(5)).numpy(), np.ones(5))


def test_constructor_and_sample_errors():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        PrioritizedSampler(4, alpha=-1.0, beta=0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        PrioritizedSampler(4, alpha=1.0, beta=0.5, reduction="sum")
    sampler = PrioritizedSampler(4, alpha=1.0, beta=0.5)
    with pytest.raises(ValueError, match="cannot sample from an empty storage"):
        sampler.sample(torch.zeros(0), 2)
    with pytest.raises(ValueError, match="must call sampler.extend"):
        sampler.sample(torch.zeros(3), 2)
    with pytest.raises(ValueError, match="holds 5 items but PrioritizedSampler\\(max_capacity=4\\)"):
        sampler.sample(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="told item 4 was written"):
        sampler.extend(torch.tensor([3, 4]))


def test_state_round_trip_gives_identical_next_samples():
    priorities = np.random.default_rng(2).uniform(0.0, 4.0, 200)
    sampler, storage = make_sampler(200, priorities, capacity=256, seed=11)
    sampler.sample(storage, 32)
    sampler.anneal_beta(0.5)
    state = sampler.state_dict()
    rng_state = sampler.generator.get_state()
    restored = PrioritizedSampler(256, alpha=0.1, beta=0.9, eps=0.5)  # hyper-parameters come from the state
    restored.load_state_dict(state)
    restored.generator = torch.Generator()
    restored.generator.set_state(rng_state)
    assert (restored.alpha, restored.beta, restored.eps) == (sampler.alpha, sampler.beta, sampler.eps)
    assert restored.max_priority == sampler.max_priority
    for _ in range(3):
        (i1, info1), (i2, info2) = sampler.sample(storage, 64), restored.sample(storage, 64)
        assert torch.equal(i1, i2) and torch.equal(info1["priority_weight"], info2["priority_weight"])
        sampler.update_priority(i1, torch.arange(64.0))
        restored.update_priority(i2, torch.arange(64.0))
    assert torch.equal(sampler.priorities(torch.arange(256)), restored.priorities(torch.arange(256)))
    sampler.extend(torch.tensor([220]))
    restored.extend(torch.tensor([220]))
    assert sampler.priorities([220]).item() == restored.priorities([220]).item() == sampler.max_priority
    with pytest.raises(ValueError, match="covers 256 items, this one max_capacity=100"):
        PrioritizedSampler(100, alpha=1.0, beta=1.0).load_state_dict(state)


def test_empty_clears_priorities_and_max():
    sampler, storage = make_sampler(10, np.arange(10.0), alpha=1.0, eps=0.0)
    sampler.empty()
    assert sampler.max_priority == 1.0
    with pytest.raises(ValueError, match="only items \\[0, 0\\)"):
        sampler.update_priority([0], [1.0])
    sampler.extend(torch.arange(2))
    assert sampler.priorities(torch.arange(10)).tolist() == [1.0, 1.0] + [0.0] * 8


def test_anneal_beta_is_linear_and_clamped():
    sampler = PrioritizedSampler(4, alpha=1.0, beta=0.4)
    assert sampler.anneal_beta(0.5) == pytest.approx(0.7)
    assert sampler.anneal_beta(2.0) == 1.0
    assert sampler.anneal_beta(-1.0, beta_end=1.0) == pytest.approx(0.4)


# ------------------------------------------------------------------------ with the real buffers


def test_prioritized_replay_buffer_round_trip_and_frequencies(tmp_path):
    from tensordict import TensorDict

    from rlbench.buffers import LazyTensorStorage, PrioritizedReplayBuffer

    def make():
        return PrioritizedReplayBuffer(alpha=1.0, beta=0.6, eps=0.0, storage=LazyTensorStorage(64), batch_size=32,
                                       generator=torch.Generator().manual_seed(0))

    rb = make()
    rb.extend(TensorDict({"obs": torch.arange(100.0)}, [100]))  # wraps: items hold obs 36..99
    priorities = torch.arange(1.0, 65.0)
    rb.update_priority(torch.arange(64), priorities)
    batch = rb.sample()
    assert torch.equal(batch["obs"], rb.storage.get(batch["index"])["obs"])
    batch["td_error"] = torch.full((32,), 64.0)  # sends the same items back with the max priority
    rb.update_tensordict_priority(batch)
    priorities[batch["index"]] = 64.0
    rb.dumps(tmp_path / "prb")
    other = make()
    other.loads(tmp_path / "prb")
    for _ in range(3):
        a, b = rb.sample(), other.sample()
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["priority_weight"], b["priority_weight"])
    expected = (priorities[a["index"]] / priorities.min()) ** -0.6
    torch.testing.assert_close(a["priority_weight"], expected)
    counts = torch.zeros(64)
    for _ in range(300):
        counts += torch.bincount(rb.sample()["index"], minlength=64)
    expected_counts = counts.sum() * priorities / priorities.sum()
    chi2 = float(((counts - expected_counts) ** 2 / expected_counts).sum())
    assert chi2 < chi2_quantile(63)


def test_prioritized_sampler_on_a_multidim_storage():
    from tensordict import TensorDict

    from rlbench.buffers import LazyTensorStorage, TensorDictReplayBuffer

    storage = LazyTensorStorage(10 * 3, ndim=2)
    sampler = PrioritizedSampler(30, alpha=1.0, beta=1.0, eps=0.0)
    rb = TensorDictReplayBuffer(storage=storage, sampler=sampler, batch_size=16,
                                generator=torch.Generator().manual_seed(0))
    rb.extend(TensorDict({"x": torch.arange(12.0).view(4, 3)}, [4, 3]))  # 4 rows of 3 envs: flat items 0..11
    sampler.update_priority(torch.arange(12), torch.tensor([0.0] * 11 + [5.0]))
    batch = rb.sample()
    assert (batch["index"] == 11).all() and (batch["x"] == 11.0).all()
    with pytest.raises(ValueError, match="index 12 but only items \\[0, 12\\)"):
        rb.update_priority(torch.tensor([12]), torch.tensor([1.0]))


# ------------------------------------------------------------------ issue 13 item 10: say what is wrong
@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": float("nan"), "beta": 0.5}, r"alpha must be >= 0 and finite.*got nan"),
    ({"alpha": float("inf"), "beta": 0.5}, r"alpha must be >= 0 and finite.*got inf"),
    ({"alpha": 0.5, "beta": 1.5}, r"beta must be in \[0, 1\].*got 1.5"),
    ({"alpha": 0.5, "beta": float("nan")}, r"beta must be in \[0, 1\].*got nan"),
    ({"alpha": 0.5, "beta": 0.5, "eps": float("nan")}, r"eps must be >= 0 and finite.*got nan"),
])
def test_bad_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PrioritizedSampler(4, **kwargs)


def test_anneal_beta_refuses_an_end_above_one():
    sampler = PrioritizedSampler(4, alpha=0.5, beta=0.4)
    with pytest.raises(ValueError, match=r"beta_end must be in \[0, 1\], got 2.0"):
        sampler.anneal_beta(0.5, beta_end=2.0)
    assert sampler.beta == 0.4


@pytest.mark.parametrize("index", [torch.tensor([1.7]), np.array([0.0, 2.0]), [1.5], 2.0, torch.tensor([True])])
def test_non_integer_indices_are_refused(index):
    sampler = PrioritizedSampler(4, alpha=1.0, beta=0.5)
    sampler.extend(torch.arange(4))
    with pytest.raises(TypeError, match="update_priority: index must hold integers.*got"):
        sampler.update_priority(index, 5.0)
    assert sampler.priorities(torch.arange(4)).tolist() == [1.0] * 4  # nothing was truncated and written


def test_all_zero_priorities_with_eps_zero_blames_the_priorities_not_the_writer():
    sampler = PrioritizedSampler(4, alpha=1.0, beta=0.5, eps=0.0)
    sampler.extend(torch.arange(3))
    sampler.update_priority(torch.arange(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"every stored item has priority 0 .*eps=0.*eps > 0") as err:
        sampler.sample(torch.zeros(3), 2)
    assert "writer" not in str(err.value)
