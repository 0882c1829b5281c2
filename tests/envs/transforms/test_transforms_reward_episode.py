"""Reward and episode transforms against independent computations."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import check_env_specs
from rlbench.envs.transforms import (
    Compose,
    DoubleToFloat,
    FrameSkipTransform,
    InitTracker,
    NoopResetEnv,
    RewardClipping,
    RewardScaling,
    RewardSum,
    StepCounter,
    TransformedEnv,
    TransformKeyError,
)
from rlbench.specs import Bounded, Unbounded
from rlbench.testing import CountingEnv, DoubleCountingEnv


class VaryingRewardEnv(CountingEnv):
    """Reward = the new count (1, 2, 3, ...), so sums and scalings are not all-ones."""

    def _step(self, td):
        out = super()._step(td)
        return out.set("reward", out.get("observation").clone())


def _batched(cls=VaryingRewardEnv):
    return cls(max_steps=torch.tensor([[2], [3], [5]]), batch_size=[3])


def test_reward_scaling_and_clipping_values_and_specs():
    env = TransformedEnv(VaryingRewardEnv(max_steps=4), RewardScaling(loc=1.0, scale=0.5))
    assert env.rollout(4)["next", "reward"].squeeze(-1).tolist() == [1.5, 2.0, 2.5, 3.0]
    env = TransformedEnv(VaryingRewardEnv(max_steps=4), RewardScaling(loc=1.0, scale=0.5, standard_normal=True))
    assert env.rollout(4)["next", "reward"].squeeze(-1).tolist() == [0.0, 2.0, 4.0, 6.0]
    env = TransformedEnv(VaryingRewardEnv(max_steps=4), RewardClipping(clamp_max=2.5))
    assert env.rollout(4)["next", "reward"].squeeze(-1).tolist() == [1.0, 2.0, 2.5, 2.5]
    spec = env.reward_spec
    assert isinstance(spec, Bounded) and spec.high.item() == 2.5 and spec.low.item() == -float("inf")
    check_env_specs(env)


def test_reward_sum_is_the_cumulative_sum_per_episode_with_partial_resets():
    env = TransformedEnv(_batched(), RewardSum())
    td = env.rollout(9, break_when_any_done=False)
    reward, done = td["next", "reward"].squeeze(-1), td["next", "done"].squeeze(-1)
    expected = torch.zeros_like(reward)
    for i in range(3):
        total = 0.0
        for t in range(9):
            total += reward[i, t].item()
            expected[i, t] = total
            if done[i, t]:
                total = 0.0
    torch.testing.assert_close(td["next", "episode_reward"].squeeze(-1), expected)
    # the root value is the return so far, before this step's reward
    torch.testing.assert_close(td["episode_reward"].squeeze(-1), expected - reward)


def test_reward_sum_rejects_an_existing_key():
    with pytest.raises(TransformKeyError, match="already has"):
        TransformedEnv(CountingEnv(), RewardSum(out_keys=["total"]))


def test_step_counter_truncation_flags():
    env = TransformedEnv(CountingEnv(max_steps=100), StepCounter(max_steps=3))
    td = env.rollout(7, break_when_any_done=False)
    nxt = td["next"]
    assert nxt["step_count"].squeeze(-1).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert nxt["truncated"].squeeze(-1).tolist() == [False, False, True] * 2 + [False]
    assert torch.equal(nxt["done"], nxt["truncated"]) and not nxt["terminated"].any()
    assert td["step_count"].squeeze(-1).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_step_counter_keeps_termination_and_partial_resets():
    env = TransformedEnv(_batched(CountingEnv), StepCounter(max_steps=4))
    td = env.rollout(8, break_when_any_done=False)
    count, nxt = td["next", "step_count"].squeeze(-1), td["next"]
    assert count[0].tolist() == [1, 2] * 4  # terminates at 2 before the limit
    assert count[2].tolist() == [1, 2, 3, 4, 1, 2, 3, 4]  # truncated at 4 (its own end is 5)
    assert nxt["truncated"][2].squeeze(-1).tolist() == [False, False, False, True] * 2
    assert nxt["terminated"][0].squeeze(-1).tolist() == [False, True] * 4


def test_step_counter_key_clash_is_explained():
    class StepCountEnv(CountingEnv):
        def __init__(self):
            super().__init__()
            self.observation_spec["step_count"] = Unbounded((1,), torch.int64)

    with pytest.raises(TransformKeyError, match="step_count_key"):
        TransformedEnv(StepCountEnv(), StepCounter())


def test_init_tracker_with_partial_resets():
    env = TransformedEnv(_batched(CountingEnv), InitTracker())
    td = env.rollout(6, break_when_any_done=False)
    is_init = td["is_init"].squeeze(-1)
    starts = torch.ones_like(is_init)
    starts[:, 1:] = td["next", "done"][:, :-1].squeeze(-1)
    assert torch.equal(is_init, starts)
    assert not td["next", "is_init"].any()


def test_stateful_transforms_on_a_flat_sample_count_as_first_steps():
    td = TensorDict({"observation": torch.zeros(4, 1),
                     "next": {"reward": torch.full((4, 1), 2.0), "done": torch.zeros(4, 1, dtype=torch.bool)}}, [4])
    out = Compose(RewardSum(), StepCounter(), InitTracker())(td)
    assert out["next", "episode_reward"].eq(2).all() and out["episode_reward"].eq(0).all()
    assert out["step_count"].eq(0).all() and out["next", "step_count"].eq(1).all()
    assert out["is_init"].all() and not out["next", "is_init"].any()


def test_noop_reset_steps_the_parent():
    env = TransformedEnv(CountingEnv(max_steps=100), Compose(NoopResetEnv(noops=3), StepCounter()))
    counts = {int(env.reset()["observation"]) for _ in range(40)}
    assert counts == {0, 1, 2, 3}
    # the step counter after the no-ops starts at 0: the no-ops happen before the episode we count
    assert env.reset()["step_count"].item() == 0
    # episodes that end during the no-ops are reset
    env = TransformedEnv(CountingEnv(max_steps=2), NoopResetEnv(noops=5, random=False))
    assert env.reset()["observation"].item() == 1.0  # 2 steps, reset, 2 steps, reset, 1 step


def test_seeded_noop_resets_reproduce_without_the_global_rng():
    def counts(seed, global_seed):
        env = TransformedEnv(CountingEnv(max_steps=100), Compose(NoopResetEnv(noops=30), StepCounter()))
        env.set_seed(seed)
        torch.manual_seed(global_seed)  # a seeded env must not depend on it
        return [int(env.reset()["observation"]) for _ in range(12)]

    assert counts(0, 1) == counts(0, 2)
    assert counts(0, 1) != counts(1, 1)  # another seed, other no-op counts
    # unseeded: torch's global RNG, as before
    env = TransformedEnv(CountingEnv(max_steps=100), NoopResetEnv(noops=30))
    torch.manual_seed(5)
    first = [int(env.reset()["observation"]) for _ in range(6)]
    torch.manual_seed(5)
    assert [int(env.reset()["observation"]) for _ in range(6)] == first
    env.set_seed(7)
    env.set_seed(None)  # back to the global RNG
    assert env.transform[0].generator is None


def test_noop_reset_skips_partial_resets():
    env = TransformedEnv(_batched(CountingEnv), NoopResetEnv(noops=2, random=False))
    td = env.rollout(5, break_when_any_done=False)
    # sub-env 0 (episodes of 2 steps) ends during the 2 no-ops and is reset in place
    assert td["observation"][:, 0].squeeze(-1).tolist() == [0.0, 2.0, 2.0]
    # later partial resets take no no-ops: the reset sub-envs start from count 0
    resets = td["next", "done"][:, :-1].squeeze(-1)
    assert td["observation"][:, 1:][resets].eq(0).all()
    check_env_specs(env)


def test_frame_skip_sums_rewards_and_stops_at_done():
    env = TransformedEnv(VaryingRewardEnv(max_steps=5), FrameSkipTransform(2))
    td = env.rollout(10)
    assert td["next", "observation"].squeeze(-1).tolist() == [2.0, 4.0, 5.0]
    assert td["next", "reward"].squeeze(-1).tolist() == [1.0 + 2.0, 3.0 + 4.0, 5.0]
    assert td["next", "done"].squeeze(-1).tolist() == [False, False, True]


def test_frame_skip_after_other_transforms_and_inverse():
    env = TransformedEnv(DoubleCountingEnv(max_steps=7),
                         Compose(StepCounter(), DoubleToFloat(), FrameSkipTransform(3), RewardSum()))
    td = env.rollout(10)
    # StepCounter sits before the frame skip: it counts every repeated step
    assert td["next", "step_count"].squeeze(-1).tolist() == [3, 6, 7]
    assert td["next", "episode_reward"].squeeze(-1).tolist() == [3.0, 6.0, 7.0]
    # the base env received every repeat of the (float32 -> float64) action
    total = td["action"].double().sum(-1)
    expected = torch.stack([3 * total[0], 3 * total[0] + 3 * total[1], 3 * total[0] + 3 * total[1] + total[2]])
    torch.testing.assert_close(td["next", "total"].squeeze(-1).double(), expected, rtol=1e-5, atol=1e-5)
    check_env_specs(env)


def test_frame_skip_widens_a_bounded_reward_spec():
    env = CountingEnv()
    env.reward_spec = Bounded(-1.0, 1.0, (1,))
    assert TransformedEnv(env, FrameSkipTransform(4)).reward_spec.high.item() == 4.0
