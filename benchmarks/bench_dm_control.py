"""DMControlEnv against a plain dm_control loop doing the same steps (with resets), states and pixels.

The baseline is what a user writes with dm_control alone: ``env.step(rng.uniform(low, high))`` in a
loop, ``env.reset()`` at each ``LAST`` step, and for pixels one ``physics.render(H, W, camera_id=0)``
after every reset and step (the frames our env returns). It stores nothing. Ours, in the same process:

1. ``env.rollout(N, break_when_any_done=False)`` (random actions, the NumPy fast path, every step
   recorded into a TensorDict): target <= 1.2x the plain loop, from states and from pixels.
2. ``env.rollout(N, policy=env.rand_action, ...)``: the generic per-step path a policy takes
   (diagnostic, no target).

It also prints the cost of one headless frame (``physics.render``) at 64x64 and 84x84.

Run: ``python benchmarks/bench_dm_control.py`` (``--quick`` for a seconds-long smoke run).
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import best_time, parse_args, report  # noqa: E402

from rlbench.envs import DMControlEnv  # noqa: E402


def plain_loop(raw, n: int, rng, size=None) -> None:
    """The baseline: random actions, a reset at each episode end, a frame after each reset and step."""
    spec = raw.action_spec()
    low, high = spec.minimum, spec.maximum
    render = raw.physics.render
    raw.reset()
    if size:
        render(*size, camera_id=0)
    for _ in range(n):
        ts = raw.step(rng.uniform(low, high))
        if ts.last():
            raw.reset()
        if size:
            render(*size, camera_id=0)


def compare(name: str, env: DMControlEnv, n: int, repeats: int, json_path, size=None) -> None:
    raw = env.dm_env
    rng = np.random.default_rng(0)
    env.set_seed(0)
    warm = max(2, n // 10)
    plain_loop(raw, warm, rng, size)  # warm-up: first-call costs, render contexts
    env.rollout(warm, break_when_any_done=False)
    env.rollout(warm, policy=env.rand_action, break_when_any_done=False)
    # interleaved repeats: the timings see the same machine load (other jobs share the CPU)
    base = fast = generic = float("inf")
    for _ in range(repeats):
        base = min(base, best_time(lambda: plain_loop(raw, n, rng, size), 1))
        fast = min(fast, best_time(lambda: env.rollout(n, break_when_any_done=False), 1))
        generic = min(generic, best_time(lambda: env.rollout(n, policy=env.rand_action,
                                                             break_when_any_done=False), 1))
    us = 1e6 / n
    report(f"DMControlEnv {name} rollout ({n} steps, per step)", fast * us, base * us, "us",
           "plain dm_control loop", target="<= 1.2x", json_path=json_path)
    report(f"DMControlEnv {name} rollout with a policy (generic path, {n} steps, per step)", generic * us,
           base * us, "us", "plain dm_control loop", json_path=json_path)


def render_cost(env: DMControlEnv, sizes, frames: int) -> None:
    physics = env.dm_env.physics
    for h, w in sizes:
        physics.render(h, w, camera_id=0)  # the context and buffers are made on the first frame
        ms = best_time(lambda: [physics.render(h, w, camera_id=0) for _ in range(frames)], 3) / frames * 1e3
        print(f"headless render {h}x{w} ({os.environ.get('MUJOCO_GL')}): {ms:.1f} ms per frame", flush=True)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    quick = args.quick
    states = [("cartpole", "swingup", 300 if quick else 20_000), ("cheetah", "run", 200 if quick else 10_000)]
    for domain, task, n in states:
        env = DMControlEnv(domain, task)
        compare(f"{domain}-{task} states", env, n, args.repeats, args.json)
        env.close()
    sizes = [(32, 32)] if quick else [(64, 64), (84, 84)]
    frames = 4 if quick else 100
    for h, w in sizes:
        env = DMControlEnv("cartpole", "swingup", from_pixels=True, pixels_only=True, height=h, width=w)
        compare(f"cartpole-swingup pixels {h}x{w}", env, frames, min(args.repeats, 3), args.json, size=(h, w))
        render_cost(env, [(h, w)], 5 if quick else 50)
        env.close()


if __name__ == "__main__":
    main()
