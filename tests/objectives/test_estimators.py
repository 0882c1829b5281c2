"""TensorDict value estimators: values from the network in one call, keys, gradients, references."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from test_value_functional import ref_gae, ref_td1, ref_td_lambda  # same folder (on sys.path under pytest)

from rlbench.objectives import LossModule, ValueEstimators
from rlbench.objectives.value import GAE, TD0Estimator, TD1Estimator, TDLambdaEstimator


class _CountingLinear(torch.nn.Linear):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


def _critic(dtype=torch.float32):
    return TensorDictModule(_CountingLinear(4, 1, dtype=dtype), ["observation"], ["state_value"])


def _rollout(batch, dtype=torch.float32, p_end=0.08):
    shape = (*batch, 1)
    term = torch.rand(shape) < p_end / 2
    trunc = (torch.rand(shape) < p_end / 2) & ~term
    return TensorDict({
        "observation": torch.randn(*batch, 4, dtype=dtype),
        "next": {"observation": torch.randn(*batch, 4, dtype=dtype), "reward": torch.randn(shape, dtype=dtype),
                 "done": term | trunc, "terminated": term, "truncated": trunc},
    }, batch_size=batch)


def _values(critic, td):
    with torch.no_grad():
        lin = critic.module
        return (torch.nn.functional.linear(td["observation"], lin.weight, lin.bias),
                torch.nn.functional.linear(td["next", "observation"], lin.weight, lin.bias))


@pytest.mark.parametrize("batch", [(3, 70), (50,), (2, 2, 9)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_estimators_match_references_with_one_network_call(batch, dtype):
    critic = _critic(dtype)
    td = _rollout(batch, dtype)
    v, nv = _values(critic, td)
    r, d, t = td["next", "reward"], td["next", "done"], td["next", "terminated"]
    tol = dict(atol=2e-4, rtol=1e-4) if dtype == torch.float32 else {}
    cases = [
        (GAE(gamma=0.98, lmbda=0.9, value_network=critic), ref_gae(0.98, 0.9, v, nv, r, d, t) + v),
        (TDLambdaEstimator(gamma=0.98, lmbda=0.9, value_network=critic), ref_td_lambda(0.98, 0.9, nv, r, d, t)),
        (TD1Estimator(gamma=0.98, value_network=critic), ref_td1(0.98, nv, r, d, t)),
        (TD0Estimator(gamma=0.98, value_network=critic), r + 0.98 * (~t).to(dtype) * nv),
    ]
    for est, ref_target in cases:
        _CountingLinear.calls = 0
        out = est(td.clone())
        assert _CountingLinear.calls == 1  # root and next in one batched call
        torch.testing.assert_close(out["value_target"], ref_target, **tol)
        torch.testing.assert_close(out["advantage"], ref_target - v, **tol)
        torch.testing.assert_close(out["state_value"], v)
        torch.testing.assert_close(out["next", "state_value"], nv)
        assert not out["value_target"].requires_grad and not out["advantage"].requires_grad


def test_stored_values_without_network_and_flat_reward_shape():
    td = _rollout((4, 12))
    v, nv = torch.randn(4, 12, 1), torch.randn(4, 12, 1)
    td["state_value"], td["next", "state_value"] = v, nv
    out = GAE(gamma=0.9, lmbda=0.8)(td.clone())
    r, d, t = td["next", "reward"], td["next", "done"], td["next", "terminated"]
    torch.testing.assert_close(out["advantage"], ref_gae(0.9, 0.8, v, nv, r, d, t), atol=1e-5, rtol=1e-5)
    # rewards/flags shaped [*B, T] (no trailing 1) are accepted
    td2 = td.clone()
    for k in ("reward", "done", "terminated"):
        td2["next", k] = td2["next", k].squeeze(-1)
    out2 = GAE(gamma=0.9, lmbda=0.8)(td2)
    torch.testing.assert_close(out2["advantage"], out["advantage"])


def test_time_dim_time_first():
    td = _rollout((3, 40))
    critic = _critic()
    ref = GAE(gamma=0.9, lmbda=0.9, value_network=critic)(td.clone())["advantage"]
    out = GAE(gamma=0.9, lmbda=0.9, value_network=critic, time_dim=0)(td.clone().transpose(0, 1))["advantage"]
    torch.testing.assert_close(out, ref.transpose(0, 1), atol=1e-6, rtol=1e-6)


def test_differentiable_keeps_graph_and_default_does_not():
    critic = _critic()
    td = _rollout((2, 8))
    out = TD0Estimator(gamma=0.9, value_network=critic, differentiable=True)(td.clone())
    assert out["value_target"].requires_grad
    out["advantage"].sum().backward()
    assert critic.module.weight.grad is not None
    critic.module.weight.grad = None
    out = TD0Estimator(gamma=0.9, value_network=critic)(td.clone())
    assert not out["advantage"].requires_grad


def test_params_and_target_params_are_used():
    critic = _critic()
    td = _rollout((2, 6))
    p = TensorDict.from_module(critic).detach().clone()
    tp = p.clone()
    for params, value in ((p, 1.0), (tp, 2.0)):  # V(s) = 1 with p, 2 with tp
        params["module", "weight"].zero_()
        params["module", "bias"].fill_(value)
    out = TD0Estimator(gamma=0.5, value_network=critic)(td.clone(), params=p, target_params=tp)
    assert (out["state_value"] == 1).all() and (out["next", "state_value"] == 2).all()
    t = td["next", "terminated"]
    torch.testing.assert_close(out["value_target"], td["next", "reward"] + 0.5 * 2 * (~t).float())
    assert not (critic.module.weight == 0).all()  # the network is left with its own params


def test_set_keys_and_missing_key_errors():
    td = _rollout((2, 5)).rename_key_(("next", "reward"), ("next", "rew"))
    est = GAE(gamma=0.9, lmbda=0.9, value_network=_critic())
    with pytest.raises(KeyError, match=r"no reward entry 'reward' \(rename it with set_keys\(reward=...\)\)"):
        est(td.clone())
    est.set_keys(reward="rew", advantage="adv", value_target="vt")
    out = est(td.clone())
    assert "adv" in out.keys() and "vt" in out.keys() and "advantage" not in out.keys()
    with pytest.raises(ValueError, match="unknown key name"):
        est.set_keys(rewards="x")
    with pytest.raises(ValueError, match="needs a time dimension"):
        est(TensorDict({}, batch_size=[]))


def test_average_gae_standardises():
    td = _rollout((4, 30))
    out = GAE(gamma=0.9, lmbda=0.9, value_network=_critic(), average_gae=True)(td)
    assert abs(out["advantage"].mean().item()) < 1e-5
    assert abs(out["advantage"].std().item() - 1) < 1e-4


# ------------------------------------------------------------- LossModule.make_value_estimator
def _loss():
    class _L(LossModule):
        default_keys = {"value": "state_value", "reward": "reward", "done": "done", "terminated": "terminated"}

        def __init__(self, net):
            super().__init__()
            self.convert_to_functional(net, "value_network", create_target_params=True)

        def _estimator_network(self):
            return self.value_network

    return _L(_critic())


def test_make_value_estimator_kinds_and_key_propagation():
    loss = _loss()
    for kind, cls in [("td0", TD0Estimator), ("td1", TD1Estimator), ("td_lambda", TDLambdaEstimator),
                      (ValueEstimators.GAE, GAE)]:
        loss.make_value_estimator(kind, gamma=0.9)
        assert type(loss.value_estimator) is cls
        assert loss.value_estimator.value_network is loss.value_network
        assert loss.value_estimator.gamma == 0.9
    assert loss.value_estimator.lmbda == 0.95  # default_value_kwargs
    loss.set_keys(reward="r2")
    assert loss.value_estimator.tensor_keys.reward == "r2"
    with pytest.raises(ValueError, match="unknown value estimator 'mc'"):
        loss.make_value_estimator("mc")
    with pytest.raises(TypeError, match="make_value_estimator"):
        loss.make_value_estimator("td0", bogus=1)


def test_value_estimator_built_lazily_with_defaults():
    est = _loss().value_estimator
    assert type(est) is TD0Estimator and est.gamma == pytest.approx(0.99)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gae_estimator_on_cuda():
    critic = _critic()
    td = _rollout((3, 50))
    ref = GAE(gamma=0.9, lmbda=0.9, value_network=critic)(td.clone())
    out = GAE(gamma=0.9, lmbda=0.9, value_network=critic.cuda())(td.clone().cuda())
    assert out["advantage"].device.type == "cuda"
    torch.testing.assert_close(out["advantage"].cpu(), ref["advantage"], atol=1e-4, rtol=1e-4)


def test_positional_hyperparameters():
    critic = _critic()
    td = _rollout((2, 9))
    a = GAE(0.9, 0.8, critic)(td.clone())["advantage"]
    b = GAE(gamma=0.9, lmbda=0.8, value_network=critic)(td.clone())["advantage"]
    torch.testing.assert_close(a, b)
    assert TD0Estimator(0.5, critic).gamma == 0.5 and TDLambdaEstimator(0.5, 0.3, critic).lmbda == 0.3
    with pytest.raises(TypeError, match="gamma must be a number or a tensor"):
        TD0Estimator("0.9")
