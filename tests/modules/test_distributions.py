"""Distributions: TanhNormal against torch's TransformedDistribution, point masses, masked categoricals."""
import math

import pytest
import torch
from torch import distributions as D

from rlbench.modules import (
    Delta,
    MaskedCategorical,
    MaskedOneHotCategorical,
    NormalParamExtractor,
    OneHotCategorical,
    TanhDelta,
    TanhNormal,
)


def _reference(loc, scale, low, high):
    """TanhNormal as torch composes it: Normal -> tanh -> affine, one event over the last dim."""
    mid, half = (high + low) / 2, (high - low) / 2
    return D.Independent(
        D.TransformedDistribution(D.Normal(loc, scale), [D.TanhTransform(), D.AffineTransform(mid, half)]), 1
    )


def test_tanh_normal_log_prob_matches_transformed_distribution_float64():
    loc = torch.randn(6, 3, dtype=torch.float64) * 2
    scale = torch.rand(6, 3, dtype=torch.float64) + 0.2
    low = torch.tensor([-1.0, -2.0, 0.0], dtype=torch.float64)
    high = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    ours, ref = TanhNormal(loc, scale, low, high), _reference(loc, scale, low, high)
    x = torch.randn(10, 6, 3, dtype=torch.float64) * 2  # pre-tanh points, moderate
    y = (high + low) / 2 + (high - low) / 2 * torch.tanh(x)
    torch.testing.assert_close(ours.log_prob(y), ref.log_prob(y), rtol=1e-9, atol=1e-9)
    assert ours.log_prob(y).shape == (10, 6)


def test_tanh_normal_near_saturation_is_stable():
    # float64 reference evaluated on the exact pre-tanh values, far into the saturated region
    loc = torch.full((4,), 9.0)
    scale = torch.ones(4)
    x = torch.tensor([8.0, 9.5, 10.0, -11.0], dtype=torch.float64)
    exact = D.Normal(loc.double(), scale.double()).log_prob(x) - torch.log1p(-torch.tanh(x) ** 2)
    d = TanhNormal(loc, scale, event_dims=0)
    # a sample just drawn keeps its pre-tanh value: log_prob is exact even where tanh(x) == 1.0 in float32
    torch.manual_seed(3)
    a = d.rsample()
    lp = d.log_prob(a)
    assert torch.isfinite(lp).all()
    torch.manual_seed(3)
    x32 = D.Normal(loc, scale).rsample()
    ref = D.Normal(loc.double(), scale.double()).log_prob(x32.double()) - torch.log1p(-torch.tanh(x32.double()) ** 2)
    torch.testing.assert_close(lp.double(), ref, rtol=1e-4, atol=1e-4)
    # a value given from outside (no cache) on float64 matches the exact formula where atanh is accurate
    d64 = TanhNormal(loc.double(), scale.double(), event_dims=0)
    y = torch.tanh(x).clone()
    torch.testing.assert_close(d64.log_prob(y)[:2], exact[:2], rtol=1e-6, atol=1e-6)
    # a value exactly on the bound (e.g. a clamped action) still has a finite log-prob
    assert torch.isfinite(d.log_prob(torch.ones(4))).all()


def test_tanh_normal_rsample_in_bounds_and_differentiable():
    loc = torch.randn(50, 2, requires_grad=True)
    d = TanhNormal(loc * 5, torch.ones(50, 2), low=-3.0, high=[0.5, 4.0])
    a = d.rsample((20,))
    assert a.shape == (20, 50, 2)
    assert bool((a[..., 0] >= -3).all() and (a[..., 0] <= 0.5).all() and (a[..., 1] <= 4).all())
    d.log_prob(a).sum().backward()
    assert loc.grad is not None and torch.isfinite(loc.grad).all()


def test_tanh_normal_rsample_and_log_prob_matches_log_prob():
    loc, scale = torch.randn(4, 2, dtype=torch.float64), torch.rand(4, 2, dtype=torch.float64) + 0.1
    d = TanhNormal(loc, scale, low=-3.0, high=1.0)
    a, lp = d.rsample_and_log_prob((5,))
    assert a.shape == (5, 4, 2) and lp.shape == (5, 4)
    ref = _reference(d.loc, d.scale, torch.tensor(-3.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(lp, ref.log_prob(a.clone()), rtol=1e-7, atol=1e-7)


def test_tanh_normal_mode_inside_bounds():
    loc = torch.tensor([[-50.0, 0.0, 50.0]])
    d = TanhNormal(loc, torch.ones(1, 3), low=-2.0, high=2.0)
    mode = d.mode
    assert torch.equal(d.deterministic_sample, mode)
    assert bool((mode >= -2).all() and (mode <= 2).all())
    torch.testing.assert_close(mode, torch.tensor([[-2.0, 0.0, 2.0]]))
    with pytest.raises(NotImplementedError, match="mean"):
        d.mean
    assert d.batch_shape == (1,) and d.event_shape == (3,)


def test_tanh_normal_bad_args():
    with pytest.raises(ValueError, match="low must be < high"):
        TanhNormal(torch.zeros(2), torch.ones(2), low=1.0, high=1.0)
    with pytest.raises(ValueError, match="event_dims"):
        TanhNormal(torch.zeros(2), torch.ones(2), event_dims=2)


def test_tanh_normal_tanh_loc_limits_loc():
    d = TanhNormal(torch.tensor([100.0]), torch.ones(1), tanh_loc=True, upscale=3.0)
    assert float(d.loc) <= 3.0


def test_delta_and_tanh_delta():
    p = torch.tensor([0.0, 100.0, -1.0], requires_grad=True)
    d = TanhDelta(p, low=-2.0, high=2.0)
    expected = 2.0 * torch.tanh(p.detach())
    torch.testing.assert_close(d.mode, expected)
    d.rsample().sum().backward()
    torch.testing.assert_close(p.grad, 2.0 * (1 - torch.tanh(p.detach()) ** 2))
    assert torch.equal(Delta(torch.ones(2)).deterministic_sample, torch.ones(2))


def test_masked_categorical():
    logits = torch.tensor([[1.0, 2.0, 3.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False, True], [False, True, False, False]])
    d = MaskedCategorical(logits=logits, mask=mask)
    ref = torch.softmax(torch.tensor([1.0, 2.0, 0.5]), -1)
    torch.testing.assert_close(d.probs[0, [0, 1, 3]], ref)
    assert d.probs[0, 2] == 0 and d.log_prob(torch.tensor([2, 0]))[0] == -math.inf
    assert torch.equal(d.mode, torch.tensor([1, 1]))
    s = d.sample((2000,))
    assert not bool(((s == 2) & torch.tensor([True, False])).any()) and bool((s[:, 1] == 1).all())
    freq = torch.bincount(s[:, 0], minlength=4).float() / 2000
    torch.testing.assert_close(freq[[0, 1, 3]], ref, atol=0.04, rtol=0)
    ent = d.entropy()
    assert torch.isfinite(ent).all()
    torch.testing.assert_close(ent[0], -(ref * ref.log()).sum())
    assert ent[1] == 0


def test_masked_categorical_errors():
    with pytest.raises(ValueError, match="mask is required"):
        MaskedCategorical(logits=torch.zeros(3))
    with pytest.raises(TypeError, match="bool"):
        MaskedCategorical(logits=torch.zeros(3), mask=torch.ones(3))
    with pytest.raises(ValueError, match="at least one allowed"):
        MaskedCategorical(logits=torch.zeros(2, 3), mask=torch.tensor([[True, False, False], [False] * 3]))
    with pytest.raises(ValueError, match="exactly one of logits or probs"):
        MaskedCategorical(mask=torch.ones(3, dtype=torch.bool))


def test_masked_one_hot_categorical():
    d = MaskedOneHotCategorical(logits=torch.tensor([5.0, 0.0, 1.0]), mask=torch.tensor([False, True, True]))
    s = d.sample((100,))
    assert s.shape == (100, 3) and bool((s[:, 0] == 0).all()) and bool((s.sum(-1) == 1).all())
    ref = torch.log_softmax(torch.tensor([0.0, 1.0]), -1)
    torch.testing.assert_close(d.log_prob(torch.tensor([0, 0, 1])), ref[1])


def test_reexports_are_tensordicts():
    import tensordict.nn as tdnn
    import tensordict.nn.distributions as tdd

    assert NormalParamExtractor is tdnn.NormalParamExtractor
    assert OneHotCategorical is tdd.OneHotCategorical and Delta is tdd.Delta


def test_tanh_normal_number_and_tensor_bounds_agree():
    loc, scale = torch.randn(5, 2), torch.rand(5, 2) + 0.2
    a = torch.rand(5, 2) * 3.8 - 1.9
    as_numbers = TanhNormal(loc, scale, -2.0, 2.0)
    as_tensors = TanhNormal(loc, scale, torch.tensor([-2.0, -2.0]), torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(as_numbers.log_prob(a), as_tensors.log_prob(a))
    torch.testing.assert_close(as_numbers.mode, as_tensors.mode)
    with pytest.raises(ValueError, match="low must be < high"):
        TanhNormal(loc, scale, torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]))
