"""Sum and min segment trees over a fixed number of leaves, updated and searched a whole batch at a time.

Prioritized replay (Schaul et al. 2016, "Prioritized Experience Replay", appendix B.2.1) needs three
things from its priorities: the total mass, the item at a given prefix of that mass (to sample in
proportion to priority), and the smallest priority (to normalise the importance weights). A binary
tree whose internal nodes hold the sum (or the min) of their two children answers each in
``O(log n)``. Here the tree is one flat array, root at position 1 and leaf ``i`` at ``capacity + i``,
so node ``k``'s children are ``2k`` and ``2k + 1``. Batches are processed level by level: a loop over
the tree's depth (20 levels for a million leaves) with one vectorized step per level, never a Python
loop over items.

The arrays are NumPy ``float64``: at the batch sizes replay uses (hundreds of items) NumPy's fancy
indexing costs about a third of torch's per-op overhead, and ``float64`` keeps sums of a million
priorities exact enough that a prefix search agrees with a cumulative-sum reference. Internal sums
are always recomputed from the two children (never updated by a delta), so no rounding error builds
up over millions of updates.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_index(index: Any) -> np.ndarray:
    return np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).reshape(-1)


def _as_values(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _last_write_wins(index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep, for each distinct index, the value written last (as a sequential loop would).

    Fancy assignment with repeated indices leaves which write survives unspecified, so resolve the
    duplicates first: a stable sort keeps equal indices in write order, and the last of each run wins.
    """
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    keep = np.empty(len(order), dtype=bool)
    keep[:-1] = sorted_index[1:] != sorted_index[:-1]
    keep[-1:] = True
    return sorted_index[keep], values[order[keep]]


class SumTree:
    """A sum tree and a min tree over ``capacity`` leaves (rounded up to a power of two).

    Leaves start at zero. ``min()`` is taken over the *positive* leaves only: a zero leaf can never be
    sampled, so it must not set the scale of the importance weights.

    Args:
        capacity: number of leaves needed; the tree allocates the next power of two.

    Example:
        >>> tree = SumTree(5)
        >>> tree.update([0, 1, 2, 1], [1.0, 2.0, 3.0, 4.0])  # index 1 twice: the last write wins
        >>> tree.total(), tree.min()
        (8.0, 1.0)
        >>> tree.find_prefix_sum([0.0, 0.99, 1.0, 4.99, 5.0, 7.9]).tolist()
        [0, 0, 1, 1, 2, 2]
    """

    def __init__(self, capacity: int):
        if int(capacity) < 1:
            raise ValueError(f"SumTree needs a capacity of at least 1 leaf, got {capacity}")
        self.capacity = int(capacity)
        self.size = 1 << max(0, (self.capacity - 1).bit_length())  # leaves: a power of two >= capacity
        self.depth = self.size.bit_length() - 1  # levels between the root and the leaves
        self._sum = np.zeros(2 * self.size, dtype=np.float64)
        self._min = np.full(2 * self.size, np.inf, dtype=np.float64)

    def update(self, index: Any, values: Any) -> None:
        """Set leaves ``index`` to ``values`` (a batch; a scalar value is broadcast) and refresh their ancestors.

        Raises:
            IndexError: an index outside ``[0, capacity)``.
            ValueError: a value that is negative, NaN or infinite, or a values/index length mismatch.
        """
        index = _as_index(index)
        values = _as_values(values)
        if values.size == 1 and index.size != 1:
            values = np.full(index.size, values[0])
        if values.size != index.size:
            raise ValueError(f"SumTree.update got {index.size} indices but {values.size} values; expected one value "
                             "per index (or a single value for all)")
        if index.size == 0:
            return
        if index.min() < 0 or index.max() >= self.capacity:
            bad = int(index[(index < 0) | (index >= self.capacity)][0])
            raise IndexError(f"SumTree index {bad} is outside [0, {self.capacity})")
        if not np.isfinite(values).all() or (values < 0).any():
            bad = int(np.flatnonzero(~np.isfinite(values) | (values < 0))[0])
            raise ValueError(f"SumTree values must be finite and >= 0, got {values[bad]} at position {bad}")
        index, values = _last_write_wins(index, values)
        node = index + self.size
        self._sum[node] = values
        self._min[node] = np.where(values > 0, values, np.inf)
        # ``node`` is sorted and unique, so parents come out sorted; repeated parents receive the same
        # value from each write, which makes the duplicate assignments harmless.
        for _ in range(self.depth):
            node = node >> 1
            left = node << 1
            self._sum[node] = self._sum[left] + self._sum[left + 1]
            self._min[node] = np.minimum(self._min[left], self._min[left + 1])

    def __getitem__(self, index: Any) -> np.ndarray:
        """Leaf values at ``index`` (a float64 array)."""
        return self._sum[_as_index(index) + self.size]

    def total(self) -> float:
        """Sum of all leaves."""
        return float(self._sum[1])

    def min(self) -> float:
        """Smallest positive leaf (``inf`` when every leaf is zero)."""
        return float(self._min[1])

    def find_prefix_sum(self, values: Any) -> np.ndarray:
        """For each ``v`` in ``values``, the smallest leaf ``i`` with ``leaf[0] + ... + leaf[i] > v``.

        This is ``np.searchsorted(np.cumsum(leaves), v, side="right")``, found by descending all
        values together, one level per loop iteration. For ``0 <= v < total()`` the result is always a
        leaf with a positive value; the descent never steps into an all-zero subtree, so a ``v`` that
        rounding pushed to ``total()`` or beyond lands on the last positive leaf instead.
        """
        remaining = _as_values(values).copy()
        leaf = self._descend(remaining, careful=False)
        stray = self._sum[leaf + self.size] <= 0
        if stray.any():  # rare: rounding or a value >= total() walked into zero leaves; redo those carefully
            leaf[stray] = self._descend(_as_values(values)[stray].copy(), careful=True)
        return leaf

    def _descend(self, remaining: np.ndarray, careful: bool) -> np.ndarray:
        node = np.ones(remaining.shape, dtype=np.int64)
        tree = self._sum
        for _ in range(self.depth):
            left = node << 1
            left_mass = tree[left]
            go_right = remaining >= left_mass
            if careful:  # never step into an all-zero subtree
                go_right &= tree[left + 1] > 0
            remaining -= left_mass * go_right
            node = left + go_right
        return node - self.size

    def clear(self) -> None:
        """Set every leaf to zero."""
        self._sum.fill(0.0)
        self._min.fill(np.inf)

    def state_dict(self) -> dict[str, Any]:
        """The leaves' values as a float64 tensor (internal nodes are rebuilt on load)."""
        leaves = self._sum[self.size:self.size + self.capacity].copy()
        return {"capacity": self.capacity, "leaves": torch.from_numpy(leaves)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        leaves = _as_values(state["leaves"])
        if int(state["capacity"]) != self.capacity or leaves.size != self.capacity:
            raise ValueError(f"SumTree state holds {leaves.size} leaves (capacity {state['capacity']}), "
                             f"this tree has capacity {self.capacity}")
        self.clear()
        # Rebuilding every level bottom-up with the same additions as ``update`` gives bit-identical nodes.
        self._sum[self.size:self.size + self.capacity] = leaves
        self._min[self.size:self.size + self.capacity] = np.where(leaves > 0, leaves, np.inf)
        lo = self.size
        while lo > 1:  # level [lo/2, lo) from its children [lo, 2 lo), pairwise
            self._sum[lo >> 1:lo] = self._sum[lo:2 * lo:2] + self._sum[lo + 1:2 * lo:2]
            self._min[lo >> 1:lo] = np.minimum(self._min[lo:2 * lo:2], self._min[lo + 1:2 * lo:2])
            lo >>= 1
