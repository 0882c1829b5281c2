"""The TD3 recipe end to end: delayed actor and target updates, seeding, files, errors.

(Named test_recipe_td3.py: tests/objectives/test_td3.py exists and tests/ has no __init__.py files.)
"""
from rlbench.recipes import td3

ALGO = "td3"  # what the conftest fixtures (small, recipe) build


def test_short_run_on_native_pendulum(logger, pendulum_worst, small):
    results = td3.train(small(eval_every=150), logger=logger, progress=False)
    assert results.algo == "td3" and results.frames == 300
    assert [row["frames"] for row in results.curve] == [150, 300]
    assert pendulum_worst <= results.final_eval_return <= 0
    assert logger.steps("loss/qvalue") == logger.steps("loss/actor") == [150, 200, 250, 300]


def test_actor_and_targets_move_every_policy_delay_steps(monkeypatch, logger, small):
    # count the target updates: with utd 0.06 a 50-frame batch buys 3 critic steps; policy_delay 3
    # makes exactly one of them an actor + target step
    from rlbench.objectives import SoftUpdate

    calls = []
    original = SoftUpdate.step
    monkeypatch.setattr(SoftUpdate, "step", lambda self: calls.append(1) or original(self))
    td3.train(small(frames=300, utd_ratio=0.06, policy_delay=3), logger=logger, progress=False)
    assert logger.steps("loss/qvalue") == [150, 200, 250, 300]  # 4 batches x 3 critic steps = 12
    assert len(calls) == 4  # 12 / 3
    assert logger.steps("loss/actor") == [150, 200, 250, 300]


def test_batched_native_envs(pendulum_worst, small):
    # the loss clips smoothed target actions of 32-transition batches with the per-env [1] box, not the
    # [4, 1] batched spec
    results = td3.train(small(num_envs=4, frames=200, frames_per_batch=40, init_random_frames=120), progress=False)
    assert results.frames == 200 and pendulum_worst <= results.final_eval_return <= 0
