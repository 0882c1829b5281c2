"""The A2C recipe end to end: short runs on discrete and continuous envs, seeding, files.

(Named test_recipe_a2c.py: tests/objectives/test_a2c.py exists and tests/ has no __init__.py files.)
"""
import torch

from rlbench.recipes import a2c, evaluate, make_env
from rlbench.trainers import load_checkpoint

ALGO = "a2c"  # what the conftest fixtures (small, recipe) build


def test_one_gradient_step_per_batch(small, logger):
    a2c.train(small(frames=256), logger=logger, progress=False)
    assert logger.steps("loss/objective") == list(range(64, 257, 64))  # 8 envs x 8 steps per batch


def test_same_seed_same_weights(tmp_path, small):
    runs = [a2c.train(small(frames=256, seed=7, out_dir=str(tmp_path / str(i))), progress=False) for i in range(2)]
    env = make_env("native:CartPole", 2)
    weights = []
    for r in runs:
        actor, critic = a2c.make_models(env, a2c.Config())
        load_checkpoint(r.files["checkpoint"], actor=actor, critic=critic)
        weights.append(torch.cat([p.flatten() for p in actor.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert evaluate("native:CartPole", actor, 3, seed=7 + 10_000)[0] == runs[1].final_eval_return
