"""Transform, Compose and TransformedEnv: structure, parents, spec caching, errors, nesting."""
import copy

import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import check_env_specs
from rlbench.envs.transforms import (
    CatFrames,
    Compose,
    DoubleToFloat,
    InitTracker,
    ObservationNorm,
    RewardScaling,
    RewardSum,
    StepCounter,
    Transform,
    TransformedEnv,
    TransformKeyError,
    VecNorm,
    episode_starts,
    time_dim,
)
from rlbench.testing import CountingEnv, DoubleCountingEnv


class CountSpecCalls(Transform):
    calls = 0

    def transform_specs(self, specs):
        CountSpecCalls.calls += 1
        return super().transform_specs(specs)


def test_transform_is_always_a_compose_and_indexable():
    t = StepCounter()
    env = TransformedEnv(CountingEnv(), t)
    assert isinstance(env.transform, Compose) and env.transform[0] is t and len(env.transform) == 1
    env.append_transform(RewardSum())
    env.insert_transform(0, InitTracker())
    assert [type(x).__name__ for x in env.transform] == ["InitTracker", "StepCounter", "RewardSum"]
    assert env.transform[-1].parent.observation_spec.keys() == ["observation", "total", "is_init", "step_count"]
    assert env.transform[0].parent is env.base_env
    assert isinstance(env.transform[1:], list) and len(env.transform[1:]) == 2
    popped = env.transform.pop(0)
    assert popped.container is None and "is_init" not in env.observation_spec
    check_env_specs(env)


def test_specs_are_computed_when_the_list_changes_not_per_step():
    CountSpecCalls.calls = 0
    env = TransformedEnv(CountingEnv(max_steps=3), CountSpecCalls())
    assert CountSpecCalls.calls == 1
    env.rollout(20, break_when_any_done=False)
    assert CountSpecCalls.calls == 1
    env.append_transform(StepCounter())
    assert CountSpecCalls.calls == 2


def test_missing_key_error_names_key_and_lists_available():
    with pytest.raises(TransformKeyError) as err:
        TransformedEnv(CountingEnv(), ObservationNorm(0.0, 1.0, in_keys=["obs"]))
    msg = str(err.value)
    assert "'obs'" in msg and "'observation'" in msg and "'total'" in msg and "Did you mean 'observation'" in msg


def test_bad_append_leaves_env_unchanged_and_transform_free():
    env = TransformedEnv(CountingEnv(), StepCounter())
    bad = RewardScaling(in_keys=["rewrd"])
    with pytest.raises(TransformKeyError, match="rewrd"):
        env.append_transform(bad)
    assert len(env.transform) == 1 and bad.container is None
    check_env_specs(env)
    env2 = TransformedEnv(CountingEnv(), bad.__class__(in_keys=["reward"]))
    check_env_specs(env2)


def test_failed_construction_frees_the_transform():
    t = ObservationNorm(0.0, 1.0, in_keys=["nope"])
    with pytest.raises(TransformKeyError):
        TransformedEnv(CountingEnv(), t)
    assert t.container is None
    t.in_keys = t.out_keys = ["observation"]
    TransformedEnv(CountingEnv(), t)


def test_a_transform_sits_in_one_env_only_but_deepcopies_are_free():
    t = StepCounter()
    TransformedEnv(CountingEnv(), t)
    with pytest.raises(ValueError, match="already belongs"):
        TransformedEnv(CountingEnv(), t)
    t2 = copy.deepcopy(t)
    assert t2.container is None
    TransformedEnv(CountingEnv(), t2)
    c = copy.deepcopy(Compose(StepCounter(), RewardSum()))
    assert all(x.container is c for x in c)


def test_nested_transformed_env():
    inner = TransformedEnv(CountingEnv(max_steps=3), StepCounter())
    outer = TransformedEnv(inner, Compose(RewardSum(), ObservationNorm(loc=1.0, scale=1.0, in_keys=["step_count"],
                                                                        out_keys=["centered"])))
    assert outer.base_env is inner and outer.transform[0].parent is inner
    check_env_specs(outer)
    td = outer.rollout(5)
    assert td["next", "step_count"].squeeze(-1).tolist() == [1, 2, 3]
    assert td["next", "centered"].squeeze(-1).tolist() == [0.0, 1.0, 2.0]
    assert td["next", "episode_reward"].squeeze(-1).tolist() == [1.0, 2.0, 3.0]


def test_parent_is_cached_and_invalidated():
    env = TransformedEnv(CountingEnv(), Compose(StepCounter(), RewardSum()))
    p = env.transform[1].parent
    assert env.transform[1].parent is p
    env.insert_transform(1, InitTracker())
    assert env.transform[2].parent is not p and "is_init" in env.transform[2].parent.observation_spec


def test_attribute_lookup_falls_back_to_base_env():
    env = TransformedEnv(CountingEnv(max_steps=7), StepCounter())
    assert int(env.max_steps) == 7
    with pytest.raises(AttributeError):
        env.not_an_attribute


def test_step_does_not_change_callers_action_with_inverse():
    env = TransformedEnv(DoubleCountingEnv(), DoubleToFloat())
    td = env.rand_action(env.reset())
    env.step(td)
    assert td["action"].dtype == torch.float32 and td["next", "observation"].dtype == torch.float32


def test_state_dict_round_trip_through_env():
    env = TransformedEnv(CountingEnv(max_steps=4), Compose(StepCounter(), VecNorm(decay=1.0)))
    env.rollout(10, break_when_any_done=False)
    state = env.state_dict()
    fresh = TransformedEnv(CountingEnv(max_steps=4), Compose(StepCounter(), VecNorm(decay=1.0)))
    fresh.load_state_dict(state)
    for a, b in zip(env.transform[1].stats(), fresh.transform[1].stats()):
        torch.testing.assert_close(a, b)


def test_forward_on_td_without_next_and_standalone_inverse():
    td = TensorDict({"observation": torch.ones(4, 1)}, [4])
    out = ObservationNorm(loc=1.0, scale=2.0)(td)
    assert out["observation"].eq(0).all()
    d2f = DoubleToFloat()
    td = TensorDict({"action": torch.zeros(3, 2), "x": torch.zeros(3, dtype=torch.float64)}, [3])
    assert d2f.inv(td)["action"].dtype == torch.float64 and td["action"].dtype == torch.float32
    assert d2f(td)["x"].dtype == torch.float32


def test_time_dim_and_episode_starts():
    done = torch.tensor([[0, 0, 1, 0, 1, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool).unsqueeze(-1)
    td = TensorDict({"next": {"done": done}}, [2, 6])
    assert time_dim(td) == 1
    assert episode_starts(td, 1).tolist() == [[0, 0, 0, 3, 3, 5], [0, 1, 1, 1, 1, 1]]
    flat = TensorDict({}, [6])
    assert time_dim(flat) is None
    assert time_dim(flat.refine_names("time")) == 0


def test_catframes_compose_stateful_in_serial_partial_resets():
    # batched CountingEnv: sub-env i ends after 2, 3, 5 steps; histories refill only on reset
    env = TransformedEnv(CountingEnv(max_steps=torch.tensor([[2], [3], [5]]), batch_size=[3]),
                         Compose(CatFrames(3), StepCounter()))
    td = env.rollout(6, break_when_any_done=False)
    for i, length in enumerate((2, 3, 5)):
        for t in range(6):
            count = t % length + 1  # next observation = step within the episode
            expected = [max(count - 2, 0), max(count - 1, 0), count]
            assert td["next", "observation"][i, t].tolist() == expected, (i, t)
            assert td["next", "step_count"][i, t].item() == count
