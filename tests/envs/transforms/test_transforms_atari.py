"""SignTransform, TimeMaxPool and EndOfLifeTransform: exact values on counting envs."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import EndOfLifeTransform, SignTransform, TimeMaxPool, TransformedEnv
from rlbench.envs.transforms import FrameSkipTransform
from rlbench.specs import Bounded
from rlbench.testing import CountingEnv


def test_sign_values_dtype_and_spec():
    t = SignTransform()
    td = TensorDict({"reward": torch.tensor([[-2.5], [0.0], [3.0], [0.01]])}, [4])
    assert t(td)["reward"].squeeze(-1).tolist() == [-1.0, 0.0, 1.0, 1.0]
    env = TransformedEnv(CountingEnv(max_steps=3), SignTransform())
    spec = env.reward_spec
    assert isinstance(spec, Bounded) and spec.low.item() == -1 and spec.high.item() == 1
    assert env.rollout(3)["next", "reward"].squeeze(-1).tolist() == [1.0, 1.0, 1.0]


def _pool_with(values):
    """Feed TimeMaxPool a reset frame then step frames; return what it writes at each step."""
    pool = TimeMaxPool(in_keys=["x"], T=2)
    pool._reset(None, TensorDict({"x": torch.tensor([values[0]])}, []))
    return [pool._step(None, TensorDict({"x": torch.tensor([v])}, []))["x"].item() for v in values[1:]]


def test_time_max_pool_is_the_max_of_the_last_two_frames():
    assert _pool_with([5.0, 2.0, 1.0, 4.0, 3.0]) == [5.0, 2.0, 4.0, 4.0]
    pool3 = TimeMaxPool(in_keys=["x"], T=3)
    pool3._reset(None, TensorDict({"x": torch.tensor([0.0])}, []))
    out = [pool3._step(None, TensorDict({"x": torch.tensor([v])}, []))["x"].item() for v in [9.0, 1.0, 2.0, 0.0]]
    assert out == [9.0, 9.0, 9.0, 2.0]
    with pytest.raises(ValueError, match="T must be >= 1"):
        TimeMaxPool(T=0)


def test_time_max_pool_before_frame_skip_pools_the_skipped_frames():
    class Down(CountingEnv):  # observation 10 - count: the max of the last two frames is the older one
        def _step(self, td):
            out = super()._step(td)
            out.set("observation", 10 - out.get("observation"))
            return out

    env = TransformedEnv(Down(max_steps=9), TimeMaxPool(in_keys=["observation"]))
    env.append_transform(FrameSkipTransform(3))
    obs = env.rollout(3)["next", "observation"].squeeze(-1).tolist()
    assert obs == [8.0, 5.0, 2.0]  # frames 9,8,7 -> max(8, 7); 6,5,4 -> max(5, 4); 3,2,1 -> max(2, 1)


def test_end_of_life_flags_each_loss_and_the_end():
    env = TransformedEnv(CountingEnv(max_steps=7),
                         EndOfLifeTransform(lives_fn=lambda e: 4 - int(e.count.item()) // 3))
    td = env.rollout(7)
    assert td["next", "end_of_life"].squeeze(-1).tolist() == [False, False, True, False, False, True, True]
    assert td["next", "done"].squeeze(-1).tolist() == [False] * 6 + [True]  # the game is not reset
    assert not env.reset()["end_of_life"].item()


def test_end_of_life_without_an_ale_env_says_what_to_pass():
    with pytest.raises(TypeError, match="not an ALE env.*lives_fn"):
        TransformedEnv(CountingEnv(), EndOfLifeTransform()).reset()
