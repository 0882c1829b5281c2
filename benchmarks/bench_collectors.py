"""Collector throughput (frames/s) on CartPole-v1 with a small MLP policy, against a hand-written loop.

Compared in the same run, at 1, 8 and 32 envs:

- ``Collector(GymEnv("CartPole-v1", num_envs=N), policy)`` (gymnasium ``SyncVectorEnv`` underneath);
- ``Collector(SerialEnv(N, GymEnv("CartPole-v1")), policy)``;
- the baseline: a loop over gymnasium's ``SyncVectorEnv`` that converts the observation to torch, runs the
  same MLP (4-64-64-2, argmax), steps, and stores obs/action/reward/done into preallocated tensors.

Target: >= 0.8x the hand-written loop's frames/s. Issue 17 adds two policy/env kinds, each against its
own hand loop (target: the collector at most 1.1x the hand loop's time, i.e. >= 0.91x its frames/s):

- ``ppo``: a PPO-style ``ProbabilisticActor`` (the same MLP writing ``"logits"``, a ``Categorical`` head
  sampling the action and writing ``"sample_log_prob"``); the hand loop builds the same
  ``torch.distributions.Categorical``, samples, computes the log-prob and stores it with the rest;
- ``dict``: CartPole with a ``Dict`` observation space (``{"position", "velocity"}``, two floats each) and
  an argmax policy reading both keys; the hand loop converts and stores each key.

Also printed, for context:

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

``--compile`` also times ``Collector(..., compile_policy=True)`` on the ``ppo`` rows and prints the
compile time of its first batch.

Run: ``python benchmarks/bench_collectors.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import sys
import time

import gymnasium
import numpy as np
import torch
from _harness import best_time, parse_args, report
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from tensordict.nn import TensorDictModule

from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv, GymEnv, SerialEnv
from rlbench.modules import ProbabilisticActor

DICT_ID = "DictCartPole-v1"


class DictObservation(gymnasium.ObservationWrapper):
    """CartPole with a Dict observation: ``position`` (x, theta) and ``velocity`` (x_dot, theta_dot)."""

    def __init__(self, env):
        super().__init__(env)
        box = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = spaces.Dict({"position": box, "velocity": box})

    def observation(self, obs):
        return {"position": obs[[0, 2]], "velocity": obs[[1, 3]]}


if DICT_ID not in gymnasium.registry:
    gymnasium.register(DICT_ID, entry_point=lambda **kw: DictObservation(gymnasium.make("CartPole-v1", **kw)))


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


class DictArgmax(torch.nn.Module):
    """The same MLP on the Dict observation's two halves, put back in CartPole's order."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, position, velocity):
        obs = torch.stack([position[..., 0], velocity[..., 0], position[..., 1], velocity[..., 1]], -1)
        return self.net(obs).argmax(-1)


def ppo_actor(net) -> ProbabilisticActor:
    return ProbabilisticActor(TensorDictModule(net, in_keys=["observation"], out_keys=["logits"]),
                              in_keys=["logits"], distribution_class=torch.distributions.Categorical,
                              return_log_prob=True)


def hand_loop_ppo(venv, net, n_envs: int, steps: int) -> None:
    """The PPO data loop by hand: logits, Categorical, sample, log-prob; stores what PPO needs."""
    obs_buf = torch.empty(steps, n_envs, 4)
    act_buf = torch.empty(steps, n_envs, dtype=torch.int64)
    logp_buf = torch.empty(steps, n_envs)
    rew_buf = torch.empty(steps, n_envs)
    done_buf = torch.empty(steps, n_envs, dtype=torch.bool)
    obs, _ = venv.reset(seed=0)
    with torch.no_grad():
        for t in range(steps):
            obs_t = torch.from_numpy(obs.astype(np.float32))
            dist = torch.distributions.Categorical(logits=net(obs_t))
            action = dist.sample()
            logp = dist.log_prob(action)
            obs, reward, term, trunc, _ = venv.step(action.numpy())
            obs_buf[t] = obs_t
            act_buf[t] = action
            logp_buf[t] = logp
            rew_buf[t] = torch.from_numpy(reward)
            done_buf[t] = torch.from_numpy(term | trunc)


def hand_loop_dict(venv, actor, n_envs: int, steps: int) -> None:
    """The hand loop over a Dict-observation vector env: each key converted and stored."""
    pos_buf = torch.empty(steps, n_envs, 2)
    vel_buf = torch.empty(steps, n_envs, 2)
    act_buf = torch.empty(steps, n_envs, dtype=torch.int64)
    rew_buf = torch.empty(steps, n_envs)
    done_buf = torch.empty(steps, n_envs, dtype=torch.bool)
    obs, _ = venv.reset(seed=0)
    with torch.no_grad():
        for t in range(steps):
            pos = torch.from_numpy(obs["position"].astype(np.float32))
            vel = torch.from_numpy(obs["velocity"].astype(np.float32))
            action = actor(pos, vel)
            obs, reward, term, trunc, _ = venv.step(action.numpy())
            pos_buf[t] = pos
            vel_buf[t] = vel
            act_buf[t] = action
            rew_buf[t] = torch.from_numpy(reward)
            done_buf[t] = torch.from_numpy(term | trunc)


def make_vec(env_id: str, n: int):
    return gymnasium.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                              vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})


def timed(runs: dict, repeats: int) -> dict:
    """Best seconds of each run, interleaved so that all of them see the same machine load."""
    for fn in runs.values():
        fn()  # warm-up: first-call costs, buffer layouts
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            best[name] = min(best[name], best_time(fn, 1))
    return best


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
    compile_flag = "--compile" in sys.argv
    if compile_flag:
        sys.argv.remove("--compile")
    args = parse_args(__doc__.splitlines()[0])
    sizes = (1, 8) if args.quick else (1, 8, 32)
    frames = 256 if args.quick else 8192
    net = make_net()
    actor = ArgmaxPolicy(net)  # the same module object runs in the baseline and in the collectors
    policy = TensorDictModule(actor, in_keys=["observation"], out_keys=["action"])
    ppo = ppo_actor(net)
    dict_actor = DictArgmax(net)
    dict_policy = TensorDictModule(dict_actor, in_keys=["position", "velocity"], out_keys=["action"])
    hand = "hand-written SyncVectorEnv loop"
    for n in sizes:
        steps = max(1, frames // n)
        fpb = steps * n

        def col(env, pol, **kw):
            c = Collector(env, pol, frames_per_batch=fpb, **kw)
            c.set_seed(0)
            return c

        venv = make_vec("CartPole-v1", n)
        dict_venv = make_vec(DICT_ID, n)
        cols = {
            "vector": col(GymEnv("CartPole-v1", num_envs=n), policy),
            "serial": col(SerialEnv(n, lambda: GymEnv("CartPole-v1")), policy),
            "native": col(CartPoleEnv(batch_size=[n]), policy),
            "ppo vector": col(GymEnv("CartPole-v1", num_envs=n), ppo),
            "ppo serial": col(SerialEnv(n, lambda: GymEnv("CartPole-v1")), ppo),
            "dict vector": col(GymEnv(DICT_ID, num_envs=n), dict_policy),
            "dict serial": col(SerialEnv(n, lambda: GymEnv(DICT_ID)), dict_policy),
        }
        compile_s = None
        if compile_flag:
            cols["ppo vector compiled"] = col(GymEnv("CartPole-v1", num_envs=n), ppo, compile_policy=True)
            start = time.perf_counter()
            cols["ppo vector compiled"].collect()  # the first batch compiles
            compile_s = time.perf_counter() - start
        runs = {
            "hand": lambda: hand_loop(venv, actor, n, steps),
            "hand ppo": lambda: hand_loop_ppo(venv, net, n, steps),
            "hand dict": lambda: hand_loop_dict(dict_venv, dict_actor, n, steps),
            **{name: c.collect for name, c in cols.items()},
            "env": lambda: env_loop(cols["vector"].env, policy, steps),
        }
        fps = {name: fpb / t for name, t in timed(runs, args.repeats).items()}

        def row(title, name, base, target=""):
            report(title, fps[name], fps[base], "frames/s", hand if base == "hand" else f"{hand} ({base})",
                   target=target, higher_is_better=True, json_path=args.json)

        row(f"Collector(GymEnv num_envs={n}) frames/s", "vector", "hand", ">= 0.8x")
        row(f"Collector(SerialEnv({n})) frames/s", "serial", "hand", ">= 0.8x")
        row(f"Collector(GymEnv num_envs={n}), ProbabilisticActor frames/s", "ppo vector", "hand ppo", ">= 0.91x")
        row(f"Collector(SerialEnv({n})), ProbabilisticActor frames/s", "ppo serial", "hand ppo", ">= 0.91x")
        if compile_flag:
            row(f"  same, compile_policy=True (first batch {compile_s:.1f} s) frames/s", "ppo vector compiled",
                "hand ppo")
        row(f"Collector(GymEnv Dict obs num_envs={n}) frames/s", "dict vector", "hand dict", ">= 0.91x")
        row(f"Collector(SerialEnv({n}) Dict obs) frames/s", "dict serial", "hand dict", ">= 0.91x")
        row(f"Collector(CartPoleEnv(batch_size=[{n}])) frames/s", "native", "hand")
        row(f"  env loop only (GymEnv num_envs={n}, no collector) frames/s", "env", "hand")
        for c in cols.values():
            c.shutdown()
            c.env.close()
        venv.close()
        dict_venv.close()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
