"""Target updaters, distance_loss, hold_out_params."""
import pytest
import torch
from tensordict.nn import TensorDictModule

from rlbench.objectives import HardUpdate, LossModule, SoftUpdate, distance_loss, hold_out_params


def _loss(expand=None):
    net = TensorDictModule(torch.nn.Linear(3, 2), ["obs"], ["q"])
    loss = LossModule()
    loss.convert_to_functional(net, "qnet", create_target_params=True, expand_dim=expand)
    return loss


@pytest.mark.parametrize("expand", [None, 2])
def test_soft_update_is_polyak_average(expand):
    loss = _loss(expand)
    online, target = loss.qnet_params, loss.target_qnet_params
    with torch.no_grad():
        target.data.apply_(lambda t: t.normal_())
    before_t = target.data.clone()
    before_o = online.data.clone()
    SoftUpdate(loss, tau=0.1).step()
    for k in before_t.keys(True, True):
        torch.testing.assert_close(target[k], 0.9 * before_t[k] + 0.1 * before_o[k])
    SoftUpdate(loss, eps=0.0).step()  # tau = 1: exact copy
    assert (target.data == online.data).all()


def test_soft_update_argument_errors():
    loss = _loss()
    with pytest.raises(ValueError, match="exactly one of tau"):
        SoftUpdate(loss, tau=0.1, eps=0.9)
    with pytest.raises(ValueError, match=r"tau must be in \(0, 1\]"):
        SoftUpdate(loss, tau=1.5)
    with pytest.raises(ValueError, match="no target parameters"):
        SoftUpdate(LossModule(), tau=0.1)


def test_hard_update_period_and_init():
    loss = _loss()
    up = HardUpdate(loss, value_network_update_interval=3)
    with torch.no_grad():
        loss.qnet.module.bias.fill_(5.0)
    for i in range(2):
        up.step()
        assert not (loss.target_qnet_params["module", "bias"] == 5).any()
    up.step()
    assert (loss.target_qnet_params["module", "bias"] == 5).all()
    with torch.no_grad():
        loss.qnet.module.bias.fill_(6.0)
    up.init_()
    assert (loss.target_qnet_params["module", "bias"] == 6).all()
    with pytest.raises(ValueError, match="value_network_update_interval must be >= 1"):
        HardUpdate(loss, value_network_update_interval=0)


def test_distance_loss_values_and_errors():
    a = torch.tensor([0.0, 0.5, 3.0])
    b = torch.tensor([1.0, 0.0, 0.0])
    assert torch.equal(distance_loss(a, b, "l2"), torch.tensor([1.0, 0.25, 9.0]))
    assert torch.equal(distance_loss(a, b, "l1"), torch.tensor([1.0, 0.5, 3.0]))
    torch.testing.assert_close(distance_loss(a, b, "smooth_l1"), torch.tensor([0.5, 0.125, 2.5]))
    with pytest.raises(ValueError, match="unknown loss_function 'l3'"):
        distance_loss(a, b, "l3")
    with pytest.raises(ValueError, match=r"shapes differ \(\(3,\) vs \(3, 1\)\)"):
        distance_loss(a, b[:, None], "l2")


def test_hold_out_params_blocks_param_grad_only():
    lin = torch.nn.Linear(2, 1)
    x = torch.ones(1, 2, requires_grad=True)
    with hold_out_params(lin):
        lin(x).sum().backward()
    assert lin.weight.grad is None
    torch.testing.assert_close(x.grad, lin.weight.detach())
    assert isinstance(lin.weight, torch.nn.Parameter)
    lin(x).sum().backward()
    assert lin.weight.grad is not None
