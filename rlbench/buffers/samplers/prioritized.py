"""Prioritized experience replay (Schaul et al. 2016): sample items in proportion to their priority."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._sumtree import SumTree
from .base import Sampler

_REDUCTIONS = {
    "max": lambda p, axes: p.max(axis=axes),
    "min": lambda p, axes: p.min(axis=axes),
    "mean": lambda p, axes: p.mean(axis=axes),
    "median": lambda p, axes: np.median(p, axis=axes),
}


def _to_index(index: Any) -> np.ndarray:
    """Integer indices as int64, refusing floats and bools (which ``astype`` would silently truncate)."""
    if isinstance(index, torch.Tensor):
        ok = not (index.is_floating_point() or index.is_complex() or index.dtype == torch.bool)
        kind = index.dtype
    else:
        arr = np.asarray(index)
        ok = arr.size == 0 or np.issubdtype(arr.dtype, np.integer)
        kind = arr.dtype
    if not ok:
        raise TypeError(f"update_priority: index must hold integers (the flat item indices that sample() returns, "
                        f"e.g. info['index']), got {kind}")
    return _to_numpy(index, np.int64)


def _to_numpy(x: Any, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bfloat16:  # NumPy has no bfloat16
            x = x.float()
        if x.requires_grad or x.device.type != "cpu":
            x = x.detach().cpu()
        x = x.numpy()  # shares memory on the CPU: no copy unless the dtype changes
    return np.asarray(x, dtype=dtype)


def _bad_priority(priority: np.ndarray) -> ValueError:
    bad = ~np.isfinite(priority) | (priority < 0)
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    return ValueError(f"priorities must be finite and >= 0; got {priority[where]} at position "
                      f"{where if priority.ndim else '()'} of the priority {tuple(priority.shape)}")


class PrioritizedSampler(Sampler):
    """Samples item ``i`` with probability ``P(i) = p_i / sum_j p_j``, where ``p_i = (priority_i + eps) ** alpha``.

    New items get the largest ``p`` seen so far (so each is likely to be replayed at least once before
    its priority is known). A batch is *stratified*: the total mass is cut into ``batch_size`` equal
    segments and one item is drawn uniformly inside each, which lowers the variance of the batch
    against independent draws (Schaul et al. 2016, appendix B.2.1). The sampled indices therefore come
    out in increasing order. ``info["priority_weight"]`` holds the importance weights
    ``w_i = (N * P(i)) ** -beta / max_j (N * P(j)) ** -beta`` (the max is over every stored item, found
    with the tree's min), to multiply into the per-item loss.

    Args:
        max_capacity: how many items the priorities cover (at least the storage's flat item count,
            ``capacity * n_envs`` for a ``[capacity, n_envs]`` storage).
        alpha: how strongly priorities shape sampling (0: uniform, 1: proportional); finite, >= 0.
        beta: importance-weight exponent in ``[0, 1]`` (0: no correction, 1: full correction); see
            :meth:`anneal_beta`.
        eps: added to every priority so that none is exactly zero (with ``eps=0``, items whose
            priority is set to 0 are never sampled, and a buffer of only such items cannot sample).
        reduction: how :meth:`update_priority` reduces a priority with more dims than its index
            (e.g. one TD error per time step of a slice): ``"max"``, ``"min"``, ``"mean"`` or ``"median"``.
        max_priority_init: the ``p`` given to new items before any priority was set (on the
            ``(priority + eps) ** alpha`` scale).

    Example:
        >>> sampler = PrioritizedSampler(max_capacity=4, alpha=1.0, beta=1.0, eps=0.0)
        >>> sampler.extend(torch.arange(4))
        >>> sampler.update_priority(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 1.0, 2.0, 4.0]))
        >>> sampler.generator = torch.Generator().manual_seed(0)
        >>> index, info = sampler.sample(torch.zeros(4), batch_size=4)  # anything with len() as storage
        >>> index.tolist()
        [1, 2, 3, 3]
        >>> info["priority_weight"].tolist()  # (p_i / p_min) ** -beta
        [1.0, 0.5, 0.25, 0.25]
    """

    def __init__(self, max_capacity: int, alpha: float, beta: float, eps: float = 1e-8, reduction: str = "max",
                 max_priority_init: float = 1.0):
        # `not (x >= 0)` is also true for NaN, which every plain comparison lets through
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"PrioritizedSampler alpha must be >= 0 and finite (0: uniform, 1: proportional), "
                             f"got {alpha}")
        if not (0 <= beta <= 1):
            raise ValueError(f"PrioritizedSampler beta must be in [0, 1] (0: no correction, 1: full correction), "
                             f"got {beta}")
        if not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"PrioritizedSampler eps must be >= 0 and finite, got {eps}")
        if not (np.isfinite(max_priority_init) and max_priority_init > 0):
            raise ValueError(f"PrioritizedSampler max_priority_init must be finite and > 0, got {max_priority_init}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"PrioritizedSampler reduction must be one of {sorted(_REDUCTIONS)}, got {reduction!r}")
        self.max_capacity = int(max_capacity)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._beta_start = self.beta
        self.eps = float(eps)
        self.reduction = reduction
        self.max_priority_init = float(max_priority_init)
        self._tree = SumTree(self.max_capacity)
        self._max_priority = self.max_priority_init
        self._filled = 0  # one past the largest index ever written: update_priority accepts [0, _filled)
        self._arange: dict[int, np.ndarray] = {}

    @property
    def max_priority(self) -> float:
        """The ``p`` that the next new item gets: the largest seen so far (never below ``max_priority_init``)."""
        return self._max_priority

    def extend(self, index: torch.Tensor) -> None:
        index = _to_numpy(index, np.int64).reshape(-1)
        if index.size == 0:
            return
        if index.min() < 0 or index.max() >= self.max_capacity:
            bad = int(index[(index < 0) | (index >= self.max_capacity)][0])
            raise ValueError(f"PrioritizedSampler(max_capacity={self.max_capacity}) was told item {bad} was written; "
                             "max_capacity must cover every item of the storage (capacity * n_envs for a "
                             "multi-dimensional storage)")
        self._tree.update(index, self._max_priority)
        self._filled = max(self._filled, int(index.max()) + 1)

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        n = len(storage)
        if n == 0:
            raise ValueError("cannot sample from an empty storage: add or extend the buffer first")
        if n > self.max_capacity:
            raise ValueError(f"the storage holds {n} items but PrioritizedSampler(max_capacity={self.max_capacity}) "
                             "covers fewer; build the sampler with max_capacity >= the storage's item count")
        total = self._tree.total()
        if total <= 0 and self._filled:
            raise ValueError(f"PrioritizedSampler: every stored item has priority 0 (eps={self.eps} and only zero "
                             "priorities were set), so no item can be drawn; build the sampler with eps > 0 (e.g. "
                             "1e-6) or set a positive priority with update_priority")
        if total <= 0:
            raise ValueError("PrioritizedSampler has no priorities for the stored items: the writer must call "
                             "sampler.extend(index) for every write")
        batch_size = int(batch_size)
        # Stratified: draw k lies in segment [k, k + 1) * total / batch_size.
        mass = torch.rand(batch_size, generator=self.generator, dtype=torch.float64).numpy()
        mass += self._segments(batch_size)
        mass *= total / batch_size  # a draw that rounds up to the total lands on the last item with mass
        index, p = self._tree.find_prefix_sum(mass, with_values=True)
        # (N P(i))^-beta / max_j (N P(j))^-beta = (p_i / p_min)^-beta: N and the total cancel.
        p /= self._tree.min()
        np.power(p, -self.beta, out=p)
        return torch.from_numpy(index), {"priority_weight": torch.from_numpy(p).to(torch.float32)}

    def _segments(self, batch_size: int) -> np.ndarray:
        """``0, 1, ..., batch_size - 1`` as float64, kept per batch size (sampling allocates no such array)."""
        segments = self._arange.get(batch_size)
        if segments is None:
            segments = self._arange[batch_size] = np.arange(batch_size, dtype=np.float64)
        return segments

    def update_priority(self, index: Any, priority: Any) -> None:
        """Set the priorities of items ``index`` (stored as ``(priority + eps) ** alpha``).

        ``index`` and ``priority`` may be tensors, arrays, lists or scalars. ``priority`` is either one
        value for all, or shaped like ``index``, or shaped like ``index`` with trailing dims (reduced
        with ``reduction``). For a repeated index the last value wins.

        Raises:
            ValueError: a NaN, infinite or negative priority (its position is named); an index that
                was never written; shapes that do not line up.
            TypeError: an index that is not integers (a float or bool tensor, e.g.).
        """
        index, p = self.prepare_priority(index, priority)
        if index.size:
            self.write_mass(index, p)

    def prepare_priority(self, index: Any, priority: Any) -> tuple[np.ndarray, np.ndarray]:
        """Check and transform what :meth:`update_priority` gets, without writing it.

        Returns the flat int64 indices and their ``(priority + eps) ** alpha`` (float64, one per index),
        and raises what :meth:`update_priority` raises. The new values count towards :attr:`max_priority`.
        Samplers built on this one (:class:`PrioritizedSliceSampler`) use it to decide what to write.
        """
        index = _to_index(index)
        priority = _to_numpy(priority, np.float64)
        if priority.size and not priority.min() >= 0:  # negative or NaN (infinities are caught below)
            raise _bad_priority(priority)
        raw = priority
        if priority.ndim > index.ndim and priority.shape[:index.ndim] == index.shape:
            priority = _REDUCTIONS[self.reduction](priority, tuple(range(index.ndim, priority.ndim)))
        if priority.ndim and priority.shape != index.shape and priority.size == index.size:
            priority = priority.reshape(index.shape)  # e.g. [B, 1] TD errors for [B] indices
        if priority.ndim and priority.shape != index.shape:
            raise ValueError(f"update_priority got index of shape {tuple(index.shape)} and priority of shape "
                             f"{tuple(priority.shape)}; expected the same shape, a scalar priority, or extra "
                             "trailing priority dims to reduce")
        index = index.reshape(-1)
        if index.size == 0:
            return index, np.zeros(0)
        if index.view(np.uint64).max() >= self._filled:  # as unsigned, a negative index is huge: one check
            out = (index < 0) | (index >= self._filled)
            raise ValueError(f"update_priority got index {int(index[out][0])} but only items [0, {self._filled}) "
                             "have been written")
        p = np.add(priority.reshape(-1) if priority.ndim else np.full(index.shape, priority), self.eps)
        if self.alpha != 1.0:
            np.power(p, self.alpha, out=p)
        top = float(p.max())
        if not top < np.inf:  # an infinite priority (or one that overflowed ** alpha)
            raise _bad_priority(raw) if not np.isfinite(raw).all() else \
                ValueError(f"(priority + eps) ** alpha overflows float64 (alpha={self.alpha}); got {top}")
        self._max_priority = max(self._max_priority, top)
        return index, p

    def write_mass(self, index: np.ndarray, mass: np.ndarray | float) -> None:
        """Set the sampling mass of items ``index`` as it is (already ``(priority + eps) ** alpha``), unchecked.

        ``index``: int64 flat indices in ``[0, max_capacity)``; ``mass``: finite, >= 0, one per index or
        one for all. For samplers built on this one; users call :meth:`update_priority`.
        """
        mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), index.shape)
        self._tree.write(index, mass)

    def anneal_beta(self, progress: float, beta_end: float = 1.0) -> float:
        """Set ``beta`` linearly from its initial value (``progress=0``) to ``beta_end`` (``progress>=1``).

        Schaul et al. anneal beta to 1 by the end of training, when unbiased updates matter most.
        Returns the new beta.
        """
        if not (0 <= beta_end <= 1):
            raise ValueError(f"anneal_beta: beta_end must be in [0, 1], got {beta_end}")
        progress = min(max(float(progress), 0.0), 1.0)
        self.beta = self._beta_start + progress * (beta_end - self._beta_start)
        return self.beta

    def priorities(self, index: Any) -> torch.Tensor:
        """The stored ``(priority + eps) ** alpha`` of items ``index`` (float64)."""
        return torch.from_numpy(self._tree[_to_numpy(index, np.int64)])

    def empty(self) -> None:
        self._tree.clear()
        self._max_priority = self.max_priority_init
        self._filled = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "priorities": torch.from_numpy(self._tree[np.arange(self.max_capacity)]),
            "max_priority": self._max_priority,
            "filled": self._filled,
            "alpha": self.alpha,
            "beta": self.beta,
            "beta_start": self._beta_start,
            "eps": self.eps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        priorities = state["priorities"]
        if len(priorities) != self.max_capacity:
            raise ValueError(f"the saved PrioritizedSampler covers {len(priorities)} items, this one "
                             f"max_capacity={self.max_capacity}; build it with the saved max_capacity")
        self._tree.load_state_dict({"capacity": self.max_capacity, "leaves": priorities})
        self._max_priority = float(state["max_priority"])
        self._filled = int(state["filled"])
        self.alpha = float(state["alpha"])
        self.beta = float(state["beta"])
        self._beta_start = float(state.get("beta_start", self.beta))
        self.eps = float(state["eps"])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(max_capacity={self.max_capacity}, alpha={self.alpha}, beta={self.beta}, "
                f"eps={self.eps}, filled={self._filled})")
