"""IMPALA: the learner's update against TorchRL's, and a short asynchronous run's learner throughput and policy lag.

1. Learner update on one actor batch (``num_envs=16`` unrolls of ``unroll_length=20`` CartPole-v1 steps,
   collected once with the recipe's actor): rlbench's ``IMPALALoss`` (V-trace targets from the current
   actor and critic, the three terms, backward, gradient clipping, Adam step) against TorchRL's IMPALA
   learner as its ``sota-implementations/impala`` writes it (``VTrace`` under ``no_grad``, then
   ``A2CLoss``, backward, clipping, the same optimiser), on the same batch, with the same networks
   (weights copied), timed alternately in a child interpreter that can import TorchRL
   (``--torchrl-path DIR``, default ``/tmp/trl_site`` if it exists). Frames consumed per second of
   update, higher is better (the issue sets no target); the first update's losses of both are printed (equal:
   the same computation). Without TorchRL only ours is printed.
2. A short run of the recipe's loop (``backend=ray``: 2 Ray actors on a local instance, ``sync=False``):
   the learner's frames per second of its own compute (update and weight broadcast, waiting for batches
   left out) against the actors' collection rate over the same run (ratio > 1: the learner keeps up, the
   actors are the bottleneck), the wall-clock rate, and the policy lag of the batches it trained on
   (learner updates between the weights that collected a batch and the update that consumed it).

``python benchmarks/bench_impala.py [--quick] [--torchrl-path DIR] [--no-ray]``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray instance on 127.0.0.1 only

import torch  # noqa: E402

from rlbench.objectives import IMPALALoss, total_loss  # noqa: E402
from rlbench.recipes import impala  # noqa: E402
from rlbench.recipes.envs import make_env  # noqa: E402

DEFAULT_TORCHRL_PATH = "/tmp/trl_site"
NUM_ENVS, UNROLL = 16, 20


def config(**kw) -> impala.Config:
    return impala.Config(env="CartPole-v1", num_envs=NUM_ENVS, unroll_length=UNROLL, **kw)


def setup():
    """The recipe's actor and critic (seed 0) and one [16, 20] batch they collected."""
    torch.manual_seed(0)
    cfg = config()
    env = make_env(cfg.env, cfg.num_envs, seed=0)
    actor, critic = impala.make_models(env, cfg)
    with torch.no_grad():
        batch = env.rollout(UNROLL, actor, break_when_any_done=False)
    env.close()
    return cfg, actor, critic, batch


def rlbench_update(losses: dict | None = None):
    cfg, actor, critic, batch = setup()
    loss_fn = IMPALALoss(actor, critic, gamma=cfg.gamma, rho_thresh=cfg.rho_thresh, c_thresh=cfg.c_thresh,
                         entropy_coef=cfg.entropy_coef, critic_coef=cfg.critic_coef,
                         normalize_advantage=cfg.normalize_advantage)
    opt = torch.optim.Adam(loss_fn.parameters(), lr=cfg.lr, eps=1e-5)

    def update():
        out = loss_fn(batch.clone(False))
        if losses is not None:
            losses.update({k: float(v) for k, v in out.items() if k.startswith("loss_")})
        opt.zero_grad()
        total_loss(out).backward()
        torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), cfg.max_grad_norm)
        opt.step()

    return update


def torchrl_update(losses: dict | None = None):
    """TorchRL's IMPALA learner step (VTrace advantage module, then A2CLoss) on the same batch and networks."""
    from torchrl.objectives import A2CLoss
    from torchrl.objectives.value import VTrace

    cfg, actor, critic, batch = setup()
    adv = VTrace(gamma=cfg.gamma, value_network=critic, actor_network=actor, rho_thresh=cfg.rho_thresh,
                 c_thresh=cfg.c_thresh, average_adv=cfg.normalize_advantage)
    loss_fn = A2CLoss(actor_network=actor, critic_network=critic, entropy_coeff=cfg.entropy_coef,
                      critic_coeff=cfg.critic_coef, loss_critic_type="l2")
    for module in (adv, loss_fn):  # rlbench's actors write the behaviour log-prob as "sample_log_prob"
        if "sample_log_prob" in module.tensor_keys.__dict__:
            module.set_keys(sample_log_prob="sample_log_prob")
    opt = torch.optim.Adam(loss_fn.parameters(), lr=cfg.lr, eps=1e-5)

    def update():
        data = batch.clone(False)
        with torch.no_grad():
            data = adv(data)
        out = loss_fn(data)
        if losses is not None:
            losses.update({k: float(v) for k, v in out.items() if k.startswith("loss_")})
        opt.zero_grad()
        (out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]).backward()
        torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), cfg.max_grad_norm)
        opt.step()

    return update


def alternate(makers: dict, iters: int, rounds: int) -> dict:
    """Best seconds per update of each, timed in turns (round-robin: both see the same machine load)."""
    updates = {name: make() for name, make in makers.items()}
    for update in updates.values():  # warm-up
        update()
    best = {name: float("inf") for name in updates}
    for _ in range(rounds):
        for name, update in updates.items():
            start = time.perf_counter()
            for _ in range(iters):
                update()
            best[name] = min(best[name], (time.perf_counter() - start) / iters)
    return best


CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
import torch
torch.set_num_threads(1)
import torchrl
import bench_impala as bi
iters, rounds = (int(v) for v in sys.argv[1].split(","))
ours, theirs = {}, {}
bi.rlbench_update(ours)()  # the first update of each, from the same weights: the same losses?
bi.torchrl_update(theirs)()
best = bi.alternate({"rlbench": bi.rlbench_update, "torchrl": bi.torchrl_update}, iters, rounds)
best["version"] = torchrl.__version__
best["losses"] = {"rlbench": ours, "torchrl": theirs}
print(json.dumps(best))
"""


def against_torchrl(iters: int, rounds: int, path: str | None):
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", CHILD, f"{iters},{rounds}", here], env=env, capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode != 0:
        return None, " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def ray_run(updates: int) -> dict:
    """The recipe's loop for ``updates`` updates on 2 Ray actors: learner busy time, wall time, lag."""
    cfg = config(backend="ray", frames=updates * NUM_ENVS * UNROLL, num_workers=2)
    torch.manual_seed(0)
    env = make_env(cfg.env, 1)
    actor, critic = impala.make_models(env, cfg)
    env.close()
    loss_fn = IMPALALoss(actor, critic, gamma=cfg.gamma, rho_thresh=cfg.rho_thresh, c_thresh=cfg.c_thresh,
                         entropy_coef=cfg.entropy_coef, critic_coef=cfg.critic_coef,
                         normalize_advantage=cfg.normalize_advantage)
    opt = torch.optim.Adam(loss_fn.parameters(), lr=cfg.lr, eps=1e-5)
    collector = impala.make_collector(cfg, actor)
    lags, busy, frames = [], 0.0, 0
    try:
        it = iter(collector)
        start = None
        for batch in it:
            if start is None:  # the first batch includes the actors' start-up: the clock starts after it
                start = time.perf_counter()
                collector.update_policy_weights_()
                continue
            t0 = time.perf_counter()
            out = loss_fn(batch)
            opt.zero_grad()
            total_loss(out).backward()
            torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), cfg.max_grad_norm)
            opt.step()
            lags.append(collector.policy_version - int(batch["collector", "policy_version"][0, 0]))
            collector.update_policy_weights_()
            busy += time.perf_counter() - t0
            frames += batch.numel()
        wall = time.perf_counter() - start
        stats = collector.actor_stats()
    finally:
        collector.shutdown()
    return {"frames": frames, "busy": busy, "wall": wall, "lags": lags, "actors": stats}


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _harness import parse_args, report

    path = DEFAULT_TORCHRL_PATH if os.path.isdir(DEFAULT_TORCHRL_PATH) else None
    with_ray = "--no-ray" not in sys.argv
    if not with_ray:
        sys.argv.remove("--no-ray")
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--torchrl-path"):
            path = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]
            del sys.argv[i:i + (1 if "=" in arg else 2)]
            break
    args = parse_args(__doc__.splitlines()[0])
    frames = NUM_ENVS * UNROLL
    iters, rounds = (2, 2) if args.quick else (10, args.repeats)
    name = f"IMPALA learner update [{NUM_ENVS} x {UNROLL} CartPole-v1 unrolls]"
    best, error = against_torchrl(iters, rounds, path)
    if best is not None:
        report(name, frames / best["rlbench"], frames / best["torchrl"], "frames/s",
               f"TorchRL {best['version']} VTrace + A2CLoss", higher_is_better=True,
               json_path=args.json)
        ours, theirs = best["losses"]["rlbench"], best["losses"]["torchrl"]
        print("   first update's losses, rlbench / TorchRL: " + ", ".join(
            f"{k} {ours[k]:.5g} / {theirs[k]:.5g}" for k in sorted(ours) if k in theirs))
    else:
        print(f"TorchRL could not be imported ({error}): only rlbench's update is timed", flush=True)
        ours = alternate({"rlbench": rlbench_update}, iters, rounds)["rlbench"]
        print(f"{name}: {frames / ours:.4g} frames/s ({ours * 1e3:.3g} ms per update)")

    if not with_ray:
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        print("IMPALA on Ray: not measured: Ray is not installed (pip install 'rlbench[ray]')")
        return
    run = ray_run(5 if args.quick else 60)
    collect_fps = sum(a["fps"] for a in run["actors"])
    learner_fps = run["frames"] / run["busy"]
    report("IMPALA learner (2 Ray actors, sync=False) frames consumed per second of learner compute", learner_fps,
           collect_fps, "frames/s", "the 2 actors' collection rate", target="> 1 (the learner keeps up)",
           higher_is_better=True, json_path=args.json)
    lags = run["lags"]
    print(f"   wall clock: {run['frames'] / run['wall']:.4g} frames/s consumed over {len(lags)} updates; learner busy "
          f"{100 * run['busy'] / run['wall']:.0f}% of the time")
    if lags:
        print(f"   policy lag of the batches trained on: mean {sum(lags) / len(lags):.2f}, max {max(lags)} updates; "
              f"per actor: " + ", ".join(f"{a['actor']}: {a['fps']:.4g} frames/s, lag {a['policy_lag_mean']:.2f} "
                                          f"(max {a['policy_lag_max']})" for a in run["actors"]))


if __name__ == "__main__":  # the guard is required: Ray's workers re-import the main module
    main()
