"""RayCollector (2 Ray actors) against MultiSyncCollector / MultiAsyncCollector (2 worker processes).

CartPole-v1, a small MLP policy (4 -> 64 -> 2, argmax), N envs in all, the same on both sides: every
actor or worker runs a ``Collector`` over ``SerialEnv(N // 2, GymEnv("CartPole-v1"))``.

- ours: ``RayCollector`` with 2 actors on a local Ray instance (``num_cpus=2``, dashboard off,
  127.0.0.1), ``sync=True`` and ``sync=False``; batches come through Ray's object store;
- baseline: ``MultiSyncCollector`` / ``MultiAsyncCollector`` with 2 workers (shared-memory batches),
  measured in the same run.

Frames per second, higher is better; target >= 0.8x (the object store must not be the bottleneck).
``python benchmarks/bench_ray_collector.py [--quick]``.
"""
from __future__ import annotations

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray instance on 127.0.0.1 only

import torch  # noqa: E402
from _harness import best_time, parse_args, report  # noqa: E402
from tensordict.nn import TensorDictModule  # noqa: E402

from rlbench.collectors import MultiAsyncCollector, MultiSyncCollector, RayCollector  # noqa: E402
from rlbench.envs import GymEnv, SerialEnv  # noqa: E402

WORKERS = 2


class ArgmaxMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))

    def forward(self, obs):
        return self.net(obs).argmax(-1)


def make_env_fn(n_sub: int):
    return lambda: SerialEnv(n_sub, lambda: GymEnv("CartPole-v1"))


def frames_per_second(collector, frames: int, batches: int, repeats: int) -> float:
    it = iter(collector)
    next(it)  # warm-up: envs built, buffers allocated

    def run():
        for _ in range(batches):
            next(it)

    return frames * batches / best_time(run, repeats)


def main():
    args = parse_args(__doc__.splitlines()[0])
    try:
        import ray
    except ImportError:
        print("RayCollector vs MultiSyncCollector: ratio not measured: Ray is not installed "
              "(pip install 'rlbench[ray]')")
        return
    sizes = [2] if args.quick else [8, 32]
    torch.manual_seed(0)
    policy = TensorDictModule(ArgmaxMLP(), in_keys=["observation"], out_keys=["action"])
    ray.init(address="local", num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    try:
        for n in sizes:
            steps = 10 if args.quick else 200  # per env per batch
            frames = n * steps  # per iteration, all workers together
            batches = 2 if args.quick else 5
            makers = [make_env_fn(n // WORKERS)] * WORKERS
            for sync in (True, False):
                fpb = frames if sync else frames // WORKERS
                per_iter = frames if sync else frames // WORKERS
                k = batches if sync else batches * WORKERS
                with RayCollector(makers, policy, frames_per_batch=fpb, total_frames=-1, sync=sync) as collector:
                    ours = frames_per_second(collector, per_iter, k, args.repeats)
                baseline_cls = MultiSyncCollector if sync else MultiAsyncCollector
                with baseline_cls(makers, policy, frames_per_batch=fpb, total_frames=-1) as collector:
                    baseline = frames_per_second(collector, per_iter, k, args.repeats)
                report(f"RayCollector(2 actors, sync={sync}, {n} envs) CartPole+MLP", ours, baseline, "frames/s",
                       f"{baseline_cls.__name__}(2 workers)", target=">= 0.8x", higher_is_better=True,
                       json_path=args.json)
    finally:
        ray.shutdown()


if __name__ == "__main__":  # the guard is required: workers re-import the main module
    main()
