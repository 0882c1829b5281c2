"""MountainCar envs (rlbench/envs/classic/mountain_car.py): one step against the update written out in plain Python."""
import math

import pytest
import torch

from rlbench.envs.classic import MountainCarContinuousEnv, MountainCarEnv

# (position, velocity): mid-slope, the speed limit, the left wall, next to the goal
STATES = [(-0.5, 0.01), (0.0, 0.069), (-1.19, -0.02), (0.49, 0.02)]


def reference(position, velocity, push, goal_position, goal_velocity=0.0):
    velocity = min(max(velocity + push - 0.0025 * math.cos(3 * position), -0.07), 0.07)
    position = min(max(position + velocity, -1.2), 0.6)
    if position == -1.2 and velocity < 0:
        velocity = 0.0
    return position, velocity, position >= goal_position and velocity >= goal_velocity


def step(env, states, action):
    td = env.reset()
    td["state"] = torch.tensor(states, dtype=torch.float64)
    td["action"] = action
    return env.step(td)["next"]


@pytest.mark.parametrize("action", [0, 1, 2])
def test_discrete_step_matches_the_written_out_update(action):
    env = MountainCarEnv(batch_size=[len(STATES)], dtype=torch.float64)
    out = step(env, STATES, torch.full((len(STATES),), action))
    for i, (p, v) in enumerate(STATES):
        p2, v2, done = reference(p, v, (action - 1) * 0.001, 0.5)
        assert out["state"][i].tolist() == pytest.approx([p2, v2], abs=1e-15)
        assert out["terminated"][i].item() is done and out["reward"][i].item() == -1.0
    assert out["state"][2, 0].item() == -1.2 and out["state"][2, 1].item() == 0.0  # stopped at the wall


def test_continuous_step_clips_the_force_and_rewards_the_goal():
    env = MountainCarContinuousEnv(batch_size=[len(STATES)], dtype=torch.float64, validate_actions=False)
    actions = [0.5, -3.0, 1.0, 2.0]
    out = step(env, STATES, torch.tensor(actions, dtype=torch.float64).unsqueeze(-1))
    for i, ((p, v), a) in enumerate(zip(STATES, actions)):
        p2, v2, done = reference(p, v, min(max(a, -1.0), 1.0) * 0.0015, 0.45)
        assert out["state"][i].tolist() == pytest.approx([p2, v2], abs=1e-15)
        assert out["terminated"][i].item() is done
        # as in gymnasium, the force is clipped but the action cost uses the action as given
        assert out["reward"][i].item() == pytest.approx(100.0 * done - 0.1 * a**2, abs=1e-12)
    assert out["terminated"][3].item()  # 0.49 + 0.02 + push passes the 0.45 goal
