"""ActionMask: random actions among the allowed ones, illegal actions refused, spec checks."""
import pytest
import torch
from _mask_env import masked_counting_env
from tensordict import TensorDict

from rlbench.envs import ActionMask as FromEnvs
from rlbench.envs import SerialEnv, check_env_specs
from rlbench.envs.transforms import ActionMask, Transform, TransformedEnv, TransformKeyError
from rlbench.specs import Binary, Categorical, OneHot
from rlbench.testing import ContinuousCountingEnv, CountingEnv


def test_exported_from_envs():
    assert FromEnvs is ActionMask


@pytest.mark.parametrize("batch_size", [(), (3,)])
def test_random_actions_are_the_allowed_ones(batch_size):
    torch.manual_seed(0)
    env = TransformedEnv(masked_counting_env(batch_size), ActionMask())
    data = env.rollout(12, break_when_any_done=False)
    odd = data["observation"].squeeze(-1).long() % 2 == 1  # action 1 is allowed at odd counts only
    assert data["action"][~odd].tolist() == [0] * int((~odd).sum())
    assert set(data["action"][odd].tolist()) == {0, 1}
    assert bool(data["next", "done"].any())  # across (partial) resets
    assert check_env_specs(env) == []


def test_over_a_serial_env():
    torch.manual_seed(0)
    env = TransformedEnv(SerialEnv(2, masked_counting_env), ActionMask())
    assert check_env_specs(env) == []
    data = env.rollout(10, break_when_any_done=False)
    odd = data["observation"].squeeze(-1).long() % 2 == 1
    assert data["action"][~odd].tolist() == [0] * int((~odd).sum())


def test_without_the_transform_both_actions_occur():
    torch.manual_seed(0)
    actions = masked_counting_env((3,)).rollout(12, break_when_any_done=False)["action"]
    assert set(actions.unique().tolist()) == {0, 1}


def test_illegal_action_raises():
    env = TransformedEnv(masked_counting_env(), ActionMask())
    td = env.reset()  # count 0: only action 0
    assert td["action_mask"].tolist() == [True, False]
    td.set("action", torch.tensor(1))
    with pytest.raises(ValueError, match=r"action\(s\) \[1\] under 'action' are not allowed by 'action_mask'"):
        env.step(td)
    td.set("action", torch.tensor(0))
    assert env.step(td)["next", "observation"].tolist() == [1.0]


class _OneHotMask(Transform):
    """Turns CountingEnv's Categorical action into a one-hot one, and writes a mask allowing action 1."""

    def __init__(self):
        super().__init__(in_keys_inv=["action"])

    def _inv_apply_transform(self, x):
        return x.long().argmax(-1)

    def _inv_transform_spec(self, spec):
        return OneHot(spec.n, (*spec.shape, spec.n))

    def _call(self, td):
        return td.set("action_mask", torch.tensor([False, True]).expand(*td.batch_size, 2))

    def transform_observation_spec(self, spec):
        spec["action_mask"] = Binary(2, (*spec.shape, 2), torch.bool)
        return spec


def test_one_hot_actions():
    env = TransformedEnv(TransformedEnv(CountingEnv(batch_size=[4]), _OneHotMask()), ActionMask())
    assert isinstance(env.action_spec, OneHot)
    td = env.rand_action(env.reset())
    assert td["action"].tolist() == [[False, True]] * 4
    td.set("action", torch.tensor([[True, False]] + [[False, True]] * 3))
    with pytest.raises(ValueError, match=r"\[0\] under 'action'"):
        env.step(td)


def test_spec_is_a_categorical_and_unbatched_copies_draw_from_all():
    env = TransformedEnv(masked_counting_env((2,)), ActionMask())
    env.reset()
    assert isinstance(env.action_spec, Categorical) and env.action_spec.n == 2
    assert env.action_spec_unbatched.shape == () and env.action_spec_unbatched.rand().shape == ()


def test_a_mask_with_no_allowed_action_is_reported():
    env = TransformedEnv(masked_counting_env(), ActionMask())
    env.reset()
    env.transform[0]._holder.mask = torch.tensor([False, False])
    with pytest.raises(ValueError, match="allows no action"):
        env.rand_action(TensorDict({}, []))


def test_bad_configurations():
    with pytest.raises(TransformKeyError, match="mask_key 'action_mask' is not a key"):
        TransformedEnv(CountingEnv(), ActionMask())
    with pytest.raises(TypeError, match="Categorical or a OneHot, got Bounded"):
        TransformedEnv(ContinuousCountingEnv(), ActionMask(mask_key="observation"))


def test_repr():
    assert repr(ActionMask()) == "ActionMask(action_key='action', mask_key='action_mask')"
