"""SACLoss / DiscreteSACLoss: closed-form targets, gradient routing, temperature, real rollouts."""
import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn

from rlbench.objectives.sac import DiscreteSACLoss, SACLoss
from rlbench.testing import (
    action_value_critic,
    categorical_actor,
    check_loss_contract,
    check_loss_runs_on,
    gaussian_actor,
    qvalue_critic,
    replay_sample,
)

OBS, ACT, B = 3, 2, 6


def batch(b=B, act_shape=(ACT,), action=None):
    terminated = torch.zeros(b, 1, dtype=torch.bool)
    terminated[0] = True
    truncated = torch.zeros(b, 1, dtype=torch.bool)
    truncated[1] = True  # a truncation still bootstraps
    return TensorDict(
        observation=torch.randn(b, OBS), action=torch.randn(b, *act_shape) if action is None else action,
        next=TensorDict(observation=torch.randn(b, OBS), reward=torch.randn(b, 1), terminated=terminated,
                        truncated=truncated, done=terminated | truncated, batch_size=[b]),
        batch_size=[b])


def constant_critics(loss, values):
    """Critic i outputs values[i] whatever the input (online and target)."""
    with torch.no_grad():
        params = loss.qvalue_network_params
        params["module", "lin", "weight"].zero_()
        params["module", "lin", "bias"].copy_(torch.tensor(values).unsqueeze(-1))
        loss.target_qvalue_network_params.update_(params.data)


def test_sac_closed_form_with_constant_critics():
    actor = gaussian_actor(OBS, ACT)
    loss = SACLoss(actor, qvalue_critic(OBS, ACT), alpha_init=0.5, gamma=0.9)
    constant_critics(loss, [1.5, -0.25])
    td = batch()
    torch.manual_seed(3)
    out = loss(td.clone())

    # the same draws, by hand: first a' ~ pi(.|s'), then a~ ~ pi(.|s)
    torch.manual_seed(3)
    loc, scale = actor[0](td["next"].clone()).get("loc"), actor[0](td["next"].clone()).get("scale")
    a_next = torch.distributions.Normal(loc, scale).rsample()
    logp_next = torch.distributions.Normal(loc, scale).log_prob(a_next).sum(-1, keepdim=True)
    loc0, scale0 = actor[0](td.clone()).get("loc"), actor[0](td.clone()).get("scale")
    a_pi = torch.distributions.Normal(loc0, scale0).rsample()
    logp_pi = torch.distributions.Normal(loc0, scale0).log_prob(a_pi).sum(-1, keepdim=True)

    not_term = 1.0 - td["next", "terminated"].float()
    y = td["next", "reward"] + 0.9 * not_term * (-0.25 - 0.5 * logp_next)
    expected_q = ((1.5 - y) ** 2).mean() + ((-0.25 - y) ** 2).mean()
    torch.testing.assert_close(out["loss_qvalue"], expected_q.detach())
    torch.testing.assert_close(out["loss_actor"], (0.5 * logp_pi - (-0.25)).mean().detach())
    torch.testing.assert_close(out["alpha"], torch.tensor(0.5))
    torch.testing.assert_close(out["entropy"], -logp_pi.mean().detach())
    # "auto" target entropy is -dim(A), set from the first batch
    assert loss.target_entropy.item() == -ACT
    torch.testing.assert_close(out["loss_alpha"], -(math.log(0.5) * (logp_pi - ACT)).mean().detach())


def test_sac_gradients_go_where_they_should():
    loss = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT))
    out = loss(batch())
    out["loss_actor"].backward()
    assert loss.qvalue_network_params["module", "lin", "weight"].grad is None  # critics frozen in the actor loss
    assert loss.actor_network[0].module[0].weight.grad.abs().sum() > 0
    loss.zero_grad(set_to_none=True)
    loss(batch())["loss_qvalue"].backward()
    assert loss.actor_network[0].module[0].weight.grad is None  # the target is computed without gradient
    assert loss.qvalue_network_params["module", "lin", "weight"].grad.abs().sum() > 0
    assert all(not b.requires_grad for b in loss.target_qvalue_network_params.values(True, True))


def test_sac_twin_critics_are_independent_and_targets_copy_them():
    loss = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), num_qvalue_nets=3)
    w = loss.qvalue_network_params["module", "lin", "weight"]
    assert w.shape == (3, 1, OBS + ACT)
    assert not torch.allclose(w[0], w[1])
    torch.testing.assert_close(loss.target_qvalue_network_params["module", "lin", "weight"], w.data)
    # only the stacked copies are trained: one weight tensor for the critics, not num_qvalue_nets + 1
    names = [n for n, _ in loss.named_parameters()]
    assert sum("qvalue" in n and n.endswith("weight") for n in names) == 1


def test_sac_target_bootstraps_from_target_critics_not_online():
    loss = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), fixed_alpha=True, alpha_init=1e-8, gamma=1.0)
    constant_critics(loss, [2.0, 3.0])
    with torch.no_grad():
        loss.qvalue_network_params["module", "lin", "bias"].fill_(100.0)  # online moves, target stays at [2, 3]
    td = batch()
    out = loss(td.clone())
    y = td["next", "reward"] + (1 - td["next", "terminated"].float()) * 2.0
    torch.testing.assert_close(out["loss_qvalue"], 2 * ((100.0 - y) ** 2).mean(), rtol=1e-4, atol=1e-4)
    undelayed = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), fixed_alpha=True, alpha_init=1e-8, gamma=1.0,
                        delay_qvalue=False)
    constant_critics_online_only = undelayed.qvalue_network_params
    with torch.no_grad():
        constant_critics_online_only["module", "lin", "weight"].zero_()
        constant_critics_online_only["module", "lin", "bias"].fill_(5.0)
    assert not hasattr(undelayed, "target_qvalue_network_params")
    y = td["next", "reward"] + (1 - td["next", "terminated"].float()) * 5.0
    torch.testing.assert_close(undelayed(td.clone())["loss_qvalue"], 2 * ((5.0 - y) ** 2).mean(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("target_entropy, alpha_goes", [(10.0, "up"), (-10.0, "down")])
def test_sac_alpha_moves_entropy_toward_target(target_entropy, alpha_goes):
    loss = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), target_entropy=target_entropy)
    opt = torch.optim.Adam([loss.log_alpha], lr=0.1)
    td = batch()
    for _ in range(5):
        opt.zero_grad()
        loss(td.clone())["loss_alpha"].backward()
        opt.step()
    alpha = loss.log_alpha.exp().item()
    assert (alpha > 1.0) if alpha_goes == "up" else (alpha < 1.0)


def test_sac_fixed_alpha_has_no_alpha_loss_and_no_parameter():
    loss = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), fixed_alpha=True, alpha_init=0.2)
    out = loss(batch())
    assert "loss_alpha" not in out.keys()
    assert "log_alpha" not in dict(loss.named_parameters()) and "log_alpha" in dict(loss.named_buffers())
    torch.testing.assert_close(out["alpha"], torch.tensor(0.2))


def test_sac_value_estimator_sets_gamma_only_td0():
    loss = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT))
    assert loss.make_value_estimator("td0", gamma=0.5) is loss and loss.gamma == 0.5
    with pytest.raises(ValueError, match="only 'td0'"):
        loss.make_value_estimator("gae")
    with pytest.raises(TypeError, match="lmbda"):
        loss.make_value_estimator("td0", lmbda=0.9)


def test_sac_errors_name_the_problem():
    with pytest.raises(ValueError, match="num_qvalue_nets"):
        SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), num_qvalue_nets=0)
    with pytest.raises(ValueError, match="alpha_init"):
        SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), alpha_init=0.0)
    with pytest.raises(ValueError, match="target_entropy"):
        SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT), target_entropy="big")
    with pytest.raises(KeyError, match="'next'"):
        SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT))(batch().exclude("next"))
    with pytest.raises(KeyError, match="reward"):
        SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT))(batch().exclude(("next", "reward")))


def test_sac_contract_on_pendulum_replay_sample():
    from rlbench.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator

    net = TensorDictModule(nn.Sequential(MLP(in_features=3, out_features=2, num_cells=[16]), NormalParamExtractor()),
                           ["observation"], ["loc", "scale"])
    actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal,
                               distribution_kwargs={"low": -2.0, "high": 2.0})
    critic = ValueOperator(MLP(in_features=4, out_features=1, num_cells=[16]), in_keys=["observation", "action"])
    td = replay_sample("Pendulum-v1", actor)
    out = check_loss_contract(SACLoss(actor, critic), td, rename={"reward": "rew", "terminated": "term"})
    assert set(out.keys()) == {"loss_actor", "loss_qvalue", "loss_alpha", "alpha", "entropy", "state_action_value"}


# ----------------------------------------------------------------------------- discrete
N_ACT = 4


@pytest.mark.parametrize("space", ["categorical", "one_hot"])
def test_discrete_sac_expectations_match_manual(space):
    actor, qnet = categorical_actor(OBS, N_ACT), action_value_critic(OBS, N_ACT)
    loss = DiscreteSACLoss(actor, qnet, action_space=space, num_actions=N_ACT, alpha_init=0.3, gamma=0.8)
    with torch.no_grad():  # make the target critics differ from the online ones
        loss.target_qvalue_network_params.apply_(lambda t: t.add_(0.1 * torch.randn_like(t)))
    idx = torch.randint(N_ACT, (B,))
    action = idx if space == "categorical" else nn.functional.one_hot(idx, N_ACT)
    td = batch(action=action)
    out = loss(td.clone())

    def q_all(params, obs):  # [n_q, B, N_ACT], written out by hand
        return torch.einsum("bo,nao->nba", obs, params["module", "weight"]) + params["module", "bias"][:, None]

    lin = actor[0].module
    pi_next = torch.softmax(lin(td["next", "observation"]), -1)
    q_next = q_all(loss.target_qvalue_network_params, td["next", "observation"]).min(0).values
    v_next = (pi_next * (q_next - 0.3 * torch.log(pi_next))).sum(-1, keepdim=True)
    y = td["next", "reward"] + 0.8 * (1 - td["next", "terminated"].float()) * v_next
    q = q_all(loss.qvalue_network_params, td["observation"])[:, torch.arange(B), idx].unsqueeze(-1)
    torch.testing.assert_close(out["loss_qvalue"], ((q - y) ** 2).mean(dim=(1, 2)).sum().detach())

    pi = torch.softmax(lin(td["observation"]), -1)
    q_min = q_all(loss.qvalue_network_params, td["observation"]).min(0).values
    torch.testing.assert_close(out["loss_actor"], (pi * (0.3 * torch.log(pi) - q_min)).sum(-1).mean().detach())
    entropy = -(pi * torch.log(pi)).sum(-1)
    torch.testing.assert_close(out["entropy"], entropy.mean().detach())
    target = 0.98 * math.log(N_ACT)
    torch.testing.assert_close(out["loss_alpha"], -(math.log(0.3) * (-entropy + target)).mean().detach())


def test_discrete_sac_masked_actions_contribute_nothing():
    from rlbench.modules import MaskedCategorical

    class Masked(MaskedCategorical):
        def __init__(self, logits):
            super().__init__(logits=logits, mask=torch.tensor([True, True, False, True]))

    loss = DiscreteSACLoss(categorical_actor(OBS, N_ACT, distribution_class=Masked), action_value_critic(OBS, N_ACT),
                           action_space="categorical", num_actions=N_ACT)
    out = loss(batch(action=torch.tensor([0, 1, 3, 0, 1, 3])))
    assert all(torch.isfinite(v) for v in out.values())
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters() if p.grad is not None)
    # the masked action has probability 0: the expectations are those over the 3 allowed actions
    lin = loss.actor_network[0].module
    td = batch(action=torch.zeros(B, dtype=torch.long))
    probs = torch.softmax(lin(td["observation"])[:, [0, 1, 3]], -1)
    torch.testing.assert_close(loss(td)["entropy"], -(probs * probs.log()).sum(-1).mean().detach())


def test_discrete_sac_errors():
    qnet = action_value_critic(OBS, N_ACT)
    with pytest.raises(ValueError, match="action_space"):
        DiscreteSACLoss(categorical_actor(OBS, N_ACT), qnet, action_space="box", num_actions=N_ACT)
    with pytest.raises(ValueError, match="num_actions"):
        DiscreteSACLoss(categorical_actor(OBS, N_ACT), qnet, action_space="categorical", num_actions=1)
    loss = DiscreteSACLoss(categorical_actor(OBS, N_ACT), qnet, action_space="categorical", num_actions=5)
    with pytest.raises(ValueError, match="num_actions=5"):
        loss(batch(action=torch.zeros(B, dtype=torch.long)))


def test_discrete_sac_contract_on_cartpole_replay_sample():
    actor = categorical_actor(4, 2)
    qnet = TensorDictModule(nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)), ["observation"],
                            ["action_value"])
    td = replay_sample("CartPole-v1", actor)
    loss = DiscreteSACLoss(actor, qnet, action_space="categorical", num_actions=2)
    check_loss_contract(loss, td, rename={"reward": "rew", "action": "act"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("discrete", [False, True])
def test_runs_on_cuda(discrete):
    if discrete:
        qnet = action_value_critic(OBS, N_ACT)
        loss = DiscreteSACLoss(categorical_actor(OBS, N_ACT), qnet, action_space="categorical", num_actions=N_ACT)
        td = batch(action=torch.randint(N_ACT, (B,)))
    else:
        loss, td = SACLoss(gaussian_actor(OBS, ACT), qvalue_critic(OBS, ACT)), batch()
    check_loss_runs_on(loss, td, "cuda")


def test_lazy_networks_are_refused_with_a_clear_message():
    from rlbench.modules import MLP, ValueOperator

    lazy_q = ValueOperator(MLP(out_features=1, num_cells=[8]), in_keys=["observation", "action"])
    with pytest.raises(ValueError, match="qvalue_network has uninitialized lazy layers .*in_features"):
        SACLoss(gaussian_actor(OBS, ACT), lazy_q)
    lazy_q(TensorDict(observation=torch.randn(2, OBS), action=torch.randn(2, ACT), batch_size=[2]))  # initialises it
    assert SACLoss(gaussian_actor(OBS, ACT), lazy_q).qvalue_network_params["module", "0", "weight"].shape[0] == 2


def test_sac_learns_a_one_step_bandit():
    # reward -(a - 0.5)^2 with every step terminal: Q(s, a) only has to fit the reward, and the
    # policy's mode must move to 0.5 (a sign error anywhere in the actor or critic terms would not)
    from rlbench.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator

    torch.manual_seed(0)
    net = TensorDictModule(nn.Sequential(nn.Linear(1, 2), NormalParamExtractor()), ["observation"], ["loc", "scale"])
    actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal)
    qnet = ValueOperator(MLP(in_features=2, out_features=1, num_cells=[32]), in_keys=["observation", "action"])
    loss = SACLoss(actor, qnet, alpha_init=0.01, fixed_alpha=True)
    opt = torch.optim.Adam(loss.parameters(), lr=3e-2)
    n = 64
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of tiny steps: thread hand-offs would cost more than the maths
    try:
        for _ in range(400):
            sac_bandit_step(loss, opt, n)
    finally:
        torch.set_num_threads(threads)
    mode = actor.get_dist(TensorDict(observation=torch.ones(1, 1), batch_size=[1])).mode
    assert abs(mode.item() - 0.5) < 0.1


def sac_bandit_step(loss, opt, n):
    action = torch.rand(n, 1) * 2 - 1  # uniform exploration data, as from a replay buffer
    td = TensorDict(observation=torch.ones(n, 1), action=action,
                    next=TensorDict(observation=torch.ones(n, 1), reward=-(action - 0.5) ** 2,
                                    terminated=torch.ones(n, 1, dtype=torch.bool),
                                    done=torch.ones(n, 1, dtype=torch.bool), batch_size=[n]), batch_size=[n])
    opt.zero_grad()
    out = loss(td)
    (out["loss_actor"] + out["loss_qvalue"]).backward()
    opt.step()
