"""Prioritized replay and slice sampling cost, against simple references measured in the same run.

Prioritized (1,000,000 stored items, batch 256): one call is ``sample(256)`` followed by ``update_priority``
of the 256 sampled items, in microseconds per call. ``PrioritizedSampler`` searches a wide, shallow
NumPy sum/min tree for the whole batch at once (32 children per node: at 1M, one blocked level below a flat top).
The baselines:

- TorchRL's ``PrioritizedSampler`` (its C++ ``SumSegmentTree``/``MinSegmentTree``), same sizes, timed in
  alternation with ours in this process. TorchRL is imported from the environment or from
  ``--torchrl-path DIR`` (``pip install --no-deps --target DIR torchrl==0.14.1``). A TorchRL wheel built
  against another torch fails to load its extension (``undefined symbol``); then ``--torchrl-src DIR``
  (a checkout of github.com/pytorch/rl) builds ``torchrl/csrc`` against the installed torch with
  ``torch.utils.cpp_extension`` (about a minute, cached in ``--torchrl-build``, default
  ``/tmp/rlbench_torchrl_ext``) and uses that. Without either, this baseline is skipped;

- a per-item sum tree: the same tree held in Python lists, descended and updated one item at a time
  (how prioritized replay is often written by hand);
- ``torch.multinomial`` over the full priority vector (plus ``min`` over it for the weights), with
  priorities written by index assignment: no tree at all, so each sample touches all 1M entries.

Slice sampling (100k stored steps, episodes of 1..200 steps, 8 slices of 32): ``SliceSampler.sample``
against plain uniform indices (``torch.randint``, what ``RandomSampler`` draws), with the episode
boundaries cached, and right after a write (boundaries recomputed from the done flags). Then
``PrioritizedSliceSampler`` (starts drawn by priority on the same tree) ``sample`` + ``update_priority``
of the sampled steps, against TorchRL's ``PrioritizedSliceSampler`` (``cache_values=True``) and against
the uniform ``SliceSampler``.

Run: ``python benchmarks/bench_prioritized.py [--quick] [--torchrl-path DIR] [--torchrl-src DIR]``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import torch
from _harness import best_time, parse_args, report
from tensordict import TensorDict

from rlbench.buffers.samplers.prioritized import PrioritizedSampler
from rlbench.buffers.samplers.prioritized_slice import PrioritizedSliceSampler
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


def _pop_option(name: str, default: str | None = None) -> str | None:
    """Take ``--name VALUE`` / ``--name=VALUE`` out of ``sys.argv`` (the shared parser knows only its own)."""
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg == name or arg.startswith(name + "="):
            value = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]
            del sys.argv[i:i + (1 if "=" in arg else 2)]
            return value
    return default


def load_torchrl(path: str | None, src: str | None, build: str):
    """TorchRL's ``PrioritizedSampler`` with a working C++ extension, or ``(None, why)``."""
    if path:
        sys.path.insert(0, path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")])))
    # Try the extension in a child first: a failed load leaves torchrl imported without its trees.
    probe = subprocess.run([sys.executable, "-c", "import torchrl._torchrl"], env=env, capture_output=True,
                           text=True, timeout=600)
    if probe.returncode:
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1][:160]
        if not src:
            return None, f"torchrl._torchrl does not load ({why}); pass --torchrl-src to build it"
        from torch.utils import cpp_extension

        csrc = os.path.join(src, "torchrl", "csrc")
        os.makedirs(build, exist_ok=True)
        start = time.perf_counter()
        module = cpp_extension.load(name="_torchrl", build_directory=build, extra_cflags=["-O3"],
                                    sources=[os.path.join(csrc, f) for f in ("pybind.cpp", "utils.cpp")])
        sys.modules["torchrl._torchrl"] = module  # before torchrl itself is imported
        print(f"built torchrl/csrc against torch {torch.__version__} in {time.perf_counter() - start:.0f} s "
              f"(the wheel's extension: {why})", flush=True)
    try:
        import torchrl
        from torchrl.data import LazyTensorStorage
        from torchrl.data import PrioritizedSampler as TorchRLPrioritizedSampler
    except ImportError as err:
        return None, f"torchrl does not import ({err})"
    return (torchrl.__version__, TorchRLPrioritizedSampler, LazyTensorStorage), None


def bench_prioritized(n: int, batch: int, repeats: int, calls: int, json_path, torchrl=None, why=None) -> None:
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

    name = f"prioritized sample({batch})+update_priority, {n} items"
    if torchrl is not None:
        version, trl_sampler_cls, trl_storage_cls = torchrl
        from tensordict import TensorDict

        trl_storage = trl_storage_cls(n)
        trl_storage.set(torch.arange(n), TensorDict({"x": torch.zeros(n)}, [n]))
        trl_sampler = trl_sampler_cls(n, ALPHA, BETA, EPS)  # its default: float32 C++ trees
        trl_sampler.extend(torch.arange(n))
        trl_sampler.update_priority(torch.arange(n), raw.float())

        def theirs():
            for _ in range(calls):
                index, info = trl_sampler.sample(trl_storage, batch)
                trl_sampler.update_priority(index, new_priority)

        ours(), theirs()
        t_ours = t_theirs = float("inf")
        for _ in range(4 * repeats):  # alternate short bursts: load on a shared machine hits both alike
            t_ours = min(t_ours, best_time(ours, 1))
            t_theirs = min(t_theirs, best_time(theirs, 1))
        report(name, t_ours / calls * 1e6, t_theirs / calls * 1e6, "us/call",
               f"TorchRL {version} PrioritizedSampler (C++ sum tree)", target="<= 0.5x", json_path=json_path)
    else:
        print(f"{name}: TorchRL baseline skipped: {why}", flush=True)
    for fn in (ours, per_item, multinomial):  # warm up (first-call allocations, caches)
        fn()
    t_ours = best_time(ours, repeats) / calls * 1e6
    t_item = best_time(per_item, repeats) / calls * 1e6
    t_multi = best_time(multinomial, repeats) / calls * 1e6
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


def bench_prioritized_slice(n: int, batch: int, repeats: int, calls: int, json_path, torchrl=None, why=None) -> None:
    """``PrioritizedSliceSampler.sample`` (8 slices) + ``update_priority`` of the sampled steps."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 201, (n // 50,), generator=g)
    ends = lengths.cumsum(0)
    done = torch.zeros(n, 1, dtype=torch.bool)
    done[ends[ends <= n] - 1] = True
    data = TensorDict({"obs": torch.zeros(n, 4), "next": {"done": done}}, [n])
    storage = ContractStorage(data)
    raw = torch.rand(n, generator=g) * 10
    new_priority = torch.rand(batch, generator=g)
    sampler = PrioritizedSliceSampler(n, ALPHA, BETA, EPS, num_slices=8)
    sampler.generator = torch.Generator().manual_seed(1)
    sampler.extend(torch.arange(n))
    sampler.update_priority(torch.arange(n), raw)
    uniform = SliceSampler(num_slices=8)
    uniform.generator = torch.Generator().manual_seed(1)

    def ours():
        for _ in range(calls):
            index, info = sampler.sample(storage, batch)
            sampler.update_priority(index, new_priority)

    def plain():
        for _ in range(calls):
            uniform.sample(storage, batch)

    name = f"PrioritizedSliceSampler sample({batch}) as 8 slices + update_priority, {n} steps"
    timed = {"ours": ours, "plain": plain}
    if torchrl is not None:
        from torchrl.data import PrioritizedSliceSampler as TorchRLPrioritizedSliceSampler

        trl_storage = torchrl[2](n)
        trl_storage.set(torch.arange(n), data)
        trl_sampler = TorchRLPrioritizedSliceSampler(n, ALPHA, BETA, EPS, num_slices=8, end_key=("next", "done"),
                                                     cache_values=True)
        trl_sampler.extend(torch.arange(n))
        trl_sampler.update_priority(torch.arange(n), raw)

        def theirs():
            for _ in range(calls):
                index, info = trl_sampler.sample(trl_storage, batch)
                trl_sampler.update_priority(index[0], new_priority)

        timed["theirs"] = theirs
    for fn in timed.values():
        fn()
    best = {k: float("inf") for k in timed}
    for _ in range(2 * repeats):  # alternate
        for k, fn in timed.items():
            best[k] = min(best[k], best_time(fn, 1))
    if "theirs" in best:
        report(name, best["ours"] / calls * 1e6, best["theirs"] / calls * 1e6, "us/call",
               f"TorchRL {torchrl[0]} PrioritizedSliceSampler", json_path=json_path)
    else:
        print(f"{name}: TorchRL baseline skipped: {why}", flush=True)
    report(name, best["ours"] / calls * 1e6, best["plain"] / calls * 1e6, "us/call",
           "uniform SliceSampler.sample (no priorities)", json_path=json_path)


def main() -> None:
    path, src = _pop_option("--torchrl-path"), _pop_option("--torchrl-src")
    build = _pop_option("--torchrl-build", "/tmp/rlbench_torchrl_ext")
    args = parse_args(__doc__.splitlines()[0])
    torchrl, why = (None, "not in --quick runs") if args.quick else load_torchrl(path, src, build)
    if args.quick:
        bench_prioritized(1 << 14, 256, args.repeats, calls=5, json_path=args.json, why=why)
        bench_slice(5_000, 256, args.repeats, calls=5, json_path=args.json)
        bench_prioritized_slice(5_000, 256, args.repeats, calls=5, json_path=args.json, why=why)
    else:
        bench_prioritized(1_000_000, 256, args.repeats, calls=20, json_path=args.json, torchrl=torchrl, why=why)
        bench_slice(100_000, 256, args.repeats, calls=50, json_path=args.json)
        bench_prioritized_slice(100_000, 256, args.repeats, calls=20, json_path=args.json, torchrl=torchrl, why=why)


if __name__ == "__main__":
    main()
