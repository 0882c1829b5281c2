"""Replay buffer speed and memory against raw tensor indexing of the same data, in the same run.

1. ``rb.sample(256)`` from a 100k-transition ``LazyTensorStorage`` (CartPole-sized transitions:
   obs[4], action, next obs[4], reward, done/terminated/truncated) against ``torch.randint`` plus
   TensorDict indexing of an identical TensorDict. Target <= 2x.
2. ``rb.extend(1000)`` into that buffer (ring buffer, wrapping) against a raw TensorDict slice
   assignment of the same 1000 rows at a moving offset. Target <= 2x.
2b. The same ``rb.extend(1000)`` into a full (wrapping) ``LazyMemmapStorage`` against a slice
   assignment into a memory-mapped TensorDict (``td.memmap_()``) of the same layout: the cost of the
   storage's crash safety (rows are marked invalid while they are overwritten). Target <= 2x.
3. A 1M-transition ``LazyMemmapStorage``: fill it in chunks of 10k and sample from it, reporting the
   peak growth of the process's anonymous (non file-backed) memory against the data size: the data
   lives in the page cache, which the kernel can write back and evict, so RAM stays bounded. The
   total RSS (psutil) growth is printed too: it includes the mapped file pages this process touched.

Run: ``python benchmarks/bench_replay_buffer.py`` (``--quick`` for a smoke run with small sizes).
"""
from __future__ import annotations

import shutil
import tempfile

import torch
from _harness import best_time, parse_args, report
from tensordict import TensorDict

from rlbench.buffers import LazyMemmapStorage, LazyTensorStorage, RandomSampler, ReplayBuffer


def transitions(n: int) -> TensorDict:
    flags = torch.zeros(n, 1, dtype=torch.bool)
    return TensorDict({
        "observation": torch.randn(n, 4),
        "action": torch.randint(2, (n, 1)),
        "next": {"observation": torch.randn(n, 4), "reward": torch.ones(n, 1), "done": flags.clone(),
                 "terminated": flags.clone(), "truncated": flags.clone()},
    }, [n])


def bytes_per_item(td: TensorDict) -> int:
    return sum(v[0].numel() * v.element_size() for v in td.values(True, True))


def anon_rss() -> int:
    """Anonymous resident memory (bytes): what the process holds outside file-backed pages."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    import psutil  # non-Linux fallback: total RSS (over-counts the memory-mapped pages)
    return psutil.Process().memory_info().rss


def bench_sample_and_extend(args, n: int, calls: int) -> None:
    data = transitions(n)
    raw = data.clone()
    rb = ReplayBuffer(storage=LazyTensorStorage(n), sampler=RandomSampler(), batch_size=256)
    rb.extend(data)

    def ours_sample():
        for _ in range(calls):
            rb.sample()

    def raw_sample():
        for _ in range(calls):
            raw[torch.randint(n, (256,))]

    chunk = transitions(1000)
    offsets = [(i * 1000 + 137) % (n - 1000) for i in range(calls)]

    def ours_extend():
        for _ in range(calls):
            rb.extend(chunk)

    def raw_extend():
        for off in offsets:
            raw[off:off + 1000] = chunk

    # interleaved repeats: both sides see the same machine load
    t = {k: float("inf") for k in ("os", "rs", "oe", "re")}
    for _ in range(args.repeats):
        t["rs"] = min(t["rs"], best_time(raw_sample, 1))
        t["os"] = min(t["os"], best_time(ours_sample, 1))
        t["re"] = min(t["re"], best_time(raw_extend, 1))
        t["oe"] = min(t["oe"], best_time(ours_extend, 1))
    us = 1e6 / calls
    report(f"ReplayBuffer(LazyTensorStorage({n})).sample(256)", t["os"] * us, t["rs"] * us, "us",
           "torch.randint + TensorDict indexing", target="<= 2x", json_path=args.json)
    report(f"ReplayBuffer(LazyTensorStorage({n})).extend(1000)", t["oe"] * us, t["re"] * us, "us",
           "TensorDict slice assignment", target="<= 2x", json_path=args.json)


def bench_memmap_extend(args, n: int, calls: int) -> None:
    scratch = tempfile.mkdtemp(prefix="rlbench_bench_memmap_")
    try:
        rb = ReplayBuffer(storage=LazyMemmapStorage(n, scratch_dir=f"{scratch}/rb"))
        rb.extend(transitions(n))  # full: every extend below overwrites (wraps)
        raw = transitions(n).memmap_(f"{scratch}/raw", num_threads=0)
        chunk = transitions(1000)
        offsets = [(i * 1000 + 137) % (n - 1000) for i in range(calls)]

        def ours():
            for _ in range(calls):
                rb.extend(chunk)

        def baseline():
            for off in offsets:
                raw[off:off + 1000] = chunk

        t_ours = t_raw = float("inf")
        for _ in range(args.repeats):
            t_raw = min(t_raw, best_time(baseline, 1))
            t_ours = min(t_ours, best_time(ours, 1))
        us = 1e6 / calls
        report(f"ReplayBuffer(LazyMemmapStorage({n})).extend(1000), full", t_ours * us, t_raw * us, "us",
               "memory-mapped TensorDict slice assignment", target="<= 2x", json_path=args.json)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bench_memmap(args, n: int) -> None:
    chunk_size = min(10_000, n)
    chunk = transitions(chunk_size)
    data_bytes = n * bytes_per_item(chunk)
    scratch = tempfile.mkdtemp(prefix="rlbench_bench_memmap_")
    try:
        import psutil

        proc = psutil.Process()
        base, rss_base = anon_rss(), proc.memory_info().rss
        peak, rss_peak = base, rss_base
        rb = ReplayBuffer(storage=LazyMemmapStorage(n, scratch_dir=scratch), batch_size=256)
        for _ in range(n // chunk_size):
            rb.extend(chunk)
            peak, rss_peak = max(peak, anon_rss()), max(rss_peak, proc.memory_info().rss)
        for _ in range(200):
            rb.sample()
        peak, rss_peak = max(peak, anon_rss()), max(rss_peak, proc.memory_info().rss)
        assert len(rb) == n
        # total RSS counts the mapped file pages this process touched (page cache, evictable)
        report(f"LazyMemmapStorage({n}) fill + 200 x sample(256): peak RSS growth (psutil, incl. mapped file pages)",
               (rss_peak - rss_base) / 2**20, data_bytes / 2**20, "MiB", "data size", json_path=args.json)
        report(f"LazyMemmapStorage({n}) fill + 200 x sample(256): peak anonymous RAM growth", (peak - base) / 2**20,
               data_bytes / 2**20, "MiB", "data size", target="well below 1x (bounded RAM)", json_path=args.json)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if args.quick:
        bench_sample_and_extend(args, n=10_000, calls=50)
        bench_memmap_extend(args, n=10_000, calls=50)
        bench_memmap(args, n=20_000)
    else:
        bench_sample_and_extend(args, n=100_000, calls=2000)
        bench_memmap_extend(args, n=100_000, calls=2000)
        bench_memmap(args, n=1_000_000)


if __name__ == "__main__":
    main()
