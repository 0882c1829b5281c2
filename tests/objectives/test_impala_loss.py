"""IMPALALoss against the paper's terms computed by hand, with V-trace targets from the current networks."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.objectives import IMPALALoss, ValueEstimators, total_loss
from rlbench.objectives.value import GAE, VTrace, vtrace_advantage_estimate
from rlbench.testing import categorical_actor, check_loss_contract, check_loss_runs_on, rollout_batch, value_critic

OBS, N_ACT = 4, 3


def trajectories(seed=0, n=3, T=10):
    """[n, T] unrolls collected by a behaviour policy (its log-probs under "sample_log_prob")."""
    torch.manual_seed(seed)
    behaviour = categorical_actor(OBS, N_ACT, return_log_prob=True)
    td = behaviour(TensorDict(observation=torch.randn(n, T, OBS), batch_size=[n, T]))
    done = torch.rand(n, T, 1) < 0.2
    td["next"] = TensorDict(observation=torch.randn(n, T, OBS), reward=torch.randn(n, T, 1), done=done,
                            terminated=done & (torch.rand(n, T, 1) < 0.5), batch_size=[n, T])
    return td.detach()


def log_softmax_of(actor, td):
    return torch.log_softmax(actor[0].module(td["observation"]), -1)


def test_matches_the_papers_terms_with_vtrace_targets():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    td = trajectories()
    loss = IMPALALoss(actor, critic, gamma=0.9, rho_thresh=0.8, c_thresh=0.9, entropy_coef=0.05, critic_coef=0.7)
    out = loss(td)

    # by hand: V-trace from the current pi and V, then the three terms of sec. 4.2
    log_probs = log_softmax_of(actor, td)
    logp = log_probs.gather(-1, td["action"].unsqueeze(-1))
    value, next_value = critic.module(td["observation"]), critic.module(td["next", "observation"])
    adv, vs = vtrace_advantage_estimate(0.9, logp.detach(), td["sample_log_prob"].unsqueeze(-1), value.detach(),
                                        next_value.detach(), td["next", "reward"], td["next", "done"],
                                        td["next", "terminated"], rho_thresh=0.8, c_thresh=0.9)
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    expected = {
        "loss_objective": -(logp * adv).mean(),
        "loss_critic": 0.7 * ((value - vs) ** 2).mean(),
        "loss_entropy": -0.05 * entropy,
        "entropy": entropy,
    }
    assert sorted(out.keys()) == sorted(expected)
    for k, v in expected.items():
        torch.testing.assert_close(out[k], v.detach(), msg=k)
    torch.testing.assert_close(td["advantage"], adv)  # written into the batch, as the other estimators do
    torch.testing.assert_close(td["value_target"], vs)
    # gradients: those of the hand-written total
    out = loss(td.exclude("advantage", "value_target"))
    grads = torch.autograd.grad(total_loss(out), [actor[0].module.weight, critic.module.weight])
    hand = torch.autograd.grad(sum(expected[k] for k in expected if k.startswith("loss_")),
                               [actor[0].module.weight, critic.module.weight])
    for g, h in zip(grads, hand):
        torch.testing.assert_close(g, h)


def test_stored_advantage_is_used_as_is():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    td = trajectories()
    td["advantage"], td["value_target"] = torch.randn(3, 10, 1), torch.randn(3, 10, 1)
    out = IMPALALoss(actor, critic, entropy_bonus=False)(td)
    logp = log_softmax_of(actor, td).gather(-1, td["action"].unsqueeze(-1))
    torch.testing.assert_close(out["loss_objective"], -(logp * td["advantage"]).mean().detach())
    value = critic.module(td["observation"])
    torch.testing.assert_close(out["loss_critic"], 0.5 * ((value - td["value_target"]) ** 2).mean().detach())
    assert "loss_entropy" not in out.keys()


def test_gradients_stay_in_their_networks():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    loss = IMPALALoss(actor, critic)
    out = loss(trajectories())
    (out["loss_objective"] + out["loss_entropy"]).backward()
    assert critic.module.weight.grad is None and actor[0].module.weight.grad.abs().sum() > 0
    loss.zero_grad(set_to_none=True)
    loss(trajectories())["loss_critic"].backward()
    assert actor[0].module.weight.grad is None and critic.module.weight.grad.abs().sum() > 0


def test_contract_on_synthetic_unrolls_and_on_a_cartpole_rollout():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    # no advantage in the data: every call runs V-trace, so the renamed inputs are read through the estimator
    check_loss_contract(IMPALALoss(actor, critic), trajectories(),
                        rename={"reward": "rew", "terminated": "term", "sample_log_prob": "lp"})
    behaviour = categorical_actor(4, 2, return_log_prob=True)
    td = rollout_batch("CartPole-v1", behaviour, frames=64)
    critic = TensorDictModule(nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)), ["observation"],
                              ["state_value"])
    loss = IMPALALoss(categorical_actor(4, 2), critic)
    check_loss_contract(loss, td, rename={"reward": "rew", "done": "d"})
    loss(td)  # writes the V-trace targets
    check_loss_contract(loss, td, rename={"advantage": "adv", "value_target": "vs", "action": "act"})


def test_make_value_estimator():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    loss = IMPALALoss(actor, critic, gamma=0.95, rho_thresh=2.0)
    est = loss.value_estimator
    assert isinstance(est, VTrace) and est.gamma == 0.95 and est.rho_thresh == 2.0 and est.c_thresh == 1.0
    assert est.actor_network is actor and est.value_network is critic
    loss.set_keys(sample_log_prob="action_log_prob")
    assert loss.value_estimator.tensor_keys.sample_log_prob == "action_log_prob"  # renames reach the estimator
    loss.make_value_estimator("vtrace", c_thresh=0.5)
    est = loss.value_estimator
    assert est.c_thresh == 0.5 and est.tensor_keys.sample_log_prob == "action_log_prob"
    loss.make_value_estimator("gae", lmbda=0.9)  # an on-policy estimator, with the loss's gamma
    assert isinstance(loss.value_estimator, GAE) and loss.value_estimator.gamma == 0.95
    loss.make_value_estimator("gae")
    assert loss.value_estimator.lmbda == 0.95
    # the common path: the enum member (TorchRL's spelling too), the loss's own hyperparameters
    loss = IMPALALoss(actor, critic, gamma=0.95, rho_thresh=2.0).make_value_estimator(ValueEstimators.VTrace)
    est = loss.value_estimator
    assert isinstance(est, VTrace) and (est.gamma, est.rho_thresh, est.c_thresh) == (0.95, 2.0, 1.0)
    assert est.actor_network is actor and est.value_network is critic
    assert isinstance(loss.make_value_estimator("V-Trace").value_estimator, VTrace)
    td = trajectories()
    vtrace_td = loss.value_estimator(td.clone())
    assert torch.equal(vtrace_td["advantage"], VTrace(0.95, actor, critic, rho_thresh=2.0)(td.clone())["advantage"])
    with pytest.raises(ValueError, match="unknown value estimator 'retrace'"):
        loss.make_value_estimator("retrace")
    with pytest.raises(TypeError, match=r"make_value_estimator\('vtrace'\).*lmbda"):
        loss.make_value_estimator("vtrace", lmbda=0.9)


def test_construction_errors():
    actor = categorical_actor(OBS, N_ACT)
    with pytest.raises(TypeError, match="critic_network is required"):
        IMPALALoss(actor, None)
    with pytest.raises(TypeError, match="probabilistic actor"):
        IMPALALoss(TensorDictModule(nn.Linear(OBS, N_ACT), ["observation"], ["logits"]), value_critic(OBS))
    with pytest.raises(ValueError, match="loss_function"):
        IMPALALoss(actor, value_critic(OBS), loss_critic_type="huber")
    with pytest.raises(TypeError, match="both entropy_coef"):
        IMPALALoss(actor, value_critic(OBS), entropy_coef=0.1, entropy_coeff=0.1)
    with pytest.raises(KeyError, match="sample_log_prob.*return_log_prob=True"):
        IMPALALoss(actor, value_critic(OBS))(trajectories().exclude("sample_log_prob"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    out = check_loss_runs_on(IMPALALoss(categorical_actor(OBS, N_ACT), value_critic(OBS)), trajectories(), "cuda")
    assert out["loss_objective"].device.type == "cuda"
