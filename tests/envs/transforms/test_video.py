"""VideoRecorder: which frames it keeps, when it writes them, layouts, batches, errors, and real envs to mp4."""
import copy

import pytest
import torch

from rlbench.envs.transforms import (
    CatFrames,
    Compose,
    GrayScale,
    StepCounter,
    ToTensorImage,
    TransformedEnv,
    TransformKeyError,
    VideoRecorder,
)
from rlbench.testing import CountingEnv, ListLogger, PixelCountingEnv


class VideoList:
    """Keeps every video it is given: (name, frames, step, fps)."""

    def __init__(self):
        self.videos = []

    def log_video(self, name, frames, step, fps=30):
        self.videos.append((name, frames.clone(), step, fps))
        return len(self.videos)

    def lengths(self):
        return [v[1].shape[0] for v in self.videos]


def _episode_frames(data, env_index=None):
    """The frames an unbatched rollout showed, split by episode: [reset frame, step frames...] each."""
    if env_index is not None:
        data = data[env_index]
    episodes, current = [], [data["pixels"][0]]
    for t in range(data.shape[0]):
        current.append(data["next", "pixels"][t])
        if bool(data["next", "done"][t]):
            episodes.append(torch.stack(current))
            current = [data["pixels"][t + 1]] if t + 1 < data.shape[0] else []
    return episodes, current


def test_records_every_frame_and_writes_one_video_per_episode():
    logger = VideoList()
    env = TransformedEnv(PixelCountingEnv(max_steps=3, height=4, width=6), VideoRecorder(logger, "ep", fps=12))
    data = env.rollout(11, break_when_any_done=False)
    episodes, rest = _episode_frames(data)
    assert logger.lengths() == [4, 4, 4] and len(rest) == 3
    for (name, frames, step, fps), expected in zip(logger.videos, episodes):
        assert (name, fps) == ("ep", 12) and frames.dtype == torch.uint8 and frames.shape == (4, 4, 6, 3)
        assert torch.equal(frames, expected)
    assert [v[2] for v in logger.videos] == [0, 1, 2]  # step: the number of videos dumped before
    recorder = env.transform[0]
    assert len(recorder.frames) == 3
    env.close()  # closes its transforms: the frames still waiting become the last video
    assert torch.equal(logger.videos[-1][1], torch.stack(rest)) and recorder.frames == []
    recorder.close()  # nothing waiting any more: closing again writes nothing
    assert recorder.dump() is None and len(logger.videos) == 4  # nothing waiting: no empty video


def test_skip_max_frames_suffix_and_step():
    logger = VideoList()
    recorder = VideoRecorder(logger, "clip", skip=2, max_frames=3, step=500)
    env = TransformedEnv(PixelCountingEnv(max_steps=9, height=2, width=2), recorder)
    data = env.rollout(9)  # one episode: 10 frames, every other one kept -> 5, in chunks of at most 3
    (episode,), _ = _episode_frames(data)
    assert logger.lengths() == [3, 2]
    assert torch.equal(torch.cat([v[1] for v in logger.videos]), episode[::2])  # nothing lost, none twice
    assert [v[2] for v in logger.videos] == [500, 500]
    env.rollout(2)
    assert recorder.dump(suffix="partial", step=7) == 3 and logger.videos[-1][0] == "clip_partial"
    assert logger.videos[-1][2] == 7 and logger.lengths()[-1] == 2  # 3 frames, skip 2: the 1st and 3rd


def test_a_reset_before_the_end_closes_the_episode_so_far():
    logger = VideoList()
    env = TransformedEnv(PixelCountingEnv(max_steps=10, height=2, width=2), VideoRecorder(logger, "cut"))
    env.rollout(3)
    assert logger.videos == []
    env.rollout(2)  # its reset ends the unfinished episode: 1 + 3 frames
    assert logger.lengths() == [4]


def test_a_reset_that_no_step_follows_makes_no_video():
    logger = VideoList()
    env = TransformedEnv(PixelCountingEnv(max_steps=3, height=2, width=2), VideoRecorder(logger, "r"))
    env.reset()
    env.reset()
    env.transform[0].close()
    assert logger.videos == []
    env.rollout(6, break_when_any_done=False)  # ends on a done: the automatic reset after it waits for a step
    env.transform[0].close()
    assert logger.lengths() == [4, 4]


def test_float_channels_first_images_after_to_tensor_image():
    raw_logger, float_logger = VideoList(), VideoList()
    raw = TransformedEnv(PixelCountingEnv(max_steps=4, height=5, width=7), VideoRecorder(raw_logger, "raw"))
    tensor = TransformedEnv(PixelCountingEnv(max_steps=4, height=5, width=7),
                            Compose(ToTensorImage(), VideoRecorder(float_logger, "float")))
    raw.rollout(4)
    data = tensor.rollout(4)
    assert data["pixels"].shape == (4, 3, 5, 7) and data["pixels"].dtype == torch.float32
    assert torch.equal(raw_logger.videos[0][1], float_logger.videos[0][1])  # x / 255 * 255 rounds back


def test_gray_images_become_rgb():
    logger = VideoList()
    env = TransformedEnv(PixelCountingEnv(max_steps=2, height=4, width=4),
                         Compose(ToTensorImage(), GrayScale(), VideoRecorder(logger, "gray")))
    data = env.rollout(2)
    frames = logger.videos[0][1]
    assert frames.shape == (3, 4, 4, 3)
    expected = (data["next", "pixels"][-1, 0] * 255).round().to(torch.uint8)
    assert torch.equal(frames[-1, ..., 0], expected) and torch.equal(frames[..., 0], frames[..., 2])


def test_batched_env_grid_tiles_every_sub_env():
    logger = VideoList()
    base = PixelCountingEnv(max_steps=torch.tensor([2, 3, 4]), batch_size=[3], height=4, width=6)
    env = TransformedEnv(base, VideoRecorder(logger, "grid"))
    data = env.rollout(4, break_when_any_done=False)
    # every sub-env has ended an episode at step 4 (sub-env 2's first): one video, written then, of the
    # reset, 4 steps, and the partial resets of sub-env 0 (after step 2) and sub-env 1 (after step 3)
    assert logger.lengths() == [1 + 4 + 2]
    frames = logger.videos[0][1]
    assert frames.shape == (7, 8, 12, 3)  # 2 x 2 cells of [4, 6]; the 4th cell is black
    assert int(frames[:, 4:, 6:].max()) == 0
    cells = lambda f: [f[:4, :6], f[:4, 6:], f[4:, :6]]  # noqa: E731
    for i, cell in enumerate(cells(frames[0])):
        assert torch.equal(cell, data["pixels"][i, 0])
    for i, cell in enumerate(cells(frames[2])):  # after steps 1 and 2 (sub-env 0's episode end)
        assert torch.equal(cell, data["next", "pixels"][i, 1])
    # the partial reset: sub-env 0 shows its fresh frame, the others keep their step-2 frame
    assert torch.equal(cells(frames[3])[0], data["pixels"][0, 2])
    assert torch.equal(cells(frames[3])[1], data["next", "pixels"][1, 1])


def test_batched_env_without_grid_records_sub_env_0_episode_by_episode():
    logger = VideoList()
    base = PixelCountingEnv(max_steps=torch.tensor([2, 3, 4]), batch_size=[3], height=4, width=6)
    env = TransformedEnv(base, VideoRecorder(logger, "env0", make_grid=False))
    data = env.rollout(7, break_when_any_done=False)
    episodes, rest = _episode_frames(data, env_index=0)
    assert logger.lengths() == [3, 3, 3] and len(rest) == 2
    for (_, frames, _, _), expected in zip(logger.videos, episodes):
        assert torch.equal(frames, expected)


def test_outside_an_env_nothing_is_recorded_and_data_is_untouched():
    logger = VideoList()
    data = PixelCountingEnv(max_steps=3).rollout(3)
    recorder = VideoRecorder(logger, "free")
    out = recorder(data.clone())
    assert recorder.frames == [] and logger.videos == []
    assert (out == data).all()


def test_deepcopy_shares_the_logger():
    logger = VideoList()
    recorder = VideoRecorder(logger, "a")
    clone = copy.deepcopy(recorder)
    assert clone.logger is logger and clone is not recorder


def test_errors():
    with pytest.raises(TypeError, match=r"logger \(ListLogger\) has no log_video.*CSVLogger.*TensorboardLogger"):
        VideoRecorder(ListLogger(), "x")
    with pytest.raises(TransformKeyError, match=r"in_key 'pixels' is not a key .*Available keys: \['observation'"):
        TransformedEnv(CountingEnv(), VideoRecorder(VideoList(), "x"))
    with pytest.raises(ValueError, match=r"'observation' \(shape \[1\].*is not an image.*got event shape \[1\]"):
        TransformedEnv(CountingEnv(), VideoRecorder(VideoList(), "x", in_keys=["observation"]))
    with pytest.raises(ValueError, match=r"not one image: put the VideoRecorder before the stacking transform"):
        TransformedEnv(PixelCountingEnv(height=8, width=8),
                       Compose(ToTensorImage(), GrayScale(), CatFrames(5, dim=-3), VideoRecorder(VideoList(), "x")))
    with pytest.raises(ValueError, match=r"event shape \[4, 8, 8\]. A stack of frames"):  # Atari's frame stack
        TransformedEnv(PixelCountingEnv(height=8, width=8),
                       Compose(ToTensorImage(), GrayScale(), CatFrames(4, dim=-3), VideoRecorder(VideoList(), "x")))
    with pytest.raises(ValueError, match="records one image key"):
        VideoRecorder(VideoList(), "x", in_keys=["pixels", "other"])
    with pytest.raises(ValueError, match="skip must be an integer >= 1"):
        VideoRecorder(VideoList(), "x", skip=0)
    with pytest.raises(ValueError, match="max_frames must be None or an integer >= 1"):
        VideoRecorder(VideoList(), "x", max_frames=0)
    with pytest.raises(ValueError, match="tag must be a non-empty string"):
        VideoRecorder(VideoList(), "")


def test_a_failing_logger_keeps_the_frames():
    class Broken(VideoList):
        def log_video(self, name, frames, step, fps=30):
            raise OSError("disk full")

    recorder = VideoRecorder(Broken(), "x", dump_on_done=False)
    env = TransformedEnv(PixelCountingEnv(max_steps=2, height=2, width=2), recorder)
    env.rollout(2)
    with pytest.raises(OSError, match="disk full"):
        recorder.dump()
    assert len(recorder.frames) == 3


def test_step_counter_after_the_recorder_still_splits_episodes():
    logger = VideoList()
    env = TransformedEnv(PixelCountingEnv(max_steps=50, height=2, width=2),
                         Compose(VideoRecorder(logger, "x"), StepCounter(max_steps=3)))
    env.rollout(7, break_when_any_done=False)  # the recorder sees no done: each reset closes the episode
    assert logger.lengths() == [4, 4]
    env.transform[0].close()
    assert logger.lengths() == [4, 4, 2]


def test_gym_cartpole_pixels_to_mp4(tmp_path, monkeypatch):
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    from rlbench.envs import GymEnv
    from rlbench.trainers import CSVLogger, read_video

    logger = CSVLogger(tmp_path, "run")
    env = TransformedEnv(GymEnv("CartPole-v1", from_pixels=True), VideoRecorder(logger, "cartpole", step=100))
    env.set_seed(0)
    data = env.rollout(5)
    recorder = env.transform[0]
    recorder.close()
    env.close()
    logger.close()
    (path,) = (tmp_path / "run" / "videos").iterdir()
    assert path.name == "cartpole_000000100.mp4"
    video = read_video(path)
    expected = torch.cat([data["pixels"][:1], data["next", "pixels"]])
    assert video.shape == expected.shape == (6, 400, 600, 3)
    assert float((video.int() - expected.int()).abs().float().mean()) < 2.0  # H.264 is lossy, not that lossy


def test_dm_control_pixels_to_mp4(tmp_path):
    pytest.importorskip("dm_control")
    from rlbench.envs import DMControlEnv
    from rlbench.trainers import CSVLogger, read_video

    try:
        base = DMControlEnv("cartpole", "swingup", from_pixels=True, height=32, width=32)
    except (ImportError, RuntimeError) as err:  # no headless renderer here
        pytest.skip(f"dm_control pixels unavailable: {err}")
    logger = CSVLogger(tmp_path, "run")
    env = TransformedEnv(base, VideoRecorder(logger, "dmc"))
    data = env.rollout(4)
    env.transform[0].close()
    env.close()
    logger.close()
    (path,) = (tmp_path / "run" / "videos").iterdir()
    video = read_video(path)
    expected = torch.cat([data["pixels"][:1], data["next", "pixels"]])
    assert video.shape == (5, 32, 32, 3)
    assert float((video.int() - expected.int()).abs().float().mean()) < 6.0
