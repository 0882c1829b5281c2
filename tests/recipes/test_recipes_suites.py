"""The recipes on the standard suites: pixels, the shared pixel encoder, Atari settings and env-family defaults."""
import dataclasses
import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.modules import DMCEncoder, NatureCNN
from rlbench.recipes import apply_overrides, get_recipe, make_env, sac
from rlbench.recipes.config import ENV_FAMILIES, family_fields, user_fields
from rlbench.recipes.envs import env_family, env_options, max_episode_steps
from rlbench.recipes.models import (
    EMBEDDING_KEY,
    backward_through_encoder,
    encode_sample,
    make_actor_critic,
    split_encoder,
)
from rlbench.specs import Categorical, Composite, Unbounded
from rlbench.testing import ListLogger

pytest.importorskip("dm_control")


@pytest.fixture
def envs():
    """``envs(name, ...)``: make_env, closed after the test.

    A dm_control render context left to the garbage collector can hang the process when it is freed at the
    wrong moment (seen in this file before the envs were closed).
    """
    made = []

    def make(*args, **kwargs):
        made.append(make_env(*args, **kwargs))
        return made[-1]

    yield make
    for env in made:
        env.close()


# ------------------------------------------------------------------------------------------ envs from pixels
def test_dmc_pixels_are_stacked_uint8_frames_with_the_drq_action_repeat(envs):
    env = envs("dmc:cartpole-swingup", pixels=True, pixel_size=32, seed=0)
    spec = env.observation_spec["pixels"]
    assert list(env.observation_spec.keys()) == ["pixels"]
    assert spec.shape == (9, 32, 32) and spec.dtype == torch.uint8
    assert env.base_env.frame_skip == 8  # cartpole: 8 in PlaNet, SAC-AE and DrQ
    td = env.rollout(3)
    assert td["next", "pixels"].shape == (3, 9, 32, 32)
    # the stack slides by one frame a step: the newest frame of step t is the middle one of step t + 1
    torch.testing.assert_close(td["next", "pixels"][0, 6:], td["next", "pixels"][1, 3:6])
    walker = envs("dmc:walker-walk", pixels=True, pixel_size=16, frame_stack=2, action_repeat=3)
    assert walker.observation_spec["pixels"].shape == (6, 16, 16) and walker.base_env.frame_skip == 3
    assert envs("dmc:walker-walk", pixel_size=16, pixels=True).base_env.frame_skip == 2
    assert envs("dmc:cartpole-swingup").base_env.frame_skip == 1  # states: no repeat


def test_gym_pixels_are_resized_and_stacked(envs):
    env = envs("Pendulum-v1", pixels=True, pixel_size=24, frame_stack=2, seed=0)
    spec = env.observation_spec["pixels"]
    assert spec.shape == (6, 24, 24) and spec.dtype == torch.float32
    td = env.rollout(2)
    assert td["next", "pixels"].shape == (2, 6, 24, 24) and 0 <= float(td["next", "pixels"].min())


def test_mujoco_pixels_render_at_the_asked_size(envs):
    pytest.importorskip("mujoco")
    env = envs("HalfCheetah-v5", pixels=True, pixel_size=32, frame_stack=1)
    assert env.base_env.gym_env.unwrapped.width == 32  # rendered at 32x32, not resized from 480x480
    assert env.reset()["pixels"].shape == (3, 32, 32)


def test_bad_combinations_raise_clear_errors(envs):
    with pytest.raises(ValueError, match=r"torch-native envs do not render.*'native:Pendulum'.*'Pendulum-v1'"):
        make_env("native:Pendulum", pixels=True)
    with pytest.raises(ValueError, match=r"action_repeat does not apply to Atari ids.*atari_frame_skip"):
        make_env("ALE/Pong-v5", action_repeat=2)
    with pytest.raises(ValueError, match=r"make_env: pixel_size must be an integer >= 1, got 0"):
        make_env("dmc:cartpole-swingup", pixels=True, pixel_size=0)
    with pytest.raises(ValueError, match=r"sac.Config: frame_stack=0 is invalid; expected an integer >= 1"):
        sac.Config(frame_stack=0)
    # DQN cannot act in DMC's continuous action space, from pixels or not
    with pytest.raises(TypeError, match=r"dqn needs discrete actions.*Bounded"):
        get_recipe("dqn").make_models(envs("dmc:cartpole-swingup", pixels=True, pixel_size=16),
                                      get_recipe("dqn").Config(env="dmc:cartpole-swingup"))


def test_atari_fields_reach_the_preprocessing(envs):
    pytest.importorskip("ale_py")
    config = apply_overrides(get_recipe("ppo").Config(), ["env=ALE/Pong-v5", "atari_frame_skip=2",
                                                          "atari_screen_size=40", "atari_sign_reward=false"])
    prep = env_options(config)["atari"]
    assert (prep.frame_skip, prep.screen_size, prep.sign_reward, prep.frame_stack) == (2, 40, False, 4)
    env = envs(config.env, **env_options(config))
    assert env.observation_spec["pixels"].shape == (4, 40, 40)
    assert max_episode_steps("ALE/Pong-v5") == 27_000


# ------------------------------------------------------------------------------------------ models
def test_pixel_models_share_one_encoder(envs):
    env = envs("dmc:cartpole-swingup", pixels=True, pixel_size=32)
    for algo in ("sac", "td3", "ddpg"):
        recipe = get_recipe(algo)
        actor, qvalue = recipe.make_models(env, recipe.Config(hidden_sizes=(16,)))
        encoder, head = split_encoder(actor)
        assert isinstance(encoder.module, DMCEncoder) and encoder.out_keys == [EMBEDDING_KEY]
        assert head.in_keys == [EMBEDDING_KEY] and EMBEDDING_KEY in qvalue.in_keys
        assert not any(isinstance(m, nn.Conv2d) for m in qvalue.modules())  # the critic copies hold no convs
        td = qvalue(actor(env.reset()))
        assert td[EMBEDDING_KEY].shape == (50,) and td["state_action_value"].shape == (1,)
    states = envs("native:Pendulum")
    assert split_encoder(get_recipe("sac").make_models(states, sac.Config())[0])[0] is None


class Frames:
    batch_size = torch.Size([])
    observation_spec = Composite(pixels=Unbounded((4, 84, 84)))
    action_spec = Categorical(6)


def test_ppo_on_pixels_shares_one_nature_cnn():
    actor, critic = make_actor_critic(Frames(), get_recipe("ppo").Config(hidden_sizes=()))
    cnns = {id(m) for net in (actor, critic) for m in net.modules() if isinstance(m, NatureCNN)}
    assert len(cnns) == 1
    td = critic(actor(TensorDict(pixels=torch.rand(3, 4, 84, 84), batch_size=[3])))
    assert td["logits"].shape == (3, 6) and td["state_value"].shape == (3, 1)


def test_only_the_critic_loss_trains_the_shared_encoder():
    """The encoder's gradient equals d(critic loss)/d(encoder) computed directly, not that of the total loss."""
    torch.manual_seed(0)
    encoder = TensorDictModule(DMCEncoder((3, 16, 16), out_features=4), ["pixels"], [EMBEDDING_KEY])
    critic, actor = nn.Linear(4, 1), nn.Linear(4, 1)
    td = TensorDict(pixels=torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8),
                    next=TensorDict(pixels=torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8), batch_size=[5]),
                    batch_size=[5])
    features = encode_sample(encoder, td)
    assert not td["next", EMBEDDING_KEY].requires_grad
    critic_loss = critic(td[EMBEDDING_KEY]).pow(2).mean()
    actor_loss = -critic(actor(td[EMBEDDING_KEY]).tanh() * td[EMBEDDING_KEY]).mean()
    backward_through_encoder(critic_loss + actor_loss, critic_loss, features, td)
    routed = [p.grad.clone() for p in encoder.parameters()]

    encoder.zero_grad()
    reference = critic(encoder.module(td["pixels"])).pow(2).mean()  # the critic loss through the encoder itself
    expected = torch.autograd.grad(reference, list(encoder.parameters()))
    for got, want in zip(routed, expected):
        torch.testing.assert_close(got, want)
    assert actor.weight.grad is not None and float(actor.weight.grad.abs().sum()) > 0  # the actor still learns


# ------------------------------------------------------------------------------------------ family defaults
def test_family_defaults_apply_only_to_fields_the_user_did_not_set():
    assert env_family("dmc:walker-walk") == "dmc" and env_family("ALE/Pong-v5") == "atari"
    assert env_family("HalfCheetah-v5") == "mujoco" and env_family("native:Pendulum") is None
    dmc = sac.Config(env="dmc:cartpole-swingup")
    assert (dmc.batch_size, dmc.lr, dmc.hidden_sizes, dmc.alpha_init) == (1024, 1e-4, (1024, 1024), 0.1)
    mine = sac.Config(env="dmc:cartpole-swingup", batch_size=64, lr=1e-3)  # the user's values win
    assert (mine.batch_size, mine.lr, mine.hidden_sizes) == (64, 1e-3, (1024, 1024))
    assert "batch_size" not in family_fields(mine)[1] and family_fields(mine)[1]["hidden_sizes"] == (1024, 1024)
    same = sac.Config(env="dmc:cartpole-swingup", batch_size=256)  # set to the recipe default: still the user's
    assert same.batch_size == 256
    assert sac.Config().batch_size == 256 and family_fields(sac.Config()) == (None, {})
    pixels = sac.Config(env="dmc:cartpole-swingup", pixels=True)
    assert (pixels.batch_size, pixels.lr, pixels.buffer_size) == (512, 1e-3, 100_000)  # DrQ


def test_overrides_rebuild_with_the_new_envs_family():
    base = sac.Config(lr=5e-4)
    moved = apply_overrides(base, ["env=HalfCheetah-v5"])
    assert (moved.lr, moved.batch_size, moved.init_random_frames) == (5e-4, 256, 10_000)
    assert user_fields(moved) == {"env": "HalfCheetah-v5", "lr": 5e-4}
    back = apply_overrides(moved, {"env": "native:Pendulum"})
    assert back.init_random_frames == sac.Config().init_random_frames  # the family's values leave with it
    assert dataclasses.replace(moved, seed=3).init_random_frames == 10_000  # replace copies every value
    dqn = get_recipe("dqn")
    assert (dqn.Config(env="ALE/Pong-v5").double, dqn.Config.rainbow(env="ALE/Pong-v5").double) == (False, True)


def test_every_family_default_names_a_field_and_passes_its_check():
    for algo in ("ppo", "a2c", "dqn", "rainbow", "sac", "td3", "ddpg"):
        cls = get_recipe(algo).Config if algo != "rainbow" else get_recipe("dqn").RainbowConfig
        names = {f.name for f in dataclasses.fields(cls)}
        for family, values in cls.FAMILY_DEFAULTS.items():
            assert family in ENV_FAMILIES and set(values) <= names, (algo, family, set(values) - names)
    env = {"atari": "ALE/Pong-v5", "dmc": "dmc:cheetah-run", "mujoco": "HalfCheetah-v5"}
    for algo in ("ppo", "dqn", "sac", "td3", "ddpg"):
        cls = get_recipe(algo).Config
        for family in cls.FAMILY_DEFAULTS:
            config = cls(env=env[family.removesuffix("_pixels")], pixels=family.endswith("_pixels"))
            assert family_fields(config)[0] == family and math.isfinite(config.gamma)


# ------------------------------------------------------------------------------------------ training runs
def test_sac_trains_from_dmc_pixels():
    logger = ListLogger()
    config = sac.Config(env="dmc:cartpole-swingup", pixels=True, pixel_size=32, frames=100, frames_per_batch=25,
                        init_random_frames=50, batch_size=8, hidden_sizes=(16,), eval_episodes=1,
                        eval_max_steps=10, buffer_size=1000)
    results = sac.train(config, logger=logger, progress=False)
    assert results.frames == 100 and results.eval_episodes == 1
    losses = logger.values("loss/qvalue")
    assert len(losses) >= 1 and all(math.isfinite(v) for v in losses + logger.values("loss/actor"))


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_discrete_recipes_train_on_pong(algo):
    pytest.importorskip("ale_py")
    logger = ListLogger()
    small = dict(env="ALE/Pong-v5", frames=64, eval_episodes=1, eval_max_steps=8, atari_screen_size=36,
                 atari_noop_max=0)
    if algo == "dqn":
        small |= dict(learning_starts=32, batch_size=8, gradient_steps=2, steps_per_env=16, buffer_size=256)
    else:
        small |= dict(num_envs=2, steps_per_env=16, minibatch_size=16, epochs=1)
    recipe = get_recipe(algo)
    config = recipe.Config(**small)
    assert config.lr == (1e-4 if algo == "dqn" else 2.5e-4)  # the Atari family's published learning rate
    results = recipe.train(config, logger=logger, progress=False)
    assert results.frames == 64
    name = "loss/value" if algo == "dqn" else "loss/objective"
    assert logger.values(name) and all(math.isfinite(v) for v in logger.values(name))
