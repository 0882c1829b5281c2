"""GymEnv's TorchRL-named options: validate_actions, frame_skip, categorical_action_encoding (issue 13 items 19, 21)."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

from rlbench.envs import GymEnv, SerialEnv
from rlbench.specs import Categorical, OneHot


# ------------------------------------------------------------------------------ validate_actions
def test_out_of_bound_actions_raise_by_default_and_say_how_to_pass_them():
    env = GymEnv("Pendulum-v1")
    td = env.reset()
    with pytest.raises(ValueError, match=r"outside.*validate_actions=False"):
        env.step(td.set("action", torch.tensor([5.0])))
    env.close()


def test_validate_actions_false_passes_actions_to_gymnasium_which_clips():
    env = GymEnv("Pendulum-v1", validate_actions=False)
    assert env.validate_actions is False
    _ = env.set_seed(0)
    big = env.step(env.reset().set("action", torch.tensor([5.0])))
    ref = gymnasium.make("Pendulum-v1")
    ref.reset(seed=0)
    obs, reward, *_ = ref.step(np.array([2.0], dtype=np.float32))  # gymnasium clips 5 to the max torque 2
    torch.testing.assert_close(big["next", "observation"], torch.as_tensor(obs))
    assert float(big["next", "reward"]) == pytest.approx(float(reward))
    assert big["action"].item() == 5.0  # the caller's action is recorded as given
    roll = env.rollout(4, lambda t: t.set("action", torch.tensor([-7.0])))
    assert roll.shape == (4,)
    env.close()


def test_validate_actions_false_with_vector_and_serial_envs():
    env = GymEnv("Pendulum-v1", num_envs=2, validate_actions=False)
    td = env.step(env.reset().set("action", torch.full((2, 1), 3.0)))
    assert td["next", "reward"].shape == (2, 1)
    env.close()
    serial = SerialEnv(2, lambda: GymEnv("Pendulum-v1", validate_actions=False), validate_actions=False)
    assert serial.step(serial.reset().set("action", torch.full((2, 1), 3.0)))["next", "reward"].shape == (2, 1)
    serial.close()


# ------------------------------------------------------------------------------------ frame_skip
def reference_frame_skip(seed: int, actions, skip: int):
    """Plain gymnasium CartPole, each action repeated ``skip`` times (rewards summed, stop at the end)."""
    env = gymnasium.make("CartPole-v1")
    env.reset(seed=seed)
    out = []
    for a in actions:
        total = 0.0
        for _ in range(skip):
            obs, r, term, trunc, _ = env.step(a)
            total += r
            if term or trunc:
                break
        out.append((obs, total, term, trunc))
        if term or trunc:
            break
    return out


@pytest.mark.parametrize("skip", [1, 3])
def test_frame_skip_repeats_the_action_and_sums_rewards(skip):
    env = GymEnv("CartPole-v1", frame_skip=skip)
    assert env.frame_skip == skip
    actions = [1] * 40
    _ = env.set_seed(0)
    roll = env.rollout(40, lambda t: t.set("action", torch.tensor(1)))
    ref = reference_frame_skip(0, actions, skip)
    assert roll.shape == (len(ref),)
    for t, (obs, total, term, trunc) in enumerate(ref):
        torch.testing.assert_close(roll["next", "observation"][t], torch.as_tensor(obs))
        assert float(roll["next", "reward"][t]) == total
    assert bool(roll["next", "terminated"][-1]) == ref[-1][2]
    if skip == 3:
        assert float(roll["next", "reward"][0]) == 3.0 and len(ref) < 40  # pushing right ends an episode
    env.close()


def test_frame_skip_in_the_fast_paths():
    # random rollout (NumPy fast path) and a SerialEnv (NumPy kernel) give what step-by-step gives
    env = GymEnv("CartPole-v1", frame_skip=2)
    _ = env.set_seed(3)
    fast = env.rollout(30, break_when_any_done=False)
    _ = env.set_seed(3)
    td, rows = env.reset(), []
    for t in range(30):
        td, root = env.step_and_maybe_reset(td.set("action", fast["action"][t]))
        rows.append(td)
        td = root
    slow = torch.stack(rows)
    for key in fast.keys(True, True):
        torch.testing.assert_close(fast.get(key), slow.get(key), msg=str(key))
    assert float(fast["next", "reward"].max()) == 2.0
    serial = SerialEnv(2, lambda: GymEnv("CartPole-v1", frame_skip=2))
    roll = serial.rollout(20, break_when_any_done=False)
    assert float(roll["next", "reward"].max()) == 2.0
    serial.close()
    env.close()


def test_frame_skip_errors():
    with pytest.raises(ValueError, match="frame_skip"):
        GymEnv("CartPole-v1", frame_skip=0)
    with pytest.raises(NotImplementedError, match="FrameSkipTransform"):
        GymEnv("CartPole-v1", num_envs=2, frame_skip=2)


# --------------------------------------------------------------------- categorical_action_encoding
def test_categorical_action_encoding():
    env = GymEnv("CartPole-v1", categorical_action_encoding=True)
    assert isinstance(env.action_spec, Categorical) and env.action_spec.shape == ()
    onehot = GymEnv("CartPole-v1", categorical_action_encoding=False)
    assert isinstance(onehot.action_spec, OneHot) and onehot.action_spec.shape == (2,)
    _ = onehot.set_seed(0)
    roll = onehot.rollout(5)
    assert roll["action"].shape == (len(roll), 2) and bool((roll["action"].sum(-1) == 1).all())
    env.close()
    onehot.close()
