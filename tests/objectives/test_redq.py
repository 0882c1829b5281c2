"""REDQLoss: the target's min runs over a seeded random subset of M of the N critics."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn

from rlbench.objectives.redq import REDQLoss
from rlbench.testing import check_loss_contract, check_loss_runs_on, gaussian_actor, qvalue_critic, replay_sample

OBS, ACT, B, N, M = 3, 1, 8, 6, 3


def actor():
    return gaussian_actor(OBS, ACT)


def critic():
    return qvalue_critic(OBS, ACT)


def batch():
    terminated = torch.zeros(B, 1, dtype=torch.bool)
    terminated[0] = True
    return TensorDict(observation=torch.randn(B, OBS), action=torch.randn(B, ACT),
                      next=TensorDict(observation=torch.randn(B, OBS), reward=torch.randn(B, 1), terminated=terminated,
                                      done=terminated.clone(), batch_size=[B]), batch_size=[B])


def constant_critics(loss, values):
    with torch.no_grad():
        loss.qvalue_network_params["module", "lin", "weight"].zero_()
        loss.qvalue_network_params["module", "lin", "bias"].copy_(torch.tensor(values).unsqueeze(-1))
        loss.target_qvalue_network_params.update_(loss.qvalue_network_params.data)


def test_target_is_min_over_seeded_random_subset():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 0.0]  # critic i outputs values[i]
    loss = REDQLoss(actor(), critic(), num_qvalue_nets=N, sub_sample_len=M, fixed_alpha=True, alpha_init=1e-12,
                    gamma=0.5, generator=torch.Generator().manual_seed(7))
    constant_critics(loss, values)
    reference = torch.Generator().manual_seed(7)
    td = batch()
    seen = set()
    for _ in range(6):
        out = loss(td.clone())
        subset = torch.randperm(N, generator=reference)[:M]
        assert loss.last_subset.tolist() == subset.tolist()
        target_min = min(values[i] for i in subset.tolist())
        y = td["next", "reward"] + 0.5 * (1 - td["next", "terminated"].float()) * target_min
        expected = sum(((v - y) ** 2).mean() for v in values)  # all N critics regress to the same y
        torch.testing.assert_close(out["loss_qvalue"], expected, rtol=1e-5, atol=1e-5)
        seen.add(target_min)
    assert len(seen) > 1  # different subsets give different targets (the full-ensemble min would be 0 every time)


def test_actor_uses_the_ensemble_mean():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 0.0]
    loss = REDQLoss(actor(), critic(), num_qvalue_nets=N, sub_sample_len=M, fixed_alpha=True, alpha_init=1e-12)
    constant_critics(loss, values)
    out = loss(batch())
    assert out["loss_actor"].item() == pytest.approx(-sum(values) / N, abs=1e-6)
    assert "loss_alpha" not in out.keys()


def test_gradients_and_shapes():
    loss = REDQLoss(actor(), critic(), num_qvalue_nets=N, sub_sample_len=M)
    assert loss.qvalue_network_params["module", "lin", "weight"].shape == (N, 1, OBS + ACT)
    out = loss(batch())
    out["loss_actor"].backward()
    assert loss.qvalue_network_params["module", "lin", "weight"].grad is None
    loss.zero_grad(set_to_none=True)
    loss(batch())["loss_qvalue"].backward()
    grad = loss.qvalue_network_params["module", "lin", "weight"].grad
    assert (grad.flatten(1).abs().sum(1) > 0).all()  # every critic of the ensemble is trained
    assert loss.actor_network[0].module[0].weight.grad is None


def test_errors():
    with pytest.raises(ValueError, match="sub_sample_len"):
        REDQLoss(actor(), critic(), num_qvalue_nets=2, sub_sample_len=3)


def test_contract_on_pendulum_replay_sample():
    from rlbench.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator

    net = TensorDictModule(nn.Sequential(MLP(in_features=3, out_features=2, num_cells=[16]), NormalParamExtractor()),
                           ["observation"], ["loc", "scale"])
    pol = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal,
                             distribution_kwargs={"low": -2.0, "high": 2.0})
    q = ValueOperator(MLP(in_features=4, out_features=1, num_cells=[16]), in_keys=["observation", "action"])
    td = replay_sample("Pendulum-v1", pol)
    check_loss_contract(REDQLoss(pol, q, num_qvalue_nets=4, sub_sample_len=2), td, rename={"reward": "rew"})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    check_loss_runs_on(REDQLoss(actor(), critic(), num_qvalue_nets=N, sub_sample_len=M), batch(), "cuda")
