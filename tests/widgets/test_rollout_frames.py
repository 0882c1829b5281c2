"""RolloutInspector's pictures: image layouts, stacks shown as the agent sees them, the raw frame beside.

Atari (``make_env("ALE/Pong-v5")``: float ``[T, 4, 84, 84]``) and DeepMind Control pixel rollouts
(uint8 ``[T, H, W, 3]``) end to end, plus every layout on small synthetic frames. The view is
exercised in test_browser_frames.py.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from tensordict import TensorDict

pytest.importorskip("anywidget")
from PIL import Image  # noqa: E402

from rlbench.widgets._encode import image_layout  # noqa: E402
from rlbench.widgets.rollout_inspector import RolloutInspector, prepare_rollout  # noqa: E402


def decoded(payload, which="frames"):
    """Decoded images (uint8 [H, W, 3]) of one panel, in buffer order."""
    data, offsets = payload[which], payload[which.replace("frames", "frame_offsets")]
    off = np.frombuffer(offsets, dtype="<u4")
    return [np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB")) for a, b in zip(off[:-1], off[1:])]


def tiles(img, cols, rows, h, w, gap=2):
    """The tiles of a tiled stack image, oldest first (grey: channel 0)."""
    return [img[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w, 0]
            for r in range(rows) for c in range(cols)]


def rollout(pixels, T=None):
    T = pixels.shape[0] if T is None else T
    return TensorDict({"pixels": pixels, "action": torch.zeros(T, 1),
                       "next": {"reward": torch.ones(T, 1), "done": torch.zeros(T, 1, dtype=torch.bool)}}, [T])


# ---------------------------------------------------------------- layouts
@pytest.mark.parametrize("shape, stack, expected", [
    ([84, 84, 3], None, ("hwc", 1, 3)),            # gymnasium / dm_control render
    ([3, 64, 64], None, ("chw", 1, 3)),            # ToTensorImage
    ([1, 84, 84], None, ("chw", 1, 1)),
    ([84, 84, 1], None, ("hwc", 1, 1)),
    ([84, 84], None, ("hw", 1, 1)),
    ([4, 84, 84], None, ("chw", 4, 1)),            # Atari: CatFrames of 4 grey frames
    ([12, 64, 64], None, ("chw", 4, 3)),           # 4 stacked RGB frames
    ([64, 64, 6], None, ("hwc", 2, 3)),
    ([84, 84, 4], None, ("hwc", 4, 1)),            # channel-last frame stack
    ([84, 84, 4], 1, ("hwc", 1, 4)),               # ...or RGBA, when told
    ([3, 84, 84], 3, ("chw", 3, 1)),               # three grey frames, not RGB
    ([4, 84, 84, 3], None, ("khwc", 4, 3)),
    ([4, 1, 84, 84], None, ("kchw", 4, 1)),
])
def test_image_layouts_are_recognised(shape, stack, expected):
    layout = image_layout(shape, stack)
    assert (layout.order, layout.stack, layout.channels) == expected
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    frames = layout.frames_hwc(x)
    assert frames.shape == (layout.stack, layout.height, layout.width, layout.channels)
    assert layout.to_rgb(x).shape == layout.tiled_hw() + (3,)


def test_stack_channels_are_split_in_catframes_order():
    # CatFrames concatenates [C, H, W] frames along C: channel f*C + c is frame f, colour c
    frames = torch.rand(4, 3, 5, 6)
    layout = image_layout([12, 5, 6])
    np.testing.assert_array_equal(layout.frames_hwc(frames.reshape(12, 5, 6)), frames.permute(0, 2, 3, 1).numpy())
    hwc = torch.cat(list(frames.permute(0, 2, 3, 1)), dim=-1)  # [5, 6, 12], channel-last CatFrames
    np.testing.assert_array_equal(image_layout([5, 6, 12]).frames_hwc(hwc), frames.permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("shape, stack, match", [
    ([84, 84, 84], None, r"holds \[84, 84, 84\] per step; expected one image per step: \[H, W, C\] or \[C, H, W\]"),
    ([16], None, r"holds \[16\] per step; expected one image"),
    ([2, 3, 4, 5, 6], None, r"holds \[2, 3, 4, 5, 6\] per step"),
    ([4, 5, 84, 84], None, r"holds \[4, 5, 84, 84\] per step"),
    ([4, 84, 84], 3, r"4 channels do not split into stack=3 grey or RGB frames"),
    ([4, 84, 84, 3], 2, r"a stack of 4 frames, not stack=2"),
    ([4, 84, 84], 0, r"stack must be a positive int"),
])
def test_unrecognised_layouts_say_what_was_found(shape, stack, match):
    with pytest.raises(ValueError, match=match):
        image_layout(shape, stack, what="frames_key 'pixels'")


def test_refused_frames_key_names_the_key_and_shape():
    with pytest.raises(ValueError, match=r"frames_key 'pixels' holds \[40, 40, 40\] per step"):
        prepare_rollout(rollout(torch.zeros(3, 40, 40, 40)))


# ---------------------------------------------------------------- single images are the frame
@pytest.mark.parametrize("make, grey", [
    (lambda g: torch.from_numpy(g), False),                                         # uint8 HWC RGB
    (lambda g: torch.from_numpy(g).permute(0, 3, 1, 2).float() / 255, False),       # float CHW in [0, 1]
    (lambda g: torch.from_numpy(g[..., :1]).permute(0, 3, 1, 2).float() / 255, True),  # float [1, H, W]
    (lambda g: torch.from_numpy(g[..., :1]), True),                                 # uint8 [H, W, 1]
    (lambda g: torch.from_numpy(g[..., 0]), True),                                  # uint8 [H, W] grey
])
def test_one_image_per_step_is_the_frame(make, grey):
    y, x = np.mgrid[0:12, 0:16]
    rgb = np.stack([np.stack([x * 15, y * 20, np.full_like(x, 60 * t)], -1) for t in range(3)]).astype(np.uint8)
    p = prepare_rollout(rollout(make(rgb)))
    assert p["meta"]["agent_frames"] is None and p["agent_frames"] == b""
    f = p["meta"]["frames"]
    assert (f["count"], f["width"], f["height"], f["key"]) == (3, 16, 12, "pixels")
    expected = np.repeat(rgb[..., :1], 3, -1) if grey else rgb
    assert np.abs(decoded(p)[2].astype(np.int16) - expected[2]).mean() < 4


# ---------------------------------------------------------------- stacks: the agent's view
def test_atari_stack_is_tiled_as_the_agent_sees_it():
    from rlbench.recipes import make_env

    env = make_env("ALE/Pong-v5", seed=0)
    td = env.rollout(6, break_when_any_done=False)
    assert td["pixels"].shape == (6, 4, 84, 84) and td["pixels"].dtype == torch.float32
    p = prepare_rollout(td)
    meta = p["meta"]
    assert meta["frames"] is None  # no raw frame in this rollout: said so
    assert any("no raw frame beside the agent's view (pixels)" in n for n in meta["notes"])
    a = meta["agent_frames"]
    assert (a["layout"], a["stack"], a["columns"], a["rows"]) == ("4 stacked 84×84 grey frames", 4, 2, 2)
    assert (a["width"], a["height"], a["count"], a["key"]) == (170, 170, 6, "pixels")
    names = {s["name"] for s in meta["series"]}
    assert "pixels" not in names and "next.pixels" not in names and "next.reward" in names
    for t in (0, 5):
        got = tiles(decoded(p, "agent_frames")[t], 2, 2, 84, 84)
        for i in range(4):
            ref = td["pixels"][t, i].numpy() * 255
            assert np.abs(got[i].astype(np.float32) - ref).mean() < 4, (t, i)
    w = RolloutInspector(td)
    assert "4 stacked 84×84 grey frames" in w.summary_html()
    assert w.nbytes == len(w.agent_frames) + len(w.agent_frame_offsets) + sum(len(b) for b in w.series)


def test_atari_raw_frame_beside_the_stack():
    from rlbench.envs import AtariPreprocessing, GymEnv
    from rlbench.envs.transforms import RenameTransform, TransformedEnv

    base = GymEnv("ALE/Pong-v5", frameskip=1)
    raw = TransformedEnv(base, RenameTransform(["observation"], [("raw", "pixels")], create_copy=True))
    env = TransformedEnv(raw, AtariPreprocessing().transforms())
    env.set_seed(0)
    td = env.rollout(5, break_when_any_done=False)
    p = prepare_rollout(td, max_frames=3)  # ("raw", "pixels") is found without being named
    f, a = p["meta"]["frames"], p["meta"]["agent_frames"]
    assert (f["key"], f["width"], f["height"]) == ("raw.pixels", 160, 210)
    assert a["key"] == "pixels" and a["layout"] == "4 stacked 84×84 grey frames"
    assert f["steps"] == a["steps"] == [0, 2, 4]
    ref = td["raw", "pixels"][4].numpy().astype(np.int16)
    assert np.abs(decoded(p)[2].astype(np.int16) - ref).mean() < 4
    names = {s["name"] for s in p["meta"]["series"]}
    assert not names & {"raw.pixels", "next.raw.pixels", "pixels"}
    assert not any("no raw frame" in n for n in p["meta"]["notes"])


def test_dm_control_pixels_show_directly():
    from rlbench.envs import DMControlEnv

    env = DMControlEnv("cartpole", "swingup", from_pixels=True, height=48, width=64)
    td = env.rollout(4)
    p = prepare_rollout(td)
    f = p["meta"]["frames"]
    assert (f["count"], f["width"], f["height"], f["key"]) == (4, 64, 48, "pixels")
    assert p["meta"]["agent_frames"] is None
    assert np.abs(decoded(p)[3].astype(np.int16) - td["pixels"][3].numpy()).mean() < 4
    # a rendered frame beside what a pixel encoder would read: both panels
    td["small"] = td["pixels"][:, ::2, ::2].permute(0, 3, 1, 2).float() / 255
    p = prepare_rollout(td, frames_key="small", raw_key="pixels")
    assert p["meta"]["frames"]["key"] == "pixels" and p["meta"]["agent_frames"]["layout"] == "one 32×24 RGB frame"


def test_frames_argument_with_a_stacked_observation_and_rgb_stacks():
    T = 4
    pixels = torch.rand(T, 12, 40, 48)  # 4 stacked RGB frames
    td = rollout(pixels)
    render = np.zeros((T, 30, 40, 3), np.uint8)
    p = prepare_rollout(td, frames=list(render))
    assert p["meta"]["frames"]["key"] is None and p["meta"]["frames"]["width"] == 40
    a = p["meta"]["agent_frames"]
    assert a["layout"] == "4 stacked 48×40 RGB frames" and (a["width"], a["height"]) == (2 * 48 + 2, 2 * 40 + 2)
    gray3 = prepare_rollout(rollout(torch.rand(T, 3, 40, 48)), stack=3)["meta"]
    assert gray3["frames"] is None and gray3["agent_frames"]["layout"] == "3 stacked 48×40 grey frames"
    assert gray3["agent_frames"]["columns"] == 3 and gray3["agent_frames"]["rows"] == 1  # a strip


def test_raw_key_errors():
    td = rollout(torch.rand(3, 4, 10, 10))
    with pytest.raises(KeyError, match=r"raw_key='cam' is not in the rollout; its keys are \["):
        prepare_rollout(td, raw_key="cam")
    td["raw_pixels"] = torch.rand(3, 4, 10, 10)
    with pytest.raises(ValueError, match=r"'raw_pixels' holds 4 stacked 10×10 grey frames; the raw frame should"):
        prepare_rollout(td)


def test_batched_stacks_are_env_major_like_the_frames():
    stacks = torch.zeros(2, 3, 4, 20, 20)
    for b in range(2):
        for t in range(3):
            stacks[b, t, :, :, :] = (1 + b * 3 + t) / 8  # one grey level per env and step
    td = TensorDict({"pixels": stacks, "next": {"reward": torch.zeros(2, 3, 1)}}, [2, 3])
    p = prepare_rollout(td)
    a = p["meta"]["agent_frames"]
    assert a["count"] == 6 and a["steps"] == [0, 1, 2]
    levels = [float(img[:20, :20, 0].mean()) for img in decoded(p, "agent_frames")]
    np.testing.assert_allclose(levels, [(1 + b * 3 + t) / 8 * 255 for b in range(2) for t in range(3)], atol=3)
