"""Loss forward + backward time on a batch of 256, against hand-written CleanRL-style references.

For each loss, rlbench's ``LossModule`` and a plain reference implementation of the *same math*
(the style of CleanRL's single-file ``sac_continuous_action.py`` / ``ppo_continuous_action.py``:
tensors in, separate critic modules, no TensorDict) run on identical networks and data:

1. ``SACLoss`` (twin critics via one vmapped call, tanh-Normal actor, learned alpha) vs CleanRL SAC
   (two critic modules and two target modules called one after the other);
2. ``ClipPPOLoss`` (clipped objective, clipped value loss, entropy bonus, normalised advantage)
   vs CleanRL PPO's minibatch loss;
3. ``TD3Loss`` (twin critics, target smoothing, actor term) vs a CleanRL-style TD3 step.

Both sides build their graph and back-propagate the summed loss (``zero_grad`` between steps).
The ratio is rlbench time / reference time (< 1 is faster). Networks are CleanRL's defaults
(256x256 ReLU critics and actor for SAC/TD3, 64x64 tanh for PPO), observations of 17 dims and
actions of 6 (HalfCheetah's sizes). Run: ``python benchmarks/bench_losses.py`` (``--quick``: a few steps).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from _harness import best_time, parse_args, report
from tensordict import TensorDict
from tensordict.nn import InteractionType, NormalParamExtractor, TensorDictModule
from torch import nn

from rlbench.modules import ProbabilisticActor, TanhNormal
from rlbench.objectives.ddpg import DDPGLoss
from rlbench.objectives.dqn import DQNLoss
from rlbench.objectives.ppo import ClipPPOLoss
from rlbench.objectives.redq import REDQLoss
from rlbench.objectives.sac import SACLoss
from rlbench.objectives.td3 import TD3Loss
from rlbench.specs import Bounded

OBS, ACT, BATCH = 17, 6, 256


def mlp(inp, out, hidden, act=nn.ReLU):
    return nn.Sequential(nn.Linear(inp, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, out))


class QNet(nn.Module):
    def __init__(self, hidden=256):
        super().__init__()
        self.net = mlp(OBS + ACT, 1, hidden)

    def forward(self, obs, act):
        return self.net(torch.cat([obs, act], -1))


def replay_batch(b=BATCH):
    return TensorDict(observation=torch.randn(b, OBS), action=torch.rand(b, ACT) * 2 - 1,
                      next=TensorDict(observation=torch.randn(b, OBS), reward=torch.randn(b, 1),
                                      done=torch.rand(b, 1) < 0.01, terminated=torch.rand(b, 1) < 0.01,
                                      batch_size=[b]), batch_size=[b])


def timed(ours, ref, iters: int, repeats: int) -> tuple[float, float]:
    """Best per-step seconds of ``ours`` and ``ref``, measured in alternation.

    Interleaving means both see the same machine load (other jobs share the CPU): a burst of load
    during one side's block would otherwise show up as a ratio.
    """
    for _ in range(2):
        ours(), ref()  # warm-up
    t_ours = t_ref = float("inf")
    for _ in range(repeats):
        t_ours = min(t_ours, best_time(lambda: [ours() for _ in range(iters)], 1) / iters)
        t_ref = min(t_ref, best_time(lambda: [ref() for _ in range(iters)], 1) / iters)
    return t_ours, t_ref


# ----------------------------------------------------------------------------- SAC
def bench_sac(args, iters):
    actor_net = nn.Sequential(mlp(OBS, 2 * ACT, 256), NormalParamExtractor())
    actor = ProbabilisticActor(TensorDictModule(actor_net, ["observation"], ["loc", "scale"]), in_keys=["loc", "scale"],
                               distribution_class=TanhNormal, default_interaction_type=InteractionType.RANDOM)
    ours = SACLoss(actor, TensorDictModule(QNet(), ["observation", "action"], ["state_action_value"]))
    td = replay_batch()

    ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def ours_step():
        ours_opt.zero_grad(set_to_none=True)
        out = ours(td)
        (out["loss_qvalue"] + out["loss_actor"] + out["loss_alpha"]).backward()
        ours_opt.step()

    # the reference: CleanRL's SAC update written out, same networks and temperature parametrisation
    qf1, qf2 = QNet(), QNet()
    qf1_t, qf2_t = copy.deepcopy(qf1), copy.deepcopy(qf2)
    ref_actor = copy.deepcopy(actor_net)
    log_alpha = torch.zeros((), requires_grad=True)
    target_entropy = -float(ACT)
    obs, act = td["observation"], td["action"]
    nobs, rew, term = td["next", "observation"], td["next", "reward"], td["next", "terminated"].float()
    params = list(qf1.parameters()) + list(qf2.parameters()) + list(ref_actor.parameters()) + [log_alpha]
    ref_opt = torch.optim.Adam(params, lr=1e-4)

    def sample(o):
        loc, scale = ref_actor(o)
        x = loc + scale * torch.randn_like(loc)
        y = torch.tanh(x)
        logp = torch.distributions.Normal(loc, scale).log_prob(x) - 2 * (math.log(2) - x - F.softplus(-2 * x))
        return y, logp.sum(-1, keepdim=True)

    def ref_step():
        ref_opt.zero_grad(set_to_none=True)
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            na, nlogp = sample(nobs)
            min_next = torch.min(qf1_t(nobs, na), qf2_t(nobs, na)) - alpha * nlogp
            y = rew + 0.99 * (1 - term) * min_next
        qf_loss = F.mse_loss(qf1(obs, act), y) + F.mse_loss(qf2(obs, act), y)
        pi, logp = sample(obs)
        for q in (qf1, qf2):
            q.requires_grad_(False)  # critics frozen in the actor term, as in the rlbench loss
        min_q_pi = torch.min(qf1(obs, pi), qf2(obs, pi))
        for q in (qf1, qf2):
            q.requires_grad_(True)
        actor_loss = (alpha * logp - min_q_pi).mean()
        alpha_loss = -(log_alpha * (logp.detach() + target_entropy)).mean()
        (qf_loss + actor_loss + alpha_loss).backward()
        ref_opt.step()

    t_ours, t_ref = timed(ours_step, ref_step, iters, args.repeats)
    report(f"SACLoss update (batch {BATCH}, 256x256 nets, 2 critics)", t_ours * 1e3, t_ref * 1e3, "ms",
           "CleanRL-style SAC", target="<= 1.05x", json_path=args.json)


# ----------------------------------------------------------------------------- PPO
def bench_ppo(args, iters):
    actor_net = nn.Sequential(mlp(OBS, 2 * ACT, 64, nn.Tanh), NormalParamExtractor())
    critic_net = mlp(OBS, 1, 64, nn.Tanh)
    actor = ProbabilisticActor(TensorDictModule(actor_net, ["observation"], ["loc", "scale"]), in_keys=["loc", "scale"],
                               distribution_class=torch.distributions.Normal, return_log_prob=True,
                               default_interaction_type=InteractionType.RANDOM)
    critic = TensorDictModule(critic_net, ["observation"], ["state_value"])
    ours = ClipPPOLoss(actor, critic, clip_epsilon=0.2, entropy_coef=0.0, critic_coef=0.5, loss_critic_type="l2",
                       normalize_advantage=True, clip_value=0.2)
    with torch.no_grad():
        td = actor(TensorDict(observation=torch.randn(BATCH, OBS), batch_size=[BATCH]))
    td["sample_log_prob"] = td["sample_log_prob"].sum(-1) - 0.05 * torch.randn(BATCH)  # a later epoch: ratio != 1
    td["advantage"], td["value_target"], td["state_value"] = (torch.randn(BATCH, 1) for _ in range(3))

    ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def ours_step():
        ours_opt.zero_grad(set_to_none=True)
        out = ours(td)
        (out["loss_objective"] + out["loss_entropy"] + out["loss_critic"]).backward()
        ours_opt.step()

    ref_actor, ref_critic = copy.deepcopy(actor_net), copy.deepcopy(critic_net)
    params = list(ref_actor.parameters()) + list(ref_critic.parameters())
    ref_opt = torch.optim.Adam(params, lr=1e-4)
    obs, act, old_logp = td["observation"], td["action"], td["sample_log_prob"]
    adv, ret, old_v = td["advantage"].squeeze(-1), td["value_target"].squeeze(-1), td["state_value"].squeeze(-1)

    def ref_step():  # CleanRL ppo_continuous_action.py, minibatch update
        ref_opt.zero_grad(set_to_none=True)
        loc, scale = ref_actor(obs)
        dist = torch.distributions.Normal(loc, scale)
        newlogp, entropy = dist.log_prob(act).sum(1), dist.entropy().sum(1)
        newv = ref_critic(obs).view(-1)
        logratio = newlogp - old_logp
        ratio = logratio.exp()
        with torch.no_grad():  # the diagnostics CleanRL logs (rlbench's loss reports them too)
            diagnostics = (((ratio - 1) - logratio).mean(), ((ratio - 1.0).abs() > 0.2).float().mean())
        mb_adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = torch.max(-mb_adv * ratio, -mb_adv * torch.clamp(ratio, 0.8, 1.2)).mean()
        v_clipped = old_v + torch.clamp(newv - old_v, -0.2, 0.2)
        v_loss = 0.5 * torch.max((newv - ret) ** 2, (v_clipped - ret) ** 2).mean()
        loss = pg_loss - 0.0 * entropy.mean() + v_loss
        loss.backward()
        ref_opt.step()
        return diagnostics

    t_ours, t_ref = timed(ours_step, ref_step, iters, args.repeats)
    report(f"ClipPPOLoss update (batch {BATCH}, 64x64 nets)", t_ours * 1e3, t_ref * 1e3, "ms",
           "CleanRL-style PPO", target="<= 1.3x", json_path=args.json)


# ----------------------------------------------------------------------------- TD3
def bench_td3(args, iters):
    actor_net = nn.Sequential(mlp(OBS, ACT, 256), nn.Tanh())
    actor = TensorDictModule(actor_net, ["observation"], ["action"])
    ours = TD3Loss(actor, TensorDictModule(QNet(), ["observation", "action"], ["state_action_value"]),
                   action_spec=Bounded(-1.0, 1.0, shape=(ACT,)), policy_delay=1, policy_noise=0.2, noise_clip=0.5)
    td = replay_batch()

    ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def ours_step():
        ours_opt.zero_grad(set_to_none=True)
        out = ours(td)
        (out["loss_qvalue"] + out["loss_actor"]).backward()
        ours_opt.step()

    qf1, qf2 = QNet(), QNet()
    qf1_t, qf2_t, ref_actor = copy.deepcopy(qf1), copy.deepcopy(qf2), copy.deepcopy(actor_net)
    actor_t = copy.deepcopy(ref_actor)
    obs, act = td["observation"], td["action"]
    nobs, rew, term = td["next", "observation"], td["next", "reward"], td["next", "terminated"].float()
    params = list(qf1.parameters()) + list(qf2.parameters()) + list(ref_actor.parameters())
    ref_opt = torch.optim.Adam(params, lr=1e-4)

    def ref_step():  # CleanRL td3_continuous_action.py, one critic + actor update
        ref_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            noise = (torch.randn_like(act) * 0.2).clamp(-0.5, 0.5)
            na = (actor_t(nobs) + noise).clamp(-1.0, 1.0)
            y = rew + 0.99 * (1 - term) * torch.min(qf1_t(nobs, na), qf2_t(nobs, na))
        qf_loss = F.mse_loss(qf1(obs, act), y) + F.mse_loss(qf2(obs, act), y)
        qf1.requires_grad_(False)
        actor_loss = -qf1(obs, ref_actor(obs)).mean()
        qf1.requires_grad_(True)
        (qf_loss + actor_loss).backward()
        ref_opt.step()

    t_ours, t_ref = timed(ours_step, ref_step, iters, args.repeats)
    report(f"TD3Loss update (batch {BATCH}, 256x256 nets, 2 critics)", t_ours * 1e3, t_ref * 1e3, "ms",
           "CleanRL-style TD3", target="<= 1.05x", json_path=args.json)


# ----------------------------------------------------------------------------- DDPG
def bench_ddpg(args, iters):
    actor_net = nn.Sequential(mlp(OBS, ACT, 256), nn.Tanh())
    ours = DDPGLoss(TensorDictModule(actor_net, ["observation"], ["action"]),
                    TensorDictModule(QNet(), ["observation", "action"], ["state_action_value"]))
    td = replay_batch()
    ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def ours_step():
        ours_opt.zero_grad(set_to_none=True)
        out = ours(td)
        (out["loss_value"] + out["loss_actor"]).backward()
        ours_opt.step()

    qf, ref_actor = QNet(), copy.deepcopy(actor_net)
    qf_t, actor_t = copy.deepcopy(qf), copy.deepcopy(ref_actor)
    obs, act = td["observation"], td["action"]
    nobs, rew, term = td["next", "observation"], td["next", "reward"], td["next", "terminated"].float()
    ref_opt = torch.optim.Adam(list(qf.parameters()) + list(ref_actor.parameters()), lr=1e-4)

    def ref_step():  # CleanRL ddpg_continuous_action.py, one critic + actor update
        ref_opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            y = rew + 0.99 * (1 - term) * qf_t(nobs, actor_t(nobs))
        qf_loss = F.mse_loss(qf(obs, act), y)
        qf.requires_grad_(False)
        actor_loss = -qf(obs, ref_actor(obs)).mean()
        qf.requires_grad_(True)
        (qf_loss + actor_loss).backward()
        ref_opt.step()

    t_ours, t_ref = timed(ours_step, ref_step, iters, args.repeats)
    report(f"DDPGLoss update (batch {BATCH}, 256x256 nets)", t_ours * 1e3, t_ref * 1e3, "ms",
           "CleanRL-style DDPG", target="<= 1.05x", json_path=args.json)


# ----------------------------------------------------------------------------- REDQ
def bench_redq(args, iters, n_q=10, m=2):
    actor_net = nn.Sequential(mlp(OBS, 2 * ACT, 256), NormalParamExtractor())
    actor = ProbabilisticActor(TensorDictModule(actor_net, ["observation"], ["loc", "scale"]), in_keys=["loc", "scale"],
                               distribution_class=TanhNormal, default_interaction_type=InteractionType.RANDOM)
    ours = REDQLoss(actor, TensorDictModule(QNet(), ["observation", "action"], ["state_action_value"]),
                    num_qvalue_nets=n_q, sub_sample_len=m)
    td = replay_batch()
    ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def ours_step():
        ours_opt.zero_grad(set_to_none=True)
        out = ours(td)
        (out["loss_qvalue"] + out["loss_actor"] + out["loss_alpha"]).backward()
        ours_opt.step()

    qfs = [QNet() for _ in range(n_q)]
    qfs_t = copy.deepcopy(qfs)
    ref_actor = copy.deepcopy(actor_net)
    log_alpha = torch.zeros((), requires_grad=True)
    obs, act = td["observation"], td["action"]
    nobs, rew, term = td["next", "observation"], td["next", "reward"], td["next", "terminated"].float()
    ref_opt = torch.optim.Adam([p for q in qfs for p in q.parameters()] + list(ref_actor.parameters()) + [log_alpha],
                               lr=1e-4)

    def sample(o):
        loc, scale = ref_actor(o)
        x = loc + scale * torch.randn_like(loc)
        logp = torch.distributions.Normal(loc, scale).log_prob(x) - 2 * (math.log(2) - x - F.softplus(-2 * x))
        return torch.tanh(x), logp.sum(-1, keepdim=True)

    def ref_step():  # REDQ (Chen et al. 2021, Algorithm 1) with UTD 1, written out
        ref_opt.zero_grad(set_to_none=True)
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            na, nlogp = sample(nobs)
            subset = torch.randperm(n_q)[:m].tolist()
            min_next = torch.stack([qfs_t[i](nobs, na) for i in subset]).min(0).values - alpha * nlogp
            y = rew + 0.99 * (1 - term) * min_next
        qf_loss = sum(F.mse_loss(q(obs, act), y) for q in qfs)
        pi, logp = sample(obs)
        for q in qfs:
            q.requires_grad_(False)
        mean_q_pi = torch.stack([q(obs, pi) for q in qfs]).mean(0)
        for q in qfs:
            q.requires_grad_(True)
        actor_loss = (alpha * logp - mean_q_pi).mean()
        alpha_loss = -(log_alpha * (logp.detach() - float(ACT))).mean()
        (qf_loss + actor_loss + alpha_loss).backward()
        ref_opt.step()

    t_ours, t_ref = timed(ours_step, ref_step, iters, args.repeats)
    report(f"REDQLoss update (batch {BATCH}, 256x256 nets, {n_q} critics, subset {m})", t_ours * 1e3, t_ref * 1e3,
           "ms", "hand-written REDQ", target="<= 1.05x", json_path=args.json)


# ----------------------------------------------------------------------------- DQN
def bench_dqn(args, iters, double_dqn=False, b=128):
    obs_dim, n_act = 4, 2  # CartPole, CleanRL dqn.py's 120x84 network and batch 128
    qnet = nn.Sequential(nn.Linear(obs_dim, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_act))
    ours = DQNLoss(TensorDictModule(copy.deepcopy(qnet), ["observation"], ["action_value"]), action_space="categorical",
                   double_dqn=double_dqn)
    td = TensorDict(observation=torch.randn(b, obs_dim), action=torch.randint(n_act, (b, 1)),
                    next=TensorDict(observation=torch.randn(b, obs_dim), reward=torch.randn(b, 1),
                                    done=torch.rand(b, 1) < 0.05, terminated=torch.rand(b, 1) < 0.05,
                                    batch_size=[b]), batch_size=[b])
    ours_opt = torch.optim.Adam(ours.parameters(), lr=2.5e-4)

    def ours_step():
        ours_opt.zero_grad(set_to_none=True)
        ours(td)["loss_value"].backward()
        ours_opt.step()

    qn, qn_t = copy.deepcopy(qnet), copy.deepcopy(qnet)
    obs, act = td["observation"], td["action"]
    nobs, rew, term = td["next", "observation"], td["next", "reward"], td["next", "terminated"].float()
    ref_opt = torch.optim.Adam(qn.parameters(), lr=2.5e-4)

    def ref_step():  # CleanRL dqn.py's update (plus the |TD error| a prioritized buffer needs)
        with torch.no_grad():
            q_next = qn_t(nobs)
            if double_dqn:
                q_next = q_next.gather(1, qn(nobs).argmax(1, keepdim=True))
            else:
                q_next = q_next.max(1, keepdim=True).values
            y = rew + 0.99 * q_next * (1 - term)
        old_val = qn(obs).gather(1, act)
        loss = F.mse_loss(old_val, y)
        td_error = (y - old_val).detach().abs()
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()
        return td_error

    t_ours, t_ref = timed(ours_step, ref_step, iters, args.repeats)
    what = "double DQN" if double_dqn else "DQN"
    report(f"DQNLoss update ({what}, batch {b}, 120x84 net)", t_ours * 1e3, t_ref * 1e3, "ms",
           f"CleanRL-style {what}", target="<= 1.05x", json_path=args.json)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    iters = 3 if args.quick else 20
    torch.manual_seed(0)
    bench_sac(args, iters)
    bench_ppo(args, iters)
    bench_td3(args, iters)
    bench_ddpg(args, iters)
    bench_redq(args, max(1, iters // 4))
    bench_dqn(args, iters * 5)
    bench_dqn(args, iters * 5, double_dqn=True)


if __name__ == "__main__":
    main()
