"""The TD3 recipe end to end: delayed actor and target updates, seeding, files, errors.

(Named test_recipe_td3.py: tests/objectives/test_td3.py exists and tests/ has no __init__.py files.)
"""
import pytest
import torch

from rlbench.recipes import evaluate, make_env, td3
from rlbench.trainers import load_checkpoint

PENDULUM_WORST = -16.2736044 * 200  # Pendulum's lowest reward per step times its 200-step limit


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train() sets config.torch_threads


class ListLogger:
    def __init__(self):
        self.rows = []

    def log_scalar(self, name, value, step):
        self.rows.append((name, value, step))

    def steps(self, name):
        return [step for n, _, step in self.rows if n == name]


def small(**kw):
    base = dict(env="native:Pendulum", frames=300, frames_per_batch=50, init_random_frames=100, batch_size=32,
                hidden_sizes=(16, 16), eval_episodes=2)
    base.update(kw)
    return td3.Config(**base)


def test_short_run_on_native_pendulum():
    logger = ListLogger()
    results = td3.train(small(eval_every=150), logger=logger, progress=False)
    assert results.algo == "td3" and results.frames == 300
    assert [row["frames"] for row in results.curve] == [150, 300]
    assert PENDULUM_WORST <= results.final_eval_return <= 0
    assert logger.steps("loss/qvalue") == logger.steps("loss/actor") == [150, 200, 250, 300]


def test_actor_and_targets_move_every_policy_delay_steps(monkeypatch):
    # count the target updates: with utd 0.06 a 50-frame batch buys 3 critic steps; policy_delay 3
    # makes exactly one of them an actor + target step
    from rlbench.objectives import SoftUpdate

    calls = []
    original = SoftUpdate.step
    monkeypatch.setattr(SoftUpdate, "step", lambda self: calls.append(1) or original(self))
    logger = ListLogger()
    td3.train(small(frames=300, utd_ratio=0.06, policy_delay=3), logger=logger, progress=False)
    assert logger.steps("loss/qvalue") == [150, 200, 250, 300]  # 4 batches x 3 critic steps = 12
    assert len(calls) == 4  # 12 / 3
    assert logger.steps("loss/actor") == [150, 200, 250, 300]


def test_batched_native_envs():
    # the loss clips smoothed target actions of 32-transition batches with the per-env [1] box, not the
    # [4, 1] batched spec
    results = td3.train(small(num_envs=4, frames=200, frames_per_batch=40, init_random_frames=120), progress=False)
    assert results.frames == 200 and PENDULUM_WORST <= results.final_eval_return <= 0


def test_gymnasium_pendulum():
    results = td3.train(small(env="Pendulum-v1", frames=200, utd_ratio=0.1), progress=False)
    assert results.frames == 200 and PENDULUM_WORST <= results.final_eval_return <= 0


def test_same_seed_same_run():
    a = td3.train(small(frames=200, seed=7), progress=False)
    b = td3.train(small(frames=200, seed=7), progress=False)
    assert a.final_eval_return == b.final_eval_return


def test_checkpoint_restores_the_evaluated_actor(tmp_path):
    config = small(out_dir=str(tmp_path), frames=200)
    results = td3.train(config, progress=False)
    actor, _ = td3.make_models(make_env("native:Pendulum"), config)
    state = load_checkpoint(results.files["checkpoint"], actor=actor)
    assert state["frames"] == 200
    assert evaluate("native:Pendulum", actor, 2, seed=config.seed + 10_000)[0] == pytest.approx(
        results.final_eval_return, abs=1e-6)


def test_discrete_actions_are_refused_by_name():
    with pytest.raises(TypeError, match=r"td3 needs a bounded continuous action space .* Categorical"):
        td3.train(small(env="native:CartPole"), progress=False)
