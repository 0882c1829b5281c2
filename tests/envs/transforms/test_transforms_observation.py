"""Dtype, shape and key transforms."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import check_env_specs
from rlbench.envs.transforms import (
    CatTensors,
    Compose,
    DoubleToFloat,
    ExcludeTransform,
    FlattenObservation,
    RenameTransform,
    StepCounter,
    TransformedEnv,
    TransformKeyError,
    UnsqueezeTransform,
)
from rlbench.specs import Bounded
from rlbench.testing import ContinuousCountingEnv, CountingEnv, DoubleCountingEnv


def test_double_to_float_specs_and_action_round_trip():
    env = TransformedEnv(DoubleCountingEnv(max_steps=10), DoubleToFloat())
    assert env.transform[0].in_keys == ["observation", "total", "reward"]
    assert env.transform[0].in_keys_inv == ["action"]
    assert env.reward_spec.dtype == torch.float32 and isinstance(env.action_spec, Bounded)
    td = env.reset()
    td["action"] = torch.tensor([0.25, 0.5])
    env.step(td)
    assert td["next", "total"].item() == 0.75 and td["next", "total"].dtype == torch.float32
    check_env_specs(env)


def test_double_to_float_explicit_keys():
    env = TransformedEnv(DoubleCountingEnv(), DoubleToFloat(in_keys=["observation"], in_keys_inv=[]))
    assert env.observation_spec["total"].dtype == torch.float64
    assert env.observation_spec["observation"].dtype == torch.float32
    assert env.action_spec.dtype == torch.float64


def test_flatten_and_unsqueeze_shapes():
    x = torch.zeros(2, 3, 4, 5)
    assert FlattenObservation(-2)._apply_transform(x).shape == (2, 3, 20)
    assert FlattenObservation(-3, -2)._apply_transform(x).shape == (2, 12, 5)
    with pytest.raises(ValueError, match="negative"):
        FlattenObservation(1)
    env = TransformedEnv(ContinuousCountingEnv(), UnsqueezeTransform(-1, in_keys=["observation"],
                                                                   in_keys_inv=["action"]))
    assert env.observation_spec["observation"].shape == (1, 1) and env.action_spec.shape == (2, 1)
    td = env.reset()
    td["action"] = torch.tensor([[0.5], [0.25]])
    assert env.step(td)["next", "total"].item() == 0.75
    with pytest.raises(ValueError, match="negative"):
        UnsqueezeTransform(0)


def test_cat_tensors_values_and_del_keys():
    env = TransformedEnv(ContinuousCountingEnv(max_steps=10), CatTensors(["observation", "total"], "vec"))
    td = env.reset()
    td["action"] = torch.tensor([0.5, 0.25])
    nxt = env.step(td)["next"]
    assert nxt["vec"].tolist() == [1.0, 0.75] and "total" not in nxt.keys()
    keep = TransformedEnv(CountingEnv(), CatTensors(["observation", "total"], "vec", del_keys=False))
    assert {"observation", "total", "vec"} <= set(keep.observation_spec.keys())
    check_env_specs(keep)
    with pytest.raises(TransformKeyError, match="not an observation"):
        TransformedEnv(CountingEnv(), CatTensors(["observation", "reward"]))


def test_rename_and_copy():
    env = TransformedEnv(CountingEnv(), RenameTransform(["observation"], ["count"], create_copy=True))
    td = env.rollout(3)
    torch.testing.assert_close(td["next", "count"], td["next", "observation"])
    check_env_specs(env)
    with pytest.raises(TransformKeyError, match="fixed"):
        TransformedEnv(CountingEnv(), RenameTransform(["reward"], ["r"]))


def test_exclude_and_protected_keys():
    env = TransformedEnv(CountingEnv(), Compose(StepCounter(), ExcludeTransform("total", "step_count")))
    assert sorted(env.observation_spec.keys()) == ["observation"]
    assert "total" not in env.rollout(3)["next"].keys()
    with pytest.raises(TransformKeyError, match="fixed"):
        TransformedEnv(CountingEnv(), ExcludeTransform("done"))
    td = TensorDict({"a": torch.zeros(2), "next": {"a": torch.zeros(2), "b": torch.zeros(2)}}, [2])
    assert set(ExcludeTransform("a")(td).keys(True, True)) == {("next", "b")}


def test_squeeze_and_permute_exact_values_and_specs():
    from rlbench.envs import PermuteTransform, SqueezeTransform, TransformedEnv
    from rlbench.testing import PixelCountingEnv

    x = torch.arange(24.0).reshape(2, 3, 4)
    out = PermuteTransform((-1, -2), in_keys=["x"])._apply_transform(x)
    assert torch.equal(out, x.transpose(-1, -2))
    assert torch.equal(SqueezeTransform(-2, in_keys=["x"])._apply_transform(x[:, :1]), x[:, 0])
    with pytest.raises(ValueError, match="is not 1"):
        SqueezeTransform(-1, in_keys=["x"])._apply_transform(x)
    with pytest.raises(ValueError, match="permutation of"):
        PermuteTransform((-1, -1))
    env = TransformedEnv(PixelCountingEnv(height=8, width=10), PermuteTransform((-1, -3, -2), in_keys=["pixels"]))
    assert env.observation_spec["pixels"].shape == (3, 8, 10)
    raw = PixelCountingEnv(height=8, width=10).rollout(2)["next", "pixels"]
    assert torch.equal(env.rollout(2)["next", "pixels"], raw.permute(0, 3, 1, 2))


def test_select_keeps_only_the_listed_observations():
    from rlbench.envs import SelectTransform, TransformedEnv
    from rlbench.envs.transforms.base import TransformKeyError
    from rlbench.testing import CountingEnv

    env = TransformedEnv(CountingEnv(max_steps=3), SelectTransform("total"))
    assert list(env.observation_spec.keys()) == ["total"]
    td = env.rollout(3)
    assert "observation" not in td.keys() and "observation" not in td["next"].keys()
    assert td["next", "reward"].squeeze(-1).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TransformKeyError, match="cannot select 'done'"):
        TransformedEnv(CountingEnv(), SelectTransform("done"))
