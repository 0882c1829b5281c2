"""The DQN recipe end to end: every Rainbow add-on alone and together, models from specs, errors, files.

(Named test_recipe_dqn.py: tests/objectives/test_dqn.py exists and tests/ has no __init__.py files.)
"""
import dataclasses

import pytest
import torch
from torch import nn

from rlbench.envs import TransformedEnv
from rlbench.envs.transforms import Compose, ExcludeTransform, ToTensorImage
from rlbench.modules import DistributionalQValueActor, DuelingHead, NoisyLinear, QValueActor
from rlbench.recipes import apply_overrides, config_docs, dqn, evaluate, get_recipe, make_env
from rlbench.testing import ListLogger, PixelCountingEnv
from rlbench.trainers import load_checkpoint, read_csv_log

SMALL = dict(env="native:CartPole", frames=384, num_envs=4, steps_per_env=16, gradient_steps=4, batch_size=32,
             learning_starts=128, hidden_sizes=(32, 32), n_atoms=11, eval_episodes=3)
"""A few hundred frames, a tiny network and few updates: proves the wiring in about a second."""


def small(**kw):
    return dqn.Config(**(SMALL | kw))


ADD_ONS = {
    "vanilla": dict(double=False),
    "double": dict(double=True),
    "dueling": dict(dueling=True),
    "n_step": dict(n_step=3),
    "prioritized": dict(prioritized=True),
    "noisy": dict(noisy=True),
    "distributional": dict(distributional=True),
    "dueling+distributional+noisy": dict(dueling=True, distributional=True, noisy=True),
    "n_step+prioritized+distributional": dict(n_step=2, prioritized=True, distributional=True),
}


@pytest.mark.parametrize("name", list(ADD_ONS))
def test_each_add_on_runs_end_to_end(name):
    logger = ListLogger()
    results = dqn.train(small(eval_every=192, **ADD_ONS[name]), logger=logger, progress=False)
    assert results.algo == "dqn" and results.frames == 384
    assert [row["frames"] for row in results.curve] == [192, 384]
    assert results.final_eval_return >= 8  # CartPole's shortest possible episode
    # learning starts at 128 frames: one loss row per later 64-frame batch
    assert logger.steps("loss/value") == [128, 192, 256, 320, 384]
    assert all(torch.isfinite(torch.tensor(v)) for v in logger.values("loss/value"))
    assert ("epsilon" in logger.names()) is not ADD_ONS[name].get("noisy", False)  # noisy nets replace epsilon


def test_rainbow_preset_runs_and_turns_everything_on():
    config = dqn.Config.rainbow(**SMALL, n_step=3)
    assert (config.double, config.dueling, config.n_step, config.prioritized, config.noisy,
            config.distributional) == (True, True, 3, True, True, True)
    assert dqn.Config.rainbow(lr=1e-4).lr == 1e-4 and dqn.Config.rainbow().hidden_sizes == dqn.Config().hidden_sizes
    results = dqn.train(config, progress=False)
    assert results.frames == 384 and results.config["noisy"] is True


def test_epsilon_decays_linearly_to_its_end_value():
    logger = ListLogger()
    dqn.train(small(eps_init=1.0, eps_end=0.1, eps_fraction=0.5), logger=logger, progress=False)
    eps = dict(logger.series("epsilon"))
    # annealed over 0.5 * 384 = 192 frames, stepped after each 64-frame batch
    assert eps[64] == pytest.approx(1.0 - 0.9 * 64 / 192)
    assert eps[128] == pytest.approx(1.0 - 0.9 * 128 / 192)
    assert eps[192] == pytest.approx(0.1) and eps[384] == pytest.approx(0.1)


@pytest.mark.parametrize("switches, head_type, out_shape", [
    (dict(), nn.Sequential, (3, 2)),  # an MLP head (nn.Sequential subclass)
    (dict(dueling=True), DuelingHead, (3, 2)),
    (dict(distributional=True), nn.Sequential, (3, 11, 2)),
    (dict(distributional=True, dueling=True), nn.Module, (3, 11, 2)),
])
def test_make_models_reads_the_specs(switches, head_type, out_shape):
    env = make_env("native:CartPole", 3)
    actor = dqn.make_models(env, small(**switches))
    assert isinstance(actor, DistributionalQValueActor if switches.get("distributional") else QValueActor)
    td = actor(env.reset())
    assert td["action_value"].shape == out_shape
    assert env.action_spec.is_in(td["action"])
    head = actor.module[0].module[1]
    assert isinstance(head, head_type)
    assert not any(isinstance(m, NoisyLinear) for m in actor.modules())
    assert actor.module[0].module[0][0].in_features == 4  # CartPole's observation size


def test_noisy_layers_only_in_the_head_and_quiet_in_eval_mode():
    env = make_env("native:Acrobot", 5)
    actor = dqn.make_models(env, small(noisy=True, dueling=True, noisy_std=0.3))
    trunk, head = actor.module[0].module
    noisy = [m for m in head.modules() if isinstance(m, NoisyLinear)]
    assert len(noisy) == 4 and not any(isinstance(m, NoisyLinear) for m in trunk.modules())
    assert all(m.std_init == 0.3 for m in noisy)
    obs = env.reset()
    q_train = actor(obs.clone())["action_value"]
    assert q_train.shape == (5, 3)  # Acrobot: 3 actions
    actor.eval()
    q1, q2 = actor(obs.clone())["action_value"], actor(obs.clone())["action_value"]
    assert torch.equal(q1, q2) and not torch.equal(q1, q_train)


def test_pixel_observations_get_a_convnet():
    base = PixelCountingEnv(batch_size=(2,), height=36, width=36)
    env = TransformedEnv(base, Compose(ToTensorImage(), ExcludeTransform("observation")))
    actor = dqn.make_models(env, dqn.Config(hidden_sizes=(16,)))
    td = actor(env.reset())
    assert td["action_value"].shape == (2, 2)
    assert any(isinstance(m, nn.Conv2d) for m in actor.modules())


def test_continuous_actions_are_refused_with_a_clear_error():
    with pytest.raises(TypeError, match=r"dqn needs discrete actions .*'native:Pendulum'.* Bounded actions.*sac, td3"):
        dqn.make_models(make_env("native:Pendulum", 2), dqn.Config(env="native:Pendulum"))
    with pytest.raises(TypeError, match=r"dqn needs discrete actions .*'Pendulum-v1'"):
        dqn.train(small(env="Pendulum-v1"), progress=False)


def test_bad_c51_support_is_refused():
    with pytest.raises(ValueError, match="v_min < v_max"):
        dqn.make_models(make_env("native:CartPole", 2), small(distributional=True, v_min=5.0, v_max=5.0))


def test_same_seed_same_run():
    a = dqn.train(small(seed=3, prioritized=True), progress=False)
    b = dqn.train(small(seed=3, prioritized=True), progress=False)
    assert a.final_eval_return == b.final_eval_return


def test_registered_and_every_field_documented():
    assert get_recipe("dqn") is dqn
    for config_cls in (dqn.Config, dqn.RainbowConfig):
        docs = config_docs(config_cls)
        assert all(docs.values()), [k for k, v in docs.items() if not v]
    assert "on in Rainbow" in config_docs(dqn.RainbowConfig)["noisy"]
    assert "on in Rainbow" not in config_docs(dqn.Config)["noisy"]


def test_rainbow_config_takes_overrides_like_any_config():
    config = apply_overrides(dqn.RainbowConfig(), ["noisy=false", "n_atoms=21"])
    assert isinstance(config, dqn.RainbowConfig) and not config.noisy and config.n_atoms == 21
    assert config.distributional and config.prioritized
    assert [f.name for f in dataclasses.fields(dqn.RainbowConfig)] == [f.name for f in dataclasses.fields(dqn.Config)]


def test_writes_checkpoint_that_reproduces_the_final_evaluation(tmp_path):
    # noisy + C51: the restored actor in eval mode (mean weights) must score exactly the recorded return
    config = small(out_dir=str(tmp_path), eval_every=192, noisy=True, distributional=True)
    results = dqn.train(config, progress=False)
    actor = dqn.make_models(make_env("native:CartPole", 2), config)
    state = load_checkpoint(results.files["checkpoint"], actor=actor)
    assert state["config"]["noisy"] is True and state["frames"] == 384
    actor.eval()
    assert evaluate("native:CartPole", actor, 3, seed=config.seed + 10_000)[0] == results.final_eval_return
    logs = read_csv_log(results.files["logs"])
    assert [step for step, _ in logs["eval/return"]] == [192, 384]


def test_gymnasium_vector_env_runs():
    results = dqn.train(small(env="CartPole-v1", num_envs=2, steps_per_env=32, frames=256, eval_episodes=2),
                        progress=False)
    assert results.frames == 256 and results.final_eval_return >= 8
