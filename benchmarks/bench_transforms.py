"""TransformedEnv rollout overhead: the same env's rollout with and without a typical transform stack.

``TransformedEnv(env, Compose(StepCounter(), RewardSum(), ObservationNorm(...))).rollout(N)`` against
``env.rollout(N)`` (``break_when_any_done=False``, so done sub-envs reset in place), on:

1. ``CountingEnv`` (unbatched; the cheapest possible env, so the ratio shows the transforms' own cost);
2. the torch-native ``CartPoleEnv`` with a batch of 8 (partial resets every few steps), when present.

Target: <= 1.5x. Run: ``python benchmarks/bench_transforms.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import torch
from _harness import best_time, parse_args, report

from rlbench.envs.transforms import Compose, ObservationNorm, RewardSum, StepCounter, TransformedEnv
from rlbench.testing import CountingEnv


def stack(env):
    # CartPole already reports its own "step_count": count under another name
    return TransformedEnv(env, Compose(StepCounter(step_count_key="t"), RewardSum(),
                                       ObservationNorm(loc=0.0, scale=1.0, in_keys=["observation"])))


def measure(name: str, make_env, n: int, args) -> None:
    bare, transformed = make_env(), stack(make_env())
    for env in (bare, transformed):
        env.rollout(50, break_when_any_done=False)  # warm-up
    # interleaved repeats: both timings see the same machine load (other jobs share the CPU)
    base = ours = float("inf")
    for _ in range(args.repeats):
        base = min(base, best_time(lambda: bare.rollout(n, break_when_any_done=False), 1))
        ours = min(ours, best_time(lambda: transformed.rollout(n, break_when_any_done=False), 1))
    us = 1e6 / n
    report(f"TransformedEnv({name}, StepCounter+RewardSum+ObservationNorm).rollout ({n} steps, per step)",
           ours * us, base * us, "us", f"bare {name}.rollout", target="<= 1.5x", json_path=args.json)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    n = 200 if args.quick else 5_000
    measure("CountingEnv", lambda: CountingEnv(max_steps=50), n, args)
    try:
        from rlbench.envs.classic import CartPoleEnv
    except ImportError:
        return
    measure("CartPoleEnv[8]", lambda: CartPoleEnv(batch_size=[8], seed=0), n, args)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
