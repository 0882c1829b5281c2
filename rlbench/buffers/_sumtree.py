"""Sum and min trees over a fixed number of leaves, updated and searched a whole batch at a time.

Prioritized replay (Schaul et al. 2016, "Prioritized Experience Replay", appendix B.2.1) needs three
things from its priorities: the total mass, the item at a given prefix of that mass (to sample in
proportion to priority), and the smallest priority (to normalise the importance weights). A tree whose
internal nodes hold the sum (or the min) of their children answers each in ``O(log n)``.

The cost of a batch of a few hundred queries is not arithmetic but the number of array operations
(each costs a microsecond or more of dispatch however small its operand) and the cache lines they
touch. So the tree is wide and shallow rather than binary:

- the leaves are cut into blocks of ``fanout`` (32); each block keeps one search row
  ``[0, l0, l0 + l1, ..., l0 + ... + l30, inf]`` (its exclusive prefix sums; the ``inf`` keeps a
  search inside the block), its total and its smallest positive leaf. The block totals are the
  leaves of the next level, blocked the same way, until a level has at most ``top`` (32768) nodes;
- that top level is searched with one ``np.searchsorted`` over its cumulative sum (recomputed, with
  the global min, on the first read after an update: ``top`` additions in one ``torch.cumsum``), and
  each level below with one batched ``torch.searchsorted`` over the gathered ``[batch, fanout + 1]``
  rows. A million leaves take one level below the top instead of twenty binary ones; an update
  re-sums only the touched blocks of each level (one ``cumsum`` over ``[batch, fanout]``).

Everything is ``float64`` NumPy arrays, with torch called on views of them for the ops where NumPy
is slow on short rows (``cumsum``, row-wise ``min``, batched ``searchsorted``); NumPy's fancy
indexing costs about a third of torch's at these sizes. ``float64`` keeps sums of a million
priorities exact enough that a prefix search agrees with a cumulative-sum reference. Sums are always
recomputed from the leaves below (never updated by a delta), so no rounding error builds up over
millions of updates, and the same leaves always give bit-identical nodes (a reload rebuilds them).
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
    duplicates first. Sampled indices come back sorted, so a sorted batch skips the sort: a run of
    equal indices keeps its last value. Otherwise a stable sort puts equal indices in write order.
    """
    if index.size < 2:
        return index, values
    step = index[1:] - index[:-1]
    low = step.min()
    if low > 0:  # strictly increasing: no duplicates (the common case: a sampled batch)
        return index, values
    if low < 0:
        order = np.argsort(index, kind="stable")
        index, values = index[order], values[order]
        step = index[1:] - index[:-1]
    keep = np.empty(index.size, dtype=bool)
    np.not_equal(step, 0, out=keep[:-1])
    keep[-1] = True
    return index[keep], values[keep]


class SumTree:
    """A sum tree and a min tree over ``capacity`` leaves, ``fanout`` children per node.

    Leaves start at zero. ``min()`` is taken over the *positive* leaves only: a zero leaf can never be
    sampled, so it must not set the scale of the importance weights.

    Args:
        capacity: number of leaves needed (the tree pads them to a multiple of ``fanout``).
        fanout: children per node, a power of two >= 2 (wider: fewer levels, wider rows).
        top: at most this many nodes in the top level, which is searched flat (one ``searchsorted`` over
            its cumulative sum, recomputed after each update).

    Example:
        >>> tree = SumTree(5)
        >>> tree.update([0, 1, 2, 1], [1.0, 2.0, 3.0, 4.0])  # index 1 twice: the last write wins
        >>> tree.total(), tree.min()
        (8.0, 1.0)
        >>> tree.find_prefix_sum([0.0, 0.99, 1.0, 4.99, 5.0, 7.9]).tolist()
        [0, 0, 1, 1, 2, 2]
    """

    def __init__(self, capacity: int, fanout: int = 32, top: int = 32768):
        if int(capacity) < 1:
            raise ValueError(f"SumTree needs a capacity of at least 1 leaf, got {capacity}")
        fanout, top = int(fanout), int(top)
        if fanout < 2 or fanout & (fanout - 1):
            raise ValueError(f"SumTree fanout must be a power of two >= 2, got {fanout}")
        if top < 1:
            raise ValueError(f"SumTree top must be >= 1, got {top}")
        self.capacity = int(capacity)
        self.fanout = fanout
        self._shift = fanout.bit_length() - 1
        blocks = [-(-self.capacity // fanout)]  # blocks per level, leaves first
        while blocks[-1] > top:
            blocks.append(-(-blocks[-1] // fanout))
        self.depth = len(blocks)  # blocked levels below the flat top
        self.size = blocks[0] * fanout  # leaf slots (the padding stays zero)
        self._leaves = np.zeros(self.size, dtype=np.float64)
        # Level l holds, per block, one search row [0, p1, ..., p(fanout-1), inf] (p_j: the sum of the
        # block's first j children; the inf keeps every search inside the block), the block's total and
        # the smallest positive leaf under it. Totals and mins are contiguous and padded so that they
        # reshape into the next level's [blocks, fanout] children.
        rows = [b * fanout for b in blocks[1:]] + [blocks[-1]]
        self._prefix = [np.zeros((r, fanout + 1), dtype=np.float64) for r in rows]
        for prefix in self._prefix:
            prefix[:, fanout] = np.inf
        self._totals = [np.zeros(r, dtype=np.float64) for r in rows]
        self._mins = [np.full(r, np.inf, dtype=np.float64) for r in rows]
        self._children = [self._leaves.reshape(-1, fanout)] + [t.reshape(-1, fanout) for t in self._totals[:-1]]
        self._child_mins = [None] + [m.reshape(-1, fanout) for m in self._mins[:-1]]
        self._top = self._totals[-1]  # the top level's node masses
        self._cum = np.zeros(len(self._top) + 1, dtype=np.float64)  # [0, cumsum(top)], refreshed lazily
        self._stale = False
        self._min = np.inf
        self._scratch: dict[int, tuple] = {}  # per batch size: the descent's buffers (see _buffers)

    # -- writes -----------------------------------------------------------------------------------
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
        if not (values.min() >= 0 and values.max() < np.inf):  # NaN fails the first comparison
            bad = int(np.flatnonzero(~np.isfinite(values) | (values < 0))[0])
            raise ValueError(f"SumTree values must be finite and >= 0, got {values[bad]} at position {bad}")
        self.write(index, values)

    def write(self, index: np.ndarray, values: np.ndarray) -> None:
        """:meth:`update` without its checks.

        ``index`` must be int64 in ``[0, capacity)`` and ``values`` float64, finite and >= 0, one per index
        (repeats allowed: the last write wins).
        """
        index, values = _last_write_wins(index, values)
        self._leaves[index] = values
        block = index
        fanout = self.fanout
        for level in range(self.depth):
            # Re-sum every touched block from its children. A block touched twice is recomputed twice
            # from the same children, so repeated blocks are harmless and need no dedup.
            block = block >> self._shift
            # torch's cumsum and amin over short rows cost a fraction of NumPy's (which loops per row)
            children = self._children[level][block]
            sums = torch.cumsum(torch.from_numpy(children), 1).numpy()
            self._prefix[level][block, 1:fanout] = sums[:, :-1]
            self._totals[level][block] = sums[:, -1]
            # the smallest positive leaf: zero leaves are skipped (the mins above hold inf for them already)
            if level:
                children = self._child_mins[level][block]
            elif not children.min() > 0:  # one cheap check spares the where while no touched leaf is zero
                children = np.where(children > 0, children, np.inf)
            self._mins[level][block] = torch.from_numpy(children).amin(1).numpy()
        self._stale = True

    def clear(self) -> None:
        """Set every leaf to zero."""
        self._leaves.fill(0.0)
        for prefix, totals, mins in zip(self._prefix, self._totals, self._mins):
            prefix[:, :self.fanout] = 0.0
            totals.fill(0.0)
            mins.fill(np.inf)
        self._stale = True

    def _refresh(self) -> None:
        torch.cumsum(torch.from_numpy(self._top), 0, out=torch.from_numpy(self._cum[1:]))
        self._min = float(self._mins[-1].min())
        self._stale = False

    # -- reads ------------------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> np.ndarray:
        """Leaf values at ``index`` (a float64 array)."""
        return self._leaves[_as_index(index)]

    def total(self) -> float:
        """Sum of all leaves."""
        if self._stale:
            self._refresh()
        return float(self._cum[-1])

    def min(self) -> float:
        """Smallest positive leaf (``inf`` when every leaf is zero)."""
        if self._stale:
            self._refresh()
        return self._min

    def find_prefix_sum(self, values: Any, with_values: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """For each ``v`` in ``values``, the smallest leaf ``i`` with ``leaf[0] + ... + leaf[i] > v``.

        This is ``np.searchsorted(np.cumsum(leaves), v, side="right")``, found for all values at once:
        one ``searchsorted`` over the top level, then one row search per level below. For
        ``0 <= v < total()`` the result is always a leaf with a positive value; a ``v`` that rounding
        pushed to a node's total or beyond (or any ``v >= total()``) lands on the last positive leaf
        of that node instead. With ``with_values=True`` returns ``(leaves found, their values)``.
        """
        if self._stale:
            self._refresh()
        values = _as_values(values)
        leaf = self._descend(values, careful=False)
        found = self._leaves[leaf]
        if found.size and found.min() <= 0:  # rare: rounding or a value >= total() met zero leaves; redo carefully
            stray = found <= 0
            leaf[stray] = self._descend(values[stray], careful=True)
            found = self._leaves[leaf]
        return (leaf, found) if with_values else leaf

    def _buffers(self, batch: int) -> tuple:
        """The descent's work arrays for ``batch`` queries, allocated once per batch size.

        ``(offsets, remaining, query, count, found)``: where each query's row starts in the gathered
        rows (minus one), the mass left to walk, the same as a ``[batch, 1]`` tensor (shared memory), and
        the row search's results, as an array and as the ``[batch, 1]`` tensor it writes into.
        """
        scratch = self._scratch.get(batch)
        if scratch is None:
            remaining, count = np.zeros(batch), np.zeros(batch, dtype=np.int64)
            offsets = np.arange(batch) * (self.fanout + 1) - 1
            scratch = (offsets, remaining, torch.from_numpy(remaining).unsqueeze(1), count,
                       torch.from_numpy(count).unsqueeze(1))
            self._scratch[batch] = scratch
        return scratch

    def _descend(self, values: np.ndarray, careful: bool) -> np.ndarray:
        cum, fanout, shift = self._cum, self.fanout, self._shift
        last = len(cum) - 2  # the top level's last node
        if careful:  # the last node with mass (all nodes are zero only in an empty tree)
            last = int(np.flatnonzero(self._top > 0)[-1]) if cum[-1] > 0 else 0
        node = np.searchsorted(cum[1:], values, side="right")
        np.minimum(node, last, out=node)
        offsets, remaining, query, count, found = self._buffers(len(values))
        np.subtract(values, cum[node], out=remaining)
        for level in range(self.depth - 1, -1, -1):
            prefix = np.take(self._prefix[level], node, axis=0)  # [batch, fanout + 1] search rows
            # How many row entries the value reaches (>= 1 for the leading 0, <= fanout for the final inf):
            # the child it falls in, plus one. A value that rounding pushed past the block total stays in
            # the last child; find_prefix_sum catches it if that leads to a leaf without mass.
            torch.searchsorted(torch.from_numpy(prefix), query, right=True, out=found)
            if careful:  # never step past the block's last child with mass
                mass = self._children[level][node]
                np.minimum(count, fanout - np.argmax(mass[:, ::-1] > 0, axis=1), out=count)
            remaining -= prefix.ravel()[offsets + count]  # the mass of the children before this one
            node <<= shift
            node += count
            node -= 1
        return node

    # -- persistence ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The leaves' values as a float64 tensor (internal nodes are rebuilt on load)."""
        leaves = self._leaves[:self.capacity].copy()
        return {"capacity": self.capacity, "leaves": torch.from_numpy(leaves)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        leaves = _as_values(state["leaves"])
        if int(state["capacity"]) != self.capacity or leaves.size != self.capacity:
            raise ValueError(f"SumTree state holds {leaves.size} leaves (capacity {state['capacity']}), "
                             f"this tree has capacity {self.capacity}")
        self.clear()
        if not (leaves.size == 0 or (leaves.min() >= 0 and leaves.max() < np.inf)):
            bad = int(np.flatnonzero(~np.isfinite(leaves) | (leaves < 0))[0])
            raise ValueError(f"SumTree state: leaves must be finite and >= 0, got {leaves[bad]} at leaf {bad}")
        self._leaves[:self.capacity] = leaves
        # Every block row from its children, level by level: the same cumsum per row as ``write``, so
        # the nodes come out bit-identical to the tree that was saved.
        fanout = self.fanout
        for level in range(self.depth):
            children = self._children[level]
            blocks = len(children)
            sums = torch.cumsum(torch.from_numpy(children), 1).numpy()
            self._prefix[level][:blocks, 1:fanout] = sums[:, :-1]
            self._totals[level][:blocks] = sums[:, -1]
            children = np.where(children > 0, children, np.inf) if level == 0 else self._child_mins[level]
            self._mins[level][:blocks] = children.min(axis=1)
        self._stale = True
