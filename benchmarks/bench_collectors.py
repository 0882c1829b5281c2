"""Collector throughput (frames/s) on CartPole-v1 with a small MLP policy, against a hand-written loop.

Compared in the same run, at 1, 8 and 32 envs:

- ``Collector(GymEnv("CartPole-v1", num_envs=N), policy)`` (gymnasium ``SyncVectorEnv`` underneath);
- ``Collector(SerialEnv(N, GymEnv("CartPole-v1")), policy)``;
- the baseline: a loop over gymnasium's ``SyncVectorEnv`` that converts the observation to torch, runs the
  same MLP (4-64-64-2, argmax), steps, and stores obs/action/reward/done into preallocated tensors.

Target: >= 0.8x the hand-written loop's frames/s. Also printed, for context:

- ``Collector(CartPoleEnv(batch_size=[N]))``: rlbench's torch-native CartPole (same dynamics, stepped as
  one batch of tensor ops) against the same gymnasium baseline -- what a user gains by switching env;
- ``env loop``: ``policy`` + ``env.step_and_maybe_reset`` over the ``GymEnv`` in a bare loop, no
  collector: the ceiling the collector's own work (storing, ids) can reach on that env.

Where the time goes (1 env, measured 2026-11-24): the hand loop's step is ~80 us (MLP ~55 us, gym step
~25 us). For both envs above the collector runs a fused loop (``rlbench/collectors/_fused.py``): the
policy's module is called on the observation tensor and the env hands its step over as NumPy arrays
that are assigned into the batch buffers, so no TensorDict is built and nothing is stacked per step.
``SerialEnv`` of single ``GymEnv``s also skips ``SyncVectorEnv``'s own bookkeeping, so it runs faster
than the vector path. ``env loop`` (the generic ``step_and_maybe_reset`` with TensorDicts, through
``TensorDictModule``) shows what the unfused path costs. See benchmarks/README.md ("Collectors").

Run: ``python benchmarks/bench_collectors.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import gymnasium
import numpy as np
import torch
from _harness import best_time, parse_args, report
from gymnasium.vector import AutoresetMode
from tensordict.nn import TensorDictModule

from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv, GymEnv, SerialEnv


def make_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2)
    )


class ArgmaxPolicy(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, obs):
        return self.net(obs).argmax(-1)


def hand_loop(venv, actor, n_envs: int, steps: int) -> None:
    """The baseline a user writes by hand over a gymnasium vector env."""
    obs_buf = torch.empty(steps, n_envs, 4)
    act_buf = torch.empty(steps, n_envs, dtype=torch.int64)
    rew_buf = torch.empty(steps, n_envs)
    done_buf = torch.empty(steps, n_envs, dtype=torch.bool)
    obs, _ = venv.reset(seed=0)
    with torch.no_grad():
        for t in range(steps):
            obs_t = torch.from_numpy(obs.astype(np.float32))
            action = actor(obs_t)
            obs, reward, term, trunc, _ = venv.step(action.numpy())
            obs_buf[t] = obs_t
            act_buf[t] = action
            rew_buf[t] = torch.from_numpy(reward)
            done_buf[t] = torch.from_numpy(term | trunc)


def env_loop(env, policy, steps: int) -> None:
    """The env alone: policy + step_and_maybe_reset, nothing stored (a diagnostic, not a baseline)."""
    td = env.reset()
    with torch.no_grad():
        for _ in range(steps):
            _, td = env.step_and_maybe_reset(policy(td))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes = (1, 8) if args.quick else (1, 8, 32)
    frames = 256 if args.quick else 8192
    actor = ArgmaxPolicy(make_net())  # the same module object runs in the baseline and in the collectors
    policy = TensorDictModule(actor, in_keys=["observation"], out_keys=["action"])
    for n in sizes:
        steps = max(1, frames // n)
        venv = gymnasium.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync",
                                  vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
        vec_col = Collector(GymEnv("CartPole-v1", num_envs=n), policy, frames_per_batch=steps * n)
        ser_col = Collector(SerialEnv(n, lambda: GymEnv("CartPole-v1")), policy, frames_per_batch=steps * n)
        native_col = Collector(CartPoleEnv(batch_size=[n]), policy, frames_per_batch=steps * n)
        for c in (vec_col, ser_col, native_col):
            c.set_seed(0)
        runs = {
            "hand": lambda: hand_loop(venv, actor, n, steps),
            "vector": vec_col.collect,
            "serial": ser_col.collect,
            "native": native_col.collect,
            "env": lambda: env_loop(vec_col.env, policy, steps),
        }
        for fn in runs.values():
            fn()  # warm-up: first-call costs, buffer layouts
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeats):  # interleaved: the three see the same machine load
            for name, fn in runs.items():
                best[name] = min(best[name], best_time(fn, 1))
        fps = {name: steps * n / t for name, t in best.items()}
        report(f"Collector(GymEnv num_envs={n}) frames/s", fps["vector"], fps["hand"], "frames/s",
               "hand-written SyncVectorEnv loop", target=">= 0.8x", higher_is_better=True, json_path=args.json)
        report(f"Collector(SerialEnv({n})) frames/s", fps["serial"], fps["hand"], "frames/s",
               "hand-written SyncVectorEnv loop", target=">= 0.8x", higher_is_better=True, json_path=args.json)
        report(f"Collector(CartPoleEnv(batch_size=[{n}])) frames/s", fps["native"], fps["hand"], "frames/s",
               "hand-written SyncVectorEnv loop", higher_is_better=True, json_path=args.json)
        report(f"  env loop only (GymEnv num_envs={n}, no collector) frames/s", fps["env"], fps["hand"], "frames/s",
               "hand-written SyncVectorEnv loop", higher_is_better=True, json_path=args.json)
        for c in (vec_col, ser_col, native_col):
            c.shutdown()
            c.env.close()
        venv.close()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
