"""ModelBasedEnvBase / WorldModelEnv: a learned TensorDictModule as the env's step (issue 15).

References are plain loops over the same nn.Modules: the imagined rollout must give the same data
and, with gradients on, the same gradients for the policy's and the model's parameters.
"""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlbench.envs import ModelBasedEnvBase, ModelOutputError, WorldModelEnv, check_env_specs
from rlbench.specs import Bounded, Composite, Unbounded
from rlbench.testing import ContinuousCountingEnv


def make_parts(seed: int = 0):
    torch.manual_seed(seed)
    dyn = nn.Sequential(nn.Linear(4 + 2, 16), nn.Tanh(), nn.Linear(16, 4))
    rew = nn.Linear(4, 1)
    pol = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2), nn.Tanh())
    return dyn, rew, pol


class Cat(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, *xs):
        return self.net(torch.cat(xs, -1))


def make_env(dyn, rew, **kwargs):
    world = TensorDictModule(Cat(dyn), in_keys=["latent", "action"], out_keys=["latent"])
    reward = TensorDictModule(rew, in_keys=["latent"], out_keys=["reward"])
    return WorldModelEnv(world, reward, batch_size=[], observation_spec=Composite(latent=Unbounded((4,))),
                         action_spec=Bounded(-1.0, 1.0, (2,)), **kwargs)


def reference(dyn, rew, pol, z, steps):
    """The imagined trajectory in plain torch: latents, actions and rewards ``[N, steps, ...]``."""
    zs, acts, rs = [], [], []
    for _ in range(steps):
        a = pol(z)
        z = dyn(torch.cat((z, a), -1))
        zs.append(z)
        acts.append(a)
        rs.append(rew(z))
    return torch.stack(zs, 1), torch.stack(acts, 1), torch.stack(rs, 1)


def test_rollout_imagines_from_the_given_start_states():
    dyn, rew, pol = make_parts()
    env = make_env(dyn, rew)
    start = TensorDict(latent=torch.randn(6, 4), batch_size=[6])
    policy = TensorDictModule(pol, in_keys=["latent"], out_keys=["action"])
    with torch.no_grad():
        td = env.rollout(5, policy, tensordict=start, auto_reset=False)
        z, a, r = reference(dyn, rew, pol, start["latent"], 5)
    assert td.shape == (6, 5)
    assert check_env_specs(env) == []  # the env contract holds for a learned step too
    torch.testing.assert_close(td["latent"][:, 0], start["latent"])
    torch.testing.assert_close(td["next", "latent"], z)
    torch.testing.assert_close(td["action"], a)
    torch.testing.assert_close(td["next", "reward"], r)
    torch.testing.assert_close(td["latent"][:, 1:], z[:, :-1])  # step_mdp carried the state in the TensorDict
    assert not td["next", "done"].any()


def test_gradients_reach_the_policy_and_the_model_as_in_a_plain_loop():
    dyn, rew, pol = make_parts(1)
    env = make_env(dyn, rew)
    start = TensorDict(latent=torch.randn(3, 4), batch_size=[3])
    policy = TensorDictModule(pol, in_keys=["latent"], out_keys=["action"])
    td = env.rollout(7, policy, tensordict=start, auto_reset=False)
    assert td["next", "reward"].requires_grad
    td["next", "reward"].sum().backward()
    nets = (pol, dyn, rew)
    got = [p.grad.clone() for n in nets for p in n.parameters()]
    assert all(bool(g.abs().sum() > 0) for g in got)
    for n in nets:
        n.zero_grad()
    reference(dyn, rew, pol, start["latent"], 7)[2].sum().backward()
    want = [p.grad for n in nets for p in n.parameters()]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_no_grad_fast_path_is_unchanged():
    dyn, rew, pol = make_parts(2)
    env = make_env(dyn, rew)
    start = TensorDict(latent=torch.randn(4, 4), batch_size=[4])
    policy = TensorDictModule(pol, in_keys=["latent"], out_keys=["action"])
    with torch.no_grad():
        fast = env.rollout(6, policy, tensordict=start, auto_reset=False)
    slow = env.rollout(6, policy, tensordict=start, auto_reset=False)
    assert not any(v.requires_grad for v in fast.values(True, True))
    assert slow["next", "reward"].requires_grad
    assert set(fast.keys(True, True)) == set(slow.keys(True, True))
    for key in fast.keys(True, True):
        torch.testing.assert_close(fast[key], slow[key].detach())


def test_world_model_may_write_the_next_observation_under_next():
    model = TensorDictModule(lambda z, a: (z + a, (z + a).sum(-1, keepdim=True)), in_keys=["z", "action"],
                             out_keys=[("next", "z"), "reward"])
    env = ModelBasedEnvBase(model, observation_spec=Composite(z=Unbounded((1,))), action_spec=Unbounded((1,)))
    td = env.rollout(3, lambda td: td.set("action", torch.ones(2, 1)), auto_reset=True,
                     tensordict=TensorDict({}, batch_size=[2]))
    assert td["z"][0, :, 0].tolist() == [0.0, 1.0, 2.0]  # reset without start states: zeros of the spec
    assert td["next", "reward"][0, :, 0].tolist() == [1.0, 2.0, 3.0]


def test_terminated_written_by_the_model_ends_the_episode():
    model = TensorDictModule(lambda z, a: (z + 1, z.sum(-1, keepdim=True), z + 1 >= 2), in_keys=["z", "action"],
                             out_keys=["z", "reward", "terminated"])
    env = ModelBasedEnvBase(model, observation_spec=Composite(z=Unbounded((1,))), action_spec=Unbounded((1,)))
    td = env.rollout(5, None, tensordict=TensorDict(z=torch.zeros(2, 1), batch_size=[2]), auto_reset=False)
    assert td.shape == (2, 2) and td["next", "done"][:, -1].all()


def test_wrong_observation_shape_names_key_expected_and_found():
    model = TensorDictModule(lambda z, a: torch.cat((z, a), -1), in_keys=["latent", "action"], out_keys=["latent"])
    env = WorldModelEnv(model, TensorDictModule(lambda z: z[..., :1], ["latent"], ["reward"]), batch_size=[],
                        observation_spec=Composite(latent=Unbounded((4,))), action_spec=Unbounded((2,)))
    with pytest.raises(ModelOutputError, match=r"'latent'.*expected shape \(3, 4\).*found shape \(3, 6\)"):
        env.rollout(2, None, tensordict=TensorDict(latent=torch.zeros(3, 4), batch_size=[3]), auto_reset=False)


def test_wrong_reward_shape_and_missing_reward_are_named():
    world = TensorDictModule(lambda z, a: z, in_keys=["latent", "action"], out_keys=["latent"])
    spec = dict(batch_size=[], observation_spec=Composite(latent=Unbounded((4,))), action_spec=Unbounded((1,)))
    env = WorldModelEnv(world, TensorDictModule(lambda z: z, ["latent"], ["reward"]), **spec)
    start = TensorDict(latent=torch.zeros(3, 4), batch_size=[3])
    with pytest.raises(ModelOutputError, match=r"'reward'.*expected shape \(3, 1\).*found shape \(3, 4\)"):
        env.rollout(1, None, tensordict=start, auto_reset=False)
    env = WorldModelEnv(world, TensorDictModule(lambda z: z, ["latent"], ["r"]), **spec)
    with pytest.raises(KeyError, match="reward_model wrote no 'reward'"):
        env.rollout(1, None, tensordict=start, auto_reset=False)


def test_specs_from_a_real_env_and_construction_errors():
    model = TensorDictModule(lambda o, t, a: (o + a[..., :1], t + o, o), ["observation", "total", "action"],
                             ["observation", "total", "reward"])
    env = ModelBasedEnvBase.from_env(model, env=ContinuousCountingEnv(batch_size=[4]))
    assert env.batch_size == () and env.action_spec.shape == (2,) and env.reward_spec.shape == (1,)
    assert sorted(env.observation_spec.keys()) == ["observation", "total"]
    start = TensorDict(observation=torch.ones(5, 1), total=torch.zeros(5, 1), batch_size=[5])
    td = env.rollout(3, lambda td: td.set("action", torch.zeros(5, 2)), tensordict=start, auto_reset=False)
    assert td.shape == (5, 3) and td["next", "total"][0, :, 0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="observation_spec= and action_spec="):
        ModelBasedEnvBase(model)
    with pytest.raises(TypeError, match="world_model must be a tensordict module"):
        ModelBasedEnvBase(nn.Linear(2, 2), observation_spec=Composite(x=Unbounded((2,))), action_spec=Unbounded((1,)))
