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


# (capacity, fanout, top): the default layout, and small fanouts/tops that stack several blocked levels
LAYOUTS = [(1, 32, 32768), (2, 32, 32768), (7, 32, 32768), (1000, 32, 32768), (4096, 32, 32768),
           (1000, 4, 8), (4097, 8, 4), (3000, 2, 1), (70_000, 32, 16)]


@pytest.mark.parametrize("capacity,fanout,top", LAYOUTS)
def test_sumtree_prefix_search_matches_cumsum_searchsorted(capacity, fanout, top):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity, fanout=fanout, top=top)
    assert tree.size >= capacity and tree.size % fanout == 0
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


@pytest.mark.parametrize("fanout,top", [(32, 32768), (4, 16), (16, 64)])
def test_sumtree_float_priorities_match_reference(fanout, top):
    rng = np.random.default_rng(0)
    tree = SumTree(10_000, fanout=fanout, top=top)
    leaves = rng.random(10_000) ** 3
    tree.update(np.arange(10_000), leaves)
    cumsum = np.cumsum(leaves)
    assert tree.total() == pytest.approx(cumsum[-1], rel=1e-12)
    queries = rng.uniform(0, cumsum[-1], 2000)
    np.testing.assert_array_equal(tree.find_prefix_sum(queries), np.searchsorted(cumsum, queries, side="right"))


@pytest.mark.parametrize("fanout,top", [(32, 32768), (4, 8), (8, 2)])
def test_sumtree_random_batched_updates_stay_exact(fanout, top):
    """Many batched writes (repeats, zeros, sorted and unsorted batches): sums, min and searches stay exact."""
    capacity = 5000
    rng = np.random.default_rng(fanout)
    tree = SumTree(capacity, fanout=fanout, top=top)
    batches = []
    for step in range(60):
        index = rng.integers(0, capacity, size=int(rng.integers(1, 300)))
        if step % 2:
            index = np.sort(index)  # a sampled batch comes sorted, and takes the no-argsort path
        values = rng.integers(0, 50, size=index.size) * 0.25  # exact in float64: sums must be identical
        tree.update(index, values)
        batches.append((index, values))
    leaves = sequential_leaves(capacity, batches)
    np.testing.assert_array_equal(tree[np.arange(capacity)], leaves)
    cumsum = np.cumsum(leaves)
    assert tree.total() == cumsum[-1]
    assert tree.min() == leaves[leaves > 0].min()
    queries = np.concatenate([rng.uniform(0, cumsum[-1], 1000), cumsum[cumsum < cumsum[-1]]])
    leaf, value = tree.find_prefix_sum(queries, with_values=True)
    np.testing.assert_array_equal(leaf, np.searchsorted(cumsum, queries, side="right"))
    np.testing.assert_array_equal(value, leaves[leaf])
    # the nodes that the writes left are the ones a rebuild from the leaves gives, bit for bit
    rebuilt = SumTree(capacity, fanout=fanout, top=top)
    rebuilt.load_state_dict(tree.state_dict())
    for mine, theirs in zip(tree._prefix + tree._totals + tree._mins,
                            rebuilt._prefix + rebuilt._totals + rebuilt._mins):
        np.testing.assert_array_equal(mine, theirs)


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


@pytest.mark.parametrize("fanout,top", [(32, 32768), (2, 1), (4, 2)])
def test_sumtree_rounding_past_total_lands_on_last_positive_leaf(fanout, top):
    tree = SumTree(16, fanout=fanout, top=top)
    tree.update([2, 5], [1.0, 2.0])
    assert tree.find_prefix_sum([3.0, 10.0, 2.999999]).tolist() == [5, 5, 5]


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
    with pytest.raises(ValueError, match="fanout must be a power of two"):
        SumTree(10, fanout=12)
    with pytest.raises(ValueError, match="top must be >= 1"):
        SumTree(10, top=0)


def test_sumtree_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(1)
    tree = SumTree(300)
    for _ in range(20):
        index = rng.integers(0, 300, 50)
        tree.update(index, rng.random(50))
    other = SumTree(300)
    other.load_state_dict(tree.state_dict())
    for mine, theirs in zip([tree._leaves] + tree._prefix + tree._totals + tree._mins,
                            [other._leaves] + other._prefix + other._totals + other._mins):
        np.testing.assert_array_equal(mine, theirs)
    queries = np.linspace(0, tree.total(), 1000, endpoint=False)
    np.testing.assert_array_equal(other.find_prefix_sum(queries), tree.find_prefix_sum(queries))
    assert (other.total(), other.min()) == (tree.total(), tree.min())
    with pytest.raises(ValueError, match="capacity 300.*capacity 10"):
        SumTree(10).load_state_dict(tree.state_dict())
