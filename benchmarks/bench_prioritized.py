"""Prioritized replay and slice sampling cost, against simple references measured in the same run.

Prioritized (1,000,000 stored items, batch 256): one call is ``sample(256)`` followed by ``update_priority``
of the 256 sampled items, in microseconds per call. ``PrioritizedSampler`` walks a NumPy sum/min tree
one level at a time for the whole batch. The references:

- a per-item sum tree: the same tree held in Python lists, descended and updated one item at a time
  (how prioritized replay is often written by hand);
- ``torch.multinomial`` over the full priority vector (plus ``min`` over it for the weights), with
  priorities written by index assignment: no tree at all, so each sample touches all 1M entries.

Slice sampling (100k stored steps, episodes of 1..200 steps, 8 slices of 32): ``SliceSampler.sample``
against plain uniform indices (``torch.randint``, what ``RandomSampler`` draws), with the episode
boundaries cached, and right after a write (boundaries recomputed from the done flags).

Run: ``python benchmarks/bench_prioritized.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import torch
from _harness import best_time, parse_args, report
from tensordict import TensorDict

from rlbench.buffers.samplers.prioritized import PrioritizedSampler
from rlbench.buffers.samplers.slice import SliceSampler

ALPHA, BETA, EPS = 0.7, 0.5, 1e-8


class ListSumTree:
    """Reference: sum and min trees in Python lists, one item at a time."""

    def __init__(self, leaves: torch.Tensor):
        self.size = 1 << (len(leaves) - 1).bit_length()
        s = torch.zeros(2 * self.size, dtype=torch.float64)
        m = torch.full((2 * self.size,), float("inf"), dtype=torch.float64)
        s[self.size:self.size + len(leaves)] = leaves
        m[self.size:self.size + len(leaves)] = leaves
        lo = self.size
        while lo > 1:  # build level by level (set-up, not timed)
            s[lo // 2:lo] = s[lo:2 * lo:2] + s[lo + 1:2 * lo:2]
            m[lo // 2:lo] = torch.minimum(m[lo:2 * lo:2], m[lo + 1:2 * lo:2])
            lo //= 2
        self.sum, self.min = s.tolist(), m.tolist()

    def update(self, i: int, p: float) -> None:
        node = i + self.size
        self.sum[node] = self.min[node] = p
        while node > 1:
            node //= 2
            self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1]
            self.min[node] = min(self.min[2 * node], self.min[2 * node + 1])

    def find(self, v: float) -> int:
        node = 1
        while node < self.size:
            left = self.sum[2 * node]
            if v >= left:
                v -= left
                node = 2 * node + 1
            else:
                node = 2 * node
        return node - self.size


def bench_prioritized(n: int, batch: int, repeats: int, calls: int, json_path) -> None:
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(n, generator=g, dtype=torch.float64) * 10
    storage = torch.zeros(n)  # the sampler only asks the storage its length
    sampler = PrioritizedSampler(n, ALPHA, BETA, EPS)
    sampler.extend(torch.arange(n))
    sampler.update_priority(torch.arange(n), raw)
    sampler.generator = torch.Generator().manual_seed(1)
    new_priority = torch.rand(batch, generator=g)

    def ours():
        for _ in range(calls):
            index, info = sampler.sample(storage, batch)
            sampler.update_priority(index, new_priority)

    tree = ListSumTree((raw + EPS) ** ALPHA)
    rng = torch.Generator().manual_seed(1)

    def per_item():
        for _ in range(calls):
            total, seg = tree.sum[1], tree.sum[1] / batch
            draws = torch.rand(batch, generator=rng, dtype=torch.float64).tolist()
            index = [tree.find(min((k + u) * seg, total * (1 - 1e-12))) for k, u in enumerate(draws)]
            p_min = tree.min[1]
            weight = [(tree.sum[i + tree.size] / p_min) ** -BETA for i in index]
            for i, p in zip(index, new_priority.tolist()):
                tree.update(i, (p + EPS) ** ALPHA)
        return weight

    prio = ((raw + EPS) ** ALPHA).float()

    def multinomial():
        for _ in range(calls):
            index = torch.multinomial(prio, batch, replacement=True, generator=rng)
            weight = (prio[index] / prio.min()) ** -BETA
            prio[index] = (new_priority + EPS) ** ALPHA
        return weight

    for fn in (ours, per_item, multinomial):  # warm up (first-call allocations, caches)
        fn()
    t_ours = best_time(ours, repeats) / calls * 1e6
    t_item = best_time(per_item, repeats) / calls * 1e6
    t_multi = best_time(multinomial, repeats) / calls * 1e6
    name = f"prioritized sample({batch})+update_priority, {n} items"
    report(name, t_ours, t_item, "us/call", "per-item Python sum tree", json_path=json_path)
    report(name, t_ours, t_multi, "us/call", "torch.multinomial over all priorities", json_path=json_path)


class ContractStorage:
    """The storage contract a sampler reads (size, shape, cursor, get), over one TensorDict."""

    def __init__(self, data: TensorDict):
        self.data, self.shape, self.ndim, self.write_cursor = data, data.batch_size, 1, 0

    def __len__(self):
        return self.data.shape[0]

    def get(self, index):
        return self.data[index]


def bench_slice(n: int, batch: int, repeats: int, calls: int, json_path) -> None:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 201, (n // 50,), generator=g)
    ends = lengths.cumsum(0)
    done = torch.zeros(n, 1, dtype=torch.bool)
    done[ends[ends <= n] - 1] = True
    storage = ContractStorage(TensorDict({"obs": torch.zeros(n, 4), "next": {"done": done}}, [n]))
    sampler = SliceSampler(num_slices=8)
    sampler.generator = torch.Generator().manual_seed(1)
    written = torch.arange(16)

    def cached():
        for _ in range(calls):
            sampler.sample(storage, batch)

    def after_write():
        for _ in range(calls):
            sampler.extend(written)
            sampler.sample(storage, batch)

    def uniform():
        for _ in range(calls):
            torch.randint(n, (batch,), generator=g)

    for fn in (cached, after_write, uniform):
        fn()
    t_cached = best_time(cached, repeats) / calls * 1e6
    t_write = best_time(after_write, repeats) / calls * 1e6
    t_uniform = best_time(uniform, repeats) / calls * 1e6
    name = f"SliceSampler sample({batch}) as 8 slices, {n} steps"
    report(name + ", boundaries cached", t_cached, t_uniform, "us/call", "uniform torch.randint", json_path=json_path)
    report(name + ", after a write", t_write, t_uniform, "us/call", "uniform torch.randint", json_path=json_path)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if args.quick:
        bench_prioritized(1 << 14, 256, args.repeats, calls=5, json_path=args.json)
        bench_slice(5_000, 256, args.repeats, calls=5, json_path=args.json)
    else:
        bench_prioritized(1_000_000, 256, args.repeats, calls=50, json_path=args.json)
        bench_slice(100_000, 256, args.repeats, calls=50, json_path=args.json)


if __name__ == "__main__":
    main()
