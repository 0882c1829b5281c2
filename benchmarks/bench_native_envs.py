"""Torch-native CartPole vs gymnasium's vectorized CartPole: env-steps per second.

Baseline: ``gymnasium.make_vec("CartPole-v1", num_envs=N, vectorization_mode="vector_entry_point")``
(gymnasium's own NumPy-vectorized CartPole, with its built-in auto-reset) stepped with random actions
from its action space. Ours, at the same N, single-threaded, in the same process:

- ``step``: ``env.step_and_maybe_reset(env.rand_action(td))`` in a loop: random actions, one step and
  the in-place reset of finished sub-envs (the same work as the baseline's auto-resetting step);
- ``step (no reset)``: ``step_mdp(env.step(env.rand_action(td)))``: the bare transition;
- ``rollout``: ``env.rollout(T, break_when_any_done=False)``, which also records every step into a
  ``[N, T]`` TensorDict (13 keys, ~100 bytes per env-step), counted per env-step. It is compared with
  the plain baseline and with a baseline that also stores what a rollout needs (observation, action,
  reward, terminated, truncated, next observation) into preallocated NumPy ``[T, N]`` arrays.

Run: ``python benchmarks/bench_native_envs.py`` (``--quick`` for a seconds-long smoke run).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import best_time, parse_args, report  # noqa: E402

from rlbench.envs.classic import AcrobotEnv, CartPoleEnv, MountainCarEnv, PendulumEnv  # noqa: E402
from rlbench.envs.utils import step_mdp  # noqa: E402


def gym_steps(n: int, steps: int, repeats: int) -> float:
    """Env-steps/s of gymnasium's vector CartPole with random actions."""
    import gymnasium as gym

    env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    env.action_space.seed(0)

    def run():
        for _ in range(steps):
            env.step(env.action_space.sample())

    run()  # warm-up
    t = best_time(run, repeats)
    env.close()
    return n * steps / t


def gym_rollout(n: int, steps: int, repeats: int) -> float:
    """Env-steps/s of gymnasium's vector CartPole that also stores each step in fresh [T, N] arrays."""
    import gymnasium as gym
    import numpy as np

    env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    env.action_space.seed(0)

    def run():
        obs, _ = env.reset(seed=0)
        bufs = {k: np.empty((steps, n, *shape), dtype) for k, shape, dtype in (
            ("obs", (4,), np.float32), ("next_obs", (4,), np.float32), ("action", (), np.int64),
            ("reward", (), np.float32), ("terminated", (), bool), ("truncated", (), bool))}
        for t in range(steps):
            action = env.action_space.sample()
            nxt, reward, terminated, truncated, _ = env.step(action)
            bufs["obs"][t], bufs["action"][t], bufs["next_obs"][t] = obs, action, nxt
            bufs["reward"][t], bufs["terminated"][t], bufs["truncated"][t] = reward, terminated, truncated
            obs = nxt
        return bufs

    run()
    t = best_time(run, repeats)
    env.close()
    return n * steps / t


def native_steps(env, steps: int, repeats: int, reset: bool = True) -> float:
    """Env-steps/s of a loop of random actions and ``step_and_maybe_reset`` (or bare ``step``)."""
    state = {"td": env.reset()}

    def run():
        td = state["td"]
        for _ in range(steps):
            if reset:
                _, td = env.step_and_maybe_reset(env.rand_action(td))
            else:
                td = step_mdp(env.step(env.rand_action(td)))
        state["td"] = td

    run()
    return env.batch_size.numel() * steps / best_time(run, repeats)


def native_rollout(env, steps: int, repeats: int) -> float:
    env.rollout(steps, break_when_any_done=False)
    t = best_time(lambda: env.rollout(steps, break_when_any_done=False), repeats)
    return env.batch_size.numel() * steps / t


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes = [16] if args.quick else [1, 256, 4096, 65536]
    headline = 16 if args.quick else 4096
    steps_for = (lambda n: 5) if args.quick else (lambda n: max(20, min(300, 2_000_000 // max(n, 1))))
    unit = "env-steps/s"
    for n in sizes:
        steps = steps_for(n)
        base = gym_steps(n, steps, args.repeats)
        env = CartPoleEnv(batch_size=[n], seed=0)
        target = ">= 2x" if n == headline else ""
        kw = dict(higher_is_better=True, json_path=args.json)
        report(f"CartPole step N={n}", native_steps(env, steps, args.repeats), base, unit, "gymnasium vector",
               target=target, **kw)
        report(f"CartPole step (no reset) N={n}", native_steps(env, steps, args.repeats, reset=False), base, unit,
               "gymnasium vector", **kw)
        rollout = native_rollout(env, steps, args.repeats)
        report(f"CartPole rollout(T={steps}) N={n}", rollout, base, unit, "gymnasium vector", **kw)
        report(f"CartPole rollout(T={steps}) N={n}", rollout, gym_rollout(n, steps, args.repeats), unit,
               "gymnasium vector + NumPy storage", **kw)
    # the other envs, for information (no gymnasium vector baseline exists for them)
    n = 16 if args.quick else 4096
    steps = steps_for(n)
    for cls in (PendulumEnv, MountainCarEnv, AcrobotEnv):
        rate = native_steps(cls(batch_size=[n], seed=0), steps, args.repeats)
        print(f"{cls.__name__} step N={n}: {rate:.4g} {unit}", flush=True)


if __name__ == "__main__":
    main()
