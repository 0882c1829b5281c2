"""A2CLoss against the textbook formula computed by hand."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.objectives.a2c import A2CLoss
from rlbench.testing import categorical_actor, check_loss_contract, check_loss_runs_on, rollout_batch, value_critic

OBS, N_ACT, B = 3, 4, 6


def data(actor):
    td = actor(TensorDict(observation=torch.randn(B, OBS), batch_size=[B]))
    td["advantage"], td["value_target"] = torch.randn(B, 1), torch.randn(B, 1)
    return td


def test_matches_hand_computed_formula():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    td = data(actor)
    out = A2CLoss(actor, critic, entropy_coef=0.05, critic_coef=0.7, loss_critic_type="l2")(td)

    log_probs = torch.log_softmax(actor[0].module(td["observation"]), -1)
    logp = log_probs.gather(-1, td["action"].unsqueeze(-1))
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    value = critic.module(td["observation"])
    expected = {
        "loss_objective": -(logp * td["advantage"]).mean(),
        "loss_entropy": -0.05 * entropy,
        "loss_critic": 0.7 * ((value - td["value_target"]) ** 2).mean(),
        "entropy": entropy,
    }
    assert sorted(out.keys()) == sorted(expected)
    for k, v in expected.items():
        torch.testing.assert_close(out[k], v.detach(), msg=k)
    total = out["loss_objective"] + out["loss_entropy"] + out["loss_critic"]
    hand = -(logp * td["advantage"]).mean() - 0.05 * entropy + 0.7 * ((value - td["value_target"]) ** 2).mean()
    torch.testing.assert_close(total, hand)


def test_policy_gradient_does_not_reach_the_critic():
    actor, critic = categorical_actor(OBS, N_ACT), value_critic(OBS)
    loss = A2CLoss(actor, critic)
    out = loss(data(actor))
    (out["loss_objective"] + out["loss_entropy"]).backward()
    assert critic.module.weight.grad is None
    assert actor[0].module.weight.grad.abs().sum() > 0
    loss.zero_grad(set_to_none=True)
    loss(data(actor))["loss_critic"].backward()
    assert actor[0].module.weight.grad is None


def test_options_and_errors():
    actor = categorical_actor(OBS, N_ACT)
    td = data(actor)
    out = A2CLoss(actor, entropy_bonus=False, normalize_advantage=True)(td)
    assert sorted(out.keys()) == ["entropy", "loss_objective"]  # no critic given, no bonus asked
    adv = td["advantage"]
    norm = (adv - adv.mean()) / (adv.std() + 1e-8)
    logp = torch.log_softmax(actor[0].module(td["observation"]), -1).gather(-1, td["action"].unsqueeze(-1))
    torch.testing.assert_close(out["loss_objective"], -(logp * norm).mean().detach())
    with pytest.raises(ValueError, match="loss_function"):
        A2CLoss(actor, loss_critic_type="huber")
    with pytest.raises(KeyError, match="value_target"):
        A2CLoss(actor, value_critic(OBS))(td.exclude("value_target"))


def test_default_gae_and_contract_on_cartpole_rollout():
    from rlbench.objectives.value.functional import generalized_advantage_estimate

    actor = categorical_actor(4, 2)
    critic = TensorDictModule(nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)), ["observation"],
                              ["state_value"])
    td = rollout_batch("CartPole-v1", actor, frames=64)
    loss = A2CLoss(actor, critic)
    # without advantage in the data every call runs GAE: the reward key is read through the estimator
    check_loss_contract(loss, td, rename={"reward": "rew", "terminated": "term"})
    loss(td)  # no advantage in the data: GAE(0.99, 0.95) over the critic writes it
    with torch.no_grad():
        value, next_value = critic.module(td["observation"]), critic.module(td["next", "observation"])
    adv, target = generalized_advantage_estimate(0.99, 0.95, value, next_value, td["next", "reward"],
                                                 done=td["next", "done"], terminated=td["next", "terminated"])
    torch.testing.assert_close(td["advantage"], adv)
    torch.testing.assert_close(td["value_target"], target)
    check_loss_contract(loss, td, rename={"advantage": "adv", "value_target": "ret", "action": "act"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    actor = categorical_actor(OBS, N_ACT)
    check_loss_runs_on(A2CLoss(actor, value_critic(OBS)), data(actor), "cuda")
