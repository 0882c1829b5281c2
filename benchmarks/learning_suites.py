"""Learning on the standard suites: rlbench's recipes beside Stable-Baselines3, in the same run.

Three cases, each at a small budget this class of machine allows (``--frames`` changes it):

* ``sac-dmc``: SAC on ``dmc:cartpole-swingup`` from states;
* ``sac-cheetah``: SAC on ``HalfCheetah-v5`` (gymnasium's MuJoCo);
* ``ppo-pong``: PPO on ``ALE/Pong-v5`` from pixels.

rlbench runs each recipe with the published defaults of the env's family (``FAMILY_DEFAULTS`` in the
recipe's Config: rl-baselines3-zoo for MuJoCo and Atari, pytorch_sac for DMC states); Stable-Baselines3
runs its own algorithm with the same hyperparameters (rl-baselines3-zoo's for HalfCheetah and Atari;
the zoo has no DeepMind Control entry, so SB3's SAC on DMC gets the same pytorch_sac values). Both sides
use ``torch.set_num_threads(--threads)``, seed 0 (``--seed``), and evaluate the deterministic policy every
``eval_every`` frames on ``--eval-episodes`` fresh episodes, with the training clock paused. Each result
is a table of evaluation return against env frames and against training seconds, and the published
figure for the full budget. Atari returns are of sign-clipped rewards on both sides (the same as the game
score for Pong). A frame is an agent step (after the frame skip, the action repeat).

Stable-Baselines3 is needed for this script only: ``pip install stable-baselines3 opencv-python-headless``
(SB3 2.x; OpenCV for its Atari wrappers). Neither is an rlbench dependency and the test suite installs
neither. ``--no-sb3`` runs rlbench alone.

Run::

    python benchmarks/learning_suites.py                     # all cases, default budgets (about an hour)
    python benchmarks/learning_suites.py --cases sac-dmc --frames 50000
    python benchmarks/learning_suites.py --quick             # a smoke run: both libraries, tiny budgets
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from rlbench.recipes import get_recipe  # noqa: E402

CASES = {
    "sac-dmc": dict(algo="sac", env="dmc:cartpole-swingup", frames=20_000, eval_every=5_000,
                    published="state SAC ~850-870 at 500k env steps (SAC-AE / DrQ papers' state baselines, "
                              "action repeat 8 there)"),
    "sac-cheetah": dict(algo="sac", env="HalfCheetah-v5", frames=30_000, eval_every=10_000,
                        published="SB3 SAC 9535 +- 100 at 1M steps (HalfCheetah-v3, SB3 docs / rl-zoo benchmark)"),
    "ppo-pong": dict(algo="ppo", env="ALE/Pong-v5", frames=200_000, eval_every=50_000,
                     published="rl-zoo PPO ~21 (the maximum) at 10M frames (PongNoFrameskip-v4)"),
}
"""Each case: the recipe, the env, the default budget and evaluation period, and the published figure."""

QUICK = {
    "sac": dict(frames=600, eval_every=300, init_random_frames=200, batch_size=64, hidden_sizes=(64, 64)),
    "ppo": dict(frames=512, eval_every=256, num_envs=2, steps_per_env=128, minibatch_size=128),
}
"""--quick: budgets of a few hundred frames and small networks, on both sides (proves the wiring only)."""


# ------------------------------------------------------------------------------------------ rlbench
def rlbench_config(case: dict, args, quick: dict):
    recipe = get_recipe(case["algo"])
    fields = dict(env=case["env"], frames=args.frames or case["frames"], eval_every=case["eval_every"],
                  eval_episodes=args.eval_episodes, seed=args.seed, torch_threads=args.threads, target_return=None,
                  eval_max_steps=args.eval_max_steps, out_dir=None) | quick
    return recipe, recipe.Config(**fields)


def run_rlbench(case: dict, args, quick: dict) -> list[tuple[int, float, float]]:
    recipe, config = rlbench_config(case, args, quick)
    results = recipe.train(config, progress=False)
    return [(row["frames"], row["train_time"], row["eval_return"]) for row in results.curve]


# ------------------------------------------------------------------------------------------ Stable-Baselines3
def _dmc_gym_env(domain: str, task: str, seed: int):
    """dm_control task as a gymnasium env: observation arrays concatenated in the task's order (as rlbench's)."""
    import gymnasium
    from dm_control import suite

    class DMCGym(gymnasium.Env):
        def __init__(self):
            self._env = suite.load(domain, task, task_kwargs={"random": seed})
            spec = self._env.action_spec()
            self.action_space = gymnasium.spaces.Box(spec.minimum.astype(np.float32),
                                                     spec.maximum.astype(np.float32), dtype=np.float32)
            size = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (size,), dtype=np.float32)

        def _obs(self, step):
            return np.concatenate([np.asarray(v, np.float32).ravel() for v in step.observation.values()])

        def reset(self, *, seed=None, options=None):
            return self._obs(self._env.reset()), {}

        def step(self, action):
            step = self._env.step(action)
            last = step.last()
            terminated = bool(last and step.discount == 0)
            return self._obs(step), float(step.reward or 0.0), terminated, bool(last and not terminated), {}

    return DMCGym()


def _sb3_setup(case: dict, args, quick: dict):
    """The SB3 model (its rl-zoo / published hyperparameters) and a function making one evaluation env."""
    import gymnasium
    from stable_baselines3 import PPO, SAC

    _, ours = rlbench_config(case, args, quick)  # the same numbers as the rlbench side
    if case["algo"] == "sac":
        if case["env"].startswith("dmc:"):
            domain, task = case["env"][4:].split("-", 1)
            make = lambda seed: _dmc_gym_env(domain, task, seed)  # noqa: E731
        else:
            make = lambda seed: gymnasium.make(case["env"])  # noqa: E731
        model = SAC("MlpPolicy", make(args.seed), learning_rate=ours.lr, buffer_size=ours.buffer_size,
                    learning_starts=ours.init_random_frames, batch_size=ours.batch_size, tau=ours.tau,
                    gamma=ours.gamma, ent_coef=f"auto_{ours.alpha_init}",
                    policy_kwargs=dict(net_arch=list(ours.hidden_sizes)), seed=args.seed, verbose=0)
        return model, lambda: make(args.seed + 10_000), False
    import ale_py
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gymnasium.register_envs(ale_py)

    def atari(n: int, seed: int):  # frameskip=1: SB3's AtariWrapper skips 4 frames with max-pooling itself
        return VecFrameStack(make_atari_env(case["env"], n_envs=n, seed=seed, env_kwargs=dict(frameskip=1)), 4)

    def linear(start):  # rl-zoo's lin_2.5e-4 / lin_0.1
        return lambda remaining: remaining * start

    model = PPO("CnnPolicy", atari(ours.num_envs, args.seed), n_steps=ours.steps_per_env, n_epochs=ours.epochs,
                batch_size=ours.minibatch_size, learning_rate=linear(ours.lr), clip_range=linear(ours.clip_epsilon),
                ent_coef=ours.entropy_coef, vf_coef=ours.critic_coef, gamma=ours.gamma, gae_lambda=ours.gae_lambda,
                max_grad_norm=ours.max_grad_norm, seed=args.seed, verbose=0)
    return model, lambda: atari(1, args.seed + 10_000), True


def _sb3_evaluate(model, make_env, episodes: int, max_steps: int, vec: bool) -> float:
    returns = []
    env = make_env()
    for _ in range(episodes):
        obs = env.reset() if vec else env.reset()[0]
        total, steps, done = 0.0, 0, False
        while not done and (not max_steps or steps < max_steps):
            action, _ = model.predict(obs, deterministic=True)
            if vec:
                obs, reward, dones, _ = env.step(action)
                total, done = total + float(reward[0]), bool(dones[0])
            else:
                obs, reward, terminated, truncated, _ = env.step(action)
                total, done = total + float(reward), terminated or truncated
            steps += 1
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def run_sb3(case: dict, args, quick: dict) -> list[tuple[int, float, float]]:
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(args.threads)
    model, make_eval_env, vec = _sb3_setup(case, args, quick)
    _, ours = rlbench_config(case, args, quick)
    curve: list = []
    clock = {"start": time.perf_counter(), "paused": 0.0, "next": ours.eval_every}

    def evaluate(frames: int) -> None:
        t0 = time.perf_counter()
        train_time = t0 - clock["start"] - clock["paused"]
        mean = _sb3_evaluate(model, make_eval_env, ours.eval_episodes, ours.eval_max_steps, vec)
        curve.append((frames, round(train_time, 4), mean))
        clock["paused"] += time.perf_counter() - t0

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= clock["next"]:
                clock["next"] += ours.eval_every
                evaluate(self.num_timesteps)
            return True

    model.learn(total_timesteps=ours.frames, callback=Every())
    if not curve or curve[-1][0] != model.num_timesteps:
        evaluate(model.num_timesteps)
    return curve


# ------------------------------------------------------------------------------------------ report
def table(name: str, case: dict, curves: dict) -> str:
    lines = [f"### {name}: {case['algo']} on {case['env']}", "", "| library | frames | train s | eval return |",
             "| --- | --- | --- | --- |"]
    for library, curve in curves.items():
        if isinstance(curve, str):
            lines.append(f"| {library} | - | - | {curve} |")
        for frames, seconds, ret in curve if not isinstance(curve, str) else ():
            lines.append(f"| {library} | {frames} | {seconds:.1f} | {ret:.1f} |")
    lines += ["", f"Published, full budget: {case['published']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--frames", type=int, default=0, help="budget of every case (default: each case's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--eval-max-steps", type=int, default=0, help="cap evaluation episodes (0: the env's)")
    parser.add_argument("--no-sb3", action="store_true", help="rlbench only")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks that the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.eval_episodes, args.eval_max_steps = 1, args.eval_max_steps or 50
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {', '.join(CASES)}")
    have_sb3 = not args.no_sb3
    if have_sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            sys.stderr.write("stable-baselines3 is not installed (pip install stable-baselines3 "
                             "opencv-python-headless): rlbench only\n")
            have_sb3 = False
    out = []
    for name in names:
        case = CASES[name]
        quick = QUICK[case["algo"]] if args.quick else {}
        curves = {"rlbench": run_rlbench(case, args, quick)}
        if have_sb3:
            curves["Stable-Baselines3"] = run_sb3(case, args, quick)
        out.append(table(name, case, curves))
        sys.stdout.write(out[-1] + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
