"""Time per Dreamer update: rlbench's Dreamer losses against TorchRL's, same batch shape, same run.

One update = ``DreamerModelLoss`` on a ``[B, T]`` batch of 64x64 frames + backward, then
``DreamerActorLoss`` (imagination of ``horizon`` steps from every posterior state) + backward, then
``DreamerValueLoss`` + backward -- the order of TorchRL's Dreamer example. Both sides build the
paper's networks (Hafner et al. 2020: conv encoder/decoder of depth 32, RSSM 200/200/30, reward MLP
2x400, value 3x400, actor 4x400 ELU, Tanh-Normal actions, horizon 15) and get the same batch shape.

Both updates are timed in alternation (best of ``--repeats`` rounds) in one child interpreter that
can import TorchRL: from the current environment, or from ``--torchrl-path DIR`` (a folder into
which ``pip install --no-deps --target DIR torchrl`` put it; its tensordict pin may differ from
ours, hence the separate folder). When TorchRL cannot be imported, the baseline is a
straightforward plain-torch implementation of the same update (no TensorDict, loops written out),
and the script says so. ``--size BxT`` picks another batch shape.

The ratio is rlbench time / baseline time (< 1: rlbench is faster; the issue's target is <= 0.67,
i.e. >= 1.5x faster). Full size: ``B=50, T=50`` (the paper's batch); ``--quick``: ``B=4, T=8``.
Each report has a second line with the CPU time of the timing thread (less inflated by other jobs on
a shared machine). ``--no-onednn`` runs rlbench's dense layers on ``F.linear`` (MKL, as TorchRL's)
instead of :class:`~rlbench.modules.OneDnnLinear`, to show what the other changes give alone.
Run: ``python benchmarks/bench_dreamer.py [--quick] [--torchrl-path DIR] [--no-onednn]``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import torch

ACTION_DIM, STATE, BELIEF, HIDDEN, HORIZON = 6, 30, 200, 200, 15


def batch(b: int, t: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    pix = torch.rand(b, t + 1, 3, 64, 64, generator=g) - 0.5
    return {"pixels": pix[:, :-1].contiguous(), "next_pixels": pix[:, 1:].contiguous(),
            "action": torch.rand(b, t, ACTION_DIM, generator=g) * 2 - 1,
            "reward": torch.randn(b, t, 1, generator=g)}


def time_updates(update, iters: int, repeats: int, warm: bool = True) -> float:
    if warm:
        update()  # warm-up (lazy layers, allocator)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            update()
        best = min(best, (time.perf_counter() - start) / iters)
    return best


# --------------------------------------------------------------------------- rlbench
def rlbench_update(b: int, t: int):
    from tensordict import TensorDict
    from tensordict.nn import TensorDictModule

    from rlbench.modules import (
        ObsDecoder,
        ObsEncoder,
        RSSMPosterior,
        RSSMPrior,
        RSSMRollout,
        dreamer_actor,
        dreamer_imagination_env,
        dreamer_mlp,
        dreamer_world_model,
    )
    from rlbench.objectives import DreamerActorLoss, DreamerModelLoss, DreamerValueLoss
    from rlbench.specs import Bounded

    torch.manual_seed(0)
    prior = RSSMPrior(ACTION_DIM, hidden_dim=HIDDEN, belief_dim=BELIEF, state_dim=STATE)
    reward = dreamer_mlp(STATE + BELIEF, num_cells=400, depth=2)
    wm = dreamer_world_model(ObsEncoder(), RSSMRollout(prior, RSSMPosterior()), ObsDecoder(), reward)
    actor = dreamer_actor(ACTION_DIM, STATE + BELIEF, num_cells=400, depth=4)
    value = TensorDictModule(dreamer_mlp(STATE + BELIEF, num_cells=400, depth=3), ["state", "belief"],
                             ["state_value"])
    env = dreamer_imagination_env(prior, reward, Bounded(-1.0, 1.0, (ACTION_DIM,)))
    model_loss = DreamerModelLoss(wm)
    actor_loss = DreamerActorLoss(actor, value, env, imagination_horizon=HORIZON)
    value_loss = DreamerValueLoss(value)
    x = batch(b, t)
    td = TensorDict({"pixels": x["pixels"], "action": x["action"],
                     "next": {"pixels": x["next_pixels"], "reward": x["reward"],
                              "done": torch.zeros(b, t, 1, dtype=torch.bool),
                              "terminated": torch.zeros(b, t, 1, dtype=torch.bool)}}, [b, t])
    nets = [wm, actor, value]

    def update():
        out, data = model_loss(td, return_data=True)
        (out["loss_model_kl"] + out["loss_model_reco"] + out["loss_model_reward"]).backward()
        a, dream = actor_loss(data, return_imagination=True)
        a["loss_actor"].backward()
        value_loss(dream)["loss_value"].backward()
        for n in nets:
            n.zero_grad(set_to_none=True)

    return update


# --------------------------------------------------------------------------- TorchRL
def torchrl_update(b: int, t: int):
    """TorchRL's Dreamer losses on the same networks and batch shape (as its Dreamer example builds them)."""
    import warnings

    warnings.filterwarnings("ignore")
    from tensordict import TensorDict
    from tensordict.nn import InteractionType, TensorDictModule, TensorDictSequential
    from torch import nn
    from torchrl.data import Bounded, Composite, Unbounded
    from torchrl.envs.model_based.dreamer import DreamerEnv
    from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, WorldModelWrapper
    from torchrl.modules.models.model_based import (
        DreamerActor,
        ObsDecoder,
        ObsEncoder,
        RSSMPosterior,
        RSSMPrior,
        RSSMRollout,
    )
    from torchrl.objectives import DreamerActorLoss, DreamerModelLoss, DreamerValueLoss, ValueEstimators

    torch.manual_seed(0)
    spec = Bounded(-1.0, 1.0, (ACTION_DIM,))
    prior = RSSMPrior(spec, hidden_dim=HIDDEN, rnn_hidden_dim=BELIEF, state_dim=STATE, action_dim=ACTION_DIM)
    post = RSSMPosterior(hidden_dim=HIDDEN, state_dim=STATE, rnn_hidden_dim=BELIEF, obs_embed_dim=1024)
    reward = MLP(out_features=1, depth=2, num_cells=400, activation_class=nn.ELU)
    latent = [("next", "state"), ("next", "belief")]
    world_model = WorldModelWrapper(
        TensorDictSequential(
            TensorDictModule(ObsEncoder(), in_keys=[("next", "pixels")], out_keys=[("next", "encoded_latents")]),
            RSSMRollout(
                TensorDictModule(prior, in_keys=["state", "belief", "action"],
                                 out_keys=[("next", "prior_mean"), ("next", "prior_std"), "_", ("next", "belief")]),
                TensorDictModule(post, in_keys=[("next", "belief"), ("next", "encoded_latents")],
                                 out_keys=[("next", "posterior_mean"), ("next", "posterior_std"),
                                           ("next", "state")])),
            TensorDictModule(ObsDecoder(), in_keys=latent, out_keys=[("next", "reco_pixels")])),
        TensorDictModule(reward, in_keys=latent, out_keys=[("next", "reward")]))
    env = DreamerEnv(WorldModelWrapper(
        TensorDictSequential(TensorDictModule(prior, in_keys=["state", "belief", "action"],
                                              out_keys=["_", "_", "state", "belief"])),
        TensorDictModule(reward, in_keys=["state", "belief"], out_keys=["reward"])),
        prior_shape=torch.Size([STATE]), belief_shape=torch.Size([BELIEF]))
    env.action_spec = spec
    env.observation_spec = Composite(state=Unbounded((STATE,)), belief=Unbounded((BELIEF,)))
    env.state_spec = Composite(state=Unbounded((STATE,)), belief=Unbounded((BELIEF,)))
    env.reward_spec = Unbounded((1,))
    actor = ProbabilisticActor(
        TensorDictModule(DreamerActor(out_features=ACTION_DIM, depth=4, num_cells=400), in_keys=["state", "belief"],
                         out_keys=["loc", "scale"]),
        in_keys=["loc", "scale"], out_keys=["action"], default_interaction_type=InteractionType.RANDOM,
        distribution_class=TanhNormal, spec=spec)
    value = TensorDictModule(MLP(out_features=1, depth=3, num_cells=400, activation_class=nn.ELU),
                             in_keys=["state", "belief"], out_keys=["state_value"])
    x = batch(b, t)
    td = TensorDict({"pixels": x["pixels"], "action": x["action"], "state": torch.zeros(b, t, STATE),
                     "belief": torch.zeros(b, t, BELIEF),
                     "next": {"pixels": x["next_pixels"], "reward": x["reward"],
                              "done": torch.zeros(b, t, 1, dtype=torch.bool),
                              "terminated": torch.zeros(b, t, 1, dtype=torch.bool)}}, [b, t])
    with torch.no_grad():  # materialise the lazy layers before the losses are built
        world_model(td.clone())
        one = TensorDict(state=torch.zeros(1, STATE), belief=torch.zeros(1, BELIEF), batch_size=[1])
        actor(one.clone())
        value(one.clone())
    model_loss = DreamerModelLoss(world_model)
    actor_loss = DreamerActorLoss(actor, value, env, imagination_horizon=HORIZON)
    actor_loss.make_value_estimator(ValueEstimators.TDLambda, gamma=0.99, lmbda=0.95)
    value_loss = DreamerValueLoss(value)
    nets = [world_model, actor, value]

    def update():
        out, data = model_loss(td.clone(False))
        (out["loss_model_kl"] + out["loss_model_reco"] + out["loss_model_reward"]).sum().backward()
        a, dream = actor_loss(data.reshape(-1))
        a["loss_actor"].backward()
        v, _ = value_loss(dream)
        v["loss_value"].backward()
        for n in nets:
            n.zero_grad(set_to_none=True)

    return update


def alternate(builders: dict, b: int, t: int, iters: int, rounds: int) -> dict:
    """Best per-update seconds of each builder's update, measured in alternation (load hits both alike).

    Also ``"<name>_cpu"``: the best CPU time of the timing thread per update (``time.thread_time``), which
    a machine shared with other jobs inflates much less than the wall-clock time.
    """
    updates = {name: build(b, t) for name, build in builders.items()}
    best = {name: float("inf") for name in updates}
    best.update({f"{name}_cpu": float("inf") for name in updates})
    for name, up in updates.items():
        up()  # warm-up
    for _ in range(rounds):
        for name, up in updates.items():
            cpu = time.thread_time()
            best[name] = min(best[name], time_updates(up, iters, 1, warm=False))
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], (time.thread_time() - cpu) / iters)
    return best


CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
import torch
torch.set_num_threads(1)
import torchrl
import bench_dreamer as bd
b, t, iters, rounds = (int(v) for v in sys.argv[1].split(","))
if sys.argv[3] == "no-onednn":
    from rlbench.modules import OneDnnLinear
    OneDnnLinear.enabled = False
best = bd.alternate({"rlbench": bd.rlbench_update, "torchrl": bd.torchrl_update}, b, t, iters, rounds)
best["version"] = torchrl.__version__
print(json.dumps(best))
"""


def against_torchrl(b, t, iters, rounds, path: str | None, onednn: bool = True):
    """Both updates timed in alternation in a child interpreter that can import TorchRL; (result, error)."""
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", CHILD, f"{b},{t},{iters},{rounds}", here,
                           "onednn" if onednn else "no-onednn"], env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        return None, " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


# --------------------------------------------------------------------------- plain-torch fallback
def reference_update(b: int, t: int):
    """The same update written out on plain tensors, for machines where TorchRL cannot be imported."""
    from rlbench.modules import ObsDecoder, ObsEncoder, RSSMPosterior, RSSMPrior, dreamer_actor, dreamer_mlp
    from rlbench.objectives.dreamer import gaussian_kl
    from rlbench.objectives.value.functional import td_lambda_return_estimate

    torch.manual_seed(0)
    enc, dec = ObsEncoder(), ObsDecoder()
    prior, post = RSSMPrior(ACTION_DIM), RSSMPosterior()
    reward = dreamer_mlp(STATE + BELIEF, num_cells=400, depth=2)
    value = dreamer_mlp(STATE + BELIEF, num_cells=400, depth=3)
    actor_net = dreamer_actor(ACTION_DIM, STATE + BELIEF, num_cells=400, depth=4).module[0].module
    x = batch(b, t)
    nets = [enc, dec, prior, post, reward, value, actor_net]

    def act(s, h):
        from rlbench.modules import TanhNormal
        loc, scale = actor_net(s, h)
        return TanhNormal(loc, scale).rsample()

    def update():
        e = enc(x["next_pixels"])
        s, h = torch.zeros(b, STATE), torch.zeros(b, BELIEF)
        stats, ss, hs = [], [], []
        for k in range(t):
            pm, ps, _, h = prior(s, h, x["action"][:, k])
            qm, qs, s = post(h, e[:, k])
            stats.append(gaussian_kl(qm, qs, pm, ps))
            ss.append(s)
            hs.append(h)
        s, h = torch.stack(ss, 1), torch.stack(hs, 1)
        kl = torch.stack(stats, 1).mean().clamp_min(3.0)
        reco = 0.5 * (dec(s, h) - x["next_pixels"]).pow(2).sum((-3, -2, -1)).mean()
        rew = 0.5 * (reward(s, h) - x["reward"]).pow(2).mean()
        (kl + reco + rew).backward()
        s, h = s.detach().reshape(-1, STATE), h.detach().reshape(-1, BELIEF)
        rs, vs, ss, hs = [], [], [], []
        for p in prior.parameters():
            p.requires_grad_(False)
        for p in list(reward.parameters()) + list(value.parameters()):
            p.requires_grad_(False)
        for _ in range(HORIZON):
            ss.append(s)
            hs.append(h)
            _, _, s, h = prior(s, h, act(s, h))
            rs.append(reward(s, h))
            vs.append(value(s, h))
        target = td_lambda_return_estimate(0.99, 0.95, torch.stack(vs, 1), torch.stack(rs, 1))
        (-target.sum((-2, -1)).mean()).backward()
        for p in list(prior.parameters()) + list(reward.parameters()) + list(value.parameters()):
            p.requires_grad_(True)
        v = value(torch.stack(ss, 1).detach(), torch.stack(hs, 1).detach())
        (0.5 * (v - target.detach()).pow(2)).sum((-2, -1)).mean().backward()
        for n in nets:
            n.zero_grad(set_to_none=True)

    return update


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _harness import parse_args, report

    path = None
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--torchrl-path"):
            path = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]
            del sys.argv[i:i + (1 if "=" in arg else 2)]
            break
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--size"):  # e.g. --size 16x16: [B, T] for a short run between quick and full
            size = arg.split("=", 1)[1] if "=" in arg else sys.argv[i + 1]
            del sys.argv[i:i + (1 if "=" in arg else 2)]
            break
    else:
        size = None
    onednn = "--no-onednn" not in sys.argv
    if not onednn:  # rlbench's dense layers on F.linear (MKL) like TorchRL's: what the rest of the changes give
        sys.argv.remove("--no-onednn")
        from rlbench.modules import OneDnnLinear
        OneDnnLinear.enabled = False
    args = parse_args(__doc__.splitlines()[0])
    b, t = (4, 8) if args.quick else (50, 50)
    if size:
        b, t = (int(v) for v in size.lower().split("x"))
    iters, rounds = (1, 3) if args.quick else (1, args.repeats)
    name = f"Dreamer update [B={b}, T={t}, 64x64, horizon {HORIZON}]"
    if not onednn:
        name += ", rlbench without oneDNN linears"
    best, error = against_torchrl(b, t, iters, rounds, path, onednn)
    if best is not None:
        report(name, best["rlbench"] * 1e3, best["torchrl"] * 1e3, "ms", f"TorchRL {best['version']} Dreamer losses",
               target="<= 0.67 (>= 1.5x faster)", json_path=args.json)
        report(name + ", CPU time", best["rlbench_cpu"] * 1e3, best["torchrl_cpu"] * 1e3, "ms",
               f"TorchRL {best['version']}", json_path=args.json)
        return
    print(f"TorchRL could not be imported ({error}): the baseline is the plain-torch reference update", flush=True)
    best = alternate({"rlbench": rlbench_update, "reference": reference_update}, b, t, iters, rounds)
    report(name, best["rlbench"] * 1e3, best["reference"] * 1e3, "ms", "plain-torch reference", json_path=args.json)
    report(name + ", CPU time", best["rlbench_cpu"] * 1e3, best["reference_cpu"] * 1e3, "ms", "plain-torch reference",
           json_path=args.json)


if __name__ == "__main__":
    main()
