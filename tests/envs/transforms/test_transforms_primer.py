"""TensorDictPrimer: entries filled at reset, carried (or written by a policy) through steps."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import TensorDictPrimer as FromEnvs
from rlbench.envs import check_env_specs
from rlbench.envs.transforms import TensorDictPrimer, TransformedEnv
from rlbench.specs import Bounded, Categorical, Composite, Unbounded
from rlbench.testing import CountingEnv


def test_exported_from_envs():
    assert FromEnvs is TensorDictPrimer


def test_reset_fills_default_values_and_specs_get_batch_dims():
    env = TransformedEnv(CountingEnv(batch_size=[2]),
                         TensorDictPrimer({"h": Unbounded((3,)), "c": Categorical(4, (1,))}, default_value={"h": 1.5}))
    assert env.observation_spec["h"].shape == (2, 3) and env.observation_spec["c"].shape == (2, 1)
    assert env.observation_spec["c"].dtype == torch.int64
    td = env.reset()
    assert td["h"].tolist() == [[1.5] * 3] * 2
    assert td["c"].tolist() == [[0], [0]] and td["c"].dtype == torch.int64
    assert check_env_specs(env) == []


def test_policy_written_values_are_carried_to_next():
    env = TransformedEnv(CountingEnv(max_steps=10), TensorDictPrimer({"h": Unbounded((1,))}))

    def policy(td):  # a "recurrent state": the step count so far, written by the policy
        td.set("action", env.action_spec.zero())
        return td.set("h", td["h"] + 1.0)

    data = env.rollout(4, policy=policy)
    assert data["h"].squeeze(-1).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert data["next", "h"].squeeze(-1).tolist() == [1.0, 2.0, 3.0, 4.0]


def test_partial_reset_refills_only_the_reset_sub_envs():
    env = TransformedEnv(CountingEnv(max_steps=torch.tensor([[2], [5]]), batch_size=[2]),
                         TensorDictPrimer({"h": Unbounded((1,))}, default_value=-1.0))

    def policy(td):
        td.set("action", env.action_spec.zero())
        return td.set("h", td["h"] + 10.0)

    data = env.rollout(3, policy=policy, break_when_any_done=False)
    # sub-env 0 ends after 2 steps: its third step starts from a fresh -1
    assert data["h"].squeeze(-1).tolist() == [[9.0, 19.0, 9.0], [9.0, 19.0, 29.0]]


def test_random_values_come_from_the_spec():
    torch.manual_seed(0)
    env = TransformedEnv(CountingEnv(batch_size=[64]),
                         TensorDictPrimer(Composite(h=Bounded(-1.0, 1.0, (2,))), random=True))
    h = env.reset()["h"]
    assert h.shape == (64, 2) and bool((h.abs() <= 1.0).all()) and h.std() > 0.1
    assert check_env_specs(env) == []


def test_outside_an_env_fills_missing_entries_only():
    t = TensorDictPrimer({"h": Unbounded((2,))}, default_value=3.0)
    td = TensorDict({"observation": torch.zeros(4, 1), "next": {"h": torch.ones(4, 2)}}, [4])
    out = t(td)
    assert out["h"].tolist() == [[3.0, 3.0]] * 4 and out["next", "h"].tolist() == [[1.0, 1.0]] * 4


def test_specs_as_keyword_arguments_and_keyword_only_options():
    t = TensorDictPrimer({"a": Unbounded((1,))}, b=Categorical(3, (2,)), default_value=2.0)
    td = t(TensorDict({}, [2]))
    assert td["a"].tolist() == [[2.0], [2.0]] and td["b"].tolist() == [[2, 2], [2, 2]]
    with pytest.raises(TypeError):
        TensorDictPrimer({"a": Unbounded((1,))}, True)  # TorchRL's (primers, random): refused, not misread


def test_bad_arguments():
    with pytest.raises(TypeError, match="non-empty Composite or dict"):
        TensorDictPrimer({})
    with pytest.raises(TypeError, match="non-empty Composite or dict"):
        TensorDictPrimer()
    with pytest.raises(TypeError, match="leaf Spec"):
        TensorDictPrimer({"h": 3})
    with pytest.raises(KeyError, match="not primers"):
        TensorDictPrimer({"h": Unbounded((1,))}, default_value={"x": 1.0})
