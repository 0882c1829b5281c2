"""--video / Config.video: the final policy filmed in an env that shows frames, into the run folder and report."""
import pytest
import torch

from rlbench.cli import main
from rlbench.recipes import ppo, sac
from rlbench.recipes.video import RAW_PIXELS, video_env, video_recorder
from rlbench.testing import ListLogger
from rlbench.trainers import RunTracker, read_video


def _frames_and_obs(config, steps=3):
    env, key = video_env(config)
    try:
        td = env.rollout(steps)
    finally:
        env.close()
    return td, key


def test_native_envs_are_filmed_through_their_gymnasium_twin_with_the_same_observations():
    td, key = _frames_and_obs(ppo.Config(env="native:CartPole"))
    assert key == "pixels" and td["pixels"].shape == (3, 400, 600, 3) and td["pixels"].dtype == torch.uint8
    assert td["observation"].shape == (3, 4)  # what the policy was trained on
    with pytest.raises(ValueError, match="no gymnasium twin"):
        video_env(ppo.Config(env="native:Nope"))


def test_dmc_from_states_renders_beside_the_joined_state_vector():
    td, key = _frames_and_obs(sac.Config(env="dmc:cartpole-swingup"))
    assert key == "pixels" and td["pixels"].shape == (3, 240, 320, 3)
    assert td["observation"].shape == (3, 5)  # position (3) + velocity (2), as make_env joins them


def test_pixel_envs_keep_each_raw_frame_before_the_stack():
    td, key = _frames_and_obs(sac.Config(env="dmc:cartpole-swingup", pixels=True, pixel_size=32))
    assert key == RAW_PIXELS and td[RAW_PIXELS].shape == (3, 32, 32, 3)
    assert td["pixels"].shape == (3, 9, 32, 32)  # the policy's stacked input, unchanged
    # the newest frame of the stack is the raw frame, channels first
    assert torch.equal(td["pixels"][:, -3:], td[RAW_PIXELS].permute(0, 3, 1, 2))


def test_atari_keeps_the_raw_screen_beside_the_preprocessed_stack():
    td, key = _frames_and_obs(ppo.Config(env="ALE/Pong-v5"), steps=2)
    assert key == RAW_PIXELS and td[RAW_PIXELS].shape == (2, 210, 160, 3) and td["pixels"].shape == (2, 4, 84, 84)


def test_run_tracker_films_after_the_final_evaluation_with_its_logger():
    calls = []
    logger = ListLogger()
    config = ppo.Config(env="native:CartPole", frames=10, eval_episodes=1)
    run = RunTracker("ppo", config, logger=logger, evaluate=lambda p, n, seed: (1.0, 0.0),
                     video=lambda policy, logger, step: calls.append((policy, logger, step, len(logger.rows))))
    run.finish("the policy", 10, models={})
    assert calls == [("the policy", logger, 10, len(logger.rows))]  # called last, after the final evaluation
    assert ("eval/final_return", 1.0, 10) in logger.rows
    with pytest.raises(TypeError, match="video must be None or a callable"):
        RunTracker("ppo", config, evaluate=lambda p, n, seed: (0.0, 0.0), video="yes")
    assert video_recorder(config) is None


def test_the_recorder_refuses_a_logger_without_log_video():
    record = video_recorder(ppo.Config(env="native:CartPole", video=True))
    with pytest.raises(TypeError, match="has no log_video"):
        record(lambda td: td, object(), 0)


def test_cli_video_writes_an_mp4_of_one_episode_that_the_report_shows(tmp_path, capsys):
    assert main(["train", "ppo", "--env", "native:CartPole", "--frames", "256", "--config", "eval_episodes=1",
                 "--video", "--no-progress", "--out", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    (mp4,) = (run_dir / "logs" / "videos").glob("*.mp4")
    assert mp4.name == "eval_video_000000256.mp4"
    frames = read_video(mp4)
    assert frames.shape[1:] == (400, 600, 3) and 10 <= frames.shape[0] <= 501  # a reset frame + one per step
    report = (run_dir / "report.html").read_text()
    assert "<video" in report and "eval_video_000000256.mp4" in report
