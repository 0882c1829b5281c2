"""ALE Pong with make_env's full Atari preprocessing against the same preprocessing by hand with NumPy.

Ours: ``make_env("ALE/Pong-v5")`` (:class:`rlbench.envs.AtariPreprocessing`: no-op reset up to 30,
frame skip 4 with the max of the last two frames, end-of-life flag, gray, 84x84 bilinear, stack of 4,
reward sign, sticky actions 0.25; ``make()`` builds the fused :class:`rlbench.envs.libs.atari.AtariEnv`),
``env.rollout(N, break_when_any_done=False)`` with random actions, every step recorded into a
TensorDict. Two more lines, for the record: the same rollout driven by a ``RandomPolicy`` (the generic
step-by-step path a collector takes) and the plain transform chain (``make(fused=False)``).
The baseline, in the same process: the same steps written with NumPy over
``gymnasium.make("ALE/Pong-v5", frameskip=1)`` (separable bilinear resize as two matrix products, a ring
of 4 frames), each stacked observation, reward and flag stored into preallocated arrays as a rollout
does. Target: <= 1.2x.

Run: ``python benchmarks/bench_atari.py`` (``--quick`` for a seconds-long smoke run).
"""
from __future__ import annotations

import os
import resource
import sys
import time

# One BLAS thread, as the harness gives torch one thread: on a shared machine NumPy's OpenBLAS pool spins
# on every core and makes both timings erratic (the baseline's matrix products measured 10-50x slower).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import parse_args, report  # noqa: E402

from rlbench.envs import AtariPreprocessing, RandomPolicy  # noqa: E402
from rlbench.recipes.envs import make_env  # noqa: E402


def _bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """``[dst, src]`` weights of a bilinear resize (half-pixel centres, as interpolate(align_corners=False))."""
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    w = pos - lo
    m = np.zeros((dst, src), np.float32)
    m[np.arange(dst), lo] += 1 - w
    m[np.arange(dst), hi] += w
    return m


class NumpyPong:
    """The Nature/Machado preprocessing by hand over a gymnasium ALE env."""

    def __init__(self, seed: int = 0, size: int = 84, skip: int = 4, stack: int = 4, noop_max: int = 30):
        import gymnasium

        self.env = gymnasium.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.25)
        self.ale = self.env.unwrapped.ale
        self.rng = np.random.default_rng(seed)
        self.n_actions = self.env.action_space.n
        self.skip, self.stack, self.noop_max = skip, stack, noop_max
        self.ry, self.rx = _bilinear_matrix(210, size), _bilinear_matrix(160, size).T.copy()
        self.weights = (np.array([0.299, 0.587, 0.114], np.float32) / 255.0)
        self.frames = np.zeros((stack, size, size), np.float32)
        self.seed = seed

    def _process(self, frame):
        gray = frame @ self.weights  # uint8 [210, 160, 3] -> float32 [210, 160] in [0, 1]
        return self.ry @ gray @ self.rx

    def reset(self):
        obs, _ = self.env.reset(seed=self.seed)
        self.seed = None
        for _ in range(int(self.rng.integers(0, self.noop_max + 1))):
            obs, _, term, trunc, _ = self.env.step(int(self.rng.integers(self.n_actions)))
            if term or trunc:
                obs, _ = self.env.reset()
        self.frames[:] = self._process(obs)
        self.lives = self.ale.lives()

    def step(self, action):
        total, prev, done = 0.0, None, False
        for _ in range(self.skip):
            obs_prev = prev
            prev, r, term, trunc, _ = self.env.step(action)
            total += r
            if term or trunc:
                done = True
                break
        frame = prev if obs_prev is None else np.maximum(prev, obs_prev)
        self.frames[:-1] = self.frames[1:]
        self.frames[-1] = self._process(frame)
        lives = self.ale.lives()
        eol = done or lives < self.lives
        self.lives = lives
        return self.frames, np.sign(total), done, eol

    def rollout(self, n: int):
        obs = np.zeros((n, *self.frames.shape), np.float32)
        rew, dones, eols = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        self.reset()
        for t in range(n):
            frames, rew[t], dones[t], eols[t] = self.step(int(self.rng.integers(self.n_actions)))
            obs[t] = frames
            if dones[t]:
                self.reset()
        return obs, rew


def _timed(fn) -> tuple[float, float]:
    """``(wall seconds, user CPU seconds)`` of one call of ``fn``, its result freed inside the timing."""
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
    fn()
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    n = 100 if args.quick else 2_000
    env = make_env("ALE/Pong-v5", seed=0)  # AtariPreprocessing().make(): the fused AtariEnv
    chain = AtariPreprocessing().make("ALE/Pong-v5", fused=False)  # the same steps as a transform chain
    chain.set_seed(0)
    policy = RandomPolicy(env.action_spec)  # a policy: the generic step path that collectors take
    plain = NumpyPong(seed=0)
    runs = {
        "base": lambda: plain.rollout(n),
        "ours": lambda: env.rollout(n, break_when_any_done=False),
        "policy": lambda: env.rollout(n, policy, break_when_any_done=False),
        "chain": lambda: chain.rollout(n, break_when_any_done=False),
    }
    plain.rollout(20)  # warm-up
    env.rollout(20, break_when_any_done=False)
    chain.rollout(20, break_when_any_done=False)
    wall, user = dict.fromkeys(runs, float("inf")), dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeats):  # interleaved: every timing sees the same machine load
        for name, run in runs.items():
            w, u = _timed(run)
            wall[name], user[name] = min(wall[name], w), min(user[name], u)
    us = 1e6 / n
    what = f"({n} agent steps = {4 * n} frames, per step)"
    baseline = "the same preprocessing by hand with NumPy"
    report(f"ALE Pong rollout with the full Atari preprocessing {what}", wall["ours"] * us, wall["base"] * us, "us",
           baseline, target="<= 1.2x", json_path=args.json)
    # User CPU time leaves out the kernel's work: mostly faulting in the rollout's fresh output memory, twice
    # the baseline's (a rollout stores the root and the next stack of every step), and on a shared machine
    # the part of the wall time that varies most from run to run.
    report(f"  same, user CPU time only {what}", user["ours"] * us, user["base"] * us, "us", baseline,
           json_path=args.json)
    report(f"  same, with a policy (the generic step path) {what}", wall["policy"] * us, wall["base"] * us, "us",
           baseline, json_path=args.json)
    report(f"  same, as the plain transform chain (make(fused=False)) {what}", wall["chain"] * us,
           wall["base"] * us, "us", baseline, json_path=args.json)
    env.close()
    chain.close()


if __name__ == "__main__":
    main()
