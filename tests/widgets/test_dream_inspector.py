"""DreamInspector's Python side: the arrays it validates and encodes, and the world-model protocol.

The fake world model is a small deterministic torch module: its "dynamics" move the last frame it saw
by the action (the real environment's rule) plus a drift, so the dream error can be checked against
NumPy and grows with the horizon. The view is exercised in test_browser_dream.py.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torch import nn

pytest.importorskip("anywidget")
from _pictures import EVIL, FakeWorldModel, T, real_rollout  # noqa: E402
from PIL import Image  # noqa: E402

from rlbench.widgets.dream_inspector import DreamInspector, DreamWorldModel, prepare_dream  # noqa: E402


def decode(data: bytes, offsets: bytes) -> list[np.ndarray]:
    off = np.frombuffer(offsets, dtype="<u4")
    return [np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB")) for a, b in zip(off[:-1], off[1:])]


# ---------------------------------------------------------------- the world-model path
def test_world_model_protocol_end_to_end():
    td = real_rollout()
    model = FakeWorldModel(drift=1)
    assert isinstance(model, DreamWorldModel)
    w = DreamInspector(model, td, starts=[0, 4, 9], horizon=5, title=EVIL)
    m = w.meta
    # horizons cut at the rollout's end: from 9 only frames 10 and 11 exist
    assert m["starts"] == [{"step": 0, "first": 0, "count": 5}, {"step": 4, "first": 5, "count": 5},
                           {"step": 9, "first": 10, "count": 2}]
    assert m["steps"] == T and m["horizon"] == 5
    assert m["panels"]["real"]["count"] == T and m["panels"]["dream"]["count"] == 12
    assert set(m["series"]) == {"real_reward", "predicted_reward", "imagined_reward", "reco_error", "dream_error"}
    # "pixels" frames: frame t came with the reward of step t - 1 (none for the first)
    assert np.isnan(w.values("real_reward")[0])
    np.testing.assert_array_equal(w.values("real_reward")[1:], td["next", "reward"][:-1, 0].numpy())
    np.testing.assert_allclose(w.values("predicted_reward"), 0.5 * td["action"][:, 0].numpy())
    imagined = w.values("imagined_reward")
    np.testing.assert_allclose(imagined[1], 0.5 * td["action"][4:9, 0].numpy())  # fed the actions after frame 4
    assert np.isnan(imagined[2, 2:]).all()
    # the dream error, independently: frame j from start s is frame s rolled by sum(a[s..s+j]) + drift*(j+1)
    real = td["pixels"].numpy()
    for row, s in enumerate([0, 4, 9]):
        for j in range(m["starts"][row]["count"]):
            shift = int(td["action"][s:s + j + 1, 0].sum()) + (j + 1)
            pred = np.roll(real[s], shift, axis=-1)
            rgb = lambda x: np.round(np.clip(x, 0, 1) * 255 + 1e-6) / 255  # noqa: E731 (the uint8 the view sends)
            expected = ((rgb(pred) - rgb(real[s + 1 + j])) ** 2).mean()
            assert w.values("dream_error")[row, j] == pytest.approx(expected, abs=1e-3), (s, j)
    assert w.values("dream_error")[1, 0] > 0  # the drift shows from the first imagined step
    reco_expected = ((np.clip(real * 0.95 + 0.01, 0, 1) - real) ** 2).reshape(T, -1).mean(1)
    np.testing.assert_allclose(w.values("reco_error"), reco_expected, atol=2e-4)
    # frames: the dream's first frame from step 4 is what the model drew, not the real frame
    dream = decode(w.dream, w.dream_offsets)
    shift = int(td["action"][4, 0]) + 1
    expected = (np.roll(real[4], shift, axis=-1).transpose(1, 2, 0) * 255).astype(np.int16)
    assert np.abs(dream[5].astype(np.int16) - expected).mean() < 6
    assert model.gain.grad is None  # run under no_grad
    assert EVIL not in w.summary_html() and "&lt;img" in w.summary_html()
    assert w.to_png() is not None


def test_perfect_model_dreams_the_real_frames():
    w = DreamInspector(FakeWorldModel(drift=0), real_rollout(), starts=[2], horizon=6)
    assert np.nanmax(w.values("dream_error")) < 1e-6
    assert w.title == "Dream" and "from step 2 (6 steps)" in w.summary_html()


def test_default_starts_and_a_batched_rollout():
    td = torch.stack([real_rollout(), real_rollout()])  # [2, T]
    w = DreamInspector(FakeWorldModel(), td, env=1, horizon=3)
    assert [s["step"] for s in w.meta["starts"]] == [0, 3, 7, 10]
    assert [s["count"] for s in w.meta["starts"]] == [3, 3, 3, 1]


class NoReconstruction(FakeWorldModel):
    def observe(self, rollout):
        return TensorDict({"reward": torch.zeros(len(rollout))}, rollout.batch_size)


def test_world_model_errors():
    td = real_rollout()
    with pytest.raises(TypeError, match=r"needs observe\(rollout\) and imagine\(state, actions\) methods"):
        DreamInspector(nn.Linear(2, 2), td)
    with pytest.raises(KeyError, match=r"world_model.observe\(rollout\) returned no 'reconstruction' entry"):
        DreamInspector(NoReconstruction(), td)
    with pytest.raises(KeyError, match=r"frames_key=\W+rgb\W+ is not in the rollout; its keys are \[.*next.reward"):
        DreamInspector(FakeWorldModel(), td, frames_key="rgb")
    with pytest.raises(ValueError, match=r"start step 11 is outside the rollout: with 12 steps"):
        DreamInspector(FakeWorldModel(), td, starts=[11])
    with pytest.raises(TypeError, match=r"needs both"):
        DreamInspector(FakeWorldModel())


# ---------------------------------------------------------------- arrays
def test_from_arrays_layouts_ranges_and_array_form():
    real = np.zeros((6, 8, 10, 3), np.uint8)
    real[:, :, :5] = 255  # left half white
    centred = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 255 - 0.5  # a decoder's [-0.5, 0.5] output
    imagined = torch.stack([centred[1:4], centred[3:6]])  # [S=2, H=3, 3, 8, 10]
    w = DreamInspector.from_arrays(real, centred, imagined, start_steps=[0, 2], float_range=(-0.5, 0.5),
                                   imagined_reward=torch.zeros(2, 3), real_reward=torch.zeros(6, 1))
    assert w.meta["starts"] == [{"step": 0, "first": 0, "count": 3}, {"step": 2, "first": 3, "count": 3}]
    assert np.abs(w.values("reco_error")).max() < 1e-6 and np.abs(w.values("dream_error")).max() < 1e-6
    reco = decode(w.reco, w.reco_offsets)
    assert reco[0].shape == (8, 10, 3) and reco[0][:, :5].mean() > 240 and reco[0][:, 5:].mean() < 15
    # reconstructions of another size: shown, but no error curve (said so)
    small = prepare_dream(real, np.zeros((6, 4, 5)), None)
    assert "reco_error" not in small["meta"]["series"] and "no reconstruction error" in small["meta"]["notes"][0]
    assert small["meta"]["panels"]["dream"] is None and small["meta"]["starts"] == []


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(real_frames=np.zeros((0, 8, 8, 3))), ValueError, r"real_frames is empty"),
    (dict(real_frames=np.zeros((5, 8))), ValueError, r"real_frames has shape \[5, 8\]; expected frames"),
    (dict(real_frames=np.zeros((5, 4, 8, 8))), ValueError, r"real_frames holds 4 stacked 8×8 grey frames per step"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), reconstructions=np.zeros((4, 8, 8, 3))), ValueError,
     r"reconstructions has 4 frames but real_frames has 5; expected one reconstruction per real frame"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined={4: np.zeros((1, 8, 8, 3))}), ValueError,
     r"imagined start step 4 is outside the rollout: with 5 real frames a dream can start at steps 0..3"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined={2: np.zeros((3, 8, 8, 3))}), ValueError,
     r"imagined\[2\] has 3 frames, .* at most 2 from start 2"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined=np.zeros((2, 2, 8, 8, 3))), ValueError,
     r"imagined has 2 rollouts .* and no start_steps; pass start_steps"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined={0: np.zeros((2, 8, 8, 3)), 1: np.zeros((2, 4, 4, 3))}),
     ValueError, r"imagined\[1\] frames are 4×4 but imagined\[0\] frames are 8×8"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), real_reward=np.zeros(4)), ValueError,
     r"real_reward has shape \[4\]; expected \[5\] \(or \[5, 1\]\)"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined={1: np.zeros((2, 8, 8, 3))}, imagined_reward={0: [1, 2]}),
     ValueError, r"imagined_reward has start steps \[0\], imagined has \[1\]"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined={1: np.zeros((2, 8, 8, 3))}, imagined_reward={1: [1.0]}),
     ValueError, r"imagined_reward\[1\] has shape \[1\]; expected \[2\]"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), imagined="dreams"), TypeError, r"imagined should be a dict"),
    (dict(real_frames="video.mp4"), TypeError, r"real_frames should be an array or tensor"),
    (dict(real_frames=np.zeros((5, 8, 8, 3)), float_range=(1, 0)), ValueError, r"float_range must be"),
])
def test_from_arrays_errors_name_the_array_and_shape(kwargs, err, match):
    with pytest.raises(err, match=match):
        DreamInspector.from_arrays(**kwargs)


def test_state_is_binary_and_exported():
    import rlbench.widgets as widgets

    assert widgets.DreamInspector is DreamInspector
    w = DreamInspector.from_arrays(np.zeros((4, 8, 8, 3), np.uint8), imagined={0: np.zeros((2, 8, 8, 3))},
                                   real_reward=np.arange(4.0))
    state = w.view_state()
    assert isinstance(state["real"], bytes) and isinstance(state["series"]["real_reward"]["data"], bytes)
    frames = len(w.real) + len(w.real_offsets) + len(w.dream) + len(w.dream_offsets)
    assert w.nbytes == frames + 16 + 8  # + the rewards and the dream error, float32
    assert "dreams" in w.summary_html()


# ---------------------------------------------------------------- Dreamer's own world model
def tiny_dreamer():
    from rlbench.modules.dreamer import (
        ObsDecoder,
        ObsEncoder,
        RSSMPosterior,
        RSSMPrior,
        RSSMRollout,
        dreamer_mlp,
        dreamer_world_model,
    )

    torch.manual_seed(0)
    prior = RSSMPrior(action_dim=1, hidden_dim=8, belief_dim=8, state_dim=4)
    posterior = RSSMPosterior(hidden_dim=8, belief_dim=8, embed_dim=4 * 8 * 4, state_dim=4)
    decoder = ObsDecoder(state_dim=4, belief_dim=8, channels=4)
    reward = dreamer_mlp(12, 1, num_cells=8, depth=1)
    world_model = dreamer_world_model(ObsEncoder(channels=4), RSSMRollout(prior, posterior), decoder, reward)
    return world_model, prior, decoder, reward


def test_dreamer_world_model_is_adapted_and_aligned():
    from rlbench.modules.dreamer import imagine
    from rlbench.widgets.dream_inspector import DreamerAdapter

    world_model, prior, decoder, reward = tiny_dreamer()
    n = 7
    pixels = torch.rand(n + 1, 3, 64, 64)
    td = TensorDict({"pixels": pixels[:-1], "action": torch.rand(n, 1) * 2 - 1,
                     "next": {"pixels": pixels[1:], "reward": torch.arange(n, dtype=torch.float32)[:, None]}}, [n])
    assert DreamerAdapter.fits(world_model) and not DreamerAdapter.fits(FakeWorldModel())
    torch.manual_seed(1)
    w = DreamInspector(world_model, td, starts=[1, 4], horizon=3)
    # the same calls by hand, under the same noise: the posterior of the next frames, then the prior
    torch.manual_seed(1)
    with torch.no_grad():
        out = world_model(td.copy())
        dreams = [imagine(prior, decoder, out["next", "state"][s][None], out["next", "belief"][s][None],
                          td["action"][s + 1:s + 1 + h][None], reward=reward) for s, h in ((1, 3), (4, 2))]
    assert w.meta["starts"] == [{"step": 1, "first": 0, "count": 3}, {"step": 4, "first": 3, "count": 2}]
    # ("next", "pixels") frames, each with the reward that came with it
    np.testing.assert_array_equal(w.values("real_reward"), np.arange(n, dtype=np.float32))
    np.testing.assert_allclose(w.values("predicted_reward"), out["next", "reward"][:, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(w.values("imagined_reward")[0], dreams[0]["reward"][0, :, 0].numpy(), rtol=1e-5)
    real = td["next", "pixels"].numpy()
    rgb = lambda x: np.round(np.clip(x, 0, 1) * 255 + 1e-6) / 255  # noqa: E731
    expected = ((rgb(dreams[1]["reco_pixels"][0, 1].numpy()) - rgb(real[4 + 2])) ** 2).mean()
    assert w.values("dream_error")[1, 1] == pytest.approx(expected, abs=1e-3)
    assert w.meta["panels"]["reco"]["width"] == 64 and w.meta["panels"]["dream"]["count"] == 5
