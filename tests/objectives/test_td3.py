"""TD3Loss: clipped smoothing noise, min over twin targets, delayed actor, Q_1 actor loss."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.objectives.td3 import TD3Loss
from rlbench.specs import Bounded
from rlbench.testing import check_loss_contract, check_loss_runs_on, deterministic_actor, qvalue_critic, replay_sample

OBS, ACT, B = 3, 1, 64


def set_critics(loss, action_weights, biases):
    """Critic i is Q_i(s, a) = action_weights[i] * a + biases[i] (online and target)."""
    with torch.no_grad():
        w = loss.qvalue_network_params["module", "lin", "weight"]
        w.zero_()
        w[:, 0, OBS] = torch.tensor(action_weights)
        loss.qvalue_network_params["module", "lin", "bias"].copy_(torch.tensor(biases).unsqueeze(-1))
        loss.target_qvalue_network_params.update_(loss.qvalue_network_params.data)


def batch(b=B, action=0.0, terminated_first=True):
    terminated = torch.zeros(b, 1, dtype=torch.bool)
    terminated[0] = terminated_first
    return TensorDict(observation=torch.randn(b, OBS), action=torch.full((b, ACT), action),
                      next=TensorDict(observation=torch.randn(b, OBS), reward=torch.randn(b, 1), terminated=terminated,
                                      done=terminated.clone(), batch_size=[b]), batch_size=[b])


def constant_actor(value):
    return deterministic_actor(OBS, ACT, constant=value)


def critic():
    return qvalue_critic(OBS, ACT)


SPEC = Bounded(-1.0, 1.0, shape=(ACT,))


def test_smoothing_noise_is_clipped_and_action_kept_in_bounds():
    # target action 0.95, huge noise clipped to +-0.5, then the action clipped to [-1, 1]
    loss = TD3Loss(constant_actor(0.95), critic(), action_spec=SPEC, policy_noise=10.0, noise_clip=0.5)
    actions = loss._smoothed(torch.full((10_000, ACT), 0.95))
    assert actions.min().item() == pytest.approx(0.45, abs=1e-6) and actions.max().item() == 1.0
    assert (actions == 1.0).float().mean() > 0.4  # the upper half of the clipped noise lands on the bound
    # end to end: critics Q(s, a) = a, reward 0, gamma 1, stored action 0 -> loss_qvalue = 2 E[a~^2]
    td = batch(terminated_first=False)
    td["next", "reward"].zero_()
    set_critics(loss, [1.0, 1.0], [0.0, 0.0])
    loss.gamma = 1.0
    value = loss(td)["loss_qvalue"].item()
    assert 2 * 0.45 ** 2 <= value <= 2 * 1.0
    # without noise the target action is the target actor's, clipped to the spec
    exact = TD3Loss(constant_actor(1.5), critic(), action_spec=SPEC, policy_noise=0.0, gamma=1.0)
    set_critics(exact, [1.0, 1.0], [0.0, 0.0])
    assert exact(td)["loss_qvalue"].item() == pytest.approx(2.0)  # a~ = clip(1.5) = 1.0
    unbounded = TD3Loss(constant_actor(1.5), critic(), policy_noise=0.0, gamma=1.0)
    set_critics(unbounded, [1.0, 1.0], [0.0, 0.0])
    assert unbounded(td)["loss_qvalue"].item() == pytest.approx(2 * 1.5 ** 2)


def test_target_is_min_over_twin_critics():
    loss = TD3Loss(constant_actor(0.0), critic(), action_spec=SPEC, gamma=0.9)
    set_critics(loss, [0.0, 0.0], [2.0, -1.0])
    td = batch()
    out = loss(td.clone())
    y = td["next", "reward"] + 0.9 * (1 - td["next", "terminated"].float()) * -1.0
    torch.testing.assert_close(out["loss_qvalue"], ((2.0 - y) ** 2).mean() + ((-1.0 - y) ** 2).mean())
    torch.testing.assert_close(out["target_value"], y.mean())


def test_actor_loss_uses_the_first_critic_and_is_delayed():
    actor = deterministic_actor(OBS, ACT)
    loss = TD3Loss(actor, critic(), action_spec=SPEC, policy_delay=3)
    set_critics(loss, [1.0, -1.0], [0.0, 0.0])
    td = batch()
    due, has_actor = [], []
    for _ in range(7):
        out = loss(td.clone())
        due.append(loss.actor_update_due)
        has_actor.append("loss_actor" in out.keys())
        if has_actor[-1]:  # -E[Q_1(s, mu(s))] with Q_1(s, a) = a
            torch.testing.assert_close(out["loss_actor"], -actor.module(td["observation"]).mean().detach())
    assert due == has_actor == [True, False, False, True, False, False, True]
    assert loss.state_dict()["num_calls"].item() == 7


def test_gradients_go_where_they_should():
    actor = deterministic_actor(OBS, ACT)
    loss = TD3Loss(actor, critic(), action_spec=SPEC)
    out = loss(batch())
    out["loss_actor"].backward()
    assert loss.qvalue_network_params["module", "lin", "weight"].grad is None
    assert actor.module.weight.grad.abs().sum() > 0
    loss.zero_grad(set_to_none=True)
    loss(batch())["loss_qvalue"].backward()
    assert actor.module.weight.grad is None


def test_errors():
    with pytest.raises(ValueError, match="policy_delay"):
        TD3Loss(constant_actor(0.0), critic(), policy_delay=0)
    with pytest.raises(ValueError, match="noise_clip"):
        TD3Loss(constant_actor(0.0), critic(), noise_clip=-1.0)
    with pytest.raises(TypeError, match="Bounded"):
        TD3Loss(constant_actor(0.0), critic(), action_spec=object())


def test_contract_on_pendulum_replay_sample():
    from rlbench.modules import MLP

    actor = TensorDictModule(nn.Sequential(MLP(in_features=3, out_features=1, num_cells=[16]), nn.Tanh()),
                             ["observation"], ["action"])
    td = replay_sample("Pendulum-v1", actor)
    loss = TD3Loss(actor, critic(), action_spec=Bounded(-2.0, 2.0, shape=(1,)), policy_delay=1)
    check_loss_contract(loss, td, rename={"reward": "rew", "terminated": "term"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    actor = deterministic_actor(OBS, ACT)
    check_loss_runs_on(TD3Loss(actor, critic(), action_spec=SPEC), batch(), "cuda")


def test_batched_env_action_spec_works_on_replay_batches():
    """A spec from a batched env ([4, 1] bounds) must not be broadcast against a [32, 1] batch."""
    from rlbench.envs import PendulumEnv

    loss = TD3Loss(constant_actor(0.0), critic(), action_spec=PendulumEnv(batch_size=[4]).action_spec)
    assert loss.action_low.shape == (1,) and loss.action_high.shape == (1,)
    assert float(loss.action_low) == -2.0 and float(loss.action_high) == 2.0
    loss(batch())  # the [1] bounds clip a [B, 1] target action
    uneven = Bounded(torch.tensor([[-1.0], [-2.0]]), torch.tensor([[1.0], [2.0]]), shape=(2, 1))
    loss = TD3Loss(constant_actor(0.0), critic(), action_spec=uneven)
    assert loss.action_low.shape == (2, 1)  # different per env: kept as given
