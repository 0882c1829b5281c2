"""V-trace (Espeholt et al. 2018, sec. 4) against per-step loops written from the paper's equations.

Two references, both plain Python loops over one trajectory in float64:

* ``sum_form``: eq. (1), ``v_s = V(x_s) + sum_{t=s}^{e} gamma^{t-s} (prod_{i=s}^{t-1} c_i) delta_t``, the
  sum stopping at the first episode end ``e >= s`` (or the last step);
* ``recursive_form``: ``v_s = V(x_s) + delta_s + gamma c_s (v_{s+1} - V(x_{s+1}))``, cut at episode ends.

with ``delta_t = rho_t (r_t + gamma (1 - terminated_t) V(x_{t+1}) - V(x_t))``, and the policy-gradient advantage
``rho_s (r_s + gamma (1 - terminated_s) v_{s+1} - V(x_s))`` where ``v_{s+1}`` after an episode end or the last
step is the bootstrap value ``next_state_value``.
"""
import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlbench.objectives.value import (
    VTrace,
    generalized_advantage_estimate,
    td1_return_estimate,
    vtrace_advantage_estimate,
)
from rlbench.testing import categorical_actor, rollout_batch, value_critic


def _ratios(lp, lm, rho_bar, c_bar):
    ratio = [math.exp(a - b) for a, b in zip(lp, lm)]
    return [min(rho_bar, x) for x in ratio], [min(c_bar, x) for x in ratio]


def _deltas(gamma, rho, v, nv, r, term):
    return [rho[t] * (r[t] + gamma * (0.0 if term[t] else 1.0) * nv[t] - v[t]) for t in range(len(r))]


def sum_form(gamma, lp, lm, v, nv, r, done, term, rho_bar, c_bar):
    """Eq. (1) for one trajectory (lists of floats); returns (advantage, vs)."""
    T = len(r)
    rho, c = _ratios(lp, lm, rho_bar, c_bar)
    delta = _deltas(gamma, rho, v, nv, r, term)
    vs = []
    for s in range(T):
        total, weight = 0.0, 1.0  # weight = gamma^{t-s} prod_{i=s}^{t-1} c_i
        for t in range(s, T):
            total += weight * delta[t]
            if done[t]:
                break
            weight *= gamma * c[t]
        vs.append(v[s] + total)
    return _advantages(gamma, rho, v, nv, r, done, term, vs), vs


def recursive_form(gamma, lp, lm, v, nv, r, done, term, rho_bar, c_bar):
    """The recursive form, backwards over one trajectory; returns (advantage, vs)."""
    T = len(r)
    rho, c = _ratios(lp, lm, rho_bar, c_bar)
    delta = _deltas(gamma, rho, v, nv, r, term)
    vs = [0.0] * T
    for s in reversed(range(T)):
        later = 0.0 if (s == T - 1 or done[s]) else vs[s + 1] - v[s + 1]
        vs[s] = v[s] + delta[s] + gamma * c[s] * later
    return _advantages(gamma, rho, v, nv, r, done, term, vs), vs


def _advantages(gamma, rho, v, nv, r, done, term, vs):
    T = len(r)
    out = []
    for s in range(T):
        v_next = nv[s] if (s == T - 1 or done[s]) else vs[s + 1]
        out.append(rho[s] * (r[s] + gamma * (0.0 if term[s] else 1.0) * v_next - v[s]))
    return out


def reference(form, gamma, tensors, time_dim, rho_bar, c_bar):
    """Applies a per-trajectory reference to every trajectory of [*B, T(, 1)] tensors (time along time_dim)."""
    moved = {k: x.movedim(time_dim, -1) for k, x in tensors.items()}
    shape = moved["reward"].shape
    flat = {k: x.reshape(-1, shape[-1]).tolist() for k, x in moved.items()}
    adv, vs = [], []
    for i in range(len(flat["reward"])):
        a, v = form(gamma, flat["log_pi"][i], flat["log_mu"][i], flat["state_value"][i],
                    flat["next_state_value"][i], flat["reward"][i], flat["done"][i], flat["terminated"][i],
                    rho_bar, c_bar)
        adv.append(a)
        vs.append(v)

    def back(rows):
        return torch.tensor(rows, dtype=torch.float64).reshape(shape).movedim(-1, time_dim)

    return back(adv), back(vs)


def random_inputs(shape, seed=0, p_end=0.15, lag=0.5):
    g = torch.Generator().manual_seed(seed)
    done = torch.rand(shape, generator=g) < p_end
    terminated = done & (torch.rand(shape, generator=g) < 0.5)  # the other ends are truncations
    log_mu = -torch.rand(shape, generator=g, dtype=torch.float64) * 2
    return {
        "log_pi": log_mu + lag * torch.randn(shape, generator=g, dtype=torch.float64),
        "log_mu": log_mu,
        "state_value": torch.randn(shape, generator=g, dtype=torch.float64),
        "next_state_value": torch.randn(shape, generator=g, dtype=torch.float64),
        "reward": torch.randn(shape, generator=g, dtype=torch.float64),
        "done": done,
        "terminated": terminated,
    }


def call(gamma, x, **kw):
    return vtrace_advantage_estimate(gamma, x["log_pi"], x["log_mu"], x["state_value"], x["next_state_value"],
                                     x["reward"], x["done"], x["terminated"], **kw)


@pytest.mark.parametrize("shape, time_dim", [
    ((2, 3, 37, 1), -2),   # several batch dims, [*B, T, 1]
    ((4, 150), -1),        # [*B, T], long enough for several blocks of the recurrence solver
    ((25, 3, 1), 0),       # time first
    ((3, 19, 2), 1),       # time in the middle
    ((40,), -2),           # a single trajectory: [T]
])
@pytest.mark.parametrize("rho_bar, c_bar", [(1.0, 1.0), (2.0, 0.5), (0.7, 1.3), (math.inf, math.inf)])
def test_matches_the_papers_equations(shape, time_dim, rho_bar, c_bar):
    x = random_inputs(shape, seed=len(shape) + int(rho_bar * 10 if math.isfinite(rho_bar) else 99))
    assert x["done"].any() and (x["done"] & ~x["terminated"]).any() and x["terminated"].any()
    adv, vs = call(0.9, x, rho_thresh=rho_bar, c_thresh=c_bar, time_dim=time_dim)
    tdim = -1 if len(shape) == 1 else time_dim
    ref_adv, ref_vs = reference(sum_form, 0.9, x, tdim, rho_bar, c_bar)
    rec_adv, rec_vs = reference(recursive_form, 0.9, x, tdim, rho_bar, c_bar)
    torch.testing.assert_close(rec_vs, ref_vs, rtol=1e-12, atol=1e-12)  # the two forms of the paper agree
    assert adv.shape == vs.shape == shape and vs.dtype == torch.float64
    torch.testing.assert_close(vs, ref_vs, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(adv, ref_adv, rtol=1e-10, atol=1e-10)


def test_truncation_bootstraps_and_termination_does_not():
    # one trajectory of 4 steps, an episode end after step 1; on-policy (rho = c = 1), V = 0 except V(x_2') = 10
    T = 4
    lp = torch.zeros(T, 1, dtype=torch.float64)
    v = torch.zeros(T, 1, dtype=torch.float64)
    nv = torch.tensor([[0.0], [10.0], [0.0], [0.0]], dtype=torch.float64)  # V of step 1's true final observation
    r = torch.ones(T, 1, dtype=torch.float64)
    done = torch.tensor([[False], [True], [False], [False]])
    for terminated, boot in ((done, 0.0), (torch.zeros_like(done), 10.0)):
        adv, vs = vtrace_advantage_estimate(0.5, lp, lp, v, nv, r, done, terminated)
        # the first episode: v_1 = 1 + 0.5 * boot, v_0 = 1 + 0.5 * v_1; the second starts afresh
        expected = torch.tensor([[1 + 0.5 * (1 + 0.5 * boot)], [1 + 0.5 * boot], [1.5], [1.0]], dtype=torch.float64)
        torch.testing.assert_close(vs, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(adv, expected, rtol=0, atol=1e-12)  # V = 0: A_s = r_s + gamma v_{s+1}
    # nothing after the end reaches the steps before it
    _, before = vtrace_advantage_estimate(0.5, lp, lp, v, nv, r, done, done)
    r2 = r.clone()
    r2[2:] = 100.0
    _, after = vtrace_advantage_estimate(0.5, lp, lp, v, nv, r2, done, done)
    torch.testing.assert_close(after[:2], before[:2], rtol=0, atol=0)


def test_terminated_defaults_to_done():
    x = random_inputs((3, 20, 1), seed=5)
    adv, vs = vtrace_advantage_estimate(0.9, x["log_pi"], x["log_mu"], x["state_value"], x["next_state_value"],
                                        x["reward"], x["done"])
    adv2, vs2 = call(0.9, {**x, "terminated": x["done"]})
    torch.testing.assert_close(vs, vs2, rtol=0, atol=0)
    torch.testing.assert_close(adv, adv2, rtol=0, atol=0)


def consistent_on_policy(shape, seed):
    """On-policy data whose V(x_{t+1}) inside an episode is the next step's V(x_t) (one value per state)."""
    x = random_inputs(shape, seed=seed)
    x["log_pi"] = x["log_mu"].clone()
    nv = torch.cat([x["state_value"][..., 1:, :], x["next_state_value"][..., -1:, :]], -2)
    x["next_state_value"] = torch.where(x["done"], x["next_state_value"], nv)  # true final obs at an end
    return x


def test_on_policy_targets_are_td1_returns():
    x = consistent_on_policy((3, 2, 40, 1), seed=1)
    adv, vs = call(0.95, x, rho_thresh=1.0, c_thresh=1.0)
    td1 = td1_return_estimate(0.95, x["next_state_value"], x["reward"], x["done"], x["terminated"])
    gae_adv, gae_target = generalized_advantage_estimate(0.95, 1.0, x["state_value"], x["next_state_value"],
                                                         x["reward"], x["done"], x["terminated"])
    torch.testing.assert_close(vs, td1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(vs, gae_target, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(adv, gae_adv, rtol=1e-10, atol=1e-10)  # A_s = G_s - V(x_s)
    # thresholds above 1 change nothing on-policy (pi / mu = 1)
    torch.testing.assert_close(call(0.95, x, rho_thresh=3.0, c_thresh=5.0)[1], vs, rtol=0, atol=0)


def test_on_policy_with_c_bar_below_one_is_gae_lambda():
    # rho = 1, c = lambda: v_s - V(x_s) = sum (gamma lambda)^k delta_{s+k}, GAE(lambda) (no consistency needed)
    x = random_inputs((5, 33, 1), seed=2)
    x["log_pi"] = x["log_mu"].clone()
    _, vs = call(0.9, x, c_thresh=0.6)
    gae_adv, gae_target = generalized_advantage_estimate(0.9, 0.6, x["state_value"], x["next_state_value"],
                                                         x["reward"], x["done"], x["terminated"])
    torch.testing.assert_close(vs, gae_target, rtol=1e-10, atol=1e-10)


def test_per_step_gamma_tensor():
    x = random_inputs((2, 17, 1), seed=3)
    gamma = torch.full((2, 17, 1), 0.8, dtype=torch.float64)
    for got, want in zip(call(gamma, x, rho_thresh=1.5, c_thresh=0.9), call(0.8, x, rho_thresh=1.5, c_thresh=0.9)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_refused_by_name():
    x = random_inputs((2, 5, 1))
    with pytest.raises(ValueError, match=r"vtrace_advantage_estimate: log_mu has shape \(2, 5\) but log_pi"):
        call(0.9, {**x, "log_mu": x["log_mu"].squeeze(-1)})
    with pytest.raises(ValueError, match="truncation levels must be > 0"):
        call(0.9, x, rho_thresh=0.0)


# ------------------------------------------------------------------------------------------------ the module
def batch(seed=0, n=3, T=12, obs=4, n_act=3):
    torch.manual_seed(seed)
    behaviour = categorical_actor(obs, n_act, return_log_prob=True)  # the lagging policy that collected the data
    td = behaviour(TensorDict(observation=torch.randn(n, T, obs), batch_size=[n, T]))
    done = torch.rand(n, T, 1) < 0.2
    td["next"] = TensorDict(observation=torch.randn(n, T, obs), reward=torch.randn(n, T, 1), done=done,
                            terminated=done & (torch.rand(n, T, 1) < 0.5), batch_size=[n, T])
    return td.detach()


def test_module_matches_the_functional_form_with_the_actors_log_probs():
    td = batch()
    actor, critic = categorical_actor(4, 3), value_critic(4)
    out = VTrace(gamma=0.9, actor_network=actor, value_network=critic, rho_thresh=1.2, c_thresh=0.8)(td.clone())
    logits = actor[0].module(td["observation"])
    log_pi = torch.log_softmax(logits, -1).gather(-1, td["action"].unsqueeze(-1))
    v, nv = critic.module(td["observation"]), critic.module(td["next", "observation"])
    adv, vs = vtrace_advantage_estimate(0.9, log_pi, td["sample_log_prob"].unsqueeze(-1), v, nv,
                                        td["next", "reward"], td["next", "done"], td["next", "terminated"],
                                        rho_thresh=1.2, c_thresh=0.8)
    torch.testing.assert_close(out["advantage"], adv.detach())
    torch.testing.assert_close(out["value_target"], vs.detach())
    torch.testing.assert_close(out["state_value"], v.detach())
    assert not out["advantage"].requires_grad and not out["value_target"].requires_grad


def test_module_time_dim_and_renamed_keys():
    td = batch()
    actor, critic = categorical_actor(4, 3), value_critic(4)
    ref = VTrace(0.9, actor, critic)(td.clone())
    # time first: [T, n]
    tm = VTrace(0.9, actor, critic, time_dim=0)(td.clone().transpose(0, 1))
    torch.testing.assert_close(tm["value_target"].transpose(0, 1), ref["value_target"])
    # renamed behaviour log-prob and reward
    renamed = td.clone()
    renamed.rename_key_("sample_log_prob", "action_log_prob")
    renamed["next"].rename_key_("reward", "rew")
    est = VTrace(0.9, actor, critic).set_keys(sample_log_prob="action_log_prob", reward="rew", value_target="vs")
    torch.testing.assert_close(est(renamed)["vs"], ref["value_target"])


def test_module_stored_values_and_average_adv():
    td = batch()
    actor, critic = categorical_actor(4, 3), value_critic(4)
    with_values = VTrace(0.9, actor, critic)(td.clone())
    stored = VTrace(0.9, actor)(with_values.clone().exclude("advantage", "value_target"))  # reads state_value
    torch.testing.assert_close(stored["value_target"], with_values["value_target"])
    avg = VTrace(0.9, actor, critic, average_adv=True)(td.clone())["advantage"]
    assert abs(float(avg.mean())) < 1e-5 and abs(float(avg.std()) - 1) < 1e-4


def test_module_differentiable_keeps_the_graph():
    td = batch()
    actor, critic = categorical_actor(4, 3), value_critic(4)
    out = VTrace(0.9, actor, critic, differentiable=True)(td.clone())
    out["value_target"].sum().backward()
    assert critic.module.weight.grad.abs().sum() > 0 and actor[0].module.weight.grad.abs().sum() > 0


def test_module_errors_name_what_is_missing():
    td = batch()
    actor, critic = categorical_actor(4, 3), value_critic(4)
    with pytest.raises(KeyError, match=r"no behaviour log-probability 'sample_log_prob'.*return_log_prob=True"):
        VTrace(0.9, actor, critic)(td.clone().exclude("sample_log_prob"))
    with pytest.raises(KeyError, match=r"no action entry 'action'"):
        VTrace(0.9, actor, critic)(td.clone().exclude("action"))
    with pytest.raises(TypeError, match="actor_network must be a probabilistic actor"):
        VTrace(0.9, TensorDictModule(torch.nn.Linear(4, 3), ["observation"], ["logits"]), critic)
    with pytest.raises(ValueError, match="c_thresh must be > 0"):
        VTrace(0.9, actor, critic, c_thresh=0.0)


def test_module_on_a_collector_batch():
    behaviour = categorical_actor(4, 2, return_log_prob=True)
    td = rollout_batch("CartPole-v1", behaviour, frames=64)  # [64] from rlbench's Collector, episode ends inside
    actor, critic = categorical_actor(4, 2), value_critic(4)
    out = VTrace(0.99, actor, critic)(td.clone())
    assert out["value_target"].shape == (*td.batch_size, 1) and torch.isfinite(out["advantage"]).all()


def test_gradients_of_the_vectorized_form_are_exact():
    # a differentiable estimator backpropagates through the blocked recurrence solver (T > its block of 8)
    x = random_inputs((2, 21, 1), seed=4)
    leaves = [x["log_pi"].requires_grad_(), x["state_value"].requires_grad_(), x["next_state_value"].requires_grad_()]

    def f(log_pi, v, nv):
        return call(0.9, {**x, "log_pi": log_pi, "state_value": v, "next_state_value": nv}, rho_thresh=1.5,
                    c_thresh=0.9)

    assert torch.autograd.gradcheck(f, leaves)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = random_inputs((4, 70, 1), seed=6)
    on_gpu = {k: v.cuda() for k, v in x.items()}
    for got, want in zip(call(0.9, on_gpu, c_thresh=0.9), call(0.9, x, c_thresh=0.9)):
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), want, rtol=1e-10, atol=1e-10)
