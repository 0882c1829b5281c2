"""Rollout encoding (rlbench/widgets/_encode.py): frame conversion, frame byte budgets and formats, series checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tensordict import TensorDict

pytest.importorskip("anywidget")  # importing rlbench.widgets needs it

from rlbench.widgets._encode import encode_frames, encode_series, to_rgb_uint8  # noqa: E402


def test_channel_first_float_and_grey_frames_convert():
    chw = torch.rand(2, 3, 8, 10)
    assert to_rgb_uint8(chw).shape == (2, 8, 10, 3)
    assert to_rgb_uint8(torch.ones(8, 10, 1)).max() == 255 and to_rgb_uint8(torch.ones(8, 10, 1)).shape == (8, 10, 3)
    rgba = np.zeros((8, 10, 4), np.uint8)
    rgba[..., 0] = 200
    assert to_rgb_uint8(rgba)[0, 0].tolist() == [200, 0, 0]


def test_encode_frames_budget_drops_frames_without_reencoding():
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, size=(40, 64, 64, 3), dtype=np.uint8)  # incompressible
    calls = []

    def get(b, steps):
        calls.extend(steps)
        return noisy[list(steps)]

    pack = encode_frames(get, 1, 40, (64, 64), max_bytes=60_000, min_side=64, chunk=4)
    assert len(pack.data) <= 60_000
    assert pack.steps == list(range(0, 40, pack.stride)) and pack.stride > 1
    assert calls[:4] == [0, 13, 26, 39]  # 4 probe frames estimate the bytes per frame
    assert len(calls[4:]) == len(set(calls[4:]))  # then each frame is read (and encoded) at most once
    off = np.frombuffer(pack.offsets, dtype="<u4")
    assert off[0] == 0 and off[-1] == len(pack.data) and len(off) == pack.count + 1


def test_encode_frames_webp_and_bad_format():
    frames = np.zeros((3, 20, 30, 3), np.uint8)
    pack = encode_frames(lambda b, s: frames[list(s)], 1, 3, (20, 30), fmt="webp")
    assert pack.mime == "image/webp" and pack.data[8:12] == b"WEBP"
    with pytest.raises(ValueError, match="frame format must be 'jpeg' or 'webp', got 'gif'"):
        encode_frames(lambda b, s: frames[list(s)], 1, 3, (20, 30), fmt="gif")


def test_encode_series_rejects_wrong_batch_dims():
    with pytest.raises(ValueError, match=r"expects a \[B, T\] TensorDict, got batch_size \[4\]"):
        encode_series(TensorDict({"a": torch.zeros(4)}, [4]))
