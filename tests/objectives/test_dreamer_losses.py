"""Dreamer's losses against the paper's equations written out by hand (issue 15).

Hafner et al. 2020: the world model's KL / reconstruction / reward terms (eq. 10, v1 free nats), the
lambda-return of eq. 6 as an explicit sum of n-step returns, the actor (eq. 7) and value (eq. 8) losses;
DreamerV2's KL balancing. Plus the loss checklist and a replay -> [B, T] -> loss pipeline.
"""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.buffers import LazyTensorStorage, ReplayBuffer, SliceSampler
from rlbench.modules import (
    ObsDecoder,
    ObsEncoder,
    RSSMPosterior,
    RSSMPrior,
    RSSMRollout,
    dreamer_actor,
    dreamer_imagination_env,
    dreamer_mlp,
    dreamer_world_model,
)
from rlbench.objectives import DreamerActorLoss, DreamerModelLoss, DreamerValueLoss
from rlbench.objectives.dreamer import gaussian_kl
from rlbench.objectives.value.functional import td_lambda_return_estimate, vec_td_lambda_return_estimate
from rlbench.specs import Bounded
from rlbench.testing import check_loss_contract

S, H, A = 5, 12, 2  # small latent sizes keep the tests fast; the conv stacks keep their 64x64 shape


def parts(seed=0, burn_in=0):
    torch.manual_seed(seed)
    enc, dec = ObsEncoder(channels=4), ObsDecoder(state_dim=S, belief_dim=H, channels=4)
    prior = RSSMPrior(A, hidden_dim=16, belief_dim=H, state_dim=S)
    post = RSSMPosterior(hidden_dim=16, belief_dim=H, embed_dim=enc.out_features, state_dim=S)
    reward = dreamer_mlp(S + H, num_cells=16, depth=2)
    wm = dreamer_world_model(enc, RSSMRollout(prior, post, burn_in=burn_in), dec, reward)
    actor = dreamer_actor(A, S + H, num_cells=16, depth=2)
    value = TensorDictModule(dreamer_mlp(S + H, num_cells=16, depth=2), ["state", "belief"], ["state_value"])
    env = dreamer_imagination_env(prior, reward, Bounded(-1.0, 1.0, (A,)))
    return dict(wm=wm, prior=prior, post=post, reward=reward, actor=actor, value=value, env=env, dec=dec)


def sequences(b=3, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    pix = torch.rand(b, t + 1, 3, 64, 64, generator=g)
    return TensorDict({"pixels": pix[:, :-1], "action": torch.rand(b, t, A, generator=g) * 2 - 1,
                       "next": {"pixels": pix[:, 1:], "reward": torch.randn(b, t, 1, generator=g),
                                "done": torch.zeros(b, t, 1, dtype=torch.bool),
                                "terminated": torch.zeros(b, t, 1, dtype=torch.bool)}}, [b, t])


# --------------------------------------------------------------------------- lambda-returns
def lambda_return_by_the_paper(reward, next_value, gamma, lmbda):
    """Eq. 6: V_lambda(s_tau) = (1 - l) sum_{n=1}^{H-1} l^(n-1) V_N^n + l^(H-1) V_N^H, V_N^k the k-step return."""
    T = reward.shape[-2]
    out = torch.zeros_like(reward)
    for tau in range(T):
        def v_n(k):
            h = min(tau + k, T)
            ret = sum(gamma ** (n - tau) * reward[..., n, :] for n in range(tau, h))
            return ret + gamma ** (h - tau) * next_value[..., h - 1, :]
        horizon = T - tau
        total = sum((1 - lmbda) * lmbda ** (n - 1) * v_n(n) for n in range(1, horizon))
        out[..., tau, :] = total + lmbda ** (horizon - 1) * v_n(horizon)
    return out


@pytest.mark.parametrize("gamma, lmbda", [(0.99, 0.95), (0.9, 0.0), (0.8, 1.0)])
def test_vectorized_td_lambda_matches_the_papers_n_step_sum(gamma, lmbda):
    g = torch.Generator().manual_seed(1)
    reward, next_value = torch.randn(4, 15, 1, generator=g), torch.randn(4, 15, 1, generator=g)
    want = lambda_return_by_the_paper(reward, next_value, gamma, lmbda)
    torch.testing.assert_close(td_lambda_return_estimate(gamma, lmbda, next_value, reward), want)
    done = torch.zeros(4, 15, 1, dtype=torch.bool)
    torch.testing.assert_close(vec_td_lambda_return_estimate(gamma, lmbda, next_value, reward, done), want)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mq, mp = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    sq, sp = torch.rand(3, 7, generator=g) + 0.1, torch.rand(3, 7, generator=g) + 0.1
    want = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq), torch.distributions.Normal(mp, sp))
    torch.testing.assert_close(gaussian_kl(mq, sq, mp, sp), want.sum(-1))


# --------------------------------------------------------------------------- world model loss
def test_model_loss_terms_by_hand():
    p = parts()
    td = sequences()
    torch.manual_seed(7)
    out, data = DreamerModelLoss(p["wm"], free_nats=0.0, lambda_kl=2.0)(td, return_data=True)
    torch.manual_seed(7)
    ref = p["wm"](td.copy())  # the same noise: the same posterior samples
    n = ref["next"]
    q = torch.distributions.Normal(n["posterior_mean"], n["posterior_std"])
    pr = torch.distributions.Normal(n["prior_mean"], n["prior_std"])
    kl = torch.distributions.kl_divergence(q, pr).sum(-1).mean()
    reco = 0.5 * ((n["reco_pixels"] - td["next", "pixels"]) ** 2).sum((-3, -2, -1)).mean()
    rew = 0.5 * ((n["reward"] - td["next", "reward"]) ** 2).mean()
    torch.testing.assert_close(out["loss_model_kl"], 2.0 * kl)
    torch.testing.assert_close(out["loss_model_reco"], reco)
    torch.testing.assert_close(out["loss_model_reward"], rew)
    torch.testing.assert_close(out["kl"], kl.detach())
    assert not data["next", "state"].requires_grad and data["next", "state"].shape == (3, 6, S)
    torch.testing.assert_close(td["next", "reward"], sequences()["next", "reward"])  # the input is left alone


class FixedGaussians(nn.Module):
    """A stand-in world model whose prior and posterior are leaf parameters (exact gradients by hand)."""

    def __init__(self, shift: float):
        super().__init__()
        self.qm = nn.Parameter(torch.full((2, 3, 4), shift))
        self.pm = nn.Parameter(torch.zeros(2, 3, 4))
        self.qs, self.ps = nn.Parameter(torch.ones(2, 3, 4)), nn.Parameter(torch.ones(2, 3, 4) * 2)

    def forward(self, pixels):
        return self.pm * 1, self.ps * 1, self.qm * 1, self.qs * 1, pixels * 0, pixels[..., :1, 0, 0] * 0


def fixed_model(shift):
    net = FixedGaussians(shift)
    keys = [("next", k) for k in ("prior_mean", "prior_std", "posterior_mean", "posterior_std", "reco_pixels",
                                  "reward")]
    return net, TensorDictModule(net, in_keys=[("next", "pixels")], out_keys=keys)


def small_batch():
    return TensorDict({"action": torch.zeros(2, 3, 1), "next": {
        "pixels": torch.zeros(2, 3, 3, 2, 2), "reward": torch.zeros(2, 3, 1),
        "done": torch.zeros(2, 3, 1, dtype=torch.bool)}}, [2, 3])


def test_free_nats_clamp_the_mean_kl():
    kl_of = lambda shift: float(gaussian_kl(torch.full((4,), shift), torch.ones(4), torch.zeros(4),  # noqa: E731
                                            torch.full((4,), 2.0)))
    net, wm = fixed_model(0.5)
    assert kl_of(0.5) < 3.0
    out = DreamerModelLoss(wm, free_nats=3.0)(small_batch())
    assert out["loss_model_kl"].item() == 3.0  # below the floor: a constant ...
    out["loss_model_kl"].backward()
    assert net.qm.grad is None or net.qm.grad.abs().sum() == 0  # ... with no gradient
    net, wm = fixed_model(4.0)
    out = DreamerModelLoss(wm, free_nats=3.0)(small_batch())
    assert kl_of(4.0) > 3.0
    torch.testing.assert_close(out["loss_model_kl"], torch.tensor(kl_of(4.0)))


def test_kl_balancing_splits_the_gradient_between_prior_and_posterior():
    net, wm = fixed_model(1.0)
    DreamerModelLoss(wm, free_nats=0.0)(small_batch())["loss_model_kl"].backward()
    plain = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    DreamerModelLoss(wm, free_nats=0.0, kl_balance=0.8)(small_batch())["loss_model_kl"].backward()
    for name in ("pm", "ps"):  # the prior moves with weight a
        torch.testing.assert_close(net.get_parameter(name).grad, 0.8 * plain[name])
    for name in ("qm", "qs"):  # the posterior with 1 - a
        torch.testing.assert_close(net.get_parameter(name).grad, 0.2 * plain[name])
    with pytest.raises(ValueError, match="kl_balance"):
        DreamerModelLoss(wm, kl_balance=1.0)


def test_burn_in_steps_are_skipped_and_short_sequences_refused():
    p = parts(burn_in=2)
    td = sequences(t=5)
    torch.manual_seed(3)
    out = DreamerModelLoss(p["wm"], free_nats=0.0)(td)
    torch.manual_seed(3)
    n = p["wm"](td.copy())["next"][:, 2:]
    reward_err = n["reward"] - td["next", "reward"][:, 2:]
    torch.testing.assert_close(out["loss_model_reward"], 0.5 * (reward_err**2).mean())
    kl = gaussian_kl(n["posterior_mean"], n["posterior_std"], n["prior_mean"], n["prior_std"]).mean()
    torch.testing.assert_close(out["loss_model_kl"], kl)
    with pytest.raises(ValueError, match=r"T=2 steps, but the model's burn-in is 2 steps"):
        DreamerModelLoss(p["wm"])(td[:, :2])
    with pytest.raises(ValueError, match=r"\[B, T\] sequences"):
        DreamerModelLoss(p["wm"])(td[:, 0])


def test_model_loss_contract():
    p = parts()
    check_loss_contract(DreamerModelLoss(p["wm"], free_nats=0.0), sequences(), rename={"reward": "rew"})


def test_model_loss_names_missing_frames():
    td = sequences().exclude(("next", "pixels"))
    with pytest.raises(KeyError, match=r"\('next', 'pixels'\)"):
        DreamerModelLoss(parts()["wm"])(td)


# --------------------------------------------------------------------------- actor and value
def test_actor_loss_is_minus_the_summed_lambda_returns_and_trains_only_the_actor():
    p = parts(1)
    _, data = DreamerModelLoss(p["wm"])(sequences(), return_data=True)
    loss = DreamerActorLoss(p["actor"], p["value"], p["env"], imagination_horizon=4, gamma=0.9, lmbda=0.7)
    assert {n for n, _ in loss.named_parameters()} == {"actor_network." + n for n, _ in
                                                       p["actor"].named_parameters()}
    out, dream = loss(data, return_imagination=True)
    assert dream.shape == (18, 4) and not dream["lambda_target"].requires_grad
    with torch.no_grad():
        next_value = p["value"](dream["next"].select("state", "belief").copy())["state_value"]
    want = lambda_return_by_the_paper(dream["next", "reward"], next_value, 0.9, 0.7)
    torch.testing.assert_close(dream["lambda_target"], want)
    torch.testing.assert_close(out["loss_actor"].detach(), -want.sum((-2, -1)).mean())
    torch.testing.assert_close(dream["state"][:, 0], data["next", "state"].reshape(-1, S))  # starts: posteriors
    out["loss_actor"].backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in p["actor"].parameters())
    for name in ("prior", "reward", "value", "post", "dec"):
        assert all(q.grad is None for q in p[name].parameters()), name


def test_actor_loss_direct_imagination_equals_the_env_rollout():
    # the loss imagines with imagine_with_policy (a plain loop over the prior) when the env comes from
    # dreamer_imagination_env; without that mark it goes through WorldModelEnv.rollout: the same trajectories
    p = parts(4)
    _, data = DreamerModelLoss(p["wm"])(sequences(b=2, t=3), return_data=True)
    loss = DreamerActorLoss(p["actor"], p["value"], p["env"], imagination_horizon=5)
    params = list(loss.parameters())

    def run():
        torch.manual_seed(7)
        out, dream = loss(data, return_imagination=True)
        return out, dream, torch.autograd.grad(out["loss_actor"], params)

    assert p["env"].dreamer_latent[0] is p["prior"]
    fast, fast_dream, fast_g = run()
    mark = p["env"].__dict__.pop("dreamer_latent")
    try:
        slow, slow_dream, slow_g = run()
    finally:
        p["env"].dreamer_latent = mark
    assert set(fast_dream.keys(True, True)) == set(slow_dream.keys(True, True))
    for key in slow_dream.keys(True, True):
        torch.testing.assert_close(fast_dream[key], slow_dream[key], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fast["loss_actor"], slow["loss_actor"])
    for a, b in zip(fast_g, slow_g):
        torch.testing.assert_close(a, b)


def test_actor_loss_discount_weights():
    p = parts(2)
    _, data = DreamerModelLoss(p["wm"])(sequences(b=1, t=2), return_data=True)
    loss = DreamerActorLoss(p["actor"], p["value"], p["env"], imagination_horizon=3, gamma=0.5, discount_loss=True)
    out, dream = loss(data, return_imagination=True)
    w = torch.tensor([1.0, 0.5, 0.25]).view(3, 1)
    torch.testing.assert_close(out["loss_actor"].detach(), -(w * dream["lambda_target"]).sum((-2, -1)).mean())


def test_actor_loss_contract_and_missing_start_states():
    p = parts(3)
    _, data = DreamerModelLoss(p["wm"])(sequences(b=2, t=3), return_data=True)
    loss = DreamerActorLoss(p["actor"], p["value"], p["env"], imagination_horizon=3)
    check_loss_contract(loss, data, rename={"state": "z"})
    with pytest.raises(KeyError, match=r"\('next', 'belief'\).*DreamerModelLoss"):
        loss(data.exclude(("next", "belief")))
    with pytest.raises(ValueError, match="imagination_horizon"):
        DreamerActorLoss(p["actor"], p["value"], p["env"], imagination_horizon=0)


def test_value_loss_by_hand_and_contract():
    p = parts(4)
    _, data = DreamerModelLoss(p["wm"])(sequences(b=2, t=3), return_data=True)
    _, dream = DreamerActorLoss(p["actor"], p["value"], p["env"], imagination_horizon=5)(data,
                                                                                       return_imagination=True)
    vl = DreamerValueLoss(p["value"], gamma=0.5, discount_loss=True)
    out = vl(dream)
    v = p["value"](dream.select("state", "belief").copy())["state_value"]
    w = (0.5 ** torch.arange(5.0)).view(5, 1)
    torch.testing.assert_close(out["loss_value"], (w * 0.5 * (v - dream["lambda_target"]) ** 2).sum((-2, -1)).mean())
    out["loss_value"].backward()
    assert all(q.grad is not None for q in p["value"].parameters())
    check_loss_contract(DreamerValueLoss(p["value"]), dream, rename={"lambda_target": "G"})
    with pytest.raises(KeyError, match="lambda_target"):
        vl(dream.exclude("lambda_target"))


# --------------------------------------------------------------------------- sequence replay
def test_slice_sampler_serves_dreamer_sequences():
    """[B, T] slices inside one episode, in time order, straight into the model loss."""
    eps = []
    for e, length in enumerate((9, 4, 12)):  # the 4-step episode is too short for T=5
        td = sequences(b=1, t=length, seed=e)[0]
        td.set("episode", torch.full((length,), e))
        td.set("t", torch.arange(length))
        td["next", "done"][-1] = True
        eps.append(td)
    rb = ReplayBuffer(storage=LazyTensorStorage(100), sampler=SliceSampler(slice_len=5), batch_size=20)
    rb.extend(torch.cat(eps))
    torch.manual_seed(0)
    batch = rb.sample().reshape(4, 5)
    assert (batch["episode"] == batch["episode"][:, :1]).all() and (batch["episode"] != 1).all()
    assert (batch["t"].diff(dim=1) == 1).all()
    p = parts(5)
    out = DreamerModelLoss(p["wm"])(batch)
    assert all(torch.isfinite(v) for v in out.values())
