"""RandomPolicy (rlbench/envs/random_policy.py): actions drawn from the spec, seeding, composite specs, keys."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import PendulumEnv
from rlbench.specs import Bounded, Categorical, Composite


def test_random_policy_writes_actions_from_the_spec():
    from rlbench.envs import RandomPolicy

    env = PendulumEnv(batch_size=[3], seed=0)
    policy = RandomPolicy(env.action_spec)
    td = policy(env.reset())
    assert td["action"].shape == (3, 1) and env.action_spec.is_in(td["action"])
    roll = env.rollout(20, policy)
    assert roll.shape == (3, 20) and env.action_spec.is_in(roll["action"])
    assert roll["action"].std() > 0.5  # uniform on [-2, 2]: std 1.15


def test_random_policy_seeded_composite_and_key():
    from rlbench.envs import RandomPolicy

    spec = Categorical(4, (5,))
    a = RandomPolicy(spec, generator=torch.Generator().manual_seed(1))(TensorDict({}, [5]))
    b = RandomPolicy(spec, generator=torch.Generator().manual_seed(1))(TensorDict({}, [5]))
    assert torch.equal(a["action"], b["action"])
    td = RandomPolicy(spec, action_key="move")(TensorDict({}, [5]))
    assert list(td.keys()) == ["move"]
    full = Composite(action=Bounded(-1.0, 1.0, (5, 2)), aux=Categorical(3, (5,)), shape=(5,))
    td = RandomPolicy(full)(TensorDict({}, [5]))
    assert full.is_in(td.select("action", "aux"))
    assert "RandomPolicy" in repr(RandomPolicy(spec))


def test_random_policy_refuses_what_is_not_a_spec():
    from rlbench.envs import RandomPolicy

    env = PendulumEnv()
    with pytest.raises(TypeError, match=r"takes an action spec \(e.g. env.action_spec\), got PendulumEnv"):
        RandomPolicy(env)
    assert repr(RandomPolicy(Categorical(2), action_key="a")).endswith(", action_key='a')")
