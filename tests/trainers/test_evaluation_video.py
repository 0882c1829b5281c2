"""Filming evaluations: evaluate_policy(recorder=...) and record_episode, into list and CSV loggers."""
import pytest
import torch

from rlbench.envs.transforms import TransformedEnv, TransformKeyError, VideoRecorder
from rlbench.testing import CountingEnv, PixelCountingEnv
from rlbench.trainers import CSVLogger, evaluate_policy, read_video, record_episode


class VideoList:
    def __init__(self):
        self.videos = []

    def log_video(self, name, frames, step, fps=30):
        self.videos.append((name, frames.clone(), step))

    def lengths(self):
        return [v[1].shape[0] for v in self.videos]


def act(td):
    return td.set("action", torch.ones(td.batch_size, dtype=torch.long))


def test_recorder_films_each_episode_and_changes_no_return():
    env = PixelCountingEnv(max_steps=3, height=4, width=4)
    logger = VideoList()
    recorder = VideoRecorder(logger, "eval", step=1000)
    returns = evaluate_policy(env, act, episodes=2, recorder=recorder)
    assert returns == evaluate_policy(PixelCountingEnv(max_steps=3, height=4, width=4), act, episodes=2) == [3.0, 3.0]
    assert logger.lengths() == [4, 4]  # reset + 3 steps each; the automatic reset after the last one adds nothing
    assert {v[2] for v in logger.videos} == {1000}
    # the frames are the env's own: the count in every pixel goes 0, 1, 2, 3
    assert [int(f[0, 0, 0]) for f in logger.videos[0][1]] == [0, 1, 2, 3]
    assert recorder.container is None and not isinstance(env, TransformedEnv)
    recorder.step = 2000  # the next evaluation, as a training loop would do it
    evaluate_policy(env, act, episodes=1, recorder=recorder)
    assert logger.lengths() == [4, 4, 4] and logger.videos[-1][2] == 2000


def test_an_episode_cut_by_max_steps_is_written_at_the_end():
    logger = VideoList()
    returns = evaluate_policy(PixelCountingEnv(max_steps=50, height=2, width=2), act, episodes=1, max_steps=5,
                              include_unfinished=True, recorder=VideoRecorder(logger, "cut"))
    assert returns == [5.0] and logger.lengths() == [6]


def test_batched_env_gives_grid_videos():
    logger = VideoList()
    env = PixelCountingEnv(max_steps=torch.tensor([2, 3]), batch_size=[2], height=4, width=4)
    evaluate_policy(env, act, episodes=2, recorder=VideoRecorder(logger, "grid"))
    (name, frames, _), = logger.videos
    assert frames.shape[1:] == (4, 8, 3)  # two sub-envs side by side
    assert frames.shape[0] == 1 + 3 + 1  # reset, 3 steps, sub-env 0's partial reset after step 2


def test_a_recorder_already_in_the_env_records_there():
    logger = VideoList()
    recorder = VideoRecorder(logger, "inside")
    env = TransformedEnv(PixelCountingEnv(max_steps=2, height=2, width=2), recorder)
    evaluate_policy(env, act, episodes=2, recorder=recorder)
    assert logger.lengths() == [3, 3] and recorder.container is not None


def test_errors_name_what_is_missing():
    with pytest.raises(TypeError, match="recorder must be a VideoRecorder"):
        evaluate_policy(CountingEnv(), act, 1, recorder=VideoList())
    recorder = VideoRecorder(VideoList(), "x")
    with pytest.raises(TransformKeyError, match=r"'pixels' is not a key.*Available keys"):
        evaluate_policy(CountingEnv(), act, 1, recorder=recorder)
    assert recorder.container is None  # still free


def test_record_episode_of_gym_cartpole_into_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    from rlbench.envs import GymEnv

    logger = CSVLogger(tmp_path, "logs")
    env = GymEnv("CartPole-v1", from_pixels=True)
    env.set_seed(0)
    ret = record_episode(env, act, logger, tag="eval/video", step=4000, max_steps=200, fps=50)
    env.close()
    logger.close()
    video = read_video(tmp_path / "logs" / "videos" / "eval_video_000004000.mp4")
    assert 5 <= ret < 50  # pushing right topples the pole quickly
    assert video.shape == (int(ret) + 1, 400, 600, 3)  # the reset frame and one per step (reward 1 per step)
