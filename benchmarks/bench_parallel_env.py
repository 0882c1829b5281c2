"""ParallelEnv step throughput against gymnasium's AsyncVectorEnv and against SerialEnv.

Each measures frames per second (sub-env steps per second) stepping CartPole-v1 with random actions
and automatic resets, N sub-envs at a time:

- ours: ``ParallelEnv(N, lambda: GymEnv("CartPole-v1")).rollout(T, break_when_any_done=False)``
  (TensorDicts in and out, partial resets of done workers);
- baseline 1: a plain loop of ``AsyncVectorEnv.step(actions)`` (NumPy in and out, shared memory);
- baseline 2: ``SerialEnv`` with the same rollout, in one process.

CartPole steps in microseconds, so this measures the per-step cost of the process machinery, the
worst case for worker processes. A second series runs a "slow" CartPole whose step also waits 1 ms
(an env that waits for a simulator or renderer), the case worker processes are for.
Run ``python benchmarks/bench_parallel_env.py [--quick]``.
"""
from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
from _harness import best_time, parse_args, report

from rlbench.envs import GymEnv, GymWrapper, SerialEnv
from rlbench.envs.parallel import ParallelEnv


class WaitingStep(gym.Wrapper):
    """Each step also waits 1 ms, as an env that talks to an external simulator does."""

    def step(self, action):
        time.sleep(0.001)
        return self.env.step(action)


def make_cartpole():
    return GymEnv("CartPole-v1")


def make_gym_slow():
    return WaitingStep(gym.make("CartPole-v1"))


def make_slow():
    return GymWrapper(make_gym_slow())


def main():
    args = parse_args(__doc__.splitlines()[0])
    sizes = [2] if args.quick else [2, 4, 8]
    for slow in (False, True):
        T = (20 if args.quick else 500) // (10 if slow else 1)
        for n in sizes:
            compare(n, T, slow, args)


def compare(n, T, slow, args):
    label = "slow (1 ms) CartPole" if slow else "CartPole"
    make_env, make_gym = (make_slow, make_gym_slow) if slow else (make_cartpole, lambda: gym.make("CartPole-v1"))
    frames = n * T
    with ParallelEnv(n, make_env) as env:
        env.set_seed(0)
        env.rollout(5, break_when_any_done=False)  # warm-up: first touch of the shared buffers
        ours = frames / best_time(lambda: env.rollout(T, break_when_any_done=False), args.repeats)

    venv = gym.vector.AsyncVectorEnv([make_gym] * n, shared_memory=True)
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

    serial = SerialEnv(n, make_env)
    serial.set_seed(0)
    serial_fps = frames / best_time(lambda: serial.rollout(T, break_when_any_done=False), args.repeats)
    serial.close()

    report(f"ParallelEnv({n}) {label} step", ours, async_fps, "frames/s", f"AsyncVectorEnv({n})",
           target=">= 0.8x", higher_is_better=True, json_path=args.json)
    report(f"ParallelEnv({n}) {label} step", ours, serial_fps, "frames/s", f"SerialEnv({n})",
           higher_is_better=True, json_path=args.json)


if __name__ == "__main__":  # the guard is required: workers re-import the main module
    main()
