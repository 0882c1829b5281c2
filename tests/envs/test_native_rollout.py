"""The fused random-action rollout of the torch-native classic envs is exactly the generic loop's.

``ClassicControlEnv.rollout(T, break_when_any_done=False)`` without a policy skips the TensorDict
plumbing of ``EnvBase.rollout`` (issue 17). Each test runs two envs built with the same seed, one with
the fused loop switched off (``_FUSED_ROLLOUT = False``: the generic ``step_and_maybe_reset`` loop), and
requires bit-identical data: same keys, dtypes, shapes, values and memory layout, and the same
generators afterwards (a second rollout matches too).
"""
from __future__ import annotations

import pytest
import torch

from rlbench.envs.classic import (
    AcrobotEnv,
    CartPoleEnv,
    MountainCarContinuousEnv,
    MountainCarEnv,
    PendulumEnv,
)

ALL = [CartPoleEnv, PendulumEnv, MountainCarEnv, MountainCarContinuousEnv, AcrobotEnv]


def _pair(cls, **kw):
    fused, generic = cls(seed=3, **kw), cls(seed=3, **kw)
    generic._FUSED_ROLLOUT = False
    return fused, generic


def _assert_same(a, b):
    assert a.batch_size == b.batch_size and type(a.batch_size) is torch.Size
    assert a.view(-1).shape == (a.numel(),)  # TensorDict ops work on the result
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in b.keys(True, True):
        x, y = a.get(key), b.get(key)
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert x.is_contiguous() and y.is_contiguous(), key
        assert torch.equal(x, y), key


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("batch_size", [[5], [2, 3]], ids=str)
@pytest.mark.parametrize("limit", [7, None], ids=["limit7", "nolimit"])
def test_fused_rollout_equals_generic_loop(cls, batch_size, limit):
    fused, generic = _pair(cls, batch_size=batch_size, max_episode_steps=limit)
    a = fused.rollout(40, break_when_any_done=False)
    b = generic.rollout(40, break_when_any_done=False)
    _assert_same(a, b)
    if limit is not None:
        assert b["next", "done"].any()  # resets happened inside the rollout
        assert (a["step_count"] == 0).any(-1).sum() > batch_size[0]
    # the generators (actions, reset states) were left in the same state
    _assert_same(fused.rollout(9, break_when_any_done=False), generic.rollout(9, break_when_any_done=False))
    _assert_same(fused.rollout(1, break_when_any_done=False), generic.rollout(1, break_when_any_done=False))


def test_fused_rollout_on_cartpole_with_natural_terminations():
    fused, generic = _pair(CartPoleEnv, batch_size=[64])
    a, b = fused.rollout(120, break_when_any_done=False), generic.rollout(120, break_when_any_done=False)
    assert b["next", "terminated"].sum() > 64  # random pushes topple most poles, several times
    _assert_same(a, b)
    # each recorded transition is what env.step computes from the recorded root state and action
    t = 57
    step = CartPoleEnv(batch_size=[64]).step(a[:, t].exclude("next"))["next"]
    for key in ("observation", "state", "step_count", "reward", "terminated", "truncated", "done"):
        assert torch.equal(step[key], a[:, t]["next", key]), key


def test_fused_rollout_is_taken_only_for_random_actions(monkeypatch):
    env = CartPoleEnv(batch_size=[4], seed=0)

    def no_step(td):
        raise AssertionError("the fused rollout must not call step")

    monkeypatch.setattr(env, "step", no_step)
    monkeypatch.setattr(env, "step_and_maybe_reset", no_step)
    assert env.rollout(5, break_when_any_done=False).batch_size == (4, 5)
    with pytest.raises(AssertionError, match="must not call step"):  # a policy: the generic loop
        env.rollout(5, policy=env.rand_action, break_when_any_done=False)
    with pytest.raises(AssertionError, match="must not call step"):  # stopping at the first done: generic
        env.rollout(5)


def test_subclass_that_changes_the_step_gets_the_generic_rollout():
    class Doubled(CartPoleEnv):
        def _step(self, td):
            out = super()._step(td)
            out.set("reward", out.get("reward") * 2)
            return out

    td = Doubled(batch_size=[3], seed=0).rollout(4, break_when_any_done=False)
    assert (td["next", "reward"] == 2).all()
