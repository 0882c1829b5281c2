"""The EnvBase contract (reset, step, step_mdp, partial resets, rollout) and its error messages.

Uses rlbench.testing's CountingEnv (observation = steps since reset, done at ``max_steps``) and small
broken subclasses defined here to provoke each error ``step`` and ``check_env_specs`` must explain.
"""
from __future__ import annotations

import re

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlbench.envs import EnvBase, SpecCheckError, SpecMismatch, check_env_specs, step_mdp
from rlbench.specs import Bounded, Categorical, Composite, Unbounded
from rlbench.testing import ContinuousCountingEnv, CountingEnv

BATCHES = pytest.mark.parametrize("batch", [(), (3,), (2, 3)], ids=["b0", "b3", "b2x3"])
ROOT_KEYS = {"observation", "total", "done", "terminated", "truncated", "action"}
NEXT_KEYS = {("next", k) for k in ("observation", "total", "reward", "done", "terminated", "truncated")}


def _obs(td, key="observation"):
    return td.get(key).squeeze(-1).tolist()


# ------------------------------------------------------------------------------- reset / step
@BATCHES
def test_reset_structure(batch):
    env = CountingEnv(batch_size=batch)
    td = env.reset()
    assert td.batch_size == batch
    assert set(td.keys()) == {"observation", "total", "done", "terminated", "truncated"}
    for k in ("done", "terminated", "truncated"):
        assert td[k].shape == (*batch, 1) and td[k].dtype == torch.bool and not td[k].any()
    assert env.observation_spec.is_in(td) and env.done_spec.is_in(td)


@BATCHES
def test_step_writes_next(batch):
    env = CountingEnv(batch_size=batch)
    td = env.rand_action(env.reset())
    action = td["action"].clone()
    out = env.step(td)
    assert out is td  # step writes into the given TensorDict
    assert set(td.keys(True, True)) == ROOT_KEYS | NEXT_KEYS
    assert torch.equal(td["action"], action)
    assert (td["next", "observation"] == 1).all() and (td["observation"] == 0).all()
    assert td["next", "reward"].shape == (*batch, 1)
    for k in ("done", "terminated", "truncated"):
        assert td["next", k].shape == (*batch, 1) and td["next", k].dtype == torch.bool
    assert env.output_spec.is_in(td["next"])


def test_done_flags_are_derived():
    class OnlyTerminated(CountingEnv):
        def _step(self, td):
            return super()._step(td).exclude("done", "truncated")

    class OnlyDone(CountingEnv):
        def _step(self, td):
            return super()._step(td).exclude("terminated", "truncated")

    for cls in (OnlyTerminated, OnlyDone):
        env = cls(max_steps=1, batch_size=[2])
        td = env.step(env.rand_action(env.reset()))
        assert td["next", "done"].all() and td["next", "terminated"].all() and not td["next", "truncated"].any()


# ------------------------------------------------------------------------------------ step_mdp
def _stepped():
    env = CountingEnv(batch_size=[2])
    td = env.rand_action(env.reset())
    td["hidden"] = torch.ones(2, 4)  # e.g. a recurrent policy's state
    return env.step(td)


def test_step_mdp_default():
    td = _stepped()
    nxt = step_mdp(td)
    assert set(nxt.keys()) == {"observation", "total", "done", "terminated", "truncated", "hidden"}
    assert nxt["observation"] is td["next", "observation"]  # moved, not copied
    assert nxt["hidden"] is td["hidden"]
    assert "next" in td.keys() and "action" in td.keys()  # the input is left alone


def test_step_mdp_options():
    td = _stepped()
    assert set(step_mdp(td, keep_other=False).keys()) == {"observation", "total", "done", "terminated", "truncated"}
    assert "reward" in step_mdp(td, exclude_reward=False).keys()
    assert "action" in step_mdp(td, exclude_action=False).keys()
    only = step_mdp(td, keep_other=False, exclude_action=False, exclude_reward=False)
    assert {"action", "reward"} <= set(only.keys()) and "hidden" not in only.keys()
    # a reward left at the root by an earlier step_mdp(exclude_reward=False) is not carried on
    td2 = td.clone().set("reward", torch.zeros(2, 1))
    assert "reward" not in step_mdp(td2).keys()


def test_step_mdp_custom_keys_and_missing_next():
    td = TensorDict(
        {"obs": torch.zeros(1), "act": torch.zeros(1), "next": {"obs": torch.ones(1), "rew": torch.ones(1)}}, []
    )
    assert set(step_mdp(td, action_key="act", reward_key="rew").keys()) == {"obs"}
    with pytest.raises(KeyError, match=r"step_mdp: the TensorDict has no 'next' entry .*call env.step\(td\) first"):
        step_mdp(TensorDict({"observation": torch.zeros(1)}, []))


# ------------------------------------------------------------------- step_and_maybe_reset
def test_step_and_maybe_reset_batched_partial():
    env = CountingEnv(max_steps=torch.tensor([1, 3]), batch_size=[2])
    td = env.rand_action(env.reset())
    td["hidden"] = torch.arange(2.0).unsqueeze(-1)
    td, root = env.step_and_maybe_reset(td)
    # sub-env 0 finished: the true final observation stays under "next"...
    assert _obs(td["next"]) == [1.0, 1.0] and td["next", "done"].squeeze(-1).tolist() == [True, False]
    # ... and the root of the next step holds its reset observation; sub-env 1 carries on
    assert _obs(root) == [0.0, 1.0]
    assert root["done"].squeeze(-1).tolist() == [False, False]
    assert "_reset" not in root.keys() and "action" not in root.keys() and "next" not in root.keys()
    assert torch.equal(root["hidden"], td["hidden"])  # other keys survive the partial reset
    td, root = env.step_and_maybe_reset(env.rand_action(root))
    assert _obs(td["next"]) == [1.0, 2.0] and _obs(root) == [0.0, 2.0]
    td, root = env.step_and_maybe_reset(env.rand_action(root))
    assert _obs(td["next"]) == [1.0, 3.0] and _obs(root) == [0.0, 0.0]


def test_step_and_maybe_reset_unbatched():
    env = CountingEnv(max_steps=1)
    td, root = env.step_and_maybe_reset(env.rand_action(env.reset()))
    assert td["next", "observation"].item() == 1.0 and td["next", "done"].item()
    assert root["observation"].item() == 0.0 and not root["done"].item()


def test_partial_reset_keeps_done_flags_of_other_sub_envs():
    env = CountingEnv(batch_size=[2])
    td = env.reset()
    td["done"] = torch.tensor([[True], [True]])
    td["_reset"] = torch.tensor([[True], [False]])
    out = env.reset(td)
    assert out["done"].squeeze(-1).tolist() == [False, True] and "_reset" not in out.keys()


# ------------------------------------------------------------------------------------ rollout
@BATCHES
def test_rollout_shapes_no_break(batch):
    env = CountingEnv(max_steps=3, batch_size=batch)
    td = env.rollout(7, break_when_any_done=False)
    assert td.batch_size == (*batch, 7)
    assert set(td.keys(True, True)) == ROOT_KEYS | NEXT_KEYS
    assert td["next", "reward"].shape == (*batch, 7, 1) and td["action"].shape == (*batch, 7)
    first = td.reshape(-1, 7)[0] if batch else td
    # the final observation of an episode at its done step, then the reset observation at the root
    assert _obs(first["next"]) == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
    assert _obs(first) == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0]
    assert first["next", "done"].squeeze(-1).tolist() == [False, False, True] * 2 + [False]
    assert env.action_spec.is_in(td["action"]) and env.observation_spec.is_in(td)
    assert all(t.is_contiguous() for t in td.values(True, True))


@BATCHES
def test_rollout_break_when_any_done(batch):
    env = CountingEnv(max_steps=4, batch_size=batch)
    td = env.rollout(10)
    assert td.batch_size == (*batch, 4)
    assert td["next", "done"][..., -1, :].all() and not td["next", "done"][..., :-1, :].any()


def test_rollout_break_at_first_done_sub_env():
    env = CountingEnv(max_steps=torch.tensor([5, 2, 9]), batch_size=[3])
    assert env.rollout(10).batch_size == (3, 2)


def test_rollout_max_steps_reached_and_errors():
    env = CountingEnv(max_steps=100, batch_size=[2])
    assert env.rollout(5).batch_size == (2, 5)
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        env.rollout(0)
    with pytest.raises(ValueError, match=r"auto_reset=False\) needs the starting state as tensordict=..."):
        env.rollout(3, auto_reset=False)


def test_rollout_auto_reset_false_continues_from_tensordict():
    env = CountingEnv(max_steps=100, batch_size=[2])
    td = env.reset()
    for _ in range(2):
        td = step_mdp(env.step(env.rand_action(td)))
    out = env.rollout(3, auto_reset=False, tensordict=td)
    assert out.batch_size == (2, 3)
    assert _obs(out["next"][0]) == [3.0, 4.0, 5.0] and _obs(out[0]) == [2.0, 3.0, 4.0]


def test_rollout_with_callable_policy():
    env = CountingEnv(max_steps=100, batch_size=[2])

    def always_one(td):
        return td.set("action", torch.ones(2, dtype=torch.int64))

    out = env.rollout(4, policy=always_one)
    assert (out["action"] == 1).all() and _obs(out["next"][0], "total") == [1.0, 2.0, 3.0, 4.0]

    def in_place(td):  # returns None
        td.set("action", torch.zeros(2, dtype=torch.int64))

    out = env.rollout(3, policy=in_place)
    assert (out["next", "total"] == 0).all()


def test_rollout_with_tensordict_module_policy():
    env = ContinuousCountingEnv(max_steps=100, batch_size=[3], action_dim=2)

    class Half(torch.nn.Module):
        def forward(self, obs):
            return torch.full((*obs.shape[:-1], 2), 0.5)

    policy = TensorDictModule(Half(), in_keys=["observation"], out_keys=["action"])
    out = env.rollout(4, policy=policy)
    assert out.batch_size == (3, 4) and (out["action"] == 0.5).all()
    assert _obs(out["next"][0], "total") == [1.0, 2.0, 3.0, 4.0]


def test_rollout_keys_stable_across_batch_sizes_and_calls():
    keys = None
    for batch in ((), (2,), (2, 2)):
        env = CountingEnv(max_steps=2, batch_size=batch)
        for brk in (True, False):
            k = set(env.rollout(5, break_when_any_done=brk).keys(True, True))
            keys = keys or k
            assert k == keys
    fake = CountingEnv(batch_size=[2]).fake_tensordict()
    assert set(fake.keys(True, True)) == keys


def test_rollout_key_missing_or_changing_mid_rollout():
    class Flaky(CountingEnv):
        def _step(self, td):
            out = super()._step(td)
            if self.count.max() >= 3:
                out = out.exclude("total")
            return out

    with pytest.raises(KeyError, match=r"rollout: key \('next', 'total'\) was present at the first step but is "
                                       r"missing at step 2"):
        Flaky(max_steps=100, batch_size=[2]).rollout(5)

    class Growing(CountingEnv):
        def _step(self, td):
            out = super()._step(td)
            if self.count.max() >= 2:
                out.set("total", torch.zeros(*self.batch_size, 2))
            return out

    with pytest.raises(ValueError, match=r"rollout: key \('next', 'total'\) changed at step 1: the first step had "
                                         r"shape \(2, 1\), dtype torch.float32; now shape \(2, 2\)"):
        Growing(max_steps=100, batch_size=[2]).rollout(5)


def test_rollout_records_big_entries():
    class Pixels(CountingEnv):
        def _reset(self, td):
            return super()._reset(td).set("pixels", self.count.expand(*self.batch_size, 80).repeat(1, 80))

        def _step(self, td):
            return super()._step(td).set("pixels", self.count.expand(*self.batch_size, 80).repeat(1, 80))

    env = Pixels(max_steps=100, batch_size=[2])
    env.observation_spec["pixels"] = Unbounded((2, 6400))
    td = env.rollout(3)
    assert td["next", "pixels"].shape == (2, 3, 6400) and td["next", "pixels"][0, :, 0].tolist() == [1.0, 2.0, 3.0]
    td = env.rollout(3, break_when_any_done=True, policy=None)
    assert td["pixels"][1, :, -1].tolist() == [0.0, 1.0, 2.0]
    check_env_specs(env)


# ------------------------------------------------------------------ rand_action / seed / close
def test_rand_action():
    env = ContinuousCountingEnv(batch_size=[4], action_dim=3)
    td = env.rand_action()
    assert td.batch_size == (4,) and env.action_spec.is_in(td["action"]) and td["action"].shape == (4, 3)
    root = env.reset()
    assert env.rand_action(root) is root and "action" in root.keys()


def test_set_seed():
    class Seeded(CountingEnv):
        def _set_seed(self, seed):
            self.seen = seed

    env = Seeded()
    assert env.set_seed(7) == 7 and env.seen == 7
    assert check_env_specs(env, seed=3) == [] and env.seen == 3


def test_context_manager_and_close():
    with CountingEnv() as env:
        assert not env.is_closed
        env.rollout(2)
    assert env.is_closed
    env2 = CountingEnv()
    env2.close()
    assert env2.is_closed


def test_repr_and_spec_views():
    env = CountingEnv(batch_size=[2])
    r = repr(env)
    assert r.startswith("CountingEnv(\n    batch_size=(2,), device=cpu")
    assert "action_spec=Categorical(shape=(2,), n=2" in r
    assert env.done_keys == ["done", "terminated", "truncated"]
    assert env.full_action_spec["action"] is env.action_spec
    assert env.full_reward_spec["reward"] is env.reward_spec
    assert set(env.input_spec.keys()) == {"action"}
    assert set(env.output_spec.keys()) == {"observation", "total", "reward", "done", "terminated", "truncated"}


# ------------------------------------------------------------------------------ spec setters
def test_spec_setters_reject_shapes_without_batch():
    env = CountingEnv(batch_size=[4])
    with pytest.raises(ValueError, match=re.escape(
            "CountingEnv.action_spec has shape (2,) but the env's batch_size is (4,): spec shapes start with "
            "the batch size. Use e.g. spec.expand((4, 2)) or pass shape=(4, 2).")):
        env.action_spec = Bounded(-1.0, 1.0, (2,))
    with pytest.raises(ValueError, match=r"reward_spec has shape \(1,\) but the env's batch_size is \(4,\)"):
        env.reward_spec = Unbounded((1,))
    with pytest.raises(ValueError, match=r"observation_spec has shape \(3,\) .*spec.expand\(\(4, 3\)\)"):
        env.observation_spec = Unbounded((3,))
    with pytest.raises(ValueError, match=r"observation_spec must be a Composite with shape=batch_size=\(4,\), got "
                                         r"shape \(4, 2\): build it with Composite\(..., shape=\(4,\)\)"):
        env.observation_spec = Composite(observation=Unbounded((4, 2, 1)), shape=(4, 2))
    with pytest.raises(ValueError, match=r"state_spec has shape \(\) but the env's batch_size is \(4,\)"):
        env.state_spec = Composite()
    with pytest.raises(TypeError, match=r"state_spec must be a Composite, e.g. Composite\(key=spec, shape=\(4,\)\), "
                                        r"got Unbounded"):
        env.state_spec = Unbounded((4,))
    with pytest.raises(TypeError, match="done_spec must be a Composite"):
        env.done_spec = Unbounded((4, 1))
    with pytest.raises(TypeError, match="action_spec must be a Spec, got int"):
        env.action_spec = 3


def test_spec_setters_accept_and_wrap():
    env = CountingEnv(batch_size=[4])
    env.observation_spec = Unbounded((4, 3))  # a leaf spec becomes the "observation" entry
    assert isinstance(env.observation_spec, Composite) and env.observation_spec["observation"].shape == (4, 3)
    env.action_spec = Bounded(-1.0, 1.0, (2,)).expand(4, 2)
    assert env.action_spec.shape == (4, 2)


# ------------------------------------------------------------------------- bad actions in step
def _ready(env):
    return env.rand_action(env.reset())


def test_step_action_wrong_shape():
    env = CountingEnv(batch_size=[4])
    td = _ready(env).set("action", torch.zeros(4, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match=re.escape(
            "CountingEnv.step: action under key 'action' does not match action_spec: expected shape (4,), got "
            "(4, 1). The spec is Categorical(shape=(4,), n=2, dtype=int64, device=cpu).")):
        env.step(td)


def test_step_action_wrong_dtype():
    env = CountingEnv(batch_size=[4])
    td = _ready(env).set("action", torch.zeros(4))
    with pytest.raises(ValueError, match=r"action under key 'action' does not match action_spec: expected dtype "
                                         r"torch.int64, got torch.float32"):
        env.step(td)


def test_step_discrete_action_out_of_range():
    env = CountingEnv(batch_size=[4])
    td = _ready(env).set("action", torch.tensor([0, 1, 5, -1]))
    with pytest.raises(ValueError, match=r"action under key 'action' does not match action_spec: values outside "
                                         r"\{0, ..., 1\}, e.g. \[5, -1\]"):
        env.step(td)
    env.validate_actions = False  # range checks off: only key, shape and dtype are checked
    env.step(td)


def test_step_continuous_action_outside_bounds():
    env = ContinuousCountingEnv(batch_size=[2], action_dim=2)
    td = _ready(env).set("action", torch.tensor([[0.0, 1.5], [0.2, -0.3]]))
    with pytest.raises(ValueError, match=r"action under key 'action' does not match action_spec: values outside "
                                         r"\[-1, 1\], e\.g\. \[1\.5\]\. The spec is Bounded\(shape=\(2, 2\)"):
        env.step(td)
    td.set("action", torch.tensor([[0.0, float("nan")], [0.2, -0.3]]))
    with pytest.raises(ValueError, match=r"values outside \[-1, 1\], e\.g\. \[nan\]"):
        env.step(td)


def test_step_missing_action_key():
    env = CountingEnv(batch_size=[2])
    with pytest.raises(KeyError, match=re.escape(
            "CountingEnv.step: the TensorDict has no action under key 'action' (expected Categorical(shape=(2,), "
            "n=2, dtype=int64, device=cpu)); found keys ['done', 'observation', 'terminated', 'total', 'truncated']. "
            "Set td['action'] (e.g. env.rand_action(td)) or run a policy that writes it.")):
        env.step(env.reset())


def test_env_returning_wrong_types_or_batch():
    class DictStep(CountingEnv):
        def _step(self, td):
            return dict(super()._step(td).items())

    with pytest.raises(ValueError, match=r"DictStep._step must return a TensorDict with batch_size \(2,\) \(the "
                                         r"env's batch_size\), got dict"):
        DictStep(batch_size=[2]).rollout(2)

    class Unbatched(CountingEnv):
        def _reset(self, td):
            return super()._reset(td).reshape(-1).to_tensordict()[0:1].squeeze(0)  # batch_size ()

    with pytest.raises(ValueError, match=r"Unbatched._reset must return a TensorDict with batch_size \(2,\) .*got "
                                         r"batch_size \(\)"):
        Unbatched(batch_size=[2]).reset()


# ------------------------------------------------------------------------ check_env_specs
@BATCHES
def test_check_env_specs_passes(batch):
    assert check_env_specs(CountingEnv(batch_size=batch)) == []
    assert check_env_specs(ContinuousCountingEnv(batch_size=batch, max_steps=2), steps=5) == []


def _problems(env):
    found = check_env_specs(env, raise_error=False)
    return [(m.key, m.problem) for m in found], found


class WrongObsShape(CountingEnv):
    def _step(self, td):
        out = super()._step(td)
        return out.set("observation", out["observation"].expand(*self.batch_size, 2).clone())


def test_check_wrong_obs_shape():
    env = WrongObsShape(max_steps=100, batch_size=[4])
    problems, found = _problems(env)
    assert (("next", "observation"), "shape") in problems
    m = found[problems.index((("next", "observation"), "shape"))]
    assert (m.expected, m.got) == ("shape (4, 1)", "shape (4, 2)")
    assert "env.observation_spec['observation'] = Unbounded(shape=(4, 2))" in m.hint
    with pytest.raises(SpecCheckError) as info:
        check_env_specs(env)
    msg = str(info.value)
    assert msg.startswith("check_env_specs(WrongObsShape) found")
    assert ("key ('next', 'observation'): shape — expected shape (4, 1), got shape (4, 2). Make _step return "
            "shape (4, 1), or declare what it returns") in msg
    assert isinstance(info.value, AssertionError) and info.value.mismatches == found


class WrongDtype(CountingEnv):
    def _reset(self, td):
        return super()._reset(td).apply(lambda x: x.double() if x.is_floating_point() else x)

    def _step(self, td):
        return super()._step(td).apply(lambda x: x.double() if x.is_floating_point() else x)


def test_check_wrong_dtype():
    problems, found = _problems(WrongDtype(batch_size=[2]))
    assert (("observation",), "dtype") in problems and (("next", "reward"), "dtype") in problems
    m = found[problems.index((("observation",), "dtype"))]
    assert (m.expected, m.got) == ("torch.float32", "torch.float64")
    assert "cast it in _reset (e.g. .to(torch.float32)) or declare dtype=torch.float64 in " \
           "env.observation_spec['observation']" == m.hint
    r = found[problems.index((("next", "reward"), "dtype"))]
    assert "env.reward_spec" in r.hint


class WrongRewardShape(CountingEnv):
    def _step(self, td):
        out = super()._step(td)
        return out.set("reward", out["reward"].squeeze(-1))


def test_check_wrong_reward_shape():
    problems, found = _problems(WrongRewardShape(batch_size=[3]))
    assert problems == [(("next", "reward"), "shape")]
    m = found[0]
    assert (m.expected, m.got) == ("shape (3, 1)", "shape (3,)")
    assert "rewards and done flags are shaped [*batch_size, 1] = (3, 1)" in m.hint
    assert "key ('next', 'reward'): shape — expected shape (3, 1), got shape (3,)" in str(m)


class UndeclaredKey(CountingEnv):
    def _reset(self, td):
        return super()._reset(td).set("extra", torch.zeros(*self.batch_size, 2, dtype=torch.int64))

    def _step(self, td):
        return super()._step(td).set("extra", torch.zeros(*self.batch_size, 2, dtype=torch.int64))


def test_check_undeclared_key():
    problems, found = _problems(UndeclaredKey(batch_size=[2]))
    assert problems == [(("extra",), "unexpected"), (("next", "extra"), "unexpected")]
    assert found[0].got == "shape (2, 2), dtype torch.int64"
    assert "env.observation_spec['extra'] = Unbounded(shape=(2, 2), dtype=torch.int64)" in found[0].hint


def test_check_declared_key_never_produced():
    env = CountingEnv(batch_size=[2])
    env.observation_spec["velocity"] = Unbounded((2, 3))
    problems, found = _problems(env)
    assert problems == [(("velocity",), "missing"), (("next", "velocity"), "missing")]
    assert found[0].expected.startswith("Unbounded(shape=(2, 3)")
    assert found[0].got == "no such key in the data"
    assert found[0].hint == "make _reset return it, or remove it from env.observation_spec"


class WrongBatch(CountingEnv):
    def _reset(self, td):
        return TensorDict({k: v[:1] for k, v in super()._reset(td).items()}, [1])


def test_check_wrong_batch_size():
    problems, found = _problems(WrongBatch(batch_size=[3]))
    assert problems == [(("<_reset>",), "batch")]
    assert (found[0].expected, found[0].got) == ("a TensorDict with batch_size (3,)", "batch_size (1,)")
    with pytest.raises(SpecCheckError, match=r"key '<_reset>': batch — expected a TensorDict with batch_size \(3,\), "
                                             r"got batch_size \(1,\)\. Build the TensorDict that _reset returns "
                                             r"with batch_size=self.batch_size"):
        check_env_specs(WrongBatch(batch_size=[3]))


def test_check_values_outside_spec_and_done_consistency():
    env = CountingEnv(max_steps=100, batch_size=[2])
    env.observation_spec["observation"] = Bounded(0.0, 1.0, (2, 1))
    problems, found = _problems(env)
    assert (("next", "observation"), "values") in problems
    m = found[problems.index((("next", "observation"), "values"))]
    assert m.got == "values outside [0, 1], e.g. [2.0, 2.0]"

    class BadDone(CountingEnv):
        def _step(self, td):
            out = super()._step(td)
            return out.set("terminated", torch.ones_like(out["terminated"]))

    problems, found = _problems(BadDone(max_steps=100, batch_size=[2]))
    assert problems == [(("next", "done"), "values")]
    assert found[0].expected == "done == terminated | truncated"


def test_check_device_mismatch():
    env = CountingEnv(batch_size=[2])
    env.observation_spec["total"] = Unbounded((2, 1), device="meta")
    problems, found = _problems(env)
    assert (("total",), "device") in problems
    m = found[problems.index((("total",), "device"))]
    assert (m.expected, m.got) == ("meta", "cpu")


def test_spec_mismatch_str():
    m = SpecMismatch(("next", "reward"), "shape", "shape (1,)", "shape ()", "fix it")
    assert str(m) == "key ('next', 'reward'): shape — expected shape (1,), got shape (). Fix it"
    assert str(SpecMismatch(("obs",), "dtype", "a", "b", "c")) == "key 'obs': dtype — expected a, got b. C"


def test_custom_env_subclass_contract():
    """A minimal EnvBase subclass written from the docs passes check_env_specs."""

    class Walk(EnvBase):
        def __init__(self, batch_size=()):
            super().__init__(batch_size=batch_size)
            b = self.batch_size
            self.observation_spec = Composite(position=Unbounded((*b, 1)), shape=b)
            self.action_spec = Categorical(3, b)

        def _reset(self, td):
            return TensorDict({"position": torch.zeros(*self.batch_size, 1)}, self.batch_size)

        def _step(self, td):
            pos = td["position"] + (td["action"].unsqueeze(-1) - 1).float()
            return TensorDict({"position": pos, "reward": -pos.abs(), "terminated": pos.abs() >= 3}, self.batch_size)

        def _set_seed(self, seed):
            torch.manual_seed(seed)

    env = Walk(batch_size=[5])
    assert check_env_specs(env, steps=10, seed=0) == []
    td = env.rollout(50, break_when_any_done=False)
    assert td.batch_size == (5, 50) and (td["next", "position"].abs() <= 3).all()


# ------------------------------------------------------------------------------- nested keys
class NestedCountingEnv(CountingEnv):
    """CountingEnv that also reports its count under the nested key ("agent", "count")."""

    def __init__(self, max_steps=5, batch_size=()):
        super().__init__(max_steps, batch_size)
        self.observation_spec["agent", "count"] = Unbounded((*self.batch_size, 1))

    def _reset(self, td):
        out = super()._reset(td)
        return out.set(("agent", "count"), self.count.clone())

    def _step(self, td):
        return super()._step(td).set(("agent", "count"), self.count.clone())


def test_nested_keys_partial_reset_keeps_final_observation():
    env = NestedCountingEnv(max_steps=torch.tensor([1, 3]), batch_size=[2])
    td, root = env.step_and_maybe_reset(env.rand_action(env.reset()))
    assert _obs(td["next", "agent"], "count") == [1.0, 1.0]  # not overwritten by the reset
    assert _obs(root["agent"], "count") == [0.0, 1.0]
    assert root["agent"] is not td["next", "agent"]


def test_nested_keys_rollout_and_check():
    env = NestedCountingEnv(max_steps=2, batch_size=[3])
    assert check_env_specs(env) == []
    td = env.rollout(5, break_when_any_done=False)
    assert td["next", "agent", "count"].shape == (3, 5, 1)
    assert _obs(td["next", "agent"][0], "count") == [1.0, 2.0, 1.0, 2.0, 1.0]
    assert _obs(td["agent"][0], "count") == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_step_mdp_nested_action_key_and_fresh_containers():
    td = TensorDict({"agent": {"action": torch.zeros(2), "obs": torch.zeros(2)},
                     "next": {"agent": {"obs": torch.ones(2)}, "reward": torch.ones(2)}}, [2])
    out = step_mdp(td, action_key=("agent", "action"))
    assert set(out.keys(True, True)) == {("agent", "obs")}
    out = step_mdp(td)
    assert out["agent"] is not td["next", "agent"] and out["agent", "obs"] is td["next", "agent", "obs"]
