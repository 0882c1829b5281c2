"""RolloutInspector's Python side.

What it encodes (checked by decoding it again), frame bounds, odd data, and its errors. The view
itself is exercised in test_browser_views.py.
"""
from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
import torch
from tensordict import NonTensorData, TensorDict

pytest.importorskip("anywidget")
from PIL import Image  # noqa: E402

from rlbench.envs import CartPoleEnv  # noqa: E402
from rlbench.widgets.rollout_inspector import RolloutInspector, prepare_rollout  # noqa: E402

EVIL = "<img src=x onerror=alert(1)>"


def series(w_or_payload, name, env=0):
    """Decode one series buffer back to [T, size] for env ``env``."""
    meta = w_or_payload["meta"] if isinstance(w_or_payload, dict) else w_or_payload.meta
    bufs = w_or_payload["series"] if isinstance(w_or_payload, dict) else w_or_payload.series
    for s, buf in zip(meta["series"], bufs):
        if s["name"] == name:
            arr = np.frombuffer(buf, dtype="<f8" if s["format"] == "f8" else "<f4")
            return arr.reshape(meta["batch"], meta["steps"], s["size"])[env]
    raise KeyError(name)


def frames_of(payload_or_w):
    """Decoded frames (uint8 arrays) in buffer order, from the offsets table."""
    if isinstance(payload_or_w, dict):
        data, offsets = payload_or_w["frames"], payload_or_w["frame_offsets"]
    else:
        data, offsets = payload_or_w.frames, payload_or_w.frame_offsets
    off = np.frombuffer(offsets, dtype="<u4")
    return [np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB")) for a, b in zip(off[:-1], off[1:])]


@pytest.fixture(scope="module")
def cartpole():
    env = CartPoleEnv(seed=0)
    td = env.rollout(40, break_when_any_done=False)
    return env, td


# ---------------------------------------------------------------- series
def test_series_round_trip_values_names_and_dtypes(cartpole):
    env, td = cartpole
    p = prepare_rollout(td, frames_key=None)
    np.testing.assert_array_equal(series(p, "observation"), td["observation"].numpy())
    np.testing.assert_array_equal(series(p, "next.reward")[:, 0], td["next", "reward"][:, 0].numpy())
    np.testing.assert_array_equal(series(p, "next.done")[:, 0], td["next", "done"][:, 0].float().numpy())
    np.testing.assert_array_equal(series(p, "action")[:, 0], td["action"].numpy())
    meta = {s["name"]: s for s in p["meta"]["series"]}
    assert meta["next.done"]["kind"] == "bool" and meta["next.done"]["dtype"] == "bool"
    assert meta["action"]["kind"] == "int" and meta["action"]["format"] == "f8"  # int64: exact as float64
    assert meta["observation"]["format"] == "f4" and meta["observation"]["shape"] == [4]
    assert meta["next.observation"]["key"] == ["next", "observation"]
    m = p["meta"]
    assert (m["reward"], m["done"], m["terminated"], m["truncated"]) == (
        "next.reward", "next.done", "next.terminated", "next.truncated")
    assert m["batch"] == 1 and m["steps"] == 40 and m["batch_size"] == [40]
    assert m["bytes"] == sum(len(b) for b in p["series"])
    assert m["frames"] is None and not any("no frames" in n for n in m["notes"])  # frames_key=None: none wanted
    assert any("no frames: the rollout has no 'pixels'" in n for n in prepare_rollout(td)["meta"]["notes"])


def test_odd_data_never_crashes_and_is_reported():
    T = 7
    td = TensorDict({
        "flag": torch.tensor([True, False] * 3 + [True]),
        "count": torch.arange(T, dtype=torch.int32),
        "big": torch.full((T,), 2.0 ** 40 + 1, dtype=torch.float64),
        "half": torch.ones(T, 2, dtype=torch.float16),
        "cplx": torch.ones(T, dtype=torch.complex64),
        "image": torch.zeros(T, 3, 16, 16),
        "deep": {"er": {"key": torch.linspace(0, 1, T)}},
        "label": NonTensorData("hello", batch_size=[T]),
        "nan": torch.tensor([float("nan"), float("inf")] + [0.0] * (T - 2)),
    }, [T])
    p = prepare_rollout(td)
    np.testing.assert_array_equal(series(p, "flag")[:, 0], td["flag"].float().numpy())
    np.testing.assert_array_equal(series(p, "count")[:, 0], np.arange(T))
    assert series(p, "big")[0, 0] == 2.0 ** 40 + 1  # float64 kept exactly
    np.testing.assert_allclose(series(p, "deep.er.key")[:, 0], np.linspace(0, 1, T), rtol=1e-6)
    assert np.isnan(series(p, "nan")[0, 0]) and np.isinf(series(p, "nan")[1, 0])
    names = {s["name"] for s in p["meta"]["series"]}
    assert {"cplx", "image", "label"}.isdisjoint(names)
    notes = " | ".join(p["meta"]["notes"])
    assert "cplx: complex64 values are not shown" in notes
    assert "image: [3, 16, 16] per step is too large" in notes
    assert "label: not a tensor" in notes
    assert "no reward key" in notes and p["meta"]["reward"] is None
    w = RolloutInspector(td)  # the widget builds, and its fallbacks work without reward
    assert w.to_png() is None and "no reward key" in w.summary_html()


def test_plot_key_default_and_choice(cartpole):
    _, td = cartpole
    assert prepare_rollout(td, frames_key=None)["meta"]["plot_key"] == "action"
    meta = prepare_rollout(td, frames_key=None, plot_key=("next", "observation"))["meta"]
    assert meta["plot_key"] == "next.observation"
    with pytest.raises(KeyError, match=r"plot_key 'nope' is not a numeric key of the rollout; choose one of \["):
        prepare_rollout(td, plot_key="nope")


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("bad, err, match", [
    ({"a": 1}, TypeError, r"expects a TensorDict rollout .* got dict"),
    (torch.zeros(3), TypeError, r"got Tensor"),
    (TensorDict({"a": torch.zeros(2)}, []), ValueError, r"got \[\]\. A single step has no timeline"),
    (TensorDict({"a": torch.zeros(2, 3, 4)}, [2, 3, 4]), ValueError, r"got \[2, 3, 4\]\. .*td\.reshape\(-1, 4\)"),
    (TensorDict({"a": torch.zeros(0, 2)}, [0]), ValueError, r"the rollout is empty"),
])
def test_clear_errors_for_what_it_cannot_show(bad, err, match):
    with pytest.raises(err, match=match):
        RolloutInspector(bad)


def test_frame_source_errors(cartpole):
    env, td = cartpole
    with pytest.raises(KeyError, match=r"frames_key='cam' is not in the rollout; its keys are \["):
        prepare_rollout(td, frames_key="cam")
    frame = np.zeros((8, 12, 3), np.uint8)
    with pytest.raises(ValueError, match=r"frames has 5 entries but the rollout has 40 steps; expected 40 .* or 41"):
        prepare_rollout(td, frames=[frame] * 5)
    with pytest.raises(TypeError, match=r"frames should be a list of images, an array/tensor"):
        prepare_rollout(td, frames="video.mp4")
    with pytest.raises(ValueError, match=r"frames must have 1, 3 or 4 channels"):
        prepare_rollout(td, frames=[np.zeros((8, 12, 7), np.uint8)] * 40)
    expected = r"must render a \[n\] slice of the rollout .* collect frames=\[env.render\(\) \.\.\.\]"
    with pytest.raises(TypeError, match=expected):
        prepare_rollout(td, frames=lambda: np.zeros((8, 12, 3), np.uint8))  # like GymEnv.render: no argument
    batched = td.unsqueeze(0).expand(2, 40)
    with pytest.raises(ValueError, match=r"a list of 2 lists of frames"):
        prepare_rollout(batched, frames=[frame] * 40)


# ---------------------------------------------------------------- frames
def test_frames_from_a_render_callable_match_the_renderer(cartpole):
    env, td = cartpole
    p = prepare_rollout(td, frames=env.render)
    f = p["meta"]["frames"]
    assert (f["count"], f["width"], f["height"], f["stride"], f["note"]) == (40, 600, 400, 1, "")
    decoded = frames_of(p)
    reference = env.render(td[[0, 21, 39]]).numpy().astype(np.int16)
    for got, ref in zip([decoded[0], decoded[21], decoded[39]], reference):
        assert np.abs(got.astype(np.int16) - ref).mean() < 3.0  # JPEG: close, not exact
    # the order is right: the last frame is nearer its own step's picture than the first step's
    d = lambda a, b: np.abs(a.astype(np.int16) - b).mean()  # noqa: E731
    assert d(decoded[39], reference[2]) < d(decoded[39], reference[0])


def test_frames_listed_with_the_reset_frame_first(cartpole):
    env, td = cartpole
    rendered = list(env.render(td).numpy())
    with_reset = rendered + [rendered[-1]]  # T + 1 entries: frame t shows the state before step t's action
    p = prepare_rollout(td, frames=with_reset, max_side=300)
    assert p["meta"]["frames"]["count"] == 40
    assert (p["meta"]["frames"]["width"], p["meta"]["frames"]["height"]) == (300, 200)
    assert p["meta"]["notes"] == ["showing every frame at 300×200 (downscaled from 600×400)"]


def test_frames_from_gym_from_pixels_and_the_next_pixels_are_not_series():
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from rlbench.envs import GymEnv

    env = GymEnv("CartPole-v1", from_pixels=True)
    td = env.rollout(12, break_when_any_done=False)
    w = RolloutInspector(td)
    assert w.meta["frames"]["count"] == 12
    names = {s["name"] for s in w.meta["series"]}
    assert "pixels" not in names and "next.pixels" not in names and "next.observation" in names
    decoded = frames_of(w)
    assert np.abs(decoded[5].astype(np.int16) - td["pixels"][5].numpy()).mean() < 3.0
    assert w.nbytes == len(w.frames) + len(w.frame_offsets) + sum(len(b) for b in w.series)


def test_batched_rollout_frames_are_env_major(cartpole):
    env = CartPoleEnv(batch_size=[3], seed=1)
    td = env.rollout(10, break_when_any_done=False)
    pixels = env.render(td)  # [3, 10, 400, 600, 3]
    td["pixels"] = pixels
    w = RolloutInspector(td, max_frames=15)  # 5 per env: every 2nd step
    f = w.meta["frames"]
    assert f["count"] == 15 and f["steps"] == [0, 2, 4, 6, 8] and f["note"].startswith("showing every 2nd frame")
    decoded = frames_of(w)
    for b in range(3):
        for i, s in enumerate(f["steps"]):
            assert np.abs(decoded[b * 5 + i].astype(np.int16) - pixels[b, s].numpy()).mean() < 3.0
    np.testing.assert_array_equal(series(w, "observation", env=2), td["observation"][2].numpy())
    assert w.title == "Rollout: 3 envs × 10 steps"


def test_large_rollout_degrades_within_bounds():
    """10,000 steps of 400x600 frames: bounded frames, bytes and memory, and the widget says so."""
    env = CartPoleEnv(seed=0)
    small = env.rollout(16, break_when_any_done=False)
    distinct = env.render(small)  # 16 real frames, reused: the input costs no memory
    T = 10_000
    frames = [distinct[i % 16] for i in range(T)]
    td = TensorDict({"observation": torch.randn(T, 4), "next": {"reward": torch.ones(T, 1),
                     "done": (torch.arange(T) % 50 == 49).unsqueeze(-1)}}, [T])
    start = time.perf_counter()
    p = prepare_rollout(td, frames=frames)
    elapsed = time.perf_counter() - start
    f = p["meta"]["frames"]
    assert f["count"] <= 1000 and f["stride"] == 10 and f["steps"][:3] == [0, 10, 20]
    assert "showing every 10th frame" in f["note"] and f["note"] in p["meta"]["notes"]
    assert p["meta"]["bytes"] < 30_000_000
    assert elapsed < 60  # a sanity bound only (shared machine); speed is in benchmarks/

    # a tight byte budget: smaller pictures first, then fewer frames, never over the budget
    td["pixels"] = distinct[3].expand(T, 400, 600, 3)  # a view: 720 KB however long the rollout
    p = prepare_rollout(td, max_frame_bytes=1_000_000)
    f = p["meta"]["frames"]
    assert f["bytes"] <= 1_000_000
    assert f["width"] < 600 and f["stride"] > 10
    assert f"every {f['stride']}" in f["note"] and "downscaled from 600×400" in f["note"]


# ---------------------------------------------------------------- widget and fallbacks
def test_widget_state_is_binary_and_fallbacks_escape(cartpole):
    env, td = cartpole
    td = td.clone()
    td["next", EVIL] = torch.zeros(40, 1)
    w = RolloutInspector(td, frames=env.render, max_side=120)
    state = w.get_state()
    assert isinstance(state["frames"], bytes) and all(isinstance(b, bytes) for b in state["series"])
    html = w.summary_html()
    assert EVIL not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "40" in html and "total reward" in html
    png = w.to_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    bundle, _ = w._repr_mimebundle_()
    assert "text/html" in bundle and "image/png" in bundle
    assert EVIL not in bundle["text/html"].split("<script", 1)[0]  # the summary before the scripts is escaped
    w.step = 30  # Python can move the view
    assert w.get_state()["step"] == 30


def test_show_dispatches_to_the_rollout_inspector(cartpole):
    from rlbench.widgets import show

    _, td = cartpole
    assert type(show(td, frames_key=None)).__name__ == "RolloutInspector"
