"""The REDQ recipe end to end: the ensemble, high update-to-data ratios, seeding, files, errors.

(Named test_recipe_redq.py: tests/objectives/test_redq.py exists and tests/ has no __init__.py files.)
"""
import pytest
import torch

from rlbench.objectives import REDQLoss
from rlbench.recipes import evaluate, make_env, redq
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
    base = dict(env="native:Pendulum", frames=200, frames_per_batch=50, init_random_frames=100, batch_size=32,
                hidden_sizes=(16, 16), eval_episodes=2, num_qvalue_nets=4, sub_sample_len=2)
    base.update(kw)
    return redq.Config(**base)


def test_short_run_with_a_high_update_to_data_ratio():
    logger = ListLogger()
    results = redq.train(small(utd_ratio=2.0, eval_every=100), logger=logger, progress=False)
    assert results.algo == "redq" and results.frames == 200
    assert [row["frames"] for row in results.curve] == [100, 200]
    assert PENDULUM_WORST <= results.final_eval_return <= 0
    assert logger.steps("loss/qvalue") == [150, 200]


def test_checkpoint_holds_the_ensemble_and_restores_the_actor(tmp_path):
    config = small(out_dir=str(tmp_path), num_qvalue_nets=5, sub_sample_len=3)
    results = redq.train(config, progress=False)
    actor, qvalue = redq.make_models(make_env("native:Pendulum"), config)
    loss = REDQLoss(actor, qvalue, num_qvalue_nets=5, sub_sample_len=3)
    fresh = loss.qvalue_network_params.clone()
    load_checkpoint(results.files["checkpoint"], loss=loss)
    weight = loss.qvalue_network_params["module", "0", "weight"]
    assert weight.shape == (5, 16, 4)  # 5 stacked critics reading 3 observation + 1 action dims
    assert not torch.equal(weight, fresh["module", "0", "weight"])  # trained values came back
    load_checkpoint(results.files["checkpoint"], actor=actor)
    assert evaluate("native:Pendulum", actor, 2, seed=config.seed + 10_000)[0] == pytest.approx(
        results.final_eval_return, abs=1e-6)


def test_gymnasium_pendulum():
    results = redq.train(small(env="Pendulum-v1", utd_ratio=0.1), progress=False)
    assert results.frames == 200 and PENDULUM_WORST <= results.final_eval_return <= 0


def test_same_seed_same_run():
    a = redq.train(small(seed=2), progress=False)
    b = redq.train(small(seed=2), progress=False)
    assert a.final_eval_return == b.final_eval_return


def test_bad_ensemble_and_discrete_actions_are_refused_by_name():
    with pytest.raises(ValueError, match=r"1 <= sub_sample_len <= num_qvalue_nets, got sub_sample_len=5"):
        redq.train(small(num_qvalue_nets=3, sub_sample_len=5), progress=False)
    with pytest.raises(TypeError, match=r"redq needs a bounded continuous action space .* Categorical"):
        redq.train(small(env="native:CartPole"), progress=False)
