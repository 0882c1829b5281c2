"""Issue 17: TensorDictSequential / ProbabilisticActor policies and Dict observations on the collector's fast path.

The fast path (direct call of the policy's modules, fused env step) must give exactly the batches of the
policy called as it is through tensordict (same numbers, same keys, same random draws).
"""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from tensordict import TensorDict
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictSequential,
)

from rlbench.collectors import Collector, ExplorationType, set_exploration_type
from rlbench.collectors._policy_call import NotDirect, direct_call
from rlbench.envs import GymEnv, SerialEnv, gym_vector, serial_gym
from rlbench.modules import ProbabilisticActor, TanhNormal

DICT_ID = "rlbenchTestDictCartPole-v1"


class _DictObservation(gymnasium.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        box = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = spaces.Dict({"position": box, "velocity": box})

    def observation(self, obs):
        return {"position": obs[[0, 2]], "velocity": obs[[1, 3]]}


if DICT_ID not in gymnasium.registry:
    gymnasium.register(DICT_ID, entry_point=lambda **kw: _DictObservation(gymnasium.make("CartPole-v1", **kw)))


def _net(in_features=4):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(in_features, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


class _Cat(torch.nn.Module):
    def forward(self, position, velocity):
        return torch.cat([position, velocity], -1)


def _policy(kind: str, dict_obs: bool):
    """Policies of each kind, reading ``"observation"`` (or the Dict observation's two keys)."""
    if dict_obs:
        trunk = [TensorDictModule(_Cat(), in_keys=["position", "velocity"], out_keys=["features"])]
        obs_key = "features"
    else:
        trunk, obs_key = [], "observation"
    logits = TensorDictModule(_net(), in_keys=[obs_key], out_keys=["logits"])
    if kind == "ppo":  # PPO's actor: Categorical head with log-probs
        module = TensorDictSequential(*trunk, logits) if trunk else logits
        return ProbabilisticActor(module, in_keys=["logits"], distribution_class=torch.distributions.Categorical,
                                  return_log_prob=True)
    if kind == "prob_seq":  # tensordict's own sequence, a nested trunk, no log-prob
        head = ProbabilisticTensorDictModule(in_keys=["logits"], out_keys=["action"],
                                             distribution_class=torch.distributions.Categorical)
        return ProbabilisticTensorDictSequential(TensorDictSequential(*trunk, logits), head)
    assert kind == "seq"  # a deterministic two-stage sequence writing logits and the action
    argmax = TensorDictModule(lambda x: x.argmax(-1), in_keys=["logits"], out_keys=["action"])
    return TensorDictSequential(*trunk, logits, argmax)


MAKERS = {
    "gym_unbatched": (lambda: GymEnv("CartPole-v1"), False),
    "gym_vec4": (lambda: GymEnv("CartPole-v1", num_envs=4), False),
    "serial3": (lambda: SerialEnv(3, lambda: GymEnv("CartPole-v1")), False),
    "dict_vec3": (lambda: GymEnv(DICT_ID, num_envs=3), True),
    "dict_serial2": (lambda: SerialEnv(2, lambda: GymEnv(DICT_ID)), True),
}


def _count_fused_steps(monkeypatch):
    calls = []
    for cls in (gym_vector.VectorFusedStepper, serial_gym.SerialFusedStepper):
        def step(self, action, _orig=cls.step):
            calls.append(1)
            return _orig(self, action)
        monkeypatch.setattr(cls, "step", step)
    return calls


def _collect(name, kind, fast: bool, exploration=ExplorationType.RANDOM, n_batches=3):
    make, dict_obs = MAKERS[name]
    env = make()
    n = env.batch_size.numel()
    collector = Collector(env, _policy(kind, dict_obs), frames_per_batch=50 * n, seed=3,
                          exploration_type=exploration)
    if not fast:  # the policy itself, through tensordict, step by step
        collector._fused = False
        collector._direct = None
    torch.manual_seed(11)
    batches = [collector.collect() for _ in range(n_batches)]
    return batches, collector, torch.get_rng_state()


def _assert_same(a_batches, b_batches):
    for a, b in zip(a_batches, b_batches):
        assert a.batch_size == b.batch_size
        assert list(a.keys(True, True)) == list(b.keys(True, True))
        for key in b.keys(True, True):
            assert a.get(key).dtype == b.get(key).dtype, key
            assert torch.equal(a.get(key), b.get(key)), key


@pytest.mark.parametrize("kind", ["ppo", "prob_seq", "seq"])
@pytest.mark.parametrize("name", list(MAKERS))
def test_fast_path_batches_identical_to_the_policy_itself(name, kind, monkeypatch):
    calls = _count_fused_steps(monkeypatch)
    fast, col_fast, rng_fast = _collect(name, kind, True)
    took_fused = len(calls)
    slow, col_slow, rng_slow = _collect(name, kind, False)
    assert len(calls) == took_fused  # the reference run never enters the fused loop
    # one observation array and a batched gym env: the whole step is fused; Dict observations: the
    # direct call only (the env hands no fused stepper for several observation arrays)
    assert (took_fused > 0) == (name in ("gym_vec4", "serial3"))
    assert col_fast._direct is not None
    assert sum(int(b["next", "done"].sum()) for b in slow) > 2  # resets inside and across batches
    _assert_same(fast, slow)
    assert torch.equal(rng_fast, rng_slow)  # the same random draws, no more, no fewer
    if kind == "ppo":
        batch = fast[-1]
        logits = batch["logits"]
        expected = torch.distributions.Categorical(logits=logits).log_prob(batch["action"])
        assert torch.allclose(batch["sample_log_prob"], expected)
        assert batch["sample_log_prob"].shape == batch.shape
        assert not torch.equal(batch["action"], logits.argmax(-1))  # sampled, not the mode
    # the state carried into the next batch (including the policy's keys the env carries along)
    assert list(col_fast._td.keys()) == list(col_slow._td.keys())
    for key in col_slow._td.keys():
        assert torch.equal(col_fast._td.get(key), col_slow._td.get(key)), key


@pytest.mark.parametrize("name", ["gym_vec4", "serial3"])
def test_deterministic_exploration_takes_the_mode_on_the_generic_path(name, monkeypatch):
    calls = _count_fused_steps(monkeypatch)
    fast, _, rng_fast = _collect(name, "ppo", True, exploration=ExplorationType.DETERMINISTIC, n_batches=2)
    assert not calls  # a sampling head outside RANDOM: tensordict decides, the fused loop stays out
    slow, _, rng_slow = _collect(name, "ppo", False, exploration=ExplorationType.DETERMINISTIC, n_batches=2)
    _assert_same(fast, slow)
    assert torch.equal(rng_fast, rng_slow)
    assert torch.equal(fast[0]["action"], fast[0]["logits"].argmax(-1))


def test_direct_call_refuses_what_it_cannot_reproduce():
    logits = TensorDictModule(_net(), in_keys=["observation"], out_keys=["logits"])
    cat = torch.distributions.Categorical
    ok = ProbabilisticActor(logits, in_keys=["logits"], distribution_class=cat, return_log_prob=True)
    call = direct_call(ok)
    assert call is not None and call.in_keys == ["observation"]
    assert call.out_keys == ["logits", "action", "sample_log_prob"]
    from rlbench.specs import Categorical as CategoricalSpec

    safe = ProbabilisticActor(logits, in_keys=["logits"], distribution_class=cat, spec=CategoricalSpec(2),
                              safe=True)
    loc_scale = TensorDictModule(lambda obs: (obs[..., :1], obs[..., 1:2].exp()), in_keys=["observation"],
                                 out_keys=["loc", "scale"])
    tanh = ProbabilisticActor(loc_scale, in_keys=["loc", "scale"], distribution_class=TanhNormal,
                              return_log_prob=True)
    hooked = TensorDictSequential(TensorDictModule(_net(), in_keys=["observation"], out_keys=["logits"]))
    hooked.register_forward_hook(lambda *args: None)
    for policy in (safe, tanh, hooked):
        assert direct_call(policy) is None, policy
    # the direct call gives the module's numbers and draws
    td = TensorDict(observation=torch.randn(6, 4), batch_size=[6])
    with set_exploration_type(ExplorationType.RANDOM):
        torch.manual_seed(0)
        want = ok(td.clone())
        torch.manual_seed(0)
        got = call(td.clone())
    with set_exploration_type(ExplorationType.MODE), pytest.raises(NotDirect):
        call(td.clone())  # refused before running anything: the caller runs the policy itself
    for key in ("logits", "action", "sample_log_prob"):
        assert torch.equal(got[key], want[key]), key


def test_compile_policy_matches_eager():
    make, _ = MAKERS["gym_vec4"]
    batches = []
    for compiled in (False, True):
        collector = Collector(make(), _policy("ppo", False), frames_per_batch=80, seed=0,
                              compile_policy=compiled, compile_kwargs={"dynamic": False} if compiled else None)
        torch.manual_seed(5)
        batches.append(collector.collect())
        assert collector.compile_policy is compiled
    eager, comp = batches
    assert torch.allclose(eager["logits"], comp["logits"], atol=1e-5)
    assert torch.equal(eager["action"], comp["action"])
    assert torch.allclose(eager["sample_log_prob"], comp["sample_log_prob"], atol=1e-5)
    with pytest.raises(ValueError, match="compile_policy=True"):
        Collector(make(), _policy("ppo", False), frames_per_batch=80, compile_kwargs={"mode": "default"})


def _counting_env():
    from rlbench.testing import CountingEnv

    return CountingEnv(max_steps=4, batch_size=[2])


def test_multi_sync_collector_passes_compile_policy_to_its_workers():
    from rlbench.collectors import MultiSyncCollector

    policy = TensorDictModule(lambda obs: torch.ones(obs.shape[:-1], dtype=torch.int64), in_keys=["observation"],
                              out_keys=["action"])
    with pytest.raises(ValueError, match="compile_policy=True"):
        MultiSyncCollector([_counting_env], policy, frames_per_batch=8, compile_kwargs={"backend": "eager"})
    # backend="eager": dynamo traces the policy in the worker without inductor's seconds of codegen
    with MultiSyncCollector([_counting_env], policy, frames_per_batch=8, total_frames=16, compile_policy=True,
                            compile_kwargs={"backend": "eager"}) as collector:
        batches = list(collector)
    assert len(batches) == 2 and all(bool((b["action"] == 1).all()) for b in batches)


class _LocScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 2)

    def forward(self, obs):
        loc, log_scale = self.net(obs).chunk(2, -1)
        return 0.5 * loc.tanh(), log_scale.clamp(-3, -2).exp()  # inside Pendulum's [-2, 2] with validation on


@pytest.mark.parametrize("fused_env", [True, False])
def test_normal_head_rsamples_as_tensordict_does(fused_env, monkeypatch):
    """A Gaussian head (has_rsample, two parameters): the fast path gives tensordict's numbers and draws."""
    calls = _count_fused_steps(monkeypatch)

    def run(fast):
        # validate_actions=False: the fused stepper takes float actions (no range check); with validation
        # every action goes through the generic step, the policy still through the direct call
        env = GymEnv("Pendulum-v1", num_envs=3, validate_actions=not fused_env)
        actor = ProbabilisticActor(TensorDictModule(_LocScale(), in_keys=["observation"], out_keys=["loc", "scale"]),
                                   in_keys=["loc", "scale"], distribution_class=torch.distributions.Normal,
                                   return_log_prob=True)
        collector = Collector(env, actor, frames_per_batch=60, seed=1)
        if not fast:
            collector._fused, collector._direct = False, None
        torch.manual_seed(2)
        return [collector.collect() for _ in range(2)], torch.get_rng_state()

    fast, rng_fast = run(True)
    assert (len(calls) > 0) == fused_env
    slow, rng_slow = run(False)
    _assert_same(fast, slow)
    assert torch.equal(rng_fast, rng_slow)
    batch = fast[-1]
    expected = torch.distributions.Normal(batch["loc"], batch["scale"]).log_prob(batch["action"])
    assert torch.allclose(batch["sample_log_prob"], expected)
