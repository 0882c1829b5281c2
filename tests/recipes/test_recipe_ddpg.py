"""The DDPG recipe end to end: short runs, exploration noise, seeding, files, errors.

(Named test_recipe_ddpg.py: tests/objectives/test_ddpg.py exists and tests/ has no __init__.py files.)
"""
import pytest
import torch

from rlbench.recipes import ddpg, evaluate, make_env
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
    return ddpg.Config(**base)


def test_short_run_logs_both_terms_after_the_random_frames():
    logger = ListLogger()
    results = ddpg.train(small(eval_every=150), logger=logger, progress=False)
    assert results.algo == "ddpg" and results.frames == 300
    assert [row["frames"] for row in results.curve] == [150, 300]
    assert PENDULUM_WORST <= results.final_eval_return <= 0
    assert logger.steps("loss/value") == logger.steps("loss/actor") == [150, 200, 250, 300]


@pytest.mark.parametrize("exploration", ["gaussian", "ou"])
def test_gymnasium_pendulum_with_each_exploration(exploration):
    config = small(env="Pendulum-v1", frames=200, utd_ratio=0.1, exploration=exploration,
                   exploration_sigma=0.3, exploration_sigma_end=0.1, exploration_annealing_frames=200)
    results = ddpg.train(config, progress=False)
    assert results.frames == 200 and PENDULUM_WORST <= results.final_eval_return <= 0


def test_unknown_exploration_is_named():
    with pytest.raises(ValueError, match=r"ddpg: unknown exploration 'uniform'; expected 'gaussian' or 'ou'"):
        ddpg.train(small(exploration="uniform"), progress=False)


def test_same_seed_same_run():
    a = ddpg.train(small(frames=200, seed=5), progress=False)
    b = ddpg.train(small(frames=200, seed=5), progress=False)
    assert a.final_eval_return == b.final_eval_return


def test_checkpoint_restores_the_evaluated_actor(tmp_path):
    config = small(out_dir=str(tmp_path), frames=200)
    results = ddpg.train(config, progress=False)
    actor, _ = ddpg.make_models(make_env("native:Pendulum"), config)
    state = load_checkpoint(results.files["checkpoint"], actor=actor)
    assert state["frames"] == 200
    assert evaluate("native:Pendulum", actor, 2, seed=config.seed + 10_000)[0] == pytest.approx(
        results.final_eval_return, abs=1e-6)


def test_discrete_actions_are_refused_by_name():
    with pytest.raises(TypeError, match=r"ddpg needs a bounded continuous action space .* Categorical"):
        ddpg.train(small(env="native:CartPole"), progress=False)


def test_actor_stays_in_bounds_and_critic_reads_observation_and_action():
    env = make_env("native:MountainCarContinuous", 5)
    actor, critic = ddpg.make_models(env, small())
    td = env.reset()
    td["observation"] = td["observation"] * 1e4  # saturate the tanh
    td = critic(actor(td))
    assert bool(env.action_spec.is_in(td["action"])) and td["action"].abs().max() > 0.99
    assert td["state_action_value"].shape == (5, 1) and critic.in_keys == ["observation", "action"]
