"""PPOLoss / ClipPPOLoss / KLPENPPOLoss against hand-computed references."""
import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, NormalParamExtractor, TensorDictModule
from torch import nn

from rlbench.objectives.ppo import ClipPPOLoss, KLPENPPOLoss, PPOLoss
from rlbench.testing import categorical_actor, check_loss_contract, check_loss_runs_on, rollout_batch, value_critic

OBS, N_ACT, B = 3, 4, 5


def logp_actor(obs=OBS, n=N_ACT):
    """The categorical actor, writing the collection-time "sample_log_prob" PPO reads."""
    return categorical_actor(obs, n, return_log_prob=True)


def collected(actor, advantage, b=B):
    """A batch as collection leaves it: actions sampled by ``actor`` with their log-probabilities."""
    td = actor(TensorDict(observation=torch.randn(b, OBS), batch_size=[b]))
    td["advantage"] = advantage.reshape(b, 1)
    td["value_target"] = torch.randn(b, 1)
    return td


def current_log_prob(actor, td):  # written out: log_softmax of the logits at the taken action
    logits = actor[0].module(td["observation"])
    return torch.log_softmax(logits, -1).gather(-1, td["action"].unsqueeze(-1)).squeeze(-1)


def with_ratios(actor, td, ratios):
    """Rewrites the stored log-probabilities so that pi/pi_old equals ``ratios`` exactly."""
    td = td.clone()
    td["sample_log_prob"] = (current_log_prob(actor, td) - torch.log(torch.tensor(ratios))).detach()
    return td


@pytest.mark.parametrize("cls", [PPOLoss, ClipPPOLoss, KLPENPPOLoss])
def test_first_epoch_ratio_is_one(cls):
    actor = logp_actor()
    adv = torch.randn(B)
    out = cls(actor, value_critic(OBS))(collected(actor, adv))
    torch.testing.assert_close(out["loss_objective"], -adv.mean())  # KL penalty is 0 too
    assert out["kl_approx"].item() == 0.0 and out["ESS"].item() == pytest.approx(1.0)
    if cls is ClipPPOLoss:
        assert out["clip_fraction"].item() == 0.0


def test_first_epoch_continuous_tanh_normal():
    from rlbench.modules import ProbabilisticActor, TanhNormal

    net = TensorDictModule(nn.Sequential(nn.Linear(OBS, 4), NormalParamExtractor()), ["observation"], ["loc", "scale"])
    actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True,
                               default_interaction_type=InteractionType.RANDOM)
    td = actor(TensorDict(observation=torch.randn(B, OBS), batch_size=[B]))
    td["advantage"] = torch.randn(B, 1)
    out = ClipPPOLoss(actor, entropy_bonus=True)(td)
    torch.testing.assert_close(out["loss_objective"], -td["advantage"].mean(), rtol=1e-5, atol=1e-5)
    assert out["clip_fraction"].item() == 0.0
    assert torch.isfinite(out["entropy"])  # TanhNormal has no closed form: a sampled estimate


def clip_reference(ratios, advs, eps):
    total = 0.0
    for r, a in zip(ratios, advs):
        r_clip = min(max(r, 1 - eps), 1 + eps)
        total += min(r * a, r_clip * a)
    return -total / len(ratios)


def test_clipped_objective_on_crafted_ratios():
    actor = logp_actor()
    ratios, advs = [0.5, 0.9, 1.0, 1.3, 2.0], [1.0, -2.0, 0.5, 1.5, -1.0]
    td = with_ratios(actor, collected(actor, torch.tensor(advs)), ratios)
    out = ClipPPOLoss(actor, clip_epsilon=0.2)(td)
    torch.testing.assert_close(out["loss_objective"].item(), clip_reference(ratios, advs, 0.2), rtol=1e-5, atol=1e-6)
    assert out["clip_fraction"].item() == pytest.approx(3 / 5)  # 0.5, 1.3 and 2.0 are outside [0.8, 1.2]
    r = torch.tensor(ratios)
    assert out["kl_approx"].item() == pytest.approx(((r - 1) - r.log()).mean().item(), rel=1e-5)
    assert out["ESS"].item() == pytest.approx((r.sum() ** 2 / (r ** 2).sum() / 5).item(), rel=1e-5)
    # the unclipped surrogate of the base class
    plain = PPOLoss(actor)(td)["loss_objective"].item()
    assert plain == pytest.approx(-sum(r_ * a for r_, a in zip(ratios, advs)) / 5, rel=1e-5)


def test_clipped_objective_has_no_gradient_where_clipped():
    actor = logp_actor()
    # positive advantage, ratio above 1 + eps: the min picks the clipped (constant) term
    td = with_ratios(actor, collected(actor, torch.ones(B)), [1.5] * B)
    ClipPPOLoss(actor, entropy_bonus=False)(td)["loss_objective"].backward()
    assert actor[0].module.weight.grad.abs().max() == 0


def test_normalized_advantage():
    actor = logp_actor()
    ratios, advs = [0.7, 1.1, 1.0, 1.25, 0.95], torch.tensor([3.0, -1.0, 2.0, 0.0, 10.0])
    td = with_ratios(actor, collected(actor, advs), ratios)
    out = ClipPPOLoss(actor, normalize_advantage=True)(td)
    norm = ((advs - advs.mean()) / (advs.std() + 1e-8)).tolist()
    assert out["loss_objective"].item() == pytest.approx(clip_reference(ratios, norm, 0.2), rel=1e-5)
    assert td["advantage"].flatten().tolist() == advs.tolist()  # the stored advantage is left as it was


@pytest.mark.parametrize("kl, beta_after", [(0.1, 2.0), (0.0, 0.5), (0.01, 1.0)])
def test_klpen_beta_adapts(kl, beta_after):
    actor = logp_actor()
    advs = torch.randn(B)
    # shift the old log-probs by kl: log r = -kl everywhere, so the KL estimate E[-log r] is kl
    td = with_ratios(actor, collected(actor, advs), [math.exp(-kl)] * B)
    loss = KLPENPPOLoss(actor, dtarg=0.01, beta=1.0, increment=2.0, decrement=0.5)
    out = loss(td)
    assert loss.beta.item() == pytest.approx(beta_after)
    assert out["beta"].item() == 1.0 and out["kl"].item() == pytest.approx(kl, abs=1e-6)
    expected = -(math.exp(-kl) * advs.mean().item() - 1.0 * kl)
    assert out["loss_objective"].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert "beta" in loss.state_dict()


def test_value_clipping():
    actor = logp_actor()
    td = collected(actor, torch.zeros(4), b=4)
    td["state_value"] = torch.tensor([[0.0], [0.6], [1.0], [0.5]])  # values at collection
    td["value_target"] = torch.tensor([[1.0], [0.0], [0.0], [2.0]])
    loss = ClipPPOLoss(actor, value_critic(OBS, constant=0.7), clip_value=0.2, loss_critic_type="l2", critic_coef=0.5,
                       entropy_bonus=False)
    out = loss(td)
    v, v_old, t = 0.7, [0.0, 0.6, 1.0, 0.5], [1.0, 0.0, 0.0, 2.0]
    expected = 0.0
    for old, tgt in zip(v_old, t):
        v_clip = old + min(max(v - old, -0.2), 0.2)
        expected += max((v - tgt) ** 2, (v_clip - tgt) ** 2)
    assert out["loss_critic"].item() == pytest.approx(0.5 * expected / 4, rel=1e-5)
    unclipped = ClipPPOLoss(actor, value_critic(OBS, constant=0.7), loss_critic_type="l2", critic_coef=0.5)
    unclipped = unclipped(td)["loss_critic"]
    assert unclipped.item() == pytest.approx(0.5 * sum((v - tgt) ** 2 for tgt in t) / 4, rel=1e-5)
    with pytest.raises(KeyError, match="clip_value needs"):
        loss(td.exclude("state_value"))


def test_entropy_bonus_and_critic_terms():
    actor = logp_actor()
    td = collected(actor, torch.randn(B))
    loss = ClipPPOLoss(actor, value_critic(OBS, constant=0.0), entropy_coef=0.1, critic_coef=2.0, loss_critic_type="l2")
    out = loss(td)
    probs = torch.softmax(actor[0].module(td["observation"]), -1)
    entropy = -(probs * probs.log()).sum(-1).mean()
    assert out["loss_entropy"].item() == pytest.approx(-0.1 * entropy.item(), rel=1e-5)
    assert out["entropy"].item() == pytest.approx(entropy.item(), rel=1e-5)
    assert out["loss_critic"].item() == pytest.approx(2.0 * (td["value_target"] ** 2).mean().item(), rel=1e-5)
    assert "loss_entropy" not in ClipPPOLoss(actor, entropy_bonus=False)(td).keys()


def test_errors_name_the_problem():
    actor = logp_actor()
    td = collected(actor, torch.randn(B))
    with pytest.raises(KeyError, match="return_log_prob"):
        ClipPPOLoss(actor)(td.exclude("sample_log_prob"))
    with pytest.raises(KeyError, match="value_target"):
        ClipPPOLoss(actor, value_critic(OBS))(td.exclude("value_target"))
    bad = td.clone()
    bad["advantage"] = torch.randn(B, 2)
    with pytest.raises(ValueError, match=r"'advantage' has shape \(5, 2\); expected \(5, 1\)"):
        ClipPPOLoss(actor)(bad)
    flat = td.clone()  # [B] entries are read as [B, 1], never broadcast to [B, B]
    flat["advantage"], flat["value_target"] = td["advantage"].squeeze(-1), td["value_target"].squeeze(-1)
    loss = ClipPPOLoss(actor, value_critic(OBS))
    expected = loss(td)
    for k, v in loss(flat).items():
        torch.testing.assert_close(v, expected[k], msg=k)
    with pytest.raises(ValueError, match="clip_epsilon"):
        ClipPPOLoss(actor, clip_epsilon=1.5)
    with pytest.raises(ValueError, match="clip_value"):
        ClipPPOLoss(actor, clip_value=0.0)
    with pytest.raises(ValueError, match="loss_function"):
        ClipPPOLoss(actor, loss_critic_type="l3")
    with pytest.raises(ValueError, match="decrement"):
        KLPENPPOLoss(actor, decrement=2.0)
    with pytest.raises(TypeError, match="ClipPPOLoss: actor_network must be a probabilistic actor"):
        ClipPPOLoss(TensorDictModule(nn.Linear(OBS, 1), ["observation"], ["action"]))


def gae_reference(gamma, lmbda, value, next_value, reward, done, terminated):
    """Per-step GAE written as in the paper (Schulman et al. 2016, eq. 16), one step at a time."""
    T = reward.shape[0]
    adv = torch.zeros(T, 1)
    running = 0.0
    for t in reversed(range(T)):
        delta = reward[t] + gamma * (1.0 - float(terminated[t])) * next_value[t] - value[t]
        running = delta + gamma * lmbda * (1.0 - float(done[t])) * running
        adv[t] = running
    return adv


def test_missing_advantage_is_computed_with_gae():
    T = 9
    actor, crit = logp_actor(), value_critic(OBS)
    td = actor(TensorDict(observation=torch.randn(T, OBS), batch_size=[T]))
    terminated = torch.zeros(T, 1, dtype=torch.bool)
    truncated = torch.zeros(T, 1, dtype=torch.bool)
    terminated[3], truncated[6] = True, True  # an episode ends by termination, the next by truncation
    td["next"] = TensorDict(observation=torch.randn(T, OBS), reward=torch.randn(T, 1), terminated=terminated,
                            truncated=truncated, done=terminated | truncated, batch_size=[T])
    loss = ClipPPOLoss(actor, crit).make_value_estimator("gae", gamma=0.9, lmbda=0.8)
    out = loss(td)
    with torch.no_grad():
        value, next_value = crit.module(td["observation"]), crit.module(td["next", "observation"])
    ref = gae_reference(0.9, 0.8, value, next_value, td["next", "reward"], td["next", "done"], terminated)
    torch.testing.assert_close(td["advantage"], ref, rtol=1e-5, atol=1e-5)  # written into the input
    torch.testing.assert_close(td["value_target"], ref + value, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["loss_objective"], -ref.mean(), rtol=1e-5, atol=1e-5)  # first epoch: ratio 1
    assert not td["advantage"].requires_grad


@pytest.mark.parametrize("cls", [ClipPPOLoss, KLPENPPOLoss])
def test_contract_on_cartpole_rollout(cls):
    actor = logp_actor(4, 2)
    crit = TensorDictModule(nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)), ["observation"],
                            ["state_value"])
    td = rollout_batch("CartPole-v1", actor, frames=64)
    loss = cls(actor, crit, clip_value=0.5) if cls is ClipPPOLoss else cls(actor, crit)
    loss.value_estimator(td)  # advantage once per batch, as a training loop does before its minibatches
    out = check_loss_contract(loss, td, rename={"advantage": "adv", "sample_log_prob": "old_log_prob",
                                                "value_target": "ret"})
    assert {"loss_objective", "loss_critic", "loss_entropy"} <= set(out.keys())


def test_set_keys_reaches_the_value_estimator():
    T = 6
    actor, crit = logp_actor(), value_critic(OBS)
    td = actor(TensorDict(observation=torch.randn(T, OBS), batch_size=[T]))
    flags = torch.zeros(T, 1, dtype=torch.bool)
    td["next"] = TensorDict(observation=torch.randn(T, OBS), rew=torch.randn(T, 1), terminated=flags, done=flags,
                            batch_size=[T])
    loss = ClipPPOLoss(actor, crit).set_keys(reward="rew", advantage="adv")
    loss(td)  # the estimator reads ("next", "rew") and writes "adv"
    assert "adv" in td.keys() and "advantage" not in td.keys()
    loss2 = ClipPPOLoss(actor, crit)
    loss2.make_value_estimator("gae", gamma=0.99, lmbda=0.95)
    loss2.set_keys(reward="rew")  # renamed after the estimator exists: kept in sync
    td2 = td.exclude("adv", "value_target")
    loss2(td2)
    torch.testing.assert_close(td2["advantage"], td["adv"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_gae():
    T = 8
    actor, crit = logp_actor(), value_critic(OBS)
    td = actor(TensorDict(observation=torch.randn(T, OBS), batch_size=[T]))
    flags = torch.zeros(T, 1, dtype=torch.bool)
    td["next"] = TensorDict(observation=torch.randn(T, OBS), reward=torch.randn(T, 1), terminated=flags, done=flags,
                            batch_size=[T])
    out = check_loss_runs_on(KLPENPPOLoss(actor, crit, clip_value=0.2), td, "cuda")
    assert out["kl_approx"].item() == 0.0


def test_clip_ppo_learns_a_two_armed_bandit():
    # arm 1 pays 1, arm 0 pays 0; a few PPO epochs on the policy's own samples must prefer arm 1
    torch.manual_seed(0)
    actor = logp_actor(1, 2)
    loss = ClipPPOLoss(actor, entropy_coef=0.0)
    opt = torch.optim.Adam(loss.parameters(), lr=0.05)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny steps: thread hand-offs would cost more than the maths
    try:
        for _ in range(10):
            ppo_bandit_iteration(actor, loss, opt)
    finally:
        torch.set_num_threads(threads)
    probs = torch.softmax(actor[0].module(torch.ones(1, 1)), -1)
    assert probs[0, 1] > 0.9


def ppo_bandit_iteration(actor, loss, opt):
    with torch.no_grad():
        td = actor(TensorDict(observation=torch.ones(64, 1), batch_size=[64]))
    reward = td["action"].float().unsqueeze(-1)
    td["advantage"] = reward - reward.mean()  # a constant baseline
    for _ in range(4):  # several epochs on the same samples: the ratio leaves 1 and the clip matters
        opt.zero_grad()
        loss(td)["loss_objective"].backward()
        opt.step()


def test_shared_trunk_actor_critic():
    from rlbench.modules import MLP, ActorValueOperator, ProbabilisticActor, ValueOperator

    trunk = TensorDictModule(MLP(in_features=OBS, out_features=8, num_cells=[]), ["observation"], ["hidden"])
    head = ProbabilisticActor(TensorDictModule(nn.Linear(8, N_ACT), ["hidden"], ["logits"]), in_keys=["logits"],
                              distribution_class=torch.distributions.Categorical, return_log_prob=True,
                              default_interaction_type=InteractionType.RANDOM)
    value_head = ValueOperator(MLP(in_features=8, out_features=1, num_cells=[]), in_keys=["hidden"])
    op = ActorValueOperator(trunk, head, value_head)
    actor, crit = op.get_policy_operator(), op.get_value_operator()
    loss = ClipPPOLoss(actor, crit)
    assert len(list(loss.parameters())) == len(list(op.parameters()))  # the trunk is not counted twice
    td = collected(actor, torch.randn(B))
    out = loss(td)
    out["loss_objective"].backward()
    g_policy = trunk.module[0].weight.grad.clone()
    out["loss_critic"].backward()
    assert g_policy.abs().sum() > 0 and not torch.allclose(trunk.module[0].weight.grad, g_policy)
