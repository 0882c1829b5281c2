"""SumTree (rlbench/buffers/_sumtree.py) against plain NumPy references (cumulative sums, in-order writes)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rlbench.buffers._sumtree import SumTree


def sequential_leaves(capacity, batches):
    """Reference for update(): apply each write one at a time, in order."""
    leaves = np.zeros(capacity)
    for index, values in batches:
        values = np.broadcast_to(values, np.shape(index))
        for i, v in zip(index, values):
            leaves[i] = v
    return leaves


@pytest.mark.parametrize("capacity", [1, 2, 7, 1000, 4096])
def test_sumtree_prefix_search_matches_cumsum_searchsorted(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    assert tree.size >= capacity and tree.size & (tree.size - 1) == 0
    batches = []
    for _ in range(5):
        # integer-valued priorities (zeros included) make every float64 sum exact, so results must be identical
        index = rng.integers(0, capacity, size=max(1, capacity // 3))
        values = rng.integers(0, 5, size=index.size).astype(np.float64)
        tree.update(index, values)
        batches.append((index, values))
    leaves = sequential_leaves(capacity, batches)
    if leaves.sum() == 0:
        leaves[0] = 1.0
        tree.update([0], [1.0])
    cumsum = np.cumsum(leaves)
    assert tree.total() == cumsum[-1]
    assert tree.min() == leaves[leaves > 0].min()
    np.testing.assert_array_equal(tree[np.arange(capacity)], leaves)
    # random queries plus every exact boundary (the cumsums themselves, below the total)
    queries = np.concatenate([rng.uniform(0, cumsum[-1], 500), cumsum[cumsum < cumsum[-1]], [0.0]])
    found = tree.find_prefix_sum(queries)
    np.testing.assert_array_equal(found, np.searchsorted(cumsum, queries, side="right"))
    assert (leaves[found] > 0).all()


def test_sumtree_float_priorities_match_reference():
    rng = np.random.default_rng(0)
    tree = SumTree(10_000)
    leaves = rng.random(10_000) ** 3
    tree.update(np.arange(10_000), leaves)
    cumsum = np.cumsum(leaves)
    assert tree.total() == pytest.approx(cumsum[-1], rel=1e-12)
    queries = rng.uniform(0, cumsum[-1], 2000)
    np.testing.assert_array_equal(tree.find_prefix_sum(queries), np.searchsorted(cumsum, queries, side="right"))


def test_sumtree_duplicate_indices_last_write_wins():
    tree = SumTree(8)
    index = np.array([3, 1, 3, 5, 1, 3])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    tree.update(index, values)
    np.testing.assert_array_equal(tree[np.arange(8)], sequential_leaves(8, [(index, values)]))
    assert tree.total() == 6.0 + 5.0 + 4.0
    assert tree.min() == 4.0


def test_sumtree_min_ignores_zero_leaves_and_tracks_updates():
    tree = SumTree(6)
    assert tree.min() == math.inf and tree.total() == 0.0
    tree.update([0, 1, 2], [3.0, 0.0, 2.0])
    assert tree.min() == 2.0
    tree.update([2], [7.0])
    assert tree.min() == 3.0
    tree.update([0], 0.5)  # scalar value
    assert tree.min() == 0.5 and tree.total() == 7.5


def test_sumtree_rounding_past_total_lands_on_last_positive_leaf():
    tree = SumTree(16)
    tree.update([2, 5], [1.0, 2.0])
    assert tree.find_prefix_sum([3.0, 10.0]).tolist() == [5, 5]


def test_sumtree_errors():
    tree = SumTree(4)
    with pytest.raises(IndexError, match=r"index 4 is outside \[0, 4\)"):
        tree.update([0, 4], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite and >= 0, got -1.0 at position 1"):
        tree.update([0, 1], [1.0, -1.0])
    with pytest.raises(ValueError, match="got nan at position 0"):
        tree.update([0], [float("nan")])
    with pytest.raises(ValueError, match="2 indices but 3 values"):
        tree.update([0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 1 leaf"):
        SumTree(0)


def test_sumtree_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(1)
    tree = SumTree(300)
    for _ in range(20):
        index = rng.integers(0, 300, 50)
        tree.update(index, rng.random(50))
    other = SumTree(300)
    other.load_state_dict(tree.state_dict())
    np.testing.assert_array_equal(other._sum, tree._sum)
    np.testing.assert_array_equal(other._min, tree._min)
    with pytest.raises(ValueError, match="capacity 300.*capacity 10"):
        SumTree(10).load_state_dict(tree.state_dict())
