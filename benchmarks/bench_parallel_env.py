"""ParallelEnv step throughput against gymnasium's AsyncVectorEnv and against SerialEnv.

Each measures frames per second (sub-env steps per second) stepping CartPole-v1 with random actions
and automatic resets, N sub-envs at a time:

- ours: ``ParallelEnv(N, lambda: GymEnv("CartPole-v1")).rollout(T, break_when_any_done=False)``
  (TensorDicts in and out, partial resets of done workers);
- baseline 1: a plain loop of ``AsyncVectorEnv.step(actions)`` (NumPy in and out, shared memory);
- baseline 2: ``SerialEnv`` with the same rollout, in one process.

CartPole steps in microseconds, so this measures the per-step cost of the process machinery, the
worst case for worker processes. Run ``python benchmarks/bench_parallel_env.py [--quick]``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from _harness import best_time, parse_args, report

from rlbench.envs import GymEnv, SerialEnv
from rlbench.envs.parallel import ParallelEnv


def make_cartpole():
    return GymEnv("CartPole-v1")


def main():
    args = parse_args(__doc__.splitlines()[0])
    sizes = [2] if args.quick else [2, 4, 8]
    T = 20 if args.quick else 500
    for n in sizes:
        frames = n * T
        with ParallelEnv(n, make_cartpole) as env:
            env.set_seed(0)
            env.rollout(5, break_when_any_done=False)  # warm-up: first touch of the shared buffers
            ours = frames / best_time(lambda: env.rollout(T, break_when_any_done=False), args.repeats)

        venv = gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * n, shared_memory=True)
        try:
            venv.reset(seed=0)
            rng = np.random.default_rng(0)
            actions = rng.integers(0, 2, size=(T, n))

            def gym_loop():
                for t in range(T):
                    venv.step(actions[t])

            gym_loop()
            async_fps = frames / best_time(gym_loop, args.repeats)
        finally:
            venv.close()

        serial = SerialEnv(n, make_cartpole)
        serial.set_seed(0)
        serial_fps = frames / best_time(lambda: serial.rollout(T, break_when_any_done=False), args.repeats)
        serial.close()

        report(f"ParallelEnv({n}) CartPole step", ours, async_fps, "frames/s", f"AsyncVectorEnv({n})",
               target=">= 0.8x", higher_is_better=True, json_path=args.json)
        report(f"ParallelEnv({n}) CartPole step", ours, serial_fps, "frames/s", f"SerialEnv({n})",
               higher_is_better=True, json_path=args.json)


if __name__ == "__main__":  # the guard is required: workers re-import the main module
    main()
