"""The SAC recipe end to end, and the off-policy model builders the four continuous recipes share.

(Named test_recipe_sac.py: tests/objectives/test_sac.py exists and tests/ has no __init__.py files.)
"""
import pytest
import torch
from tensordict import TensorDict

from rlbench.modules import ScaleToBounds
from rlbench.recipes import make_env, sac
from rlbench.recipes.models import make_exploration, make_qvalue_network
from rlbench.specs import Bounded

ALGO = "sac"  # what the conftest fixtures (small, recipe) build


def test_short_run_trains_every_term_after_the_random_frames(logger, pendulum_worst, small):
    results = sac.train(small(eval_every=150), logger=logger, progress=False)
    assert results.algo == "sac" and results.frames == 300 and results.eval_episodes == 2
    assert [row["frames"] for row in results.curve] == [150, 300]
    assert pendulum_worst <= results.final_eval_return <= 0
    # no gradient step during the 100 random frames, then one per batch logged (utd 1: 50 steps each)
    assert logger.steps("loss/qvalue") == [150, 200, 250, 300]
    alphas = logger.values("alpha")
    assert alphas[0] < 1.0 and alphas[-1] < alphas[0]  # the temperature is being tuned (starts at 1)
    assert results.run_dir is None and results.files == {}


def test_gymnasium_pendulum_and_fractional_utd(logger, pendulum_worst, small):
    results = sac.train(small(env="Pendulum-v1", frames=200, utd_ratio=0.1), logger=logger, progress=False)
    assert results.frames == 200 and pendulum_worst <= results.final_eval_return <= 0
    assert logger.steps("loss/qvalue") == [150, 200]  # 5 gradient steps per 50-frame batch


def test_unbounded_actions_are_refused_by_name(small):
    from rlbench.specs import Unbounded

    env = make_env("native:Pendulum")
    env.action_spec = Unbounded(shape=(1, 1))
    with pytest.raises(TypeError, match=r"sac needs a bounded continuous action space .* Unbounded"):
        sac.make_models(env, small())


def test_make_models_reads_the_specs(small):
    env = make_env("native:MountainCarContinuous", 3)
    actor, qvalue = sac.make_models(env, small())
    td = qvalue(actor(env.reset()))
    assert td["action"].shape == (3, 1) and bool(env.action_spec.is_in(td["action"]))
    assert td["state_action_value"].shape == (3, 1)
    assert qvalue.module[0].in_features == 3  # 2 observation dims + 1 action dim


# ------------------------------------------------------------------------------- shared builders
def test_scale_to_bounds_and_exploration_scales():
    squash = ScaleToBounds(torch.tensor([-1.0, 0.0]), torch.tensor([3.0, 1.0]))
    out = squash(torch.tensor([[-50.0, -50.0], [0.0, 0.0], [50.0, 50.0]]))
    assert torch.allclose(out, torch.tensor([[-1.0, 0.0], [1.0, 0.5], [3.0, 1.0]]))
    env = make_env("native:Pendulum")  # half-range 2
    assert float(make_exploration(env, "gaussian", 0.1).sigma) == pytest.approx(0.2)
    ou = make_exploration(env, "ou", 0.25, 0.05, annealing_frames=100)
    assert float(ou.eps) == pytest.approx(0.5)
    ou.step(100)
    assert float(ou.eps) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"unknown exploration 'uniform'; expected 'gaussian' or 'ou'"):
        make_exploration(env, "uniform", 0.1)
    with pytest.raises(ValueError, match=r"noise scales must be >= 0"):
        make_exploration(env, "gaussian", -0.1)


def test_ou_exploration_noise_is_temporally_correlated_with_unit_scale():
    noise = make_exploration(make_env("native:Pendulum", 4000), "ou", 0.5)  # eps = 0.5 * 2 = 1: raw process
    td = TensorDict(action=torch.zeros(4000, 1), batch_size=[4000])
    values = []
    for _ in range(300):
        td["action"] = torch.zeros(4000, 1)
        values.append(noise(td)["_ou_prev_noise"].clone())
    x = torch.stack(values[100:])  # past the start-up transient
    assert 0.85 < float(x.std()) < 1.2  # stationary std ~ sqrt(2 / (2 - theta)) = 1.04
    lag1 = float((x[1:] * x[:-1]).mean() / x.var())
    assert 0.75 < lag1 < 0.95  # 1 - theta = 0.85


def test_critics_refuse_pixel_observations():
    from rlbench.specs import Composite, Unbounded

    class FakePixelsEnv:
        batch_size = torch.Size([])
        action_spec = Bounded(-1.0, 1.0, shape=(1,))
        observation_spec = Composite(pixels=Unbounded(shape=(3, 8, 8)))

    with pytest.raises(ValueError, match=r"read 1-d vector observations, got shape \(3, 8, 8\) for 'pixels'"):
        make_qvalue_network(FakePixelsEnv(), (8,))


@pytest.mark.parametrize("env", ["native:CartPole", "CartPole-v1"])
def test_discrete_actions_get_discrete_sac(env, logger, small):
    results = sac.train(small(env=env, frames=200, utd_ratio=0.5), logger=logger, progress=False)
    assert results.frames == 200 and 8 <= results.final_eval_return <= 500  # CartPole's returns
    assert logger.steps("loss/qvalue") == [150, 200]
    alphas = logger.values("alpha")
    assert alphas[-1] < 1.0  # the temperature is tuned toward 0.98 log(2)


def test_discrete_sac_loss_and_models_follow_the_spec(small):
    from rlbench.objectives import DiscreteSACLoss, SACLoss

    cartpole, pendulum = make_env("native:Acrobot", 2), make_env("native:Pendulum", 2)
    actor, qvalue = sac.make_models(cartpole, small())
    assert qvalue(cartpole.reset())["action_value"].shape == (2, 3)  # Acrobot's 3 actions
    loss = sac.make_loss(cartpole, actor, qvalue, small())
    assert isinstance(loss, DiscreteSACLoss) and loss.num_actions == 3
    assert isinstance(sac.make_loss(pendulum, *sac.make_models(pendulum, small()), small()), SACLoss)


def test_dmc_cartpole_swingup_from_states(logger, small):
    import importlib.util
    import os

    if importlib.util.find_spec("dm_control") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail('dm_control is missing under CI=true: pip install "rlbench[dm_control]"')
        pytest.skip('dm_control is not installed: pip install "rlbench[dm_control]"')
    results = sac.train(small(env="dmc:cartpole-swingup", eval_every=150), logger=logger, progress=False)
    assert results.frames == 300 and [row["frames"] for row in results.curve] == [150, 300]
    assert logger.steps("loss/qvalue") == [150, 200, 250, 300]
    # cartpole-swingup's reward is in [0, 1] per step over its 1000-step limit
    assert 0 <= results.final_eval_return <= 1000 and results.eval_episodes == 2
