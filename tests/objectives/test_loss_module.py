"""LossModule plumbing: functional params, targets (frozen, no gradient), ensembles, keys, estimators."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlbench.objectives import LossModule, ValueEstimators, total_loss


def _net(i=3, o=1, out="state_value"):
    return TensorDictModule(torch.nn.Linear(i, o), ["obs"], [out])


class _Loss(LossModule):
    default_keys = {"value": "state_value", "reward": "reward", "done": "done", "terminated": "terminated"}

    def __init__(self, net, **kw):
        super().__init__(**kw)
        self.convert_to_functional(net, "value_network", create_target_params=kw.get("functional", True))

    def _estimator_network(self):
        return self.value_network

    def forward(self, td):
        pred = self.value_network(td.copy())[self.tensor_keys.value]
        with torch.no_grad():
            tgt = self.call_network("value_network", td.copy(), target=True)[self.tensor_keys.value] + 1
        return TensorDict(loss_value=(pred - tgt).pow(2).mean(), pred_mean=pred.detach().mean())


def test_target_is_frozen_copy_and_gets_no_gradient():
    net = _net()
    loss = _Loss(net)
    tgt = loss.target_value_network_params
    assert torch.equal(tgt["module", "weight"], net.module.weight)
    assert tgt["module", "weight"].data_ptr() != net.module.weight.data_ptr()
    # targets are buffers: not trainable, not in parameters()
    names = [n for n, _ in loss.named_parameters()]
    assert not any("target" in n for n in names)
    assert {id(p) for p in loss.parameters()} == {id(p) for p in net.parameters()}
    out = loss(TensorDict(obs=torch.randn(5, 3), batch_size=[5]))
    total_loss(out).backward()
    assert net.module.weight.grad is not None
    assert all(not v.requires_grad and v.grad is None for v in tgt.values(True, True))
    # the network holds its online params again after the target call
    assert net.module.weight is loss.value_network_params["module", "weight"]


def test_target_params_context_allows_input_gradient_but_not_param_gradient():
    net = _net()
    loss = _Loss(net)
    with torch.no_grad():
        loss.target_value_network_params["module", "weight"].fill_(2.0)
        loss.target_value_network_params["module", "bias"].zero_()
    x = torch.ones(2, 3, requires_grad=True)
    with loss.target_params("value_network") as n:
        y = n(TensorDict(obs=x, batch_size=[2]))["state_value"]
    assert torch.equal(y, torch.full((2, 1), 6.0))
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((2, 3), 2.0))
    assert net.module.weight.grad is None
    assert not net.module.weight.eq(2.0).all()  # online params restored


@pytest.mark.parametrize("mode", ["vmap", "loop", "auto"])
def test_ensemble_vmap_matches_per_copy_calls_and_grads_reach_each_copy(mode):
    net = _net(3, 1, "q")
    loss = LossModule()
    loss.ensemble_mode = mode
    loss.convert_to_functional(net, "qvalue_network", expand_dim=3, create_target_params=True)
    p = loss.qvalue_network_params
    assert p.batch_size == torch.Size([3])
    assert torch.equal(p["module", "weight"][0], net.module.weight.detach())
    assert not torch.equal(p["module", "weight"][1], p["module", "weight"][0])  # re-initialised
    td = TensorDict(obs=torch.randn(4, 3), batch_size=[4])
    out = loss.call_network("qvalue_network", td)["q"]
    assert out.shape == (3, 4, 1)
    for e in range(3):
        ref = td["obs"] @ p["module", "weight"][e].T + p["module", "bias"][e]
        torch.testing.assert_close(out[e], ref)
    out[1].sum().backward()
    g = p["module", "weight"].grad
    assert g[1].abs().sum() > 0 and g[0].abs().sum() == 0 and g[2].abs().sum() == 0
    # the network's own params are not trainable parameters of the loss
    assert len(list(loss.parameters())) == 2
    tgt = loss.call_network("qvalue_network", td, target=True)["q"]
    torch.testing.assert_close(tgt, out.detach())
    assert not tgt.requires_grad


def test_ensemble_mode_auto_picks_by_size_and_bad_mode_is_refused():
    loss = LossModule()
    loss.convert_to_functional(_net(3, 1, "q"), "small", expand_dim=10)  # 4 parameters per copy
    loss.convert_to_functional(TensorDictModule(torch.nn.Linear(200, 200), ["obs"], ["q"]), "big", expand_dim=10)
    loss.convert_to_functional(_net(3, 1, "q"), "pair", expand_dim=2)
    assert loss._vmap_ensemble("small", 10) and not loss._vmap_ensemble("big", 10)
    assert not loss._vmap_ensemble("pair", 2)
    loss.ensemble_mode = "vectorised"
    with pytest.raises(ValueError, match="ensemble_mode must be 'auto', 'vmap' or 'loop'"):
        loss._vmap_ensemble("pair", 2)


@pytest.mark.parametrize("mode", ["vmap", "loop"])
def test_detached_ensemble_call_builds_no_parameter_gradients(mode):
    # a frozen critic (an actor loss) must pass gradients to its input only: no weight-gradient matmuls
    loss = LossModule()
    loss.ensemble_mode = mode
    loss.convert_to_functional(_net(3, 1, "q"), "qvalue_network", expand_dim=2)
    x = torch.randn(4, 3, requires_grad=True)
    out = loss.call_network("qvalue_network", TensorDict(obs=x, batch_size=[4]), detach=True)["q"]
    frontier, leaves = [out.grad_fn], []
    while frontier:  # every leaf the graph reaches: only the input x may accumulate a gradient
        fn = frontier.pop()
        if fn is None:
            continue
        if hasattr(fn, "variable"):
            leaves.append(fn.variable)
        frontier.extend(f for f, _ in fn.next_functions)
    assert leaves and all(leaf is x for leaf in leaves)
    out.sum().backward()
    assert x.grad is not None


def test_set_keys_unknown_name_and_bad_type():
    loss = _Loss(_net())
    loss.set_keys(value="v2")
    assert loss.tensor_keys.value == "v2"
    with pytest.raises(ValueError, match=r"unknown key name\(s\) \['valeu'\].*expected some of"):
        loss.set_keys(valeu="x")
    with pytest.raises(TypeError, match="must be a str or a tuple of str"):
        loss.set_keys(value=3)
    with pytest.raises(AttributeError, match="set_keys"):
        loss.tensor_keys.value = "z"
    with pytest.raises(AttributeError, match="no key named 'nope'"):
        loss.tensor_keys.nope
    # per-instance: another loss keeps its defaults
    assert _Loss(_net()).tensor_keys.value == "state_value"


def test_non_functional_mode_and_errors():
    net = _net()
    loss = LossModule(functional=False)
    loss.convert_to_functional(net, "value_network")
    assert not hasattr(loss, "value_network_params")
    with pytest.raises(ValueError, match="functional=False"):
        LossModule(functional=False).convert_to_functional(_net(), "v", create_target_params=True)
    with pytest.raises(KeyError, match="no target parameters"):
        loss.network_params("value_network", target=True)
    with pytest.raises(KeyError, match="no network 'nope'"):
        loss.network_params("nope")
    with pytest.raises(TypeError, match="must be an nn.Module"):
        LossModule().convert_to_functional(lambda x: x, "f")


def test_total_loss_sums_only_loss_entries():
    td = TensorDict(loss_a=torch.tensor(1.5), loss_b=torch.tensor(-0.5), entropy=torch.tensor(9.0))
    assert total_loss(td).item() == 1.0
    with pytest.raises(KeyError, match="no 'loss_\\*' entry"):
        total_loss(TensorDict(entropy=torch.tensor(1.0)))


def test_state_dict_round_trip_includes_targets():
    a, b = _Loss(_net()), _Loss(_net())
    with torch.no_grad():
        a.target_value_network_params["module", "bias"].fill_(7.0)
    b.load_state_dict(a.state_dict())
    assert b.target_value_network_params["module", "bias"].item() == 7.0
    torch.testing.assert_close(b.value_network.module.weight, a.value_network.module.weight)


def test_lazy_network_error_says_what_to_do():
    net = TensorDictModule(torch.nn.LazyLinear(2), ["obs"], ["q"])
    with pytest.raises(ValueError, match="uninitialized lazy layers .* run it once on a batch"):
        LossModule().convert_to_functional(net, "qnet")
    net(TensorDict(obs=torch.randn(3, 5), batch_size=[3]))
    LossModule().convert_to_functional(net, "qnet", create_target_params=True)


def test_lazily_built_estimator_does_not_change_state_dict_keys():
    from rlbench.objectives.value import GAE

    class _L(LossModule):
        default_value_estimator = ValueEstimators.GAE

        def __init__(self, net):
            super().__init__()
            self.convert_to_functional(net, "value_network")

        def _estimator_network(self):
            return self.value_network

    trained, fresh = _L(_net()), _L(_net())
    assert isinstance(trained.value_estimator, GAE)  # built on first use
    fresh.load_state_dict(trained.state_dict())  # strict: same keys
    assert sorted(trained.state_dict()) == sorted(fresh.state_dict())


def test_target_calls_see_in_place_updates_and_replaced_tensors():
    # the loss caches the target's tensors between calls: in-place updates and replaced tensors both show
    loss = _Loss(_net())
    td = TensorDict(obs=torch.randn(4, 3), batch_size=[4])
    before = loss.call_network("value_network", td.copy(), target=True)["state_value"]
    with torch.no_grad():
        loss.target_value_network_params["module", "bias"].add_(1.0)  # as SoftUpdate / HardUpdate do
    after = loss.call_network("value_network", td.copy(), target=True)["state_value"]
    torch.testing.assert_close(after, before + 1.0)
    loss.double()  # replaces every tensor
    out = loss.call_network("value_network", td.double(), target=True)["state_value"]
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, after.double())
