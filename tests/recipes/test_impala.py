"""The IMPALA recipe end to end: a short asynchronous run with local actors, files, config checks, Atari models.

Each run starts worker processes (a second or two each on a busy machine): the tests run few of them. The Pong
and Ray runs are marked slow.
"""
import importlib.util
import os

import pytest
import torch

from rlbench.recipes import evaluate, impala, make_env
from rlbench.trainers import load_checkpoint

TINY = dict(env="CartPole-v1", frames=640, num_workers=2, num_envs=2, unroll_length=16, eval_every=320,
            eval_episodes=2, hidden_sizes=(16, 16))
"""Two actors of 2 envs x 16 steps: 20 learner steps, two evaluations."""


def test_short_local_run_learns_from_every_batch_and_writes_a_checkpoint(tmp_path, logger):
    config = impala.Config(**TINY, out_dir=str(tmp_path))
    results = impala.train(config, logger=logger, progress=False)
    assert results.algo == "impala" and results.frames == 640
    # one gradient step per actor batch of 2 x 16 frames, whichever actor sent it
    assert logger.steps("loss/objective") == list(range(32, 641, 32))
    assert logger.values("updates") == list(range(1, 21))
    assert all(torch.isfinite(torch.tensor(logger.values(k))).all() for k in ("loss/objective", "loss/critic"))
    assert [row["frames"] for row in results.curve] == [320, 640]
    assert 8 <= results.final_eval_return <= 500  # CartPole's shortest and longest episodes
    # the checkpoint holds the evaluated actor
    actor, critic = impala.make_models(make_env("CartPole-v1"), config)
    state = load_checkpoint(results.files["checkpoint"], actor=actor, critic=critic)
    assert state["config"]["backend"] == "local" and state["frames"] == 640
    assert evaluate("CartPole-v1", actor, 2, seed=config.seed + 10_000)[0] == results.final_eval_return


def test_config_checks_its_values():
    with pytest.raises(ValueError, match=r"impala.Config: backend='gpu' is invalid; expected one of 'local', 'ray'"):
        impala.Config(backend="gpu")
    with pytest.raises(ValueError, match=r"impala.Config: c_thresh=0.0 is invalid; expected a finite number > 0"):
        impala.Config(c_thresh=0.0)
    with pytest.raises(ValueError, match=r"impala.Config: unroll_length=0 is invalid"):
        impala.Config(unroll_length=0)
    assert impala.Config(num_envs=4, unroll_length=5).frames_per_batch == 20


def test_continuous_actions_get_a_tanh_normal_policy():
    env = make_env("native:Pendulum", 3)
    actor, critic = impala.make_models(env, impala.Config(hidden_sizes=(8,)))
    td = critic(actor(env.reset()))
    assert bool(env.action_spec.is_in(td["action"])) and td["sample_log_prob"].shape == (3,)
    assert td["state_value"].shape == (3, 1)


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs the atari extra")
def test_atari_models_read_the_preprocessed_frames():
    env = make_env("ALE/Pong-v5")  # AtariPreprocessing: "pixels" [4, 84, 84]
    try:
        actor, critic = impala.make_models(env, impala.Config())
        td = critic(actor(env.reset()))
    finally:
        env.close()
    assert td["pixels"].shape == (4, 84, 84) and td["state_value"].shape == (1,)
    assert bool(env.action_spec.is_in(td["action"]))


@pytest.mark.slow  # ALE in two worker processes and a Pong evaluation: ~20 s on a busy machine
@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs the atari extra")
def test_pong_smoke_run():
    config = impala.Config(env="ALE/Pong-v5", frames=80, num_workers=2, num_envs=1, unroll_length=20,
                           eval_episodes=1, eval_every=0)
    results = impala.train(config, progress=False)
    assert results.frames == 80 and -21 <= results.final_eval_return <= 21


def _ray_collector_exists() -> bool:
    try:
        from rlbench.collectors import RayCollector  # noqa: F401
    except ImportError:
        return False
    return importlib.util.find_spec("ray") is not None


@pytest.mark.slow  # starting Ray (or joining the test session's instance) and two Ray actors: ~25 s here
@pytest.mark.skipif(not _ray_collector_exists(), reason="needs rlbench.collectors.RayCollector and the ray extra")
def test_short_ray_run(logger, monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local instance on 127.0.0.1 (issue 16)
    config = impala.Config(**(TINY | dict(frames=320, eval_every=0, backend="ray")))
    results = impala.train(config, logger=logger, progress=False)
    assert results.frames == 320 and logger.steps("loss/objective") == list(range(32, 321, 32))
    lags = logger.values("policy_lag")
    assert len(lags) == 10 and all(lag >= 0 for lag in lags)
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
