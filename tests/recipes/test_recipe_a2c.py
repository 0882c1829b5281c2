"""The A2C recipe end to end: short runs on discrete and continuous envs, seeding, files.

(Named test_recipe_a2c.py: tests/objectives/test_a2c.py exists and tests/ has no __init__.py files.)
"""
import pytest
import torch

from rlbench.recipes import a2c, evaluate
from rlbench.recipes._common import make_env
from rlbench.trainers import load_checkpoint


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train() sets config.torch_threads


def small(**kw):
    base = dict(env="native:CartPole", frames=512, num_envs=8, steps_per_env=8, eval_episodes=3)
    base.update(kw)
    return a2c.Config(**base)


def test_short_run_on_native_cartpole():
    results = a2c.train(small(eval_every=256), progress=False)
    assert results.algo == "a2c" and results.frames == 512
    assert [row["frames"] for row in results.curve] == [256, 512]
    assert results.final_eval_return >= 8


def test_one_gradient_step_per_batch():
    seen = []

    class Recorder:
        def log_scalar(self, name, value, step):
            if name == "loss/objective":
                seen.append(step)

    a2c.train(small(frames=256), logger=Recorder(), progress=False)
    assert seen == list(range(64, 257, 64))  # 8 envs x 8 steps per batch


def test_continuous_actions_on_gymnasium_pendulum():
    results = a2c.train(small(env="Pendulum-v1", frames=128, num_envs=2, steps_per_env=16, eval_episodes=2),
                        progress=False)
    assert results.frames == 128 and -2000 < results.final_eval_return < 0


def test_same_seed_same_weights(tmp_path):
    runs = [a2c.train(small(frames=256, seed=7, out_dir=str(tmp_path / str(i))), progress=False) for i in range(2)]
    env = make_env("native:CartPole", 2)
    weights = []
    for r in runs:
        actor, critic = a2c.make_models(env, a2c.Config())
        load_checkpoint(r.files["checkpoint"], actor=actor, critic=critic)
        weights.append(torch.cat([p.flatten() for p in actor.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert evaluate("native:CartPole", actor, 3, seed=7 + 10_000)[0] == runs[1].final_eval_return
