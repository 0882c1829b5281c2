"""Torch-native CartPole vs gymnasium's vectorized CartPole: env-steps per second.

Baseline: ``gymnasium.make_vec("CartPole-v1", num_envs=N, vectorization_mode="vector_entry_point")``
(gymnasium's own NumPy-vectorized CartPole, with its built-in auto-reset) stepped with random actions
from its action space. Ours, at the same N, single-threaded, in the same process:

- ``step``: ``env.step_and_maybe_reset(env.rand_action(td))`` in a loop: random actions, one step and
  the in-place reset of finished sub-envs (the same work as the baseline's auto-resetting step);
- ``step (no reset)``: ``step_mdp(env.step(env.rand_action(td)))``: the bare transition;
- ``rollout``: ``env.rollout(T, break_when_any_done=False)``, which also records every step into a
  ``[N, T]`` TensorDict (14 keys, ~100 bytes per env-step), counted per env-step. It is compared with
  the plain baseline and with a baseline that also stores what a rollout needs (observation, action,
  reward, terminated, truncated, next observation) into preallocated NumPy ``[T, N]`` arrays. Random
  actions take the envs' fused rollout loop (``ClassicControlEnv.rollout``); the "generic loop" rows
  switch it off (``env._FUSED_ROLLOUT = False``: ``EnvBase.rollout``'s ``step_and_maybe_reset`` loop)
  to show what it gains, for all five envs (gymnasium has a NumPy vector env for CartPole only).

The headline rollout rows (N = 4096, T = 100) run ours and the baselines alternately in one process,
each timed ``--repeats`` times, and keep the best of each: on a shared machine the ratios are indicative.

Run: ``python benchmarks/bench_native_envs.py`` (``--quick`` for a seconds-long smoke run).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import best_time, parse_args, report  # noqa: E402

from rlbench.envs.classic import (  # noqa: E402
    AcrobotEnv,
    CartPoleEnv,
    MountainCarContinuousEnv,
    MountainCarEnv,
    PendulumEnv,
)
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


def gym_rollout_fn(n: int, steps: int):
    """A function running gymnasium's vector CartPole for ``steps`` steps, storing each in fresh [T, N] arrays."""
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

    return run


def gym_rollout(n: int, steps: int, repeats: int) -> float:
    """Env-steps/s of :func:`gym_rollout_fn`."""
    run = gym_rollout_fn(n, steps)
    run()
    return n * steps / best_time(run, repeats)


def alternate(fns: dict, repeats: int) -> dict:
    """Best seconds of each function, timed in turns (one call of each per round) after a warm-up."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, 1))
    return best


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
    # The headline: rollout(100) with random actions at N = 4096, ours and the baselines in turns.
    n, steps = headline, (5 if args.quick else 100)
    kw = dict(higher_is_better=True, json_path=args.json)
    for cls in (CartPoleEnv, PendulumEnv, MountainCarEnv, MountainCarContinuousEnv, AcrobotEnv):
        fused, generic = cls(batch_size=[n], seed=0), cls(batch_size=[n], seed=0)
        generic._FUSED_ROLLOUT = False
        fns = {"fused": lambda: fused.rollout(steps, break_when_any_done=False),
               "generic": lambda: generic.rollout(steps, break_when_any_done=False)}
        if cls is CartPoleEnv:
            fns["gym"] = gym_rollout_fn(n, steps)
        t = alternate(fns, args.repeats)
        rate = {name: n * steps / sec for name, sec in t.items()}
        name = cls.__name__.removesuffix("Env")
        if cls is CartPoleEnv:
            report(f"{name} rollout(T={steps}) random actions N={n}", rate["fused"], rate["gym"], unit,
                   "gymnasium vector + NumPy storage", target=">= 2x" if n == headline else "", **kw)
            report(f"{name} rollout(T={steps}) generic loop N={n}", rate["generic"], rate["gym"], unit,
                   "gymnasium vector + NumPy storage", **kw)
        report(f"{name} rollout(T={steps}) fused N={n}", rate["fused"], rate["generic"], unit,
               "the generic rollout loop", **kw)
    # step_and_maybe_reset of the other envs, for information (no gymnasium vector env exists for them)
    steps = steps_for(n)
    for cls in (PendulumEnv, MountainCarEnv, AcrobotEnv):
        rate = native_steps(cls(batch_size=[n], seed=0), steps, args.repeats)
        print(f"{cls.__name__} step N={n}: {rate:.4g} {unit}", flush=True)


if __name__ == "__main__":
    main()
