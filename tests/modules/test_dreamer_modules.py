"""Dreamer's networks: the paper's conv stacks, the RSSM scan against a per-step loop, bad frames (issue 15)."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.modules import (
    DreamerActorParams,
    ExplorationType,
    ObsDecoder,
    ObsEncoder,
    OneDnnLinear,
    RSSMPosterior,
    RSSMPrior,
    RSSMRollout,
    dreamer_actor,
    dreamer_imagination_env,
    dreamer_mlp,
    dreamer_world_model,
    imagine,
    imagine_with_policy,
    set_exploration_type,
)
from rlbench.specs import Bounded, Unbounded


def test_encoder_is_four_4x4_stride_2_convs_of_depth_32_64_128_256():
    enc = ObsEncoder()
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (4, 4), (2, 2)), (32, 64, (4, 4), (2, 2)), (64, 128, (4, 4), (2, 2)), (128, 256, (4, 4), (2, 2))]
    x = torch.rand(2, 3, 3, 64, 64)
    out = enc(x)
    assert out.shape == (2, 3, 1024)
    torch.testing.assert_close(out[1, 2], enc.net(x[1, 2:3]).flatten())  # leading dims are only flattened


def test_decoder_is_the_transposed_stack_and_gives_64x64():
    dec = ObsDecoder(state_dim=30, belief_dim=200)
    convs = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (1024, 128, 5, 2), (128, 64, 5, 2), (64, 32, 6, 2), (32, 3, 6, 2)]
    s, h = torch.randn(2, 4, 30, requires_grad=True), torch.randn(2, 4, 200)
    out = dec(s, h)
    assert out.shape == (2, 4, 3, 64, 64)
    # the first layer runs as a matrix product (a 1x1 input): the same numbers as the conv stack itself
    ref = dec.net(dec.fc(torch.cat((s, h), -1)).reshape(8, 1024, 1, 1)).reshape(2, 4, 3, 64, 64)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, [s, *dec.parameters()], g)
    want = torch.autograd.grad(ref, [s, *dec.parameters()], g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frames, fix", [
    (torch.rand(2, 3, 84, 84), "Resize(64, 64)"),
    (torch.zeros(2, 64, 64, 3, dtype=torch.uint8), "ToTensorImage()"),
    (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "ToTensorImage()"),
])
def test_frames_of_another_shape_are_refused_with_the_fix(frames, fix):
    with pytest.raises(ValueError) as err:
        ObsEncoder(key=("next", "pixels"))(frames)
    msg = str(err.value)
    assert "('next', 'pixels')" in msg and str(tuple(frames.shape)) in msg and fix in msg


def test_check_spec_refuses_a_pixel_env_without_resize_before_training():
    from rlbench.testing import PixelCountingEnv

    env = PixelCountingEnv()
    spec = env.observation_spec["pixels"]
    with pytest.raises(ValueError) as err:
        ObsEncoder().check_spec(spec)
    assert "'pixels'" in str(err.value) and str(tuple(spec.shape)) in str(err.value)
    ObsEncoder().check_spec(Unbounded((4, 3, 64, 64)))  # float CHW 64x64 frames pass


def test_world_model_names_the_pixels_key_of_a_bad_frame():
    wm = dreamer_world_model(ObsEncoder(key=("next", "pixels")), RSSMRollout(RSSMPrior(1), RSSMPosterior()),
                             ObsDecoder(), dreamer_mlp(230, depth=2))
    td = TensorDict({"action": torch.zeros(1, 2, 1), "next": {"pixels": torch.rand(1, 2, 3, 96, 96)}}, [1, 2])
    with pytest.raises(ValueError, match=r"\('next', 'pixels'\).*\(1, 2, 3, 96, 96\).*Resize\(64, 64\)"):
        wm(td)


def reference_scan(prior, post, action, embed, state, belief):
    """The RSSM filter one step at a time, through TensorDictModules as TorchRL writes it."""
    p = TensorDictModule(prior, ["state", "belief", "action"], ["prior_mean", "prior_std", "_", "belief"])
    q = TensorDictModule(post, ["belief", "embed"], ["posterior_mean", "posterior_std", "state"])
    steps = []
    td = TensorDict(state=state, belief=belief, batch_size=state.shape[:1])
    for t in range(action.shape[1]):
        root = td.select("state", "belief").clone()
        td.set("action", action[:, t])
        p(td)
        td.set("embed", embed[:, t])
        q(td)
        steps.append(TensorDict(root=root, nxt=td.exclude("_", "action", "embed").clone(), batch_size=td.batch_size))
    return torch.stack(steps, 1)


def test_rssm_rollout_matches_a_per_step_loop():
    torch.manual_seed(0)
    prior, post = RSSMPrior(action_dim=2, hidden_dim=16, belief_dim=12, state_dim=5), \
        RSSMPosterior(hidden_dim=16, belief_dim=12, embed_dim=7, state_dim=5)
    action, embed = torch.randn(3, 6, 2), torch.randn(3, 6, 7)
    s0, h0 = torch.randn(3, 5), torch.randn(3, 12)
    td = TensorDict({"action": action, "state": s0[:, None].expand(3, 6, 5).clone(),
                     "belief": h0[:, None].expand(3, 6, 12).clone(), "next": {"encoded_latents": embed}}, [3, 6])
    torch.manual_seed(1)
    out = RSSMRollout(prior, post)(td)
    torch.manual_seed(1)  # the same noise: the prior samples first, then the posterior, at every step
    ref = reference_scan(prior, post, action, embed, s0, h0)
    for k in ("prior_mean", "prior_std", "belief", "posterior_mean", "posterior_std", "state"):
        torch.testing.assert_close(out["next", k], ref["nxt", k])
    torch.testing.assert_close(out["state"], ref["root", "state"])
    torch.testing.assert_close(out["belief"], ref["root", "belief"])
    torch.testing.assert_close(out["state"][:, 1:], out["next", "state"][:, :-1])  # each step starts from the last


def test_rssm_rollout_zero_initial_state_one_sequence_and_burn_in():
    prior, post = RSSMPrior(1), RSSMPosterior()
    scan = RSSMRollout(TensorDictModule(prior, ["state", "belief", "action"], ["a", "b", "c", "d"]), post, burn_in=3)
    assert scan.prior is prior  # a TensorDictModule is unwrapped
    td = TensorDict({"action": torch.zeros(5, 1), "next": {"encoded_latents": torch.zeros(5, 1024)}}, [5])
    out = scan(td)
    assert out.shape == (5,) and out["next", "state"].shape == (5, 30)
    assert out["state"][0].abs().sum() == 0 and out["belief"][0].abs().sum() == 0
    with pytest.raises(ValueError, match=r"T=3 steps, but the model's burn-in is 3 steps.*at least 4.*slice_len"):
        scan(td[:3])
    with pytest.raises(ValueError, match="burn_in must be an int >= 0"):
        RSSMRollout(prior, post, burn_in=-1)


def test_prior_std_floor_and_reparameterised_state():
    prior = RSSMPrior(action_dim=1, scale_lb=0.1)
    s = torch.zeros(4, 30, requires_grad=True)
    mean, std, state, belief = prior(s, torch.zeros(4, 200), torch.ones(4, 1))
    assert bool((std > 0.1).all())
    state.sum().backward()
    assert s.grad is not None and bool(s.grad.abs().sum() > 0)


def test_actor_is_a_tanh_normal_in_bounds_with_a_broad_initial_std():
    loc, scale = DreamerActorParams()(torch.zeros(1, 6))
    torch.testing.assert_close(scale, torch.full((1, 3), 5.0 + 1e-4))
    assert loc.abs().max() == 0
    actor = dreamer_actor(3, 230, low=-2.0, high=2.0)
    td = TensorDict(state=torch.randn(64, 30), belief=torch.randn(64, 200), batch_size=[64])
    with set_exploration_type(ExplorationType.RANDOM):
        a = actor(td.clone())["action"]
    assert a.shape == (64, 3) and bool((a.abs() <= 2).all()) and a.requires_grad  # rsample
    det = actor(td.clone())["action"]
    torch.testing.assert_close(det, 2 * torch.tanh(actor.module[0](td.clone())["loc"]))


def test_imagine_matches_stepping_the_prior_by_hand():
    prior, dec, rew = RSSMPrior(2), ObsDecoder(), dreamer_mlp(230, depth=2)
    s, h, acts = torch.randn(2, 30), torch.randn(2, 200), torch.rand(2, 4, 2)
    torch.manual_seed(3)
    out = imagine(prior, dec, s, h, acts, reward=rew)
    torch.manual_seed(3)
    with torch.no_grad():
        for k in range(4):
            _, _, s, h = prior(s, h, acts[:, k])
        torch.testing.assert_close(out["state"][:, -1], s)
        torch.testing.assert_close(out["reco_pixels"][:, -1], dec(s, h))
        torch.testing.assert_close(out["reward"][:, -1], rew(s, h))


def test_imagination_env_steps_the_prior_with_the_reward_head():
    prior, rew = RSSMPrior(1), dreamer_mlp(230, depth=2)
    env = dreamer_imagination_env(prior, rew, Bounded(-1.0, 1.0, (1,)))
    start = TensorDict(state=torch.randn(3, 30), belief=torch.randn(3, 200), batch_size=[3])
    acts = torch.rand(3, 2, 1)
    k = iter(range(2))
    torch.manual_seed(5)
    with torch.no_grad():
        dream = env.rollout(2, lambda td: td.set("action", acts[:, next(k)]), tensordict=start, auto_reset=False)
    torch.manual_seed(5)
    with torch.no_grad():
        _, _, s, h = prior(start["state"], start["belief"], acts[:, 0])
        _, _, s, h = prior(s, h, acts[:, 1])
    torch.testing.assert_close(dream["next", "state"][:, -1], s)
    torch.testing.assert_close(dream["next", "reward"][:, -1], rew(s, h))


# --------------------------------------------------------------------------- the CPU fast paths (bench_dreamer.py)
def _grads(fn, inputs, g):
    out = fn()
    return out, torch.autograd.grad(out, inputs, g, allow_unused=True)


@pytest.mark.parametrize("shape", [(7,), (5, 7), (3, 4, 7)])
def test_onednn_linear_matches_f_linear_forward_and_backward(shape):
    from rlbench.modules.dreamer import _DNN

    lin = OneDnnLinear(7, 9)
    x = torch.randn(*shape, 7, dtype=torch.float64).float().requires_grad_()
    g = torch.randn(*shape, 9)
    inputs = [x, lin.weight, lin.bias]
    got, got_g = _grads(lambda: lin(x), inputs, g)
    want, want_g = _grads(lambda: nn.functional.linear(x, lin.weight, lin.bias), inputs, g)
    assert got.shape == want.shape == (*shape, 9)
    torch.testing.assert_close(got, want)
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a, b)
    assert isinstance(lin, nn.Linear) and set(lin.state_dict()) == {"weight", "bias"}  # checkpoints as nn.Linear
    if _DNN is not None:  # the path really is oneDNN's: switched off, F.linear is called instead
        OneDnnLinear.enabled = False
        try:
            torch.testing.assert_close(lin(x), want)
        finally:
            OneDnnLinear.enabled = True


def test_onednn_linear_transposed_weight_and_held_out_parameters():
    from rlbench.modules.dreamer import _linear

    w = torch.randn(6, 4, 2, requires_grad=True)  # the decoder's first layer: weight [in, out * k * k], seen as .t()
    x = torch.randn(5, 6, requires_grad=True)
    g = torch.randn(5, 8)
    got, got_g = _grads(lambda: _linear(x, w.reshape(6, -1).t()), [x, w], g)
    want, want_g = _grads(lambda: x @ w.reshape(6, -1), [x, w], g)
    torch.testing.assert_close(got, want)
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a, b)
    lin = OneDnnLinear(6, 3)
    with torch.no_grad():
        assert not lin(x).requires_grad
    out = _linear(x, lin.weight.detach(), lin.bias.detach())  # a held-out network: only the input gets a gradient
    (gx,) = torch.autograd.grad(out.sum(), [x])
    torch.testing.assert_close(gx, lin.weight.detach().sum(0).expand(5, 6))


def test_rssm_gru_cell_is_torch_grucell():
    from rlbench.modules.dreamer import _gru_cell

    cell = nn.GRUCell(7, 9)
    x, h = torch.randn(4, 7, requires_grad=True), torch.randn(4, 9, requires_grad=True)
    g = torch.randn(4, 9)
    inputs = [x, h, *cell.parameters()]
    got, got_g = _grads(lambda: _gru_cell(x, h, cell), inputs, g)
    want, want_g = _grads(lambda: cell(x, h), inputs, g)
    torch.testing.assert_close(got, want)
    for a, b in zip(got_g, want_g):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("layer", [nn.ConvTranspose2d(16, 8, 5, stride=2), nn.ConvTranspose2d(8, 3, 6, stride=2)])
def test_decoder_transposed_conv_backward_matches_the_native_one(layer):
    from rlbench.modules.dreamer import _conv_transpose

    # 32 frames, channels-last: the decoder's case, where the native backward runs oneDNN's kernels too
    x = torch.randn(32, layer.in_channels, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn_like(layer(x))
    inputs = [x, layer.weight, layer.bias]
    got, got_g = _grads(lambda: _conv_transpose(layer, x), inputs, g)
    want, want_g = _grads(lambda: layer(x), inputs, g)
    if layer.out_channels > 8:
        assert torch.equal(got, want)  # the same kernel forward
    else:  # few output channels: the sub-pixel forward (float32 rounding apart)
        torch.testing.assert_close(got, want)
    for a, b in zip(got_g, want_g):  # the bias gradient is a sum over 32 * 64 * 64 pixels, in another order
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_world_model_with_and_without_the_onednn_path_agree():
    prior, post = RSSMPrior(action_dim=2), RSSMPosterior()
    wm = dreamer_world_model(ObsEncoder(), RSSMRollout(prior, post), ObsDecoder(), dreamer_mlp(230, depth=2))
    td = TensorDict({"pixels": torch.rand(2, 3, 3, 64, 64), "action": torch.rand(2, 3, 2),
                     "next": {"pixels": torch.rand(2, 3, 3, 64, 64)}}, [2, 3])
    params = list(wm.parameters())

    def run():
        torch.manual_seed(0)
        out = wm(td.clone())
        loss = (out["next", "reco_pixels"].square().mean() + out["next", "reward"].sum() + out["next", "state"].sum()
                + out["next", "prior_std"].sum())
        return out, torch.autograd.grad(loss, params)

    fast, fast_g = run()
    OneDnnLinear.enabled = False
    try:
        ref, ref_g = run()
    finally:
        OneDnnLinear.enabled = True
    for key in [("next", k) for k in ("reco_pixels", "reward", "state", "belief", "prior_std", "posterior_mean")]:
        torch.testing.assert_close(fast[key], ref[key], rtol=1e-4, atol=1e-5)
    for a, b in zip(fast_g, ref_g):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("cin, cout, size, k", [(32, 3, 30, 6), (5, 2, 7, 4), (4, 3, 3, 2)])
def test_subpixel_conv_transpose_is_conv_transpose2d(cin, cout, size, k):
    from rlbench.modules.dreamer import _subpixel_conv_transpose

    x = torch.randn(3, cin, size, size, dtype=torch.float64)
    w, b = torch.randn(cin, cout, k, k, dtype=torch.float64), torch.randn(cout, dtype=torch.float64)
    want = nn.functional.conv_transpose2d(x, w, b, stride=2)
    torch.testing.assert_close(_subpixel_conv_transpose(x, w, b), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_subpixel_conv_transpose(x, w, None), want - b.view(1, -1, 1, 1), rtol=1e-12,
                               atol=1e-12)


def test_imagine_with_policy_is_the_imagination_env_rollout():
    prior, rew, actor = RSSMPrior(2), dreamer_mlp(230, depth=2), dreamer_actor(2, 230, num_cells=32, depth=2)
    env = dreamer_imagination_env(prior, rew, Bounded(-1.0, 1.0, (2,)))
    start = TensorDict(state=torch.randn(4, 30), belief=torch.randn(4, 200), batch_size=[4])
    with set_exploration_type(ExplorationType.RANDOM):
        torch.manual_seed(2)
        got = imagine_with_policy(prior, rew, actor, start, 3)
        torch.manual_seed(2)
        want = env.rollout(3, actor, tensordict=start, auto_reset=False)
    assert got.shape == want.shape == (4, 3)
    assert set(got.keys(True, True)) == set(want.keys(True, True))
    for key in want.keys(True, True):
        torch.testing.assert_close(got[key], want[key], rtol=1e-6, atol=1e-6)
    assert got["action"].requires_grad  # differentiable: the actor learns through it
    with pytest.raises(ValueError, match=r"'action' has shape \(4, 3\), the prior expects \(4, 2\)"):
        imagine_with_policy(prior, rew, lambda td: td.set("action", torch.zeros(4, 3)), start, 2)


def test_decoder_gives_the_same_frames_with_and_without_gradients():
    dec = ObsDecoder()
    s, h = torch.randn(3, 30), torch.randn(3, 200)
    with torch.no_grad():
        frozen = dec(s, h)
    assert torch.equal(dec(s, h), frozen)
