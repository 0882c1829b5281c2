"""Transforms on the real envs: torch-native classic control and gymnasium (skipped when absent)."""
import pytest
import torch

from rlbench.envs import check_env_specs
from rlbench.envs.transforms import (
    CatFrames,
    Compose,
    DoubleToFloat,
    ObservationNorm,
    RenameTransform,
    RewardSum,
    StepCounter,
    TransformedEnv,
    VecNorm,
)

classic = pytest.importorskip("rlbench.envs.classic")


def test_cartpole_batched_pipeline():
    env = TransformedEnv(
        classic.CartPoleEnv(batch_size=[4], seed=0),
        Compose(StepCounter(step_count_key="t"), RewardSum(), CatFrames(2), ObservationNorm(in_keys=["observation"])),
    )
    env.transform[-1].init_stats(64)
    check_env_specs(env)
    td = env.rollout(60, break_when_any_done=False)
    assert td["next", "observation"].shape == (4, 60, 8)
    # the env's own step count and StepCounter agree, episode after episode
    assert torch.equal(td["next", "t"], td["next", "step_count"])


def test_cartpole_float64_state_round_trips_through_double_to_float():
    env = TransformedEnv(classic.CartPoleEnv(batch_size=[3], dtype=torch.float64, seed=0), DoubleToFloat())
    assert env.state_spec["state"].dtype == torch.float32  # the caller sees float32 state...
    td = env.rollout(30, break_when_any_done=False)  # ...and the env gets float64 back each step
    assert td["next", "state"].dtype == torch.float32
    check_env_specs(env)


def test_renaming_a_state_key_needs_the_inverse_too():
    with pytest.raises(Exception, match="in_keys_inv"):
        TransformedEnv(classic.CartPoleEnv(), RenameTransform(["state"], ["s"]))
    env = TransformedEnv(classic.CartPoleEnv(batch_size=[2]),
                         RenameTransform(["state"], ["s"], in_keys_inv=["state"], out_keys_inv=["s"]))
    check_env_specs(env)
    env.rollout(30, break_when_any_done=False)


def test_gym_pendulum():
    gym = pytest.importorskip("rlbench.envs.gym")
    env = TransformedEnv(gym.GymEnv("Pendulum-v1"), Compose(VecNorm(), RewardSum(), StepCounter(max_steps=5)))
    check_env_specs(env)
    td = env.rollout(20)
    assert td.shape == (5,) and bool(td["next", "truncated"][-1])
