"""Vectorized return/advantage estimators against plain per-step Python references."""
import pytest
import torch

from rlbench.objectives.value import (
    generalized_advantage_estimate,
    reverse_linear_recurrence,
    td0_return_estimate,
    td1_return_estimate,
    td_lambda_return_estimate,
)


# ----------------------------------------------------------------- references (loop over time)
def ref_gae(gamma, lmbda, v, nv, r, done, term):
    """Per-step GAE on [..., T, 1] tensors; gamma/lmbda numbers or tensors of the same shape."""
    g = torch.as_tensor(gamma, dtype=r.dtype).expand_as(r)
    lm = torch.as_tensor(lmbda, dtype=r.dtype).expand_as(r)
    adv = torch.zeros_like(r)
    last = torch.zeros_like(r[..., 0, :])
    for t in reversed(range(r.shape[-2])):
        delta = r[..., t, :] + g[..., t, :] * (~term[..., t, :]) * nv[..., t, :] - v[..., t, :]
        last = delta + g[..., t, :] * lm[..., t, :] * (~done[..., t, :]) * last
        adv[..., t, :] = last
    return adv


def ref_td_lambda(gamma, lmbda, nv, r, done, term):
    g = torch.as_tensor(gamma, dtype=r.dtype).expand_as(r)
    lm = torch.as_tensor(lmbda, dtype=r.dtype).expand_as(r)
    T = r.shape[-2]
    out = torch.zeros_like(r)
    nxt = torch.zeros_like(r[..., 0, :])
    for t in reversed(range(T)):
        boot = g[..., t, :] * (~term[..., t, :])
        end = done[..., t, :] | (t == T - 1)
        cont = (1 - lm[..., t, :]) * nv[..., t, :] + lm[..., t, :] * nxt
        nxt = r[..., t, :] + boot * torch.where(end, nv[..., t, :], cont)
        out[..., t, :] = nxt
    return out


def ref_td1(gamma, nv, r, done, term):
    T = r.shape[-2]
    out = torch.zeros_like(r)
    nxt = torch.zeros_like(r[..., 0, :])
    for t in reversed(range(T)):
        end = done[..., t, :] | (t == T - 1)
        nxt = r[..., t, :] + gamma * (~term[..., t, :]).to(r.dtype) * torch.where(end, nv[..., t, :], nxt)
        out[..., t, :] = nxt
    return out


def _data(shape, dtype, p_term=0.04, p_trunc=0.04):
    r = torch.randn(shape, dtype=dtype)
    v = torch.randn(shape, dtype=dtype)
    nv = torch.randn(shape, dtype=dtype)
    term = torch.rand(shape) < p_term
    trunc = (torch.rand(shape) < p_trunc) & ~term
    return r, v, nv, term | trunc, term


SHAPES = [(4, 130, 1), (200, 1), (2, 3, 67, 1), (1, 1), (3, 7, 1), (2, 300, 1)]
DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return dict(atol=2e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gae_matches_reference(shape, dtype):
    r, v, nv, done, term = _data(shape, dtype)
    adv, target = generalized_advantage_estimate(0.97, 0.9, v, nv, r, done=done, terminated=term)
    ref = ref_gae(0.97, 0.9, v, nv, r, done, term)
    torch.testing.assert_close(adv, ref, **_tol(dtype))
    torch.testing.assert_close(target, ref + v, **_tol(dtype))
    assert adv.dtype == dtype and adv.shape == shape


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_td_lambda_and_td1_match_reference(shape, dtype):
    r, v, nv, done, term = _data(shape, dtype)
    out = td_lambda_return_estimate(0.95, 0.8, nv, r, done=done, terminated=term)
    torch.testing.assert_close(out, ref_td_lambda(0.95, 0.8, nv, r, done, term), **_tol(dtype))
    out1 = td1_return_estimate(0.95, nv, r, done=done, terminated=term)
    torch.testing.assert_close(out1, ref_td1(0.95, nv, r, done, term), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_td0_matches_reference(dtype):
    r, v, nv, done, term = _data((5, 40, 1), dtype)
    out = td0_return_estimate(0.9, nv, r, terminated=term, done=done)
    torch.testing.assert_close(out, r + 0.9 * (~term).to(dtype) * nv, **_tol(dtype))


def test_truncation_bootstraps_but_does_not_recurse_across_episodes():
    # two episodes in one row: steps 0-1 end in a truncation, steps 2-3 end in a termination
    r = torch.tensor([1.0, 1.0, 1.0, 1.0]).unsqueeze(-1)
    nv = torch.tensor([0.0, 10.0, 100.0, 1000.0]).unsqueeze(-1)
    v = torch.tensor([5.0, 0.0, 7.0, 100.0]).unsqueeze(-1)  # V(s_{t+1}) = nv_t inside an episode
    done = torch.tensor([False, True, False, True]).unsqueeze(-1)
    term = torch.tensor([False, False, False, True]).unsqueeze(-1)
    g = 0.5
    ret = td1_return_estimate(g, nv, r, done=done, terminated=term).squeeze(-1)
    # step 1 bootstraps from its final observation's value (10); step 3 is terminal (no 1000)
    torch.testing.assert_close(ret, torch.tensor([1 + g * (1 + g * 10), 1 + g * 10, 1 + g * 1, 1.0]))
    adv, _ = generalized_advantage_estimate(g, 1.0, v, nv, r, done=done, terminated=term)
    torch.testing.assert_close(adv.squeeze(-1), ret - v.squeeze(-1))
    # no flags at all: nothing ends, last step bootstraps
    ret_open = td1_return_estimate(g, nv, r).squeeze(-1)
    assert ret_open[-1] == 1 + g * 1000


def _consistent(B, T):
    """Values where V(s_{t+1}) at step t is the next step's V(s) except where an episode ended."""
    r, _, _, done, term = _data((B, T, 1), torch.float64, 0.05, 0.05)
    vv = torch.randn(B, T + 1, 1, dtype=torch.float64)
    v, nv = vv[:, :-1], vv[:, 1:].clone()
    nv[done] = torch.randn(int(done.sum()), dtype=torch.float64)  # final observation of the episode
    return r, v, nv, done, term


@pytest.mark.parametrize("T", [5, 70, 257])
def test_gae_lambda_limits_equal_td1_and_td0(T):
    r, v, nv, done, term = _consistent(3, T)
    adv1, _ = generalized_advantage_estimate(0.9, 1.0, v, nv, r, done=done, terminated=term)
    torch.testing.assert_close(adv1, td1_return_estimate(0.9, nv, r, done=done, terminated=term) - v)
    adv0, _ = generalized_advantage_estimate(0.9, 0.0, v, nv, r, done=done, terminated=term)
    torch.testing.assert_close(adv0, td0_return_estimate(0.9, nv, r, terminated=term) - v)
    # in between, GAE's value target is the lambda-return (same values, same episode ends)
    _, tgt = generalized_advantage_estimate(0.9, 0.7, v, nv, r, done=done, terminated=term)
    torch.testing.assert_close(tgt, td_lambda_return_estimate(0.9, 0.7, nv, r, done=done, terminated=term))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_gamma_per_step_general_path(dtype):
    shape = (3, 150, 1)
    r, v, nv, done, term = _data(shape, dtype)
    gamma = 0.8 + 0.2 * torch.rand(shape, dtype=dtype)
    lmbda = torch.rand(shape, dtype=dtype)
    adv, _ = generalized_advantage_estimate(gamma, lmbda, v, nv, r, done=done, terminated=term)
    torch.testing.assert_close(adv, ref_gae(gamma, lmbda, v, nv, r, done, term), **_tol(dtype))
    out = td_lambda_return_estimate(gamma, lmbda, nv, r, done=done, terminated=term)
    torch.testing.assert_close(out, ref_td_lambda(gamma, lmbda, nv, r, done, term), **_tol(dtype))
    # a 1-element tensor gamma takes the constant path and agrees with the number
    a1, _ = generalized_advantage_estimate(torch.tensor(0.9), 0.5, v, nv, r, done=done, terminated=term)
    a2, _ = generalized_advantage_estimate(0.9, 0.5, v, nv, r, done=done, terminated=term)
    torch.testing.assert_close(a1, a2)


def test_time_dim_minus_one_and_time_first_layout():
    r, v, nv, done, term = _data((4, 90, 1), torch.float64)
    adv, _ = generalized_advantage_estimate(0.9, 0.9, v, nv, r, done=done, terminated=term)
    sq = [x.squeeze(-1) for x in (v, nv, r, done, term)]
    adv2, _ = generalized_advantage_estimate(0.9, 0.9, *sq[:3], done=sq[3], terminated=sq[4], time_dim=-1)
    torch.testing.assert_close(adv2, adv.squeeze(-1))
    tf = [x.transpose(0, 1) for x in (v, nv, r, done, term)]  # [T, B, 1]: time first
    adv3, _ = generalized_advantage_estimate(0.9, 0.9, *tf[:3], done=tf[3], terminated=tf[4], time_dim=0)
    torch.testing.assert_close(adv3, adv.transpose(0, 1))
    # a 1-D input is [T]
    adv4, _ = generalized_advantage_estimate(0.9, 0.9, *[x[0] for x in sq[:3]], done=sq[3][0], terminated=sq[4][0])
    torch.testing.assert_close(adv4, adv[0].squeeze(-1))


def test_small_and_zero_coefficients_are_exact():
    # kappa tiny: powers underflow to 0, which must not produce nan/inf (no division)
    a = torch.randn(2, 3000)
    for k in (0.0, 1e-30, 0.01):
        out = reverse_linear_recurrence(a, k)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[:, -1], a[:, -1])
        torch.testing.assert_close(out[:, :-1], a[:, :-1] + k * out[:, 1:])
    c = torch.rand(2, 3000)
    c[:, ::7] = 0.0
    c[:, 1::7] = 1e-30
    out = reverse_linear_recurrence(a, c)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, :-1], a[:, :-1] + c[:, :-1] * out[:, 1:])


def test_errors_name_the_bad_input():
    r = torch.zeros(4, 10, 1)
    with pytest.raises(ValueError, match=r"next_state_value has shape \(4, 10\) but .* has \(4, 10, 1\)"):
        generalized_advantage_estimate(0.9, 0.9, r, r.squeeze(-1), r)
    with pytest.raises(ValueError, match="time_dim=5 is out of range"):
        td_lambda_return_estimate(0.9, 0.9, r, r, time_dim=5)
    with pytest.raises(ValueError, match="0-d"):
        reverse_linear_recurrence(torch.tensor(1.0), 0.5)
    with pytest.raises(TypeError, match="floating-point"):
        reverse_linear_recurrence(torch.ones(3, dtype=torch.int64), 0.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    r, v, nv, done, term = _data((4, 300, 1), torch.float32)
    cpu = generalized_advantage_estimate(0.99, 0.95, v, nv, r, done=done, terminated=term)[0]
    dev = [x.cuda() for x in (r, v, nv, done, term)]
    gpu = generalized_advantage_estimate(0.99, 0.95, dev[1], dev[2], dev[0], done=dev[3], terminated=dev[4])[0]
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
    gamma = torch.full_like(r, 0.9)
    cpu_t = td_lambda_return_estimate(gamma, 0.8, nv, r, done=done, terminated=term)
    gpu_t = td_lambda_return_estimate(gamma.cuda(), 0.8, dev[2], dev[0], done=dev[3], terminated=dev[4])
    torch.testing.assert_close(gpu_t.cpu(), cpu_t, atol=1e-4, rtol=1e-4)
