"""Rollouts carry gradients when gradients are on and the data require them (issue 13 item 17).

The reference is an independent loop over gymnasium's Pendulum equations in plain torch: the
gradients of the summed reward with respect to the policy's parameters must match it.
"""
from __future__ import annotations

import math

import pytest
import torch
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.envs import GymEnv, PendulumEnv, SerialEnv, TransformedEnv
from rlbench.envs.transforms import RewardScaling, StepCounter


def make_policy(seed: int = 0) -> TensorDictModule:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1), nn.Tanh())
    return TensorDictModule(net, in_keys=["observation"], out_keys=["action"])


def reference_return(policy, state: torch.Tensor, steps: int) -> torch.Tensor:
    """Sum of rewards of gymnasium's Pendulum-v1 from ``state`` ``[B, 2]`` under ``policy``, in plain torch."""
    th, thdot = state[:, 0], state[:, 1]
    total = torch.zeros(())
    for _ in range(steps):
        obs = torch.stack((th.cos(), th.sin(), thdot), -1)
        u = policy.module(obs).squeeze(-1).clamp(-2.0, 2.0)
        norm = torch.remainder(th + math.pi, 2 * math.pi) - math.pi
        total = total - (norm**2 + 0.1 * thdot**2 + 0.001 * u**2).sum()
        thdot = (thdot + (3 * 10.0 / 2 * th.sin() + 3.0 * u) * 0.05).clamp(-8.0, 8.0)
        th = th + thdot * 0.05
    return total


def grads(module) -> list:
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("break_when_any_done", [True, False])
def test_rollout_gradients_match_a_plain_torch_reference(break_when_any_done):
    env = PendulumEnv(batch_size=[4], seed=0)
    policy = make_policy()
    td = env.rollout(30, policy, break_when_any_done=break_when_any_done)
    assert td.shape == (4, 30)
    assert td["next", "reward"].requires_grad and td["action"].requires_grad
    td["next", "reward"].sum().backward()
    got = grads(policy)
    assert all(bool(g.abs().sum() > 0) for g in got)
    policy.zero_grad()
    reference_return(policy, td["state"][:, 0].detach(), 30).backward()
    for a, b in zip(got, grads(policy)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gradients_cross_auto_resets_and_transforms():
    env = TransformedEnv(PendulumEnv(batch_size=[3], seed=1, max_episode_steps=5),
                         StepCounter(step_count_key="t"))
    env.append_transform(RewardScaling(0.0, 0.5))
    policy = make_policy(1)
    td = env.rollout(12, policy, break_when_any_done=False)
    assert bool(td["next", "done"].any())  # episodes ended and sub-envs reset in place
    (-td["next", "reward"].mean()).backward()
    assert all(bool(p.grad.abs().sum() > 0) for p in policy.parameters())


def test_gradients_flow_from_the_starting_tensordict():
    env = PendulumEnv(batch_size=[2], seed=0)
    start = env.reset()
    state = start["state"].clone().requires_grad_(True)
    start.set("state", state)
    zero = lambda td: td.set("action", torch.zeros(*td.batch_size, 1))  # noqa: E731
    td = env.rollout(5, zero, auto_reset=False, tensordict=start)
    td["next", "reward"].sum().backward()
    assert state.grad is not None and bool(state.grad.abs().sum() > 0)


def test_no_grad_or_no_parameters_keep_the_preallocated_path():
    env = PendulumEnv(batch_size=[4], seed=0)
    policy = make_policy()
    with torch.no_grad():
        td = env.rollout(10, policy)
    assert not td["next", "reward"].requires_grad and not td["action"].requires_grad
    td = env.rollout(10)  # random actions: nothing requires grad
    assert not td["next", "reward"].requires_grad
    frozen = make_policy()
    frozen.requires_grad_(False)
    assert not env.rollout(10, frozen)["next", "reward"].requires_grad
    # the same data either way
    _ = env.set_seed(5)
    with torch.no_grad():
        fast = env.rollout(10, policy)
    _ = env.set_seed(5)
    slow = env.rollout(10, policy)
    assert slow["next", "reward"].requires_grad
    assert set(fast.keys(True, True)) == set(slow.keys(True, True))
    for key in fast.keys(True, True):
        torch.testing.assert_close(fast.get(key), slow.get(key).detach())


def test_non_differentiable_envs_take_grad_carrying_actions():
    policy = make_policy()
    env = TransformedEnv(GymEnv("Pendulum-v1"), StepCounter())
    _ = env.set_seed(0)
    td = env.rollout(5, policy)
    assert td.shape == (5,) and td["action"].requires_grad
    assert not td["next", "observation"].requires_grad  # gymnasium's physics are NumPy
    serial = SerialEnv(2, lambda: GymEnv("Pendulum-v1"))
    assert serial.rollout(3, policy).shape == (2, 3)
    serial.close()
    env.close()
