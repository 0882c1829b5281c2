"""GymEnv("CartPole-v1") against a plain gymnasium loop doing the same number of steps (with resets).

1. ``env.rollout(N, break_when_any_done=False)`` (the fast NumPy path): target <= 1.5x the plain loop.
2. ``env.step(td)`` + ``step_mdp`` (+ reset when done) in a Python loop: target <= 4x the plain loop.

Run: ``python benchmarks/bench_gym_env.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import gymnasium
import torch
from _harness import best_time, parse_args, report

from rlbench.envs.gym import GymEnv
from rlbench.envs.utils import step_mdp


def plain_loop(env, n: int) -> None:
    """The baseline: what a user writes with gymnasium alone."""
    env.reset(seed=0)
    for _ in range(n):
        a = env.action_space.sample()
        obs, r, term, trunc, info = env.step(a)
        if term or trunc:
            env.reset()


def step_loop(env, n: int) -> None:
    td = env.reset()
    for _ in range(n):
        td = step_mdp(env.step(env.rand_action(td)))
        if td.get("done").item():
            td = env.reset()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    n = 500 if args.quick else 20_000
    gym_env = gymnasium.make("CartPole-v1")
    gym_env.action_space.seed(0)
    env = GymEnv("CartPole-v1")
    env.set_seed(0)
    for fn in (lambda: plain_loop(gym_env, 200), lambda: env.rollout(200), lambda: step_loop(env, 200)):
        fn()  # warm-up: imports, allocator, first-call costs
    # interleaved repeats: the three timings see the same machine load (other jobs share the CPU)
    base = fast = step = float("inf")
    for _ in range(args.repeats):
        base = min(base, best_time(lambda: plain_loop(gym_env, n), 1))
        fast = min(fast, best_time(lambda: env.rollout(n, break_when_any_done=False), 1))
        step = min(step, best_time(lambda: step_loop(env, n), 1))
    us = 1e6 / n
    report(f"GymEnv CartPole rollout ({n} steps, per step)", fast * us, base * us, "us", "plain gymnasium loop",
           target="<= 1.5x", json_path=args.json)
    report(f"GymEnv CartPole step+step_mdp loop ({n} steps, per step)", step * us, base * us, "us",
           "plain gymnasium loop", target="<= 4x", json_path=args.json)
    env.close()
    gym_env.close()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
