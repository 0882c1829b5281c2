"""Errors that name the problem (issue 13 item 11): float done flags, bad batch sizes, bad seeds."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlbench.envs import CartPoleEnv, EnvBase, GymEnv, SerialEnv, SpecCheckError, check_env_specs
from rlbench.specs import Categorical, Unbounded
from rlbench.testing import CountingEnv


class FloatDoneEnv(EnvBase):
    """Returns float ``terminated``/``truncated`` flags (and no ``done``): a common porting slip."""

    def __init__(self, on_reset: bool = False):
        super().__init__(batch_size=[])
        self.observation_spec = Unbounded((1,))
        self.action_spec = Categorical(2)
        self.on_reset = on_reset

    def _reset(self, td):
        out = TensorDict(observation=torch.zeros(1))
        if self.on_reset:
            out.set("terminated", torch.zeros(1))
        return out

    def _step(self, td):
        return TensorDict(observation=torch.zeros(1), reward=torch.zeros(1), terminated=torch.zeros(1),
                          truncated=torch.zeros(1))

    def _set_seed(self, seed):
        pass


def test_check_env_specs_reports_float_done_flags():
    with pytest.raises(SpecCheckError) as info:
        check_env_specs(FloatDoneEnv())
    found = {(m.key, m.problem): m for m in info.value.mismatches}
    m = found[(("next", "terminated"), "dtype")]
    assert m.expected == "torch.bool" and m.got == "torch.float32"
    assert "bool" in m.hint and "_step" in m.hint
    assert "bitwise_or" not in str(info.value)


def test_check_env_specs_reports_float_done_flags_at_reset():
    mismatches = check_env_specs(FloatDoneEnv(on_reset=True), raise_error=False)
    assert [(m.key, m.problem, m.got) for m in mismatches] == [(("terminated",), "dtype", "torch.float32")]
    assert "_reset" in mismatches[0].hint


def test_step_with_float_done_flags_names_the_key():
    env = FloatDoneEnv()
    with pytest.raises(TypeError, match=r"'terminated'.*torch.float32.*bool"):
        env.step(env.rand_action(env.reset()))


@pytest.mark.parametrize("batch_size", [[-1], [2, -3], [0], [2.5], "ab"])
def test_bad_batch_size_is_named(batch_size):
    for make in (lambda: CartPoleEnv(batch_size=batch_size), lambda: CountingEnv(batch_size=batch_size)):
        with pytest.raises((ValueError, TypeError), match=r"batch_size") as info:
            make()
        msg = str(info.value)
        assert repr(batch_size) in msg and "positive" in msg, msg


def test_int_batch_size_means_one_dim():
    assert CartPoleEnv(batch_size=4).batch_size == (4,)


@pytest.mark.parametrize("seed", [2**70, -1, 1.5, "7"])
def test_bad_seed_is_named(seed):
    for env in (CartPoleEnv(), CountingEnv(), GymEnv("CartPole-v1"), SerialEnv(2, CountingEnv)):
        with pytest.raises((ValueError, TypeError), match=r"set_seed") as info:
            env.set_seed(seed)
        msg = str(info.value)
        assert repr(seed) in msg and "2**63" in msg, msg
        env.close()


def test_good_seeds_still_work():
    env = CartPoleEnv()
    assert env.set_seed(2**63 - 1) == 2**63 - 1
    assert env.set_seed(torch.tensor(3).item()) == 3
    import numpy as np

    assert env.set_seed(np.int64(5)) == 5
    assert env.set_seed(None) is None
    # SerialEnv seeds sub-env i with seed + i: the largest seed still fits every sub-env
    serial = SerialEnv(3, CountingEnv)
    serial.set_seed(2**63 - 3)
    with pytest.raises(ValueError, match=r"2\*\*63"):
        serial.set_seed(2**63 - 2)
