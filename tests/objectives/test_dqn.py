"""DQNLoss / DistributionalDQNLoss: closed forms, target handling, double DQN, C51 projection, real data."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlbench.objectives import (
    DistributionalDQNLoss,
    DQNLoss,
    HardUpdate,
    SoftUpdate,
    nstep_return,
    project_distribution,
)
from rlbench.testing import check_loss_contract, check_loss_runs_on, rollout_batch


def _linear_q(weight, bias=None):
    """Q(s) = W s (+ b): action values we can compute by hand."""
    lin = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(weight)
        if bias is not None:
            lin.bias.copy_(bias)
    return TensorDictModule(lin, ["observation"], ["action_value"])


def _one(obs, action, next_obs, reward, terminated, **extra):
    td = TensorDict({"observation": torch.tensor([obs]), "action": torch.tensor([action]),
                     "next": {"observation": torch.tensor([next_obs]), "reward": torch.tensor([[reward]]),
                              "done": torch.tensor([[terminated]]), "terminated": torch.tensor([[terminated]])}},
                    batch_size=[1])
    for k, v in extra.items():
        td[k] = v
    return td


@pytest.mark.parametrize("fn,expected", [("l2", 2.25), ("l1", 1.5), ("smooth_l1", 1.0)])
def test_closed_form_one_step(fn, expected):
    loss = DQNLoss(_linear_q(torch.eye(2)), loss_function=fn, gamma=0.5, action_space="categorical")
    # Q(s, 1) = 2; target = 1 + 0.5 * max(3, 5) = 3.5
    td = _one([1.0, 2.0], 1, [3.0, 5.0], 1.0, False)
    out = loss(td)
    assert out["loss_value"].item() == pytest.approx(expected)
    assert td["td_error"].tolist() == [1.5]
    assert out["q_value"].item() == 2.0
    # terminal: target = r = 1
    out = DQNLoss(_linear_q(torch.eye(2)), gamma=0.5, action_space="categorical")(_one([1.0, 2.0], 1, [3.0, 5.0],
                                                                                      1.0, True))
    assert out["loss_value"].item() == pytest.approx(1.0)


def test_nstep_discount_and_priority_weights():
    loss = DQNLoss(_linear_q(torch.eye(2)), gamma=0.5, action_space="categorical")
    td = _one([1.0, 2.0], 0, [4.0, 0.0], 0.0, False, steps_to_next_obs=torch.tensor([[3]]))
    # target = 0 + 0.5**3 * 4 = 0.5; Q = 1 -> l2 = 0.25
    assert loss(td)["loss_value"].item() == pytest.approx(0.25)
    td["priority_weight"] = torch.tensor([4.0])
    assert loss(td)["loss_value"].item() == pytest.approx(1.0)


def test_target_network_is_used_and_gets_no_gradient():
    loss = DQNLoss(_linear_q(torch.eye(2)), gamma=1.0, action_space="categorical")
    with torch.no_grad():  # move the online net after the target was copied
        loss.value_network.module.weight.mul_(2.0)
    td = _one([1.0, 1.0], 0, [1.0, 3.0], 0.0, False)
    out = loss(td)
    # online Q(s, 0) = 2; target uses the frozen copy: max(1, 3) = 3 -> l2 = 1
    assert out["loss_value"].item() == pytest.approx(1.0)
    out["loss_value"].backward()
    assert loss.value_network.module.weight.grad is not None
    tgt = loss.target_value_network_params
    assert all(not v.requires_grad and v.grad is None for v in tgt.values(True, True))
    assert torch.equal(tgt["module", "weight"], torch.eye(2))
    HardUpdate(loss, value_network_update_interval=1).step()
    assert torch.equal(tgt["module", "weight"], 2 * torch.eye(2))
    # without delay_value the online network bootstraps (still no gradient through the target)
    loss2 = DQNLoss(_linear_q(torch.eye(2)), gamma=1.0, delay_value=False, action_space="categorical")
    assert not hasattr(loss2, "target_value_network_params")
    td = _one([1.0, 1.0], 0, [1.0, 3.0], 0.0, False)
    out = loss2(td)
    out["loss_value"].backward()
    # gradient of (Q(s,0) - target)^2 wrt W[0] is 2 (Q - target) * s only: target treated as a constant
    torch.testing.assert_close(loss2.value_network.module.weight.grad[0], torch.tensor([-4.0, -4.0]))


def test_double_dqn_uses_online_argmax_target_value():
    loss = DQNLoss(_linear_q(torch.eye(2)), gamma=1.0, double_dqn=True, action_space="categorical")
    with torch.no_grad():
        loss.target_value_network_params["module", "weight"].copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    # next obs [5, 3]: online Q = [5, 3] -> argmax 0; target Q = [3, 5] -> evaluated at 0 -> 3
    td = _one([0.0, 0.0], 0, [5.0, 3.0], 0.0, False)
    out = loss(td)
    assert out["loss_value"].item() == pytest.approx(9.0)  # Q(s, 0) = 0, target 3
    vanilla = DQNLoss(_linear_q(torch.eye(2)), gamma=1.0, action_space="categorical")
    with torch.no_grad():
        vanilla.target_value_network_params["module", "weight"].copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert vanilla(td.clone())["loss_value"].item() == pytest.approx(25.0)  # max of target Q = 5


def test_one_hot_and_index_actions_agree():
    net = _linear_q(torch.randn(3, 4), torch.randn(3))
    td = TensorDict({"observation": torch.randn(6, 4), "action": torch.randint(3, (6,)),
                     "next": {"observation": torch.randn(6, 4), "reward": torch.randn(6, 1),
                              "done": torch.zeros(6, 1, dtype=torch.bool),
                              "terminated": torch.zeros(6, 1, dtype=torch.bool)}}, batch_size=[6])
    a = DQNLoss(net, action_space="categorical")(td.clone())
    oh = td.clone()
    oh["action"] = torch.nn.functional.one_hot(td["action"], 3).bool()
    b = DQNLoss(net)(oh)  # inferred from the data
    c = DQNLoss(net, action_space="one_hot")(oh.clone())
    torch.testing.assert_close(a["loss_value"], b["loss_value"])
    torch.testing.assert_close(a["loss_value"], c["loss_value"])


def test_errors_are_clear():
    with pytest.raises(ValueError, match="unknown loss_function 'l3'"):
        DQNLoss(_linear_q(torch.eye(2)), loss_function="l3")
    with pytest.raises(TypeError, match="must be a TensorDict module with in_keys"):
        DQNLoss(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="action_space must be 'one_hot' or 'categorical'"):
        DQNLoss(_linear_q(torch.eye(2)), action_space="discrete")
    loss = DQNLoss(_linear_q(torch.eye(2)), action_space="categorical")
    with pytest.raises(ValueError, match="only 'td0' is supported"):
        loss.make_value_estimator("gae")
    assert loss.make_value_estimator("td0", gamma=0.5).gamma == 0.5
    td = _one([1.0, 2.0], 1, [3.0, 5.0], 1.0, False)
    with pytest.raises(KeyError, match=r"no \('next', 'reward'\)"):
        loss(td.exclude(("next", "reward")))
    with pytest.raises(KeyError, match=r"reads \['observation'\], absent"):
        loss(td.exclude("observation"))


# ------------------------------------------------------------------------------- C51
def _project_loop(probs, values, support):
    """The classic per-atom C51 projection (Bellemare et al., Algorithm 1)."""
    v_min, v_max, n = support[0].item(), support[-1].item(), support.numel()
    dz = (v_max - v_min) / (n - 1)
    out = torch.zeros(probs.shape[0], n, dtype=torch.float64)
    for b in range(probs.shape[0]):
        for i in range(values.shape[1]):
            tz = min(max(values[b, i].item(), v_min), v_max)
            pos = (tz - v_min) / dz
            lo, hi = int(torch.floor(torch.tensor(pos))), int(torch.ceil(torch.tensor(pos)))
            p = probs[b, i].item()
            if lo == hi:
                out[b, lo] += p
            else:
                out[b, lo] += p * (hi - pos)
                out[b, hi] += p * (pos - lo)
    return out


def test_projection_matches_per_atom_loop():
    support = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    probs = torch.softmax(torch.randn(16, 9, dtype=torch.float64), -1)
    values = torch.randn(16, 9, dtype=torch.float64) * 2.5  # some outside the support
    values[0] = support  # exactly on atoms
    values[1] = support * 0.5 + 0.25
    out = project_distribution(probs, values, support)
    torch.testing.assert_close(out, _project_loop(probs, values, support))
    torch.testing.assert_close(out.sum(-1), torch.ones(16, dtype=torch.float64))


def _c51_net(n_atoms=5, n_actions=2, n_obs=3):
    from rlbench.modules import DistributionalQValueActor
    return DistributionalQValueActor(
        torch.nn.Sequential(torch.nn.Linear(n_obs, n_atoms * n_actions), torch.nn.Unflatten(-1, (n_atoms, n_actions))),
        torch.linspace(-1.0, 1.0, n_atoms), action_space="categorical")


def test_c51_closed_form_terminal_and_support_from_network():
    net = _c51_net(n_atoms=3)
    loss = DistributionalDQNLoss(net, gamma=0.9)
    assert torch.equal(loss.support, torch.tensor([-1.0, 0.0, 1.0]))
    td = TensorDict({"observation": torch.randn(4, 3), "action": torch.tensor([0, 1, 1, 0]),
                     "next": {"observation": torch.randn(4, 3), "reward": torch.tensor([[0.0], [0.5], [1.0], [-3.0]]),
                              "terminated": torch.ones(4, 1, dtype=torch.bool)}}, batch_size=[4])
    out = loss(td.clone())
    # terminal: the target puts all mass on r (projected): 0 -> atom 1; 0.5 -> half on atoms 1, 2; 1 -> atom 2;
    # -3 -> clamped to atom 0
    target = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    logits = net.module[0](td.clone())["action_value"]
    log_p = torch.log_softmax(logits, -2)[torch.arange(4), :, td["action"]]
    expected = -(target * log_p).sum(-1).mean()
    torch.testing.assert_close(out["loss_value"], expected)


def test_c51_bootstrap_uses_target_best_action():
    support = torch.linspace(-1.0, 1.0, 3)
    loss = DistributionalDQNLoss(_c51_net(n_atoms=3), gamma=1.0)
    # make the target distribution of s' deterministic: action 1 sits on atom 2 (value 1), action 0 on atom 0
    with torch.no_grad():
        tp = loss.target_value_network_params
        tp["module", "0", "module", "0", "weight"].zero_()
        bias = torch.full((3, 2), -50.0)
        bias[0, 0] = 50.0
        bias[2, 1] = 50.0
        tp["module", "0", "module", "0", "bias"].copy_(bias.reshape(-1))
    td = TensorDict({"observation": torch.randn(1, 3), "action": torch.tensor([0]),
                     "next": {"observation": torch.randn(1, 3), "reward": torch.tensor([[-1.0]]),
                              "terminated": torch.zeros(1, 1, dtype=torch.bool)}}, batch_size=[1])
    out = loss(td)
    # best next action is 1 (expected value 1); Tz = -1 + z = [-2, -1, 0]; its mass (on z=1 -> Tz=0) lands on atom 1
    log_p = torch.log_softmax(loss.value_network.module[0](td.clone())["action_value"], -2)[0, :, 0]
    torch.testing.assert_close(out["loss_value"], -log_p[1])
    assert support.numel() == 3


def test_c51_errors():
    lin = TensorDictModule(torch.nn.Linear(3, 4), ["observation"], ["action_value"])
    with pytest.raises(ValueError, match="pass support="):
        DistributionalDQNLoss(lin, gamma=0.9)
    with pytest.raises(ValueError, match="evenly spaced"):
        DistributionalDQNLoss(lin, gamma=0.9, support=torch.tensor([0.0, 1.0, 3.0]))
    loss = DistributionalDQNLoss(lin, gamma=0.9, support=torch.linspace(0, 1, 3), action_space="categorical")
    td = TensorDict({"observation": torch.randn(2, 3), "action": torch.tensor([0, 1]),
                     "next": {"observation": torch.randn(2, 3), "reward": torch.zeros(2, 1),
                              "terminated": torch.zeros(2, 1, dtype=torch.bool)}}, batch_size=[2])
    with pytest.raises(ValueError, match=r"n_atoms=3, n_actions\], got \(2, 4\)"):
        loss(td)


# ------------------------------------------------------------------------------- real data
def _q_actor():
    from rlbench.modules import MLP, QValueActor
    from rlbench.specs import Categorical
    actor = QValueActor(MLP(in_features=4, out_features=2, num_cells=[16]), spec=Categorical(2))
    return actor


def test_dqn_on_cartpole_rollout_through_nstep_and_prioritized_replay():
    from rlbench.buffers import LazyTensorStorage, PrioritizedReplayBuffer
    actor = _q_actor()
    batch = rollout_batch("CartPole-v1", actor, frames=64)
    batch = nstep_return(batch, n=3, gamma=0.99)
    assert (batch["steps_to_next_obs"] <= 3).all() and (batch["steps_to_next_obs"] >= 1).all()
    rb = PrioritizedReplayBuffer(alpha=0.6, beta=0.4, storage=LazyTensorStorage(1000), batch_size=16)
    rb.extend(batch.reshape(-1))
    loss = DQNLoss(actor, double_dqn=True, loss_function="smooth_l1")
    updater = SoftUpdate(loss, tau=0.05)
    opt = torch.optim.Adam(loss.parameters(), lr=1e-3)
    key = ("module", "0", "module", "0", "weight")
    before = loss.target_value_network_params[key].clone()
    for _ in range(3):
        sample = rb.sample()
        assert "priority_weight" in sample.keys()
        out = loss(sample)
        opt.zero_grad()
        out["loss_value"].backward()
        opt.step()
        updater.step()
        rb.update_tensordict_priority(sample)  # reads the per-sample "td_error" the loss wrote
        assert torch.isfinite(out["loss_value"])
    after = loss.target_value_network_params[key]
    assert not torch.equal(before, after)  # soft updates moved the target towards the trained net
    assert not torch.equal(after, actor.module[0].module[0].weight.detach())  # ... but only part of the way


def test_dqn_contract_on_cartpole():
    actor = _q_actor()
    batch = rollout_batch("CartPole-v1", actor, frames=32)
    check_loss_contract(DQNLoss(actor), batch, rename={"reward": "rew", "action": "act"})


def test_c51_contract_on_cartpole():
    from rlbench.modules import MLP, DistributionalQValueActor
    from rlbench.specs import Categorical
    actor = DistributionalQValueActor(MLP(in_features=4, out_features=(11, 2), num_cells=[16]),
                                      torch.linspace(-5, 5, 11), spec=Categorical(2))
    batch = nstep_return(rollout_batch("CartPole-v1", actor, frames=32), n=2, gamma=0.9)
    check_loss_contract(DistributionalDQNLoss(actor, gamma=0.9, double_dqn=True), batch,
                        rename={"reward": "rew", "terminated": "term"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dqn_and_c51_run_on_cuda():
    from rlbench.modules import MLP, DistributionalQValueActor
    from rlbench.specs import Categorical
    actor = _q_actor()
    batch = nstep_return(rollout_batch("CartPole-v1", actor, frames=32), n=3, gamma=0.99)
    check_loss_runs_on(DQNLoss(actor, double_dqn=True), batch, "cuda")
    c51 = DistributionalQValueActor(MLP(in_features=4, out_features=(11, 2), num_cells=[16]),
                                    torch.linspace(-5, 5, 11), spec=Categorical(2))
    check_loss_runs_on(DistributionalDQNLoss(c51, gamma=0.99), batch, "cuda")
