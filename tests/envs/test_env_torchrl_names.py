"""Names and arguments TorchRL users call, where the concept is the same (issue 13 item 21, env part)."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

import rlbench.envs
import rlbench.envs.transforms
from rlbench.envs import CartPoleEnv, GymEnv, PendulumEnv, SerialEnv, TransformedEnv
from rlbench.testing import ContinuousCountingEnv, CountingEnv


# ---------------------------------------------------------------------------------- rand_step
def test_rand_step():
    env = CountingEnv(batch_size=[2])
    td = env.rand_step(env.reset())
    assert td["next", "observation"].squeeze(-1).tolist() == [1.0, 1.0]
    assert env.action_spec.is_in(td["action"])
    gym = GymEnv("CartPole-v1")
    gym.reset()
    td = gym.rand_step()  # no TensorDict: a fresh one with the random action
    assert td["next", "observation"].shape == (4,)
    gym.close()


# ------------------------------------------------------------------------------ *_spec_unbatched
@pytest.mark.parametrize("make", [CartPoleEnv, PendulumEnv, CountingEnv, ContinuousCountingEnv])
def test_unbatched_specs_equal_those_of_an_unbatched_env(make):
    batched, single = make(batch_size=[4, 2]), make(batch_size=[])
    for name in ("action_spec", "observation_spec", "reward_spec", "done_spec", "state_spec",
                 "full_action_spec", "full_reward_spec", "full_done_spec", "full_observation_spec",
                 "full_state_spec", "input_spec", "output_spec"):
        got = getattr(batched, f"{name}_unbatched")
        assert got == getattr(single, name), name
    assert batched.action_spec_unbatched.shape == single.action_spec.shape
    assert single.action_spec_unbatched == single.action_spec


def test_env_action_space_bounds():
    assert PendulumEnv(batch_size=[3]).action_spec_unbatched.space.high.item() == 2.0  # Bounded.space


def test_unbatched_specs_of_serial_and_transformed_envs():
    serial = SerialEnv(3, lambda: PendulumEnv(batch_size=[2]))
    assert serial.batch_size == (3, 2)
    assert serial.action_spec_unbatched == PendulumEnv().action_spec
    env = TransformedEnv(serial, rlbench.envs.transforms.StepCounter(step_count_key="t"))
    assert env.observation_spec_unbatched["t"].shape == (1,)
    assert env.observation_spec_unbatched == TransformedEnv(
        PendulumEnv(), rlbench.envs.transforms.StepCounter(step_count_key="t")).observation_spec


# ------------------------------------------------------------------------------------ SerialEnv
def test_serial_env_create_env_fn_and_kwargs():
    env = SerialEnv(2, create_env_fn=CountingEnv, create_env_kwargs={"max_steps": 2})
    assert env.rollout(5).shape == (2, 2)
    env = SerialEnv(2, create_env_fn=CountingEnv, create_env_kwargs=[{"max_steps": 2}, {"max_steps": 4}])
    assert [int(e.max_steps) for e in env.envs] == [2, 4]
    with pytest.raises(TypeError, match="not both"):
        SerialEnv(2, CountingEnv, create_env_fn=CountingEnv)
    with pytest.raises(ValueError, match="num_envs=3"):
        SerialEnv(3, create_env_fn=CountingEnv, create_env_kwargs=[{}, {}])
    with pytest.raises(TypeError, match="callable"):
        SerialEnv(2, CountingEnv())


# ------------------------------------------------------------------------ transforms from rlbench.envs
def test_transforms_are_importable_from_rlbench_envs():
    for name in rlbench.envs.transforms.__all__:
        assert getattr(rlbench.envs, name) is getattr(rlbench.envs.transforms, name), name
        assert name in rlbench.envs.__all__, name


# --------------------------------------------------------------------------- ObservationNorm.init_stats
def test_init_stats_torchrl_arguments():
    from rlbench.envs import ObservationNorm
    from rlbench.testing.transforms import image_counting_env

    def stats_env():
        env = TransformedEnv(PendulumEnv(batch_size=[2]), ObservationNorm(in_keys=["observation"]))
        _ = env.set_seed(0)
        return env

    ref_env = PendulumEnv(batch_size=[2])
    _ = ref_env.set_seed(0)
    data = ref_env.rollout(50, break_when_any_done=False)["observation"]  # [2, 50, 3]
    # reduce_dim=-2 (time only, a negative dim as TorchRL allows): one loc per sub-env
    env = stats_env()
    env.transform[0].init_stats(50, reduce_dim=-2)
    torch.testing.assert_close(env.transform[0].loc, data.mean(-2))
    torch.testing.assert_close(env.transform[0].scale, data.std(-2))
    assert env.rollout(3)["observation"].shape == (2, 3, 3)
    # keep_dims: per-channel statistics of images, shaped [C, 1, 1] (TorchRL's example)
    env = TransformedEnv(image_counting_env(), ObservationNorm(in_keys=["pixels"]))
    env.transform[0].init_stats(20, reduce_dim=(0, -2, -1), cat_dim=0, keep_dims=(-2, -1))
    frames = image_counting_env().rollout(20, break_when_any_done=False)["pixels"]  # [20, 3, 8, 10]
    norm = env.transform[0]
    assert norm.loc.shape == (3, 1, 1)
    torch.testing.assert_close(norm.loc, frames.mean((0, 2, 3)).reshape(3, 1, 1))
    torch.testing.assert_close(norm.scale, frames.std((0, 2, 3)).reshape(3, 1, 1))
    assert env.rollout(2)["pixels"].shape == (2, 3, 8, 10)
    with pytest.raises(ValueError, match="keep_dims"):
        stats_env().transform[0].init_stats(10, reduce_dim=0, keep_dims=(1,))
    with pytest.raises(ValueError, match="cat_dim"):
        stats_env().transform[0].init_stats(10, reduce_dim=(0, 1), cat_dim=2)


# ----------------------------------------------------------- Transform.forward with ("next", key) in_keys
def test_forward_applies_once_when_next_keys_are_listed():
    from rlbench.envs import ObservationNorm, RewardScaling

    td = TensorDict({"observation": torch.full((4, 1), 3.0), "next": {"observation": torch.full((4, 1), 5.0),
                                                                      "reward": torch.ones(4, 1)}}, [4])
    norm = ObservationNorm(loc=1.0, scale=2.0, in_keys=["observation", ("next", "observation")])
    out = norm(td.clone())
    assert out["observation"].unique().tolist() == [1.0]
    assert out["next", "observation"].unique().tolist() == [2.0]  # (5 - 1) / 2, once
    plain = ObservationNorm(loc=1.0, scale=2.0)(td.clone())
    assert torch.equal(plain["next", "observation"], out["next", "observation"])
    # only a "next" key listed: the root entry of that name is left alone
    only_next = ObservationNorm(loc=1.0, scale=2.0, in_keys=[("next", "observation")])(td.clone())
    assert only_next["observation"].unique().tolist() == [3.0]
    assert only_next["next", "observation"].unique().tolist() == [2.0]
    scaled = RewardScaling(0.0, 10.0, in_keys=[("next", "reward"), "reward"])(td.clone())
    assert scaled["next", "reward"].unique().tolist() == [10.0]
