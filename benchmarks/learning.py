"""Learning benchmark: env steps and training seconds until each recipe reaches its target.

Each case trains a recipe from its DEFAULT config (plus the case's env; see ``CASES``) for several
seeds. Every ``eval_every`` frames the policy is evaluated deterministically (mean return over 20
episodes; the clock is paused meanwhile) and the run stops as soon as the mean reaches the target:
475 on CartPole-v1, -200 on Pendulum-v1. The table reports the median and the range over seeds of
the env steps and training seconds at that first successful evaluation. A seed that never reaches
the target within the recipe's default budget counts as unsolved (and is left out of the medians).

Run (markdown table at the end)::

    python benchmarks/learning.py --algos ppo,a2c --seeds 5
    python benchmarks/learning.py --quick          # seconds: checks the script runs

Adding a recipe: register it in ``rlbench.recipes.ALGORITHMS`` and add its cases below
(``CASES[algo] = [env, ...]``, an entry may be ``(env, {field: value})`` to change a few defaults
for that env, shown in the table; targets come from ``TARGETS`` by env, ``EVAL_EVERY`` sets the
evaluation period). An algorithm without an entry runs on its Config's default env.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from rlbench.recipes import ALGORITHMS, apply_overrides, get_recipe

TARGETS = {"CartPole-v1": 475.0, "native:CartPole": 475.0, "Pendulum-v1": -200.0, "native:Pendulum": -200.0}
"""Mean evaluation return that counts as solved, per env."""

EVAL_EVERY = {"CartPole-v1": 2048, "native:CartPole": 2048, "Pendulum-v1": 1000, "native:Pendulum": 1000}
"""Frames between evaluations (the resolution of the reported env steps)."""

CASES = {
    # same defaults on the native env (wider batches, 32-64 envs, solved fewer seeds within the budget)
    "ppo": ["CartPole-v1", "native:CartPole"],
    "a2c": ["CartPole-v1"],
    "dqn": ["CartPole-v1"],
    "rainbow": ["CartPole-v1"],
    "ddpg": ["Pendulum-v1"],
    "td3": ["Pendulum-v1"],
    "sac": ["Pendulum-v1"],
    "redq": ["Pendulum-v1"],
    "impala": ["CartPole-v1"],  # asynchronous: 2 local actor processes, so timings vary run to run
}
"""Envs each algorithm is benchmarked on: a name, or (name, config changes for that case)."""

REFERENCES = {
    ("ppo", "CartPole-v1"): "SB3 PPO (rl-zoo): 15k-25k steps, 4.3-7.4 s (median 5.5 s)",
    ("ppo", "native:CartPole"): "goal: < 3 s",
    ("dqn", "CartPole-v1"): "rl-zoo DQN: 50k steps",
    ("sac", "Pendulum-v1"): "SB3 SAC: ~240 s for 20k steps",
}
"""What each result is compared with (measured elsewhere; see benchmarks/README.md)."""


def run_case(algo: str, env: str, case_config: dict, seed: int, overrides: list[str], quick: bool) -> dict:
    recipe = get_recipe(algo)
    config = apply_overrides(recipe.Config(), {"env": env, "seed": seed, "target_return": TARGETS.get(env),
                                               "eval_every": EVAL_EVERY.get(env, 2000), "out_dir": None,
                                               **case_config})
    if quick:  # a few hundred frames: proves the wiring, not the learning
        per_batch = getattr(config, "num_envs", 1) * getattr(config, "steps_per_env", 1)
        config = apply_overrides(config, {"frames": max(256, per_batch), "eval_every": max(256, per_batch),
                                          "eval_episodes": 2})
    config = apply_overrides(config, overrides)
    results = recipe.train(config, progress=False)
    return {"solved": results.solved_frames is not None, "frames": results.solved_frames,
            "seconds": results.solved_time, "final": results.final_eval_return, "budget": config.frames,
            "total_frames": results.frames, "train_time": results.train_time}


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", default="ppo,a2c", help="comma-separated recipes (default ppo,a2c); 'all': every "
                                                          f"registered one ({', '.join(sorted(ALGORITHMS))})")
    parser.add_argument("--envs", default=None, help="comma-separated envs instead of each algorithm's CASES")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (0, 1, ...)")
    parser.add_argument("--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override Config fields in every case (for tuning)")
    parser.add_argument("--quick", action="store_true", help="a few hundred frames per case: checks the script runs")
    args = parser.parse_args()
    algos = sorted(ALGORITHMS) if args.algos == "all" else [a.strip() for a in args.algos.split(",") if a.strip()]
    if args.quick:
        args.seeds = 1

    rows = []
    for algo in algos:
        recipe = get_recipe(algo)
        envs = args.envs.split(",") if args.envs else CASES.get(algo, [recipe.Config().env])
        for case in envs:
            env, case_config = (case, {}) if isinstance(case, str) else case
            if args.envs:  # an env named on the command line keeps the case's changes when it has a case
                case_config = next((c[1] for c in CASES.get(algo, []) if not isinstance(c, str) and c[0] == env), {})
            runs = []
            for seed in range(args.seeds):
                out = run_case(algo, env, case_config, seed, args.config, args.quick)
                runs.append(out)
                status = (f"solved at {out['frames']} steps, {out['seconds']:.2f} s" if out["solved"]
                          else f"not solved in {out['total_frames']} steps (final {out['final']:.1f})")
                print(f"{algo:>8} {env:>16} seed {seed}: {status}", flush=True)
            solved = [r for r in runs if r["solved"]]
            changes = " ".join(f"{k}={v}" for k, v in {**case_config, **dict(
                o.split("=", 1) for o in args.config)}.items()) or "defaults"
            rows.append((algo, env, changes, f"{len(solved)}/{len(runs)}",
                         _spread([r["frames"] for r in solved], ".0f"),
                         _spread([r["seconds"] for r in solved], ".2f"), f"{runs[0]['budget']}",
                         REFERENCES.get((algo, env), "")))

    load = os.getloadavg()
    print()
    print(f"Learning benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, torch {torch.__version__}; command: "
          f"python benchmarks/learning.py {' '.join(sys.argv[1:])})")
    print()
    print("| algo | env | config | solved | env steps to target, median [min-max] | training s, median [min-max] "
          "| budget | reference |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
