"""The collector's fused loop (rlbench.collectors._fused) gives exactly the generic loop's batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlbench.collectors import Collector
from rlbench.envs import GymEnv, SerialEnv, gym_vector, serial_gym


class _Argmax(torch.nn.Module):
    def __init__(self, outputs: int = 1):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
        self.outputs = outputs

    def forward(self, obs):
        logits = self.net(obs)
        action = logits.argmax(-1)
        if self.outputs == 1:
            return action
        if self.outputs == "tuple":
            return (action,)
        return action, logits


def _policy(kind):
    if kind is None:
        return None
    if kind == "two_outputs":
        return TensorDictModule(_Argmax(2), in_keys=["observation"], out_keys=["action", "logits"])
    if kind == "tuple":
        return TensorDictModule(_Argmax("tuple"), in_keys=["observation"], out_keys=["action"])
    if kind == "flags_in":  # reads a done flag too: the fused loop must hand it over
        net = _Argmax()
        return TensorDictModule(lambda obs, done: net(obs) + done.squeeze(-1).long() * 0,
                                in_keys=["observation", "done"], out_keys=["action"])
    return TensorDictModule(_Argmax(), in_keys=["observation"], out_keys=["action"])


MAKERS = {
    "gym_unbatched": lambda: GymEnv("CartPole-v1"),
    "gym_vec1": lambda: GymEnv("CartPole-v1", num_envs=1),
    "gym_vec5": lambda: GymEnv("CartPole-v1", num_envs=5),
    "serial1": lambda: SerialEnv(1, lambda: GymEnv("CartPole-v1")),
    "serial3": lambda: SerialEnv(3, lambda: GymEnv("CartPole-v1")),
    # observations over RolloutWriter's grouping limit get their own [*batch, T, ...] buffer
    "gym_vec300": lambda: GymEnv("CartPole-v1", num_envs=300),
}


def _count_fused_steps(monkeypatch):
    calls = []
    for cls in (gym_vector.VectorFusedStepper, serial_gym.SerialFusedStepper):
        def step(self, action, _orig=cls.step):
            calls.append(1)
            return _orig(self, action)
        monkeypatch.setattr(cls, "step", step)
    return calls


def _batches(make, policy_kind, fused: bool, n_batches: int = 4):
    env = make()
    n = env.batch_size.numel()
    torch.manual_seed(1)  # random actions of policy=None come from the env's seeded generator anyway
    collector = Collector(env, _policy(policy_kind), frames_per_batch=60 * n, seed=3)
    collector._fused = fused
    out = [collector.collect() for _ in range(n_batches)]
    return out, collector


@pytest.mark.parametrize("policy_kind", ["mlp", None, "two_outputs", "tuple", "flags_in"])
@pytest.mark.parametrize("name", list(MAKERS))
def test_fused_batches_identical_to_generic(name, policy_kind, monkeypatch):
    if name == "gym_vec300" and policy_kind not in ("mlp", None):
        pytest.skip("the buffer layout does not depend on the policy")
    calls = _count_fused_steps(monkeypatch)
    fused, col_f = _batches(MAKERS[name], policy_kind, True)
    took_fused = len(calls)
    generic, col_g = _batches(MAKERS[name], policy_kind, False)
    assert len(calls) == took_fused  # the generic run never enters the fused loop
    # the fused loop runs for batched gym envs with a plain policy (or random actions), also one writing
    # more keys than the action (issue 17: "two_outputs" writes logits too)
    expect_fused = name != "gym_unbatched"
    assert (took_fused > 0) == expect_fused
    assert sum(int(b["next", "done"].sum()) for b in generic) > 2  # several resets, inside and across batches
    for a, b in zip(fused, generic):
        assert a.batch_size == b.batch_size
        assert list(a.keys(True, True)) == list(b.keys(True, True))
        for key in b.keys(True, True):
            assert a.get(key).dtype == b.get(key).dtype
            assert torch.equal(a.get(key), b.get(key)), key
    # the state carried to the next batch is the same too
    assert list(col_f._td.keys()) == list(col_g._td.keys())
    for key in col_g._td.keys():
        assert torch.equal(col_f._td.get(key), col_g._td.get(key)), key
    if isinstance(col_g.env, SerialEnv):  # the kernel's record for partial resets
        last_f, last_g = col_f.env._last, col_g.env._last
        assert list(last_f.keys()) == list(last_g.keys())
        for key in last_g.keys():
            assert torch.equal(last_f.get(key), last_g.get(key)), key


@pytest.mark.parametrize("name", ["gym_vec5", "serial3"])
def test_fused_out_of_range_action_raises_like_generic(name):
    policy = TensorDictModule(lambda obs: torch.full(obs.shape[:-1], 7), in_keys=["observation"],
                              out_keys=["action"])
    for fused in (True, False):
        collector = Collector(MAKERS[name](), policy, frames_per_batch=30 * MAKERS[name]().batch_size.numel())
        collector._fused = fused
        with pytest.raises(ValueError, match="action"):
            collector.collect()
        collector._policy_checked = True  # also from the fused loop's first step, not only the checked one
        with pytest.raises(ValueError, match="action"):
            collector.collect()


@pytest.mark.parametrize("name", ["gym_vec5", "serial3"])
def test_fused_hands_over_a_wrong_dtype_action(name):
    # a float action switches to the generic step from the second batch on, which reports it
    state = {"calls": 0}

    def act(obs):
        state["calls"] += 1
        a = torch.zeros(obs.shape[:-1], dtype=torch.int64)
        return a.float() if state["calls"] > 40 else a

    env = MAKERS[name]()
    collector = Collector(env, TensorDictModule(act, in_keys=["observation"], out_keys=["action"]),
                          frames_per_batch=30 * env.batch_size.numel())
    collector.collect()
    with pytest.raises(ValueError, match="action"):
        collector.collect()


def test_rlbench_actor_and_value_operator_take_the_direct_call():
    """rlbench.modules' Actor (unless safe) and ValueOperator are plain modules: the fast path applies."""
    from rlbench.collectors._policy_call import direct_call as _direct_call
    from rlbench.modules import MLP, Actor, ValueOperator
    from rlbench.specs import Bounded

    net = MLP(in_features=4, out_features=1, num_cells=[8])
    td = TensorDict(observation=torch.randn(3, 4), batch_size=[3])
    for policy in (Actor(net), ValueOperator(net)):
        call = _direct_call(policy)
        assert call is not None, type(policy).__name__
        assert torch.equal(call(td.clone())[policy.out_keys[0]], policy(td.clone())[policy.out_keys[0]])
    safe = Actor(net, spec=Bounded(-1.0, 1.0, shape=(1,)), safe=True)
    assert _direct_call(safe) is None


def test_both_steppers_follow_the_one_protocol():
    """GymWrapper and SerialEnv hand out FusedStepper implementations; envs without a fast path give None."""
    from rlbench.envs import TransformedEnv
    from rlbench.envs.fused import FusedStepper
    from rlbench.envs.transforms import StepCounter
    from rlbench.testing import CountingEnv

    for name in ("gym_vec5", "serial3"):
        env = MAKERS[name]()
        env.reset()
        stepper = env.fused_stepper()
        assert isinstance(stepper, FusedStepper), name
        assert stepper.key == "observation" and stepper.shape == (env.batch_size.numel(), 1)
        action = env.action_spec.zero()
        assert stepper.accepts(action) and not stepper.accepts(action.float()) and not stepper.accepts(action[:1])
        next_obs, reward, term, trunc, done, root_obs = stepper.step(action)
        assert next_obs.shape == (env.batch_size.numel(), 4) and reward.dtype == np.float32
        assert np.array_equal(done, term | trunc)
        root = stepper.finish(root_obs)
        assert torch.equal(root["observation"], torch.from_numpy(root_obs)) and not root["done"].any()
    for env in (GymEnv("CartPole-v1"), CountingEnv(batch_size=[2]),
                TransformedEnv(GymEnv("CartPole-v1", num_envs=2), StepCounter())):
        assert env.fused_stepper() is None, type(env).__name__


@pytest.mark.parametrize("name", ["gym_vec5", "serial3"])
def test_overridden_rand_action_keeps_random_steps_generic(name):
    """An env subclass that draws its random actions differently never has them drawn by the fused loop."""
    base = type(MAKERS[name]())

    class Zeros(base):
        def rand_action(self, td=None):
            return super().rand_action(td).set(self.action_key, self.action_spec.zero())

    env = MAKERS[name]()
    env.__class__ = Zeros
    env.reset()
    assert env.fused_stepper(random=True) is None and env.fused_stepper() is not None
    batch = Collector(env, None, frames_per_batch=20 * env.batch_size.numel()).collect()
    assert not batch["action"].any()
