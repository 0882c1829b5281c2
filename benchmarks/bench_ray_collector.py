"""RayCollector (2 Ray actors) against MultiSyncCollector / MultiAsyncCollector (2 worker processes).

CartPole-v1, a small MLP policy (4 -> 64 -> 2, argmax), N envs in all, the same on both sides: every
actor or worker runs a ``Collector`` over ``SerialEnv(N // 2, GymEnv("CartPole-v1"))``.

- ours: ``RayCollector`` with 2 actors on a local Ray instance (``num_cpus=2``, dashboard off,
  127.0.0.1), ``sync=True`` and ``sync=False``; batches come through Ray's object store;
- baseline: ``MultiSyncCollector`` / ``MultiAsyncCollector`` with 2 workers (shared-memory batches),
  measured in the same run.

Frames per second, higher is better; target >= 0.8x (the object store must not be the bottleneck).

Then against TorchRL's Ray collector (``torchrl.collectors.distributed.RayCollector``, target >= 2x):
in a child interpreter that can import TorchRL (``--torchrl-path DIR``, default ``/tmp/trl_site`` if it
exists; the Ray workers get it through ``PYTHONPATH``), both collectors run on ONE local Ray instance,
alternately, with the same actors (2, one CPU each), frames per batch, sync mode and policy (the same
MLP weights), each actor over ``SerialEnv(N // 2, GymEnv("CartPole-v1"))`` of its own library (TorchRL's
``GymEnv`` with ``categorical_action_encoding=True``, so the same argmax action fits both).

``python benchmarks/bench_ray_collector.py [--quick] [--torchrl-path DIR] [--no-torchrl]``.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray instance on 127.0.0.1 only

import torch  # noqa: E402
from _harness import best_time, parse_args, report  # noqa: E402
from tensordict.nn import TensorDictModule  # noqa: E402

from rlbench.collectors import MultiAsyncCollector, MultiSyncCollector, RayCollector  # noqa: E402
from rlbench.envs import GymEnv, SerialEnv  # noqa: E402

WORKERS = 2
DEFAULT_TORCHRL_PATH = "/tmp/trl_site"


class ArgmaxMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))

    def forward(self, obs):
        return self.net(obs).argmax(-1)


def make_env_fn(n_sub: int):
    return lambda: SerialEnv(n_sub, lambda: GymEnv("CartPole-v1"))


def make_torchrl_env(n_sub: int):
    """TorchRL's SerialEnv of its GymEnv("CartPole-v1") (actions as indices, like rlbench's), built in the actor."""
    from torchrl.envs import GymEnv as TorchRLGymEnv
    from torchrl.envs import SerialEnv as TorchRLSerialEnv

    return TorchRLSerialEnv(n_sub, lambda: TorchRLGymEnv("CartPole-v1", categorical_action_encoding=True))


def frames_per_second(collector, frames: int, batches: int, repeats: int) -> float:
    it = iter(collector)
    next(it)  # warm-up: envs built, buffers allocated

    def run():
        for _ in range(batches):
            next(it)

    return frames * batches / best_time(run, repeats)


def make_policy():
    torch.manual_seed(0)
    return TensorDictModule(ArgmaxMLP(), in_keys=["observation"], out_keys=["action"])


def plan(n: int, quick: bool, sync: bool) -> tuple[int, int, int]:
    """(frames_per_batch, frames per yielded batch, batches timed) for ``n`` envs in all."""
    steps = 10 if quick else 200  # per env per batch
    frames = n * steps  # per iteration, all workers together
    batches = 2 if quick else 5
    fpb = frames if sync else frames // WORKERS
    return fpb, fpb, batches if sync else batches * WORKERS


def against_multiprocess(sizes, args) -> None:
    policy = make_policy()
    for n in sizes:
        makers = [make_env_fn(n // WORKERS)] * WORKERS
        for sync in (True, False):
            fpb, per_iter, k = plan(n, args.quick, sync)
            with RayCollector(makers, policy, frames_per_batch=fpb, total_frames=-1, sync=sync) as collector:
                ours = frames_per_second(collector, per_iter, k, args.repeats)
            baseline_cls = MultiSyncCollector if sync else MultiAsyncCollector
            with baseline_cls(makers, policy, frames_per_batch=fpb, total_frames=-1) as collector:
                baseline = frames_per_second(collector, per_iter, k, args.repeats)
            report(f"RayCollector(2 actors, sync={sync}, {n} envs) CartPole+MLP", ours, baseline, "frames/s",
                   f"{baseline_cls.__name__}(2 workers)", target=">= 0.8x", higher_is_better=True,
                   json_path=args.json)


def torchrl_rounds(sizes, repeats: int, quick: bool) -> dict:
    """In a process that can import TorchRL and has Ray connected: both Ray collectors, alternately."""
    import torchrl
    from torchrl.collectors.distributed import RayCollector as TorchRLRayCollector

    policy = make_policy()
    results = {"version": torchrl.__version__, "rows": []}
    for n in sizes:
        for sync in (True,) if quick else (True, False):  # a quick run only checks that both run
            fpb, per_iter, k = plan(n, quick, sync)
            with RayCollector([make_env_fn(n // WORKERS)] * WORKERS, policy, frames_per_batch=fpb, total_frames=-1,
                              sync=sync) as collector:
                ours = frames_per_second(collector, per_iter, k, repeats)
            makers = [functools.partial(make_torchrl_env, n // WORKERS)] * WORKERS
            # TorchRL's total_frames=-1 yields nothing: a budget it never reaches instead
            theirs_collector = TorchRLRayCollector(makers, policy, frames_per_batch=fpb, total_frames=10**12,
                                                   sync=sync, num_collectors=WORKERS,
                                                   remote_configs={"num_cpus": 1})
            try:
                theirs = frames_per_second(theirs_collector, per_iter, k, repeats)
            finally:
                theirs_collector.shutdown()
            results["rows"].append({"n": n, "sync": sync, "ours": ours, "theirs": theirs})
    return results


CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[2])
import ray
import bench_ray_collector as brc
sizes, repeats, quick = json.loads(sys.argv[1])
ray.init(address="local", num_cpus=brc.WORKERS, include_dashboard=False, log_to_driver=False)
try:
    out = brc.torchrl_rounds(sizes, repeats, quick)
finally:
    ray.shutdown()
print(json.dumps(out))
"""


def against_torchrl(sizes, args, path: str | None) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    # the driver and Ray's workers (which inherit the local instance's environment) import TorchRL and this file
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, here, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([sizes, args.repeats, args.quick]), here],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        why = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        print(f"RayCollector vs TorchRL's RayCollector: not measured: the TorchRL run failed ({why})")
        return
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for row in out["rows"]:
        report(f"RayCollector(2 actors, sync={row['sync']}, {row['n']} envs) CartPole+MLP vs TorchRL", row["ours"],
               row["theirs"], "frames/s", f"TorchRL {out['version']} RayCollector(2 actors)", target=">= 2x",
               higher_is_better=True, json_path=args.json)


def main():
    path = DEFAULT_TORCHRL_PATH if os.path.isdir(DEFAULT_TORCHRL_PATH) else None
    with_torchrl = "--no-torchrl" not in sys.argv
    if not with_torchrl:
        sys.argv.remove("--no-torchrl")
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--torchrl-path"):
            path = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]
            del sys.argv[i:i + (1 if "=" in arg else 2)]
            break
    args = parse_args(__doc__.splitlines()[0])
    try:
        import ray
    except ImportError:
        print("RayCollector vs MultiSyncCollector: ratio not measured: Ray is not installed "
              "(pip install 'rlbench[ray]')")
        return
    sizes = [2] if args.quick else [8, 32]
    ray.init(address="local", num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    try:
        against_multiprocess(sizes, args)
    finally:
        ray.shutdown()
    if with_torchrl:
        against_torchrl(sizes, args, path)


if __name__ == "__main__":  # the guard is required: workers re-import the main module
    main()
