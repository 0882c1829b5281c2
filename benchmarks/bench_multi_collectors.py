"""Multi-process collectors against a hand-written gymnasium ``AsyncVectorEnv`` loop.

CartPole-v1, a small MLP policy (4 -> 64 -> 2, argmax), N envs in all:

- ours: ``MultiSyncCollector`` / ``MultiAsyncCollector`` over 2 workers (1 for N = 1), each running
  a ``Collector`` over ``SerialEnv(N // workers, GymEnv("CartPole-v1"))``;
- baseline: the loop a user would write -- observations to torch, the same policy, actions back to
  NumPy, ``AsyncVectorEnv(N).step``, the observation stored in a preallocated tensor -- measured in
  the same run.

Frames per second, higher is better. ``python benchmarks/bench_multi_collectors.py [--quick]``.
"""
from __future__ import annotations

import gymnasium as gym
import torch
from _harness import best_time, parse_args, report
from tensordict.nn import TensorDictModule

from rlbench.collectors.multi import MultiAsyncCollector, MultiSyncCollector
from rlbench.envs import GymEnv, SerialEnv

WORKERS = 2


class ArgmaxMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))

    def forward(self, obs):
        return self.net(obs).argmax(-1)


def make_env_fn(n_sub: int):
    return lambda: SerialEnv(n_sub, lambda: GymEnv("CartPole-v1"))


def main():
    args = parse_args(__doc__.splitlines()[0])
    sizes = [2] if args.quick else [1, 8, 32]
    torch.manual_seed(0)
    module = ArgmaxMLP()
    policy = TensorDictModule(module, in_keys=["observation"], out_keys=["action"])
    for n in sizes:
        steps = 10 if args.quick else 200  # per env per batch
        frames = n * steps
        batches = 2 if args.quick else 5
        workers = min(WORKERS, n)
        makers = [make_env_fn(n // workers)] * workers
        results = {}
        for cls in (MultiSyncCollector, MultiAsyncCollector):
            fpb = frames if cls is MultiSyncCollector else frames // workers
            with cls(makers, policy, frames_per_batch=fpb, total_frames=-1, seed=0) as collector:
                it = iter(collector)
                next(it)  # warm-up: buffers allocated, workers running

                def run(it=it, k=batches * (1 if cls is MultiSyncCollector else workers)):
                    for _ in range(k):
                        next(it)

                results[cls.__name__] = frames * batches / best_time(run, args.repeats)

        venv = gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * n, shared_memory=True)
        try:
            obs, _ = venv.reset(seed=0)
            store = torch.empty(steps, n, 4)

            def loop():
                nonlocal obs
                for _ in range(batches):
                    for t in range(steps):
                        o = torch.from_numpy(obs).float()
                        store[t] = o
                        with torch.no_grad():
                            action = module(o).numpy()
                        obs, *_ = venv.step(action)

            loop()
            baseline = frames * batches / best_time(loop, args.repeats)
        finally:
            venv.close()
        for name, fps in results.items():
            report(f"{name}({workers} workers, {n} envs) CartPole+MLP", fps, baseline, "frames/s",
                   f"AsyncVectorEnv({n}) loop", target=">= 0.8x", higher_is_better=True, json_path=args.json)


if __name__ == "__main__":  # the guard is required: workers re-import the main module
    main()
