"""DDPGLoss: closed-form target and actor loss, gradient routing, targets, a real rollout."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.objectives.ddpg import DDPGLoss
from rlbench.testing import check_loss_contract, check_loss_runs_on, deterministic_actor, qvalue_critic, replay_sample

OBS, ACT, B = 3, 1, 6


def make(actor_bias=None):
    return deterministic_actor(OBS, ACT, constant=actor_bias), qvalue_critic(OBS, ACT)


def batch(b=B):
    terminated = torch.zeros(b, 1, dtype=torch.bool)
    terminated[0] = True
    return TensorDict(observation=torch.randn(b, OBS), action=torch.randn(b, ACT),
                      next=TensorDict(observation=torch.randn(b, OBS), reward=torch.randn(b, 1), terminated=terminated,
                                      done=terminated.clone(), batch_size=[b]), batch_size=[b])


def test_closed_form_value_and_actor_losses():
    actor, critic = make(actor_bias=0.3)
    loss = DDPGLoss(actor, critic, gamma=0.9)
    td = batch()
    out = loss(td.clone())
    q = critic.module  # the target starts as an exact copy of the online critic
    mu_next = torch.full((B, ACT), 0.3)
    y = td["next", "reward"] + 0.9 * (1 - td["next", "terminated"].float()) * q(td["next", "observation"], mu_next)
    torch.testing.assert_close(out["loss_value"], ((q(td["observation"], td["action"]) - y) ** 2).mean().detach())
    torch.testing.assert_close(out["loss_actor"], -q(td["observation"], torch.full((B, ACT), 0.3)).mean().detach())
    torch.testing.assert_close(out["target_value"], y.mean().detach())


def test_gradients_go_where_they_should():
    actor, critic = make()
    loss = DDPGLoss(actor, critic)
    loss(batch())["loss_value"].backward()
    assert actor.module.weight.grad is None  # critic loss never reaches the actor
    assert critic.module.lin.weight.grad.abs().sum() > 0
    loss.zero_grad(set_to_none=True)
    loss(batch())["loss_actor"].backward()
    assert critic.module.lin.weight.grad is None  # the critic is held fixed in the actor loss
    assert actor.module.weight.grad.abs().sum() > 0


def test_target_networks_are_used_and_optional():
    actor, critic = make(actor_bias=0.0)
    loss = DDPGLoss(actor, critic, gamma=1.0)
    td = batch()
    before = loss(td.clone())["target_value"]
    with torch.no_grad():  # moving the online networks does not move the target
        critic.module.lin.bias.add_(10.0)
        actor.module.bias.add_(5.0)
    torch.testing.assert_close(loss(td.clone())["target_value"], before)
    undelayed = DDPGLoss(actor, critic, gamma=1.0, delay_actor=False, delay_value=False)
    assert not any("target" in n for n, _ in undelayed.named_buffers())
    q = critic.module
    mu_next = actor.module(td["next", "observation"])
    y = td["next", "reward"] + (1 - td["next", "terminated"].float()) * q(td["next", "observation"], mu_next)
    torch.testing.assert_close(undelayed(td.clone())["target_value"], y.mean().detach())


def test_errors_and_value_estimator():
    actor, critic = make()
    with pytest.raises(ValueError, match="loss_function"):
        DDPGLoss(actor, critic, loss_function="l4")
    loss = DDPGLoss(actor, critic)
    assert loss.make_value_estimator(gamma=0.5).gamma == 0.5
    with pytest.raises(KeyError, match="terminated"):
        loss(batch().exclude(("next", "terminated"), ("next", "done")))
    td = batch()
    flat = td.clone()  # [B] rewards and flags are read as [B, 1], never broadcast to [B, B]
    flat["next", "reward"], flat["next", "terminated"] = td["next", "reward"][:, 0], td["next", "terminated"][:, 0]
    torch.testing.assert_close(loss(flat)["loss_value"], loss(td)["loss_value"])
    flat["next", "reward"] = torch.zeros(B, 3)
    with pytest.raises(ValueError, match="'reward'.*expected \\(6, 1\\)"):
        loss(flat)


def test_contract_on_pendulum_replay_sample():
    from rlbench.modules import MLP

    actor = TensorDictModule(nn.Sequential(MLP(in_features=3, out_features=1, num_cells=[16]), nn.Tanh()),
                             ["observation"], ["action"])
    critic = qvalue_critic(OBS, ACT)
    td = replay_sample("Pendulum-v1", actor)
    check_loss_contract(DDPGLoss(actor, critic), td, rename={"reward": "rew", "terminated": "term"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    check_loss_runs_on(DDPGLoss(*make()), batch(), "cuda")
