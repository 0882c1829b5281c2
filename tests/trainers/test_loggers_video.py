"""Loggers' log_video: mp4 round trips (frame count, shape, pixels within H.264's loss), layouts, errors, backends."""
import sys
import types

import pytest
import torch

from rlbench.testing import ListLogger
from rlbench.trainers import CSVLogger, MultiLogger, TensorboardLogger, WandbLogger, read_video, write_mp4
from rlbench.trainers.loggers import video_frames


def _blocks(frames=6, height=32, width=48, seed=0):
    """uint8 [T, H, W, 3] frames of flat 16x16 colour blocks (yuv420p halves chroma: flat blocks survive it)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.randint(0, 256, (frames, -(-height // 16), -(-width // 16), 3), generator=g, dtype=torch.uint8)
    return small.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, :height, :width].contiguous()


def _close(a, b, mean_tol=4.0, max_tol=40):
    diff = (a.int() - b.int()).abs()
    assert float(diff.float().mean()) < mean_tol, f"mean abs diff {float(diff.float().mean()):.2f}"
    assert int(diff.max()) <= max_tol, f"max abs diff {int(diff.max())}"


def test_csv_video_round_trip(tmp_path):
    logger = CSVLogger(tmp_path, "run")
    frames = _blocks()
    path = logger.log_video("eval/video", frames, step=1200, fps=15)
    assert path == tmp_path / "run" / "videos" / "eval_video_000001200.mp4" and path.exists()
    back = read_video(path)
    assert back.dtype == torch.uint8 and back.shape == (6, 32, 48, 3)
    _close(back, frames)
    # the frames are not all alike: a decoder returning one frame six times would fail here
    assert not torch.equal(back[0], back[1])
    _close(back[1], frames[1])
    logger.close()


def test_float_channels_first_gives_the_same_video(tmp_path):
    frames = _blocks(4, 16, 16, seed=1)
    as_float = frames.permute(0, 3, 1, 2).float() / 255  # [T, C, H, W] in [0, 1]
    a = read_video(write_mp4(tmp_path / "a.mp4", frames))
    b = read_video(write_mp4(tmp_path / "b.mp4", as_float))
    assert torch.equal(a, b)  # the same uint8 frames reach the encoder


@pytest.mark.parametrize("height, width", [(7, 9), (15, 16), (16, 5)])
def test_odd_sizes_round_trip_at_their_size(tmp_path, height, width):
    frames = _blocks(3, height, width, seed=2)
    back = read_video(write_mp4(tmp_path / "odd.mp4", frames))
    assert back.shape == (3, height, width, 3)
    _close(back, frames, mean_tol=8.0, max_tol=80)  # tiny frames: chroma bleeds across most blocks


def test_gray_and_rgba_frames(tmp_path):
    gray = torch.full((2, 8, 8, 1), 200, dtype=torch.uint8)
    back = read_video(write_mp4(tmp_path / "g.mp4", gray))
    assert back.shape == (2, 8, 8, 3)
    _close(back, torch.full((2, 8, 8, 3), 200, dtype=torch.uint8), 3.0, 6)
    rgba = torch.zeros(2, 8, 8, 4, dtype=torch.uint8)
    rgba[..., 3] = 255  # alpha is dropped: the video is black
    assert int(read_video(write_mp4(tmp_path / "a.mp4", rgba)).max()) < 20


def test_video_frames_layouts_and_dtypes():
    x = torch.rand(3, 5, 6, 3)
    assert video_frames("v", x).shape == (3, 5, 6, 3)
    assert (video_frames("v", x.permute(0, 3, 1, 2)) == video_frames("v", x)).all()
    assert video_frames("v", x.unsqueeze(0).permute(0, 1, 4, 2, 3)).shape == (3, 5, 6, 3)  # [1, T, C, H, W]
    assert video_frames("v", torch.full((1, 2, 2, 3), 2.0)).max() == 255  # floats clamped to [0, 1]
    assert video_frames("v", torch.full((1, 2, 2, 3), 300, dtype=torch.int64)).max() == 255
    # ambiguous [T, 3, 4, 3]: channels-last, as documented
    assert video_frames("v", torch.zeros(2, 3, 4, 3, dtype=torch.uint8)).shape == (2, 3, 4, 3)


@pytest.mark.parametrize("shape, match", [
    ((5, 8, 8), r"log_video\('v'\): frames must be \[T, H, W, C\] \(C = 1, 3 or 4\) or .*got shape \[5, 8, 8\]"),
    ((5, 8, 8, 2), r"got shape \[5, 8, 8, 2\]: neither the last dim nor dim 1 is a channel count"),
    ((5, 4, 8, 8), r"\(C = 1 or 3\), got shape \[5, 4, 8, 8\]"),  # 4 channels first: a frame stack, not RGBA
    ((2, 5, 8, 8, 3), r"got shape \[2, 5, 8, 8, 3\]"),
    ((0, 8, 8, 3), r"no frames \(shape \[0, 8, 8, 3\]\)"),
])
def test_bad_frames_raise_naming_the_shape(tmp_path, shape, match):
    logger = CSVLogger(tmp_path, "r")
    with pytest.raises(ValueError, match=match):
        logger.log_video("v", torch.zeros(shape, dtype=torch.uint8), step=0)
    assert not (tmp_path / "r" / "videos").exists() or not list((tmp_path / "r" / "videos").iterdir())
    logger.close()


def test_csv_writes_videos_after_its_csv_is_closed(tmp_path):
    # RunTracker.finish closes the run's logger before the report; an env's recorder may dump later
    logger = CSVLogger(tmp_path, "r")
    logger.close()
    assert read_video(logger.log_video("late", _blocks(2, 8, 8), step=0)).shape == (2, 8, 8, 3)


def test_csv_never_overwrites_a_video(tmp_path):
    logger = CSVLogger(tmp_path, "r")
    a = logger.log_video("clip", _blocks(2, 8, 8), step=3)
    b = logger.log_video("clip", _blocks(3, 8, 8), step=3)
    assert (a.name, b.name) == ("clip_000000003.mp4", "clip_000000003-1.mp4")
    assert read_video(a).shape[0] == 2 and read_video(b).shape[0] == 3
    logger.close()


def test_tensorboard_logger_uses_add_video(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_video(self, tag, vid_tensor, global_step=None, fps=4):
            calls.append((tag, vid_tensor, global_step, fps))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    logger = TensorboardLogger(tmp_path, "tb")
    frames = _blocks(4, 8, 16)
    logger.log_video("eval/video", frames, step=7, fps=12)
    (tag, video, step, fps), = calls
    assert (tag, step, fps) == ("eval/video", 7, 12)
    assert video.shape == (1, 4, 3, 8, 16) and video.dtype == torch.uint8  # add_video's [N, T, C, H, W]
    assert torch.equal(video[0].permute(0, 2, 3, 1), frames)


def test_wandb_logger_logs_a_video_file(tmp_path, monkeypatch):
    logged, videos = [], []

    class FakeRun:
        def log(self, data, step=None):
            logged.append((data, step))

    class FakeVideo:
        def __init__(self, data, fps=4, format=None):
            videos.append((data, fps, format))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: FakeRun()
    fake.Video = FakeVideo
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = WandbLogger(tmp_path, "w")
    frames = _blocks(3, 8, 8)
    path = logger.log_video("clip", frames, step=5, fps=10)
    (data, fps, fmt), = videos
    assert data == str(path) and (fps, fmt) == (10, "mp4") and path.parent == tmp_path / "videos"
    assert read_video(path).shape == (3, 8, 8, 3)
    (entry, step), = logged
    assert step == 5 and list(entry) == ["clip"] and isinstance(entry["clip"], FakeVideo)


def test_multilogger_forwards_videos_and_refuses_when_none_can(tmp_path):
    csv_logger = CSVLogger(tmp_path, "m")
    both = MultiLogger(ListLogger(), csv_logger)
    paths = both.log_video("clip", _blocks(2, 8, 8), step=1)
    assert len(paths) == 1 and read_video(paths[0]).shape == (2, 8, 8, 3)
    csv_logger.close()
    with pytest.raises(TypeError, match=r"none of its loggers \(ListLogger\) has log_video"):
        MultiLogger(ListLogger()).log_video("clip", _blocks(2, 8, 8), step=1)
